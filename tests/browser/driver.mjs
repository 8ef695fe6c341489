// Drives headless Debian chromium (playwright-core) for tests/real_browser.rs,
// and serves the shop's side: test pages on their own origin (so every request
// to orderwatch is cross-origin, as on a real shop), a copy of the checkout
// reporter (for pages loaded while orderwatch is down), the real @sentry/browser
// from node_modules (ES modules through an import map), and a shop backend
// whose POST /api/v1/orders/ answers 400 with a JSON error body.
//
// Protocol: one JSON line out when ready ({"ready": true, "origin": ...}); then
// one JSON command a line on stdin, one JSON answer a line on stdout
// ({"ok": value} or {"error": message}):
//   {"cmd": "goto", "url"}            load a page (waits for "load")
//   {"cmd": "reload"}
//   {"cmd": "eval", "js"}             the body of an async function run in the page; its result
//   {"cmd": "wait_url", "suffix"}     until the page's URL ends with suffix
//   {"cmd": "console"}                the page's console messages so far
//   {"cmd": "screenshot", "path"}
//   {"cmd": "close"}
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const chromiumPath = process.env.ORDERWATCH_TEST_CHROMIUM || '/usr/bin/chromium';

/** An import map for @sentry/browser's ES modules: every bare specifier they import, resolved as Node would. */
function importMap() {
  const specs = new Set(['@sentry/browser']);
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!['cjs', 'types', 'types-ts3.8', 'bundles'].includes(e.name)) walk(p);
      } else if (/\.m?js$/.test(e.name)) {
        const text = fs.readFileSync(p, 'utf8');
        for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)['"]([^'".\/][^'"]*)['"]/g)) specs.add(m[1]);
      }
    }
  };
  walk(path.join(here, 'node_modules/@sentry'));
  const imports = {};
  for (const s of specs) {
    try {
      const file = fileURLToPath(import.meta.resolve(s));
      imports[s] = '/' + path.relative(here, file).split(path.sep).join('/');
    } catch { /* optional peers of integrations the page does not load */ }
  }
  return { imports };
}

const page = (title, head, body) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${head}</head><body>${body}</body></html>`;

function checkoutPage(q) {
  // src: where the reporter is loaded from (orderwatch, or this server's copy).
  const src = q.get('src') || '/orderwatch-checkout.js';
  const init = JSON.stringify({ dsn: q.get('dsn'), release: 'shop@test', environment: 'test' });
  return page('checkout', `<script src="${src}"></script>`,
    `<h1>Checkout</h1><script>
      window.initError = null;
      try { OrderwatchCheckout.init(${init}); } catch (e) { window.initError = String(e); }
    </script>`);
}

function sentryPage(q) {
  const dsn = JSON.stringify(q.get('dsn'));
  return page('sentry', `<script type="importmap">${JSON.stringify(importMap())}</script>`,
    `<h1>Checkout (Sentry)</h1><script type="module">
      import * as Sentry from '@sentry/browser';
      window.sent = [];
      Sentry.init({ dsn: ${dsn}, normalizeDepth: 10, release: 'shop@test', environment: 'test' });
      // What the page saw of orderwatch's answer (only readable with CORS headers).
      Sentry.getClient().on('afterSendEvent', (event, res) => window.sent.push({ id: event.event_id, res }));
      window.submitOrder = async (cart) => {
        const body = JSON.stringify(cart);
        const res = await fetch('/api/v1/orders/', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
        const text = await res.text();
        if (res.ok) return { ok: true };
        Sentry.setExtra('cart', cart);
        Sentry.setContext('order', { status: res.status, response: JSON.parse(text) });
        Sentry.setTag('api.endpoint', '/api/v1/orders/');
        Sentry.setTag('api.status', String(res.status));
        Sentry.setUser({ email: cart.order.contact.email });
        const id = Sentry.captureException(new Error('POST /api/v1/orders/ failed with ' + res.status));
        const flushed = await Sentry.flush(5000);
        return { id, flushed, status: res.status, text };
      };
      window.sentryReady = true;
    </script>`);
}

const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.html': 'text/html' };

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const send = (status, type, body, extra = {}) => {
    res.writeHead(status, { 'Content-Type': type + '; charset=utf-8', 'Cache-Control': 'no-store', ...extra });
    res.end(body);
  };
  if (url.pathname === '/api/v1/orders/') {
    // The shop's backend refuses the order, as Django REST framework does.
    req.resume();
    return req.on('end', () =>
      send(400, 'application/json', JSON.stringify({ delivery: { floor: ['Ensure this value is greater than or equal to 0.'] } })));
  }
  if (url.pathname === '/checkout.html') return send(200, 'text/html', checkoutPage(url.searchParams));
  if (url.pathname === '/sentry.html') return send(200, 'text/html', sentryPage(url.searchParams));
  if (url.pathname === '/leave.html') return send(200, 'text/html', page('left', '', '<p>left the checkout</p>'));
  if (url.pathname === '/orderwatch-checkout.js') {
    return send(200, 'text/javascript', fs.readFileSync(path.join(repo, 'static/orderwatch-checkout.js')));
  }
  if (url.pathname.startsWith('/node_modules/')) {
    const file = path.join(here, path.normalize(decodeURIComponent(url.pathname)));
    if (file.startsWith(path.join(here, 'node_modules')) && fs.existsSync(file)) {
      return send(200, types[path.extname(file)] || 'application/octet-stream', fs.readFileSync(file));
    }
  }
  send(404, 'text/plain', 'not found');
});

const out = (v) => process.stdout.write(JSON.stringify(v) + '\n');

async function main() {
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const browser = await chromium.launch({ executablePath: chromiumPath });
  const context = await browser.newContext();
  const tab = await context.newPage();
  const consoleLines = [];
  tab.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  tab.on('pageerror', (e) => consoleLines.push(`pageerror: ${e}`));
  tab.setDefaultTimeout(20000);
  out({ ready: true, origin });

  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let c;
    try {
      c = JSON.parse(line);
      let v = null;
      switch (c.cmd) {
        case 'goto':
          await tab.goto(c.url.startsWith('/') ? origin + c.url : c.url, { waitUntil: 'load' });
          break;
        case 'reload':
          await tab.reload({ waitUntil: 'load' });
          break;
        case 'eval':
          v = await tab.evaluate(`(async () => { ${c.js}\n })()`);
          break;
        case 'wait_url':
          await tab.waitForURL((u) => u.href.endsWith(c.suffix), { waitUntil: 'load' });
          v = tab.url();
          break;
        case 'console':
          v = consoleLines;
          break;
        case 'screenshot':
          await tab.screenshot({ path: c.path });
          break;
        case 'close':
          out({ ok: null });
          await browser.close();
          server.close();
          process.exit(0);
        default:
          throw new Error('unknown command ' + c.cmd);
      }
      out({ ok: v === undefined ? null : v });
    } catch (e) {
      out({ error: String(e && e.stack || e) });
    }
  }
  await browser.close();
  server.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
