// Runs the checkout reporter (static/orderwatch-checkout.js) in Node against a
// real orderwatch, with a minimal window (localStorage in a Map, Node's fetch),
// for tests/real_browser.rs: it reports a refused order with Cyrillic and
// 4-byte UTF-8 text and a network failure, flushes, and prints what was sent.
//   node envelope.mjs <dsn>
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const code = fs.readFileSync(path.join(here, '../../static/orderwatch-checkout.js'), 'utf8');
const dsn = process.argv[2];

const entries = new Map();
const localStorage = {
  get length() { return entries.size; },
  key: (i) => [...entries.keys()][i] ?? null,
  getItem: (k) => (entries.has(k) ? entries.get(k) : null),
  setItem: (k, v) => { entries.set(k, String(v)); },
  removeItem: (k) => { entries.delete(k); },
};
const sent = [];
const window = {
  localStorage,
  location: { href: 'https://example-shop.ru/cart/checkout/' },
  navigator: { userAgent: 'orderwatch-test/1.0 (node)' },
  crypto: globalThis.crypto,
  AbortController,
  console,
  fetch: (url, opts) => {
    sent.push({ url, body: opts.body, headers: opts.headers });
    return fetch(url, opts);
  },
  addEventListener() {},
  document: { addEventListener() {}, visibilityState: 'visible' },
};
new Function('window', code)(window);
const ow = window.OrderwatchCheckout;
ow.init({ dsn, release: 'shop@2018.06.22', environment: 'production' });

const cart = {
  order: {
    contact: { name: 'Ирина Соколова', phone: '+7 917 555-12-34', email: 'irina.sokolova@example.ru' },
    delivery: { type: 'courier', city: 'Волгоград', street: 'ул. Мира', house: '17', floor: -1 },
    items: [{ sku: 'PLAST-KNAUF-30', name: 'Штукатурка гипсовая Knauf Ротбанд 30 кг 🧱', qty: 12, price: 489.0 }],
    total: 5868.0,
    deep: { a: { b: { c: { d: { e: { f: 'глубоко' } } } } } },
  },
};
const before = Date.now() / 1000;
const refused = ow.reportFailedOrder({
  url: '/api/v1/orders/?utm=x',
  method: 'post',
  requestBody: JSON.stringify(cart),
  status: 400,
  responseBody: '{"delivery": {"floor": ["Ensure this value is greater than or equal to 0."]}}',
  cart,
  customer: { email: 'irina.sokolova@example.ru', name: 'Ирина' },
  tags: { shop: 'стройка', 'api.status': 'overridden?' },
  extra: { attempt: 2 },
});
const queuedAtOnce = localStorage.getItem('orderwatch.checkout.report.' + refused) !== null;
const network = ow.reportFailedOrder({ url: '/api/v1/orders/', requestBody: cart, error: 'TypeError: Failed to fetch', cart });
const flushed = await ow.flush();
process.stdout.write(JSON.stringify({ refused, network, before, queuedAtOnce, flushed, left: entries.size, sent }) + '\n');
