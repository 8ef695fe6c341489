/*! orderwatch checkout reporter 1.0.0 | served by orderwatch at /static/orderwatch-checkout.js | no dependencies */
/*
 * Reports an order submission that failed, so that no customer's order is
 * lost without the shop knowing. Call it from the code that submits the order:
 *
 *   OrderwatchCheckout.init({dsn: 'https://<key>@orderwatch.shop.example/1', release: 'shop@1.2'});
 *   OrderwatchCheckout.reportFailedOrder({url: '/api/v1/orders/', method: 'POST', requestBody: body,
 *     status: res.status, responseBody: text, cart: cart, customer: {email: email}});
 *
 * What it guarantees:
 * - a report is written to localStorage before reportFailedOrder returns its
 *   event id (in memory only when localStorage is unavailable or full);
 * - it stays there until orderwatch answers 2xx, and is retried: with backoff
 *   (1 s doubling to 5 min, shortened at random by up to half), when the
 *   browser comes back online, and at the next page load of the same origin;
 *   when the page is left it goes out with navigator.sendBeacon (or a
 *   keepalive fetch) and stays queued, since a beacon proves nothing;
 * - each report has one event id for all its sends; orderwatch counts an
 *   event id once, so resending is safe;
 * - 429 is honoured (Retry-After); 408 and 5xx are retried; 401 and 403 (a DSN
 *   orderwatch does not know, yet) are retried too, with console errors, until
 *   the DSN is fixed on the server; any other 4xx means the report can never be
 *   accepted: it is dropped with a console error;
 * - at most maxQueue (default 50) reports are kept; beyond that the oldest is
 *   dropped with a console warning;
 * - two tabs do not send the same report at the same time (a 15 s lease in the
 *   stored report).
 *
 * The event (Sentry's format; orderwatch's lost-order detector reads it):
 *   event_id, timestamp (of the failure), platform "javascript", level "error",
 *   logger "orderwatch.checkout", sdk, release, environment,
 *   exception.values[0] {type "OrderSubmitError" | "OrderSubmitNetworkError",
 *     value "POST /api/v1/orders/ failed with 400" | "... failed: <error>",
 *     mechanism {type "orderwatch.checkout", handled true}},
 *   request {url: location.href, headers {"User-Agent"}},
 *   user {ip_address "{{auto}}", email, username, id},
 *   tags {"orderwatch.kind" "order_submit_failed", "api.endpoint", "api.method",
 *     "api.status" ("400" | "network"), ...your tags},
 *   contexts.response {type "response", status_code, body_size} (when there was a response),
 *   extra {request {method, url, body}, response {status, body} (when there was
 *     a response), error (when there was none), cart, customer, ...your extra}.
 * Bodies that are JSON text are parsed; nothing is cut at any depth.
 */
(function (root) {
  'use strict';

  var VERSION = '1.0.0';
  var SDK = { name: 'orderwatch.checkout', version: VERSION };
  var PREFIX = 'orderwatch.checkout.report.';
  var LEASE_MS = 15000;
  var SEND_TIMEOUT_MS = 10000;
  var BACKOFF_BASE_MS = 1000;
  var BACKOFF_MAX_MS = 300000;
  // Browsers refuse keepalive fetches and beacons above 64 KiB in flight.
  var KEEPALIVE_MAX_BYTES = 60000;

  var config = null;
  var tab = randomHex(8);
  var memory = {}; // reports localStorage would not take
  var inflight = {}; // event id -> promise of this tab's send
  var blockedUntil = 0; // 429: nothing is sent before this
  var timer = null;
  var listening = false;

  function log(level, msg, detail) {
    try {
      if (root.console && root.console[level]) {
        if (detail !== undefined) root.console[level]('[orderwatch] ' + msg, detail);
        else root.console[level]('[orderwatch] ' + msg);
      }
    } catch (e) { /* no console */ }
  }

  function now() {
    return Date.now();
  }

  function randomHex(bytes) {
    var a = new Uint8Array(bytes);
    var c = root.crypto || root.msCrypto;
    if (c && c.getRandomValues) c.getRandomValues(a);
    else for (var i = 0; i < bytes; i++) a[i] = Math.floor(Math.random() * 256);
    var s = '';
    for (var j = 0; j < bytes; j++) s += (a[j] < 16 ? '0' : '') + a[j].toString(16);
    return s;
  }

  function newEventId() {
    // A version-4 UUID without dashes, as Sentry's SDKs make them.
    var h = randomHex(16).split('');
    h[12] = '4';
    h[16] = '89ab'[parseInt(h[16], 16) & 3];
    return h.join('');
  }

  /** UTF-8 length of a string (what an envelope item's `length` counts). */
  function utf8Length(s) {
    var n = 0;
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      if (c < 0x80) n += 1;
      else if (c < 0x800) n += 2;
      else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length &&
               s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3; // including a lone surrogate, sent as U+FFFD
    }
    return n;
  }

  /** A JSON-safe copy, whole: cycles and what JSON cannot hold are named, never cut by depth. */
  function plain(value) {
    var seen = [];
    function copy(v) {
      if (v === null || v === undefined) return v === null ? null : undefined;
      var t = typeof v;
      if (t === 'string' || t === 'boolean') return v;
      if (t === 'number') return isFinite(v) ? v : String(v);
      if (t === 'bigint') return v.toString();
      if (t === 'function' || t === 'symbol') return undefined;
      if (v instanceof Date) return isNaN(v.getTime()) ? String(v) : v.toISOString();
      if (v instanceof Error) return String(v);
      if (typeof v.toJSON === 'function') {
        try { return copy(v.toJSON()); } catch (e) { return String(v); }
      }
      if (seen.indexOf(v) >= 0) return '[Circular]';
      seen.push(v);
      var out;
      if (typeof root.URLSearchParams !== 'undefined' && v instanceof root.URLSearchParams) {
        out = v.toString();
      } else if (typeof root.FormData !== 'undefined' && v instanceof root.FormData) {
        out = {};
        v.forEach(function (x, k) {
          out[k] = (typeof root.File !== 'undefined' && x instanceof root.File)
            ? { file: x.name, size: x.size, type: x.type } : x;
        });
      } else if (Array.isArray(v)) {
        out = [];
        for (var i = 0; i < v.length; i++) {
          var x = copy(v[i]);
          out.push(x === undefined ? null : x);
        }
      } else {
        out = {};
        for (var k in v) {
          if (Object.prototype.hasOwnProperty.call(v, k)) {
            var y = copy(v[k]);
            if (y !== undefined) out[k] = y;
          }
        }
      }
      seen.pop();
      return out;
    }
    return copy(value);
  }

  /** A body as the detector wants it: JSON text parsed, anything else copied whole. */
  function body(b) {
    if (typeof b === 'string') {
      var t = b.trim();
      if (t && (t[0] === '{' || t[0] === '[')) {
        try { return JSON.parse(t); } catch (e) { /* not JSON */ }
      }
      return b;
    }
    return plain(b);
  }

  function bodySize(b) {
    if (b === undefined || b === null) return 0;
    if (typeof b === 'string') return utf8Length(b);
    try { return utf8Length(JSON.stringify(plain(b)) || ''); } catch (e) { return 0; }
  }

  function pathOf(url) {
    try { return new URL(url, root.location && root.location.href).pathname; } catch (e) { return String(url); }
  }

  /** {url, key} of a DSN `https://<key>@host[:port][/prefix]/<project>`. */
  function endpoint(dsn) {
    var m = /^(https?):\/\/([^:@\/]+)(?::[^@\/]*)?@([^\/?#]+)((?:\/[^?#]*)?)\/(\d+)\/?$/.exec(String(dsn || '').trim());
    if (!m) return null;
    return {
      url: m[1] + '://' + m[3] + m[4] + '/api/' + m[5] + '/envelope/?sentry_key=' + encodeURIComponent(m[2]) +
        '&sentry_version=7&sentry_client=' + encodeURIComponent(SDK.name + '/' + VERSION),
      key: m[2],
    };
  }

  // ---- the queue: one localStorage entry a report, so tabs never overwrite each other's ----

  function storage() {
    try {
      var s = root.localStorage;
      return s || null;
    } catch (e) {
      return null; // disabled (e.g. blocked cookies): memory only
    }
  }

  function put(item) {
    var s = storage();
    if (s) {
      try {
        s.setItem(PREFIX + item.id, JSON.stringify(item));
        delete memory[item.id];
        return true;
      } catch (e) {
        if (!memory[item.id]) log('warn', 'localStorage refused the report (full or disabled); it is kept in memory only', e);
      }
    }
    memory[item.id] = item;
    return false;
  }

  function get(id) {
    if (memory[id]) return memory[id];
    var s = storage();
    if (!s) return null;
    try {
      var text = s.getItem(PREFIX + id);
      return text ? JSON.parse(text) : null;
    } catch (e) {
      return null;
    }
  }

  function remove(id) {
    delete memory[id];
    var s = storage();
    if (s) {
      try { s.removeItem(PREFIX + id); } catch (e) { /* nothing to do */ }
    }
  }

  /** Every queued report, oldest first. */
  function all() {
    var items = [];
    var ids = {};
    var s = storage();
    if (s) {
      try {
        for (var i = 0; i < s.length; i++) {
          var k = s.key(i);
          if (k && k.indexOf(PREFIX) === 0) {
            try {
              var it = JSON.parse(s.getItem(k));
              if (it && it.id && it.event) {
                items.push(it);
                ids[it.id] = true;
              }
            } catch (e) { /* a damaged entry */ }
          }
        }
      } catch (e) { /* unreadable: memory only */ }
    }
    for (var id in memory) if (!ids[id]) items.push(memory[id]);
    items.sort(function (a, b) { return a.created - b.created; });
    return items;
  }

  function enforceCap() {
    var max = (config && config.maxQueue) || 50;
    var items = all();
    while (items.length > max) {
      var old = items.shift();
      remove(old.id);
      log('warn', 'more than ' + max + ' unsent reports: dropped the oldest (' + old.id + ')');
    }
  }

  /** Takes the report for this tab for LEASE_MS, unless another tab holds it. */
  function lease(id) {
    var it = get(id);
    if (!it) return null;
    if (it.lease && it.lease > now() && it.owner !== tab) return null;
    it.lease = now() + LEASE_MS;
    it.owner = tab;
    put(it);
    var again = get(id);
    return again && again.owner === tab ? again : null;
  }

  // ---- building ----

  function buildEvent(o, id, at) {
    o = o || {};
    var method = String(o.method || 'POST').toUpperCase();
    var url = o.url === undefined ? '' : String(o.url);
    var path = pathOf(url);
    var status = Number(o.status) || 0;
    var error = o.error === undefined || o.error === null ? '' : String(o.error);
    var customer = o.customer ? plain(o.customer) : undefined;

    var tags = {};
    var userTags = o.tags || {};
    for (var t in userTags) {
      if (Object.prototype.hasOwnProperty.call(userTags, t) && userTags[t] !== undefined && userTags[t] !== null) {
        tags[t] = String(userTags[t]);
      }
    }
    tags['orderwatch.kind'] = 'order_submit_failed';
    tags['api.endpoint'] = path;
    tags['api.method'] = method;
    tags['api.status'] = status ? String(status) : 'network';

    var extra = {};
    var userExtra = o.extra ? plain(o.extra) : {};
    for (var x in userExtra) if (Object.prototype.hasOwnProperty.call(userExtra, x)) extra[x] = userExtra[x];
    extra.request = { method: method, url: url, body: body(o.requestBody) };
    if (status) extra.response = { status: status, body: body(o.responseBody) };
    else extra.error = error || 'no response';
    if (o.cart !== undefined) extra.cart = plain(o.cart);
    if (customer !== undefined) extra.customer = customer;

    var user = { ip_address: '{{auto}}' };
    if (customer && typeof customer === 'object') {
      if (customer.email) user.email = String(customer.email);
      if (customer.username || customer.name) user.username = String(customer.username || customer.name);
      if (customer.id !== undefined && customer.id !== null) user.id = String(customer.id);
    }

    var event = {
      event_id: id,
      timestamp: at / 1000,
      platform: 'javascript',
      level: 'error',
      logger: 'orderwatch.checkout',
      sdk: SDK,
      exception: {
        values: [{
          type: status ? 'OrderSubmitError' : 'OrderSubmitNetworkError',
          value: status ? method + ' ' + path + ' failed with ' + status
            : method + ' ' + path + ' failed: ' + (error || 'no response'),
          mechanism: { type: 'orderwatch.checkout', handled: true },
        }],
      },
      request: {
        url: root.location ? String(root.location.href) : '',
        headers: { 'User-Agent': root.navigator ? String(root.navigator.userAgent) : '' },
      },
      user: user,
      tags: tags,
      extra: extra,
    };
    if (config && config.release) event.release = String(config.release);
    if (config && config.environment) event.environment = String(config.environment);
    if (status) event.contexts = { response: { type: 'response', status_code: status, body_size: bodySize(o.responseBody) } };
    return event;
  }

  /** The envelope as sent now: the header (with this send's sent_at), one event item. */
  function envelopeOf(item, dsn) {
    var header = { event_id: item.id, sent_at: new Date().toISOString(), dsn: dsn, sdk: SDK };
    return JSON.stringify(header) + '\n' +
      JSON.stringify({ type: 'event', length: utf8Length(item.event) }) + '\n' + item.event + '\n';
  }

  // ---- sending ----

  function backoff(attempts) {
    var d = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * Math.pow(2, Math.max(0, attempts - 1)));
    return Math.round(d * (0.5 + Math.random() * 0.5));
  }

  function retryAfter(value) {
    if (!value) return 0;
    var s = Number(value);
    if (isFinite(s)) return Math.max(0, s * 1000);
    var t = Date.parse(value);
    return isNaN(t) ? 0 : Math.max(0, t - now());
  }

  /** Records a failed attempt; the report waits `wait` ms (or its backoff). */
  function failed(id, why, wait) {
    var it = get(id);
    if (!it) return;
    it.attempts = (it.attempts || 0) + 1;
    it.next = now() + (wait || backoff(it.attempts));
    it.last = why;
    it.lease = 0;
    it.owner = null;
    put(it);
  }

  /** One send of one report by fetch; resolves true when orderwatch took it. */
  function send(id) {
    if (inflight[id]) return inflight[id];
    var dsn = (get(id) || {}).dsn || (config && config.dsn);
    var ep = endpoint(dsn);
    if (!ep) {
      log('error', 'no usable DSN (init({dsn}) with the DSN orderwatch shows): the report stays queued', dsn);
      failed(id, 'no DSN');
      return Promise.resolve(false);
    }
    if (blockedUntil > now()) return Promise.resolve(false);
    var item = lease(id);
    if (!item) return Promise.resolve(false);
    var text = envelopeOf(item, dsn);
    var opts = { method: 'POST', body: text, headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, credentials: 'omit' };
    if (utf8Length(text) <= KEEPALIVE_MAX_BYTES) opts.keepalive = true;
    var abort = null;
    if (typeof root.AbortController === 'function') {
      var ctl = new root.AbortController();
      opts.signal = ctl.signal;
      abort = setTimeout(function () { ctl.abort(); }, SEND_TIMEOUT_MS);
    }
    var p;
    try {
      p = root.fetch(ep.url, opts);
    } catch (e) {
      p = Promise.reject(e);
    }
    var done = p.then(function (res) {
      var st = res.status;
      if (st >= 200 && st < 300) {
        remove(id);
        return true;
      }
      if (st === 429) {
        var wait = retryAfter(res.headers.get('Retry-After')) || backoff(((get(id) || {}).attempts || 0) + 1);
        blockedUntil = now() + wait;
        failed(id, 'HTTP 429', wait);
        return false;
      }
      if (st === 401 || st === 403) {
        log('error', 'orderwatch refused the DSN (HTTP ' + st + '); the report stays queued until the DSN is fixed', dsn);
        failed(id, 'HTTP ' + st);
        return false;
      }
      if (st >= 400 && st < 500 && st !== 408) {
        return res.text().then(function (t) { return t; }, function () { return ''; }).then(function (t) {
          log('error', 'orderwatch cannot accept report ' + id + ' (HTTP ' + st + '): dropped. ' + t);
          remove(id);
          return false;
        });
      }
      failed(id, 'HTTP ' + st);
      return false;
    }, function (e) {
      failed(id, String(e && e.message || e));
      return false;
    }).then(function (ok) {
      if (abort) clearTimeout(abort);
      delete inflight[id];
      schedule();
      return ok;
    });
    inflight[id] = done;
    return done;
  }

  /** Sends every queued report that is due (or all of them: `force`). */
  function sendQueued(force) {
    var items = all();
    var t = now();
    var sends = [];
    for (var i = 0; i < items.length; i++) {
      if (force || !items[i].next || items[i].next <= t || inflight[items[i].id]) sends.push(send(items[i].id));
    }
    return Promise.all(sends);
  }

  function schedule() {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    var items = all();
    if (!items.length) return;
    var next = Infinity;
    for (var i = 0; i < items.length; i++) {
      var it = items[i];
      if (inflight[it.id]) continue;
      // Due at its backoff; one another tab is sending is looked at again when that lease ends.
      next = Math.min(next, Math.max(it.next || 0, it.lease && it.owner !== tab ? it.lease : 0));
    }
    if (next === Infinity) return;
    var wait = Math.max(next - now(), blockedUntil - now(), 0);
    timer = setTimeout(function () {
      timer = null;
      sendQueued(false).then(schedule, schedule);
    }, Math.min(wait, BACKOFF_MAX_MS) + 10);
  }

  /** The page is being left: beacon what is queued (kept queued: a beacon proves nothing). */
  function leaving() {
    if (!config || blockedUntil > now()) return;
    var items = all();
    for (var i = 0; i < items.length; i++) {
      var it = items[i];
      if (inflight[it.id]) continue; // a keepalive fetch outlives the page
      if (it.lease && it.lease > now() && it.owner !== tab) continue;
      var dsn = it.dsn || config.dsn;
      var ep = endpoint(dsn);
      if (!ep) continue;
      var text = envelopeOf(it, dsn);
      if (utf8Length(text) > KEEPALIVE_MAX_BYTES) continue; // too big for a beacon: the next page load sends it
      var sent = false;
      try {
        if (root.navigator && typeof root.navigator.sendBeacon === 'function') {
          sent = root.navigator.sendBeacon(ep.url, new Blob([text], { type: 'text/plain;charset=UTF-8' }));
        }
        if (!sent && typeof root.fetch === 'function') {
          root.fetch(ep.url, { method: 'POST', body: text, keepalive: true, credentials: 'omit',
            headers: { 'Content-Type': 'text/plain;charset=UTF-8' } }).catch(function () {});
          sent = true;
        }
      } catch (e) { /* the next page load sends it */ }
      if (sent) {
        it.beaconAt = now();
        it.attempts = (it.attempts || 0) + 1;
        put(it);
      }
    }
  }

  function listen() {
    if (listening || typeof root.addEventListener !== 'function') return;
    listening = true;
    root.addEventListener('online', function () { sendQueued(true).then(schedule, schedule); });
    root.addEventListener('pagehide', leaving);
    root.addEventListener('pageshow', function (e) { if (e && e.persisted) sendQueued(true); });
    if (root.document && typeof root.document.addEventListener === 'function') {
      root.document.addEventListener('visibilitychange', function () {
        if (root.document.visibilityState === 'hidden') leaving();
      });
    }
  }

  // ---- the API ----

  var api = {
    version: VERSION,

    /** {dsn, release?, environment?, maxQueue?}; sends what earlier pages left queued. */
    init: function (options) {
      options = options || {};
      config = {
        dsn: options.dsn ? String(options.dsn) : '',
        release: options.release,
        environment: options.environment,
        maxQueue: Math.max(1, Number(options.maxQueue) || 50),
      };
      if (!endpoint(config.dsn)) log('error', 'init: not a DSN (expected https://<key>@host/<project>)', options.dsn);
      listen();
      enforceCap();
      sendQueued(true).then(schedule, schedule);
      return api;
    },

    /** Persists a report of a failed order submission and starts sending it; returns its event id. */
    reportFailedOrder: function (o) {
      var id = newEventId();
      var at = now();
      var event;
      try {
        event = JSON.stringify(buildEvent(o, id, at));
      } catch (e) {
        // Never lose the report over one odd value.
        event = JSON.stringify(buildEvent({ url: o && o.url, method: o && o.method, status: o && o.status,
          error: o && o.error, extra: { build_error: String(e) } }, id, at));
      }
      put({ id: id, dsn: config ? config.dsn : '', event: event, created: at, attempts: 0, next: 0 });
      enforceCap();
      if (config) send(id);
      else log('warn', 'reportFailedOrder before init(): the report is queued and sent after init');
      return id;
    },

    /** Sends everything queued now; resolves true when the queue is empty, false when a send failed. */
    flush: function () {
      if (!config) return Promise.resolve(all().length === 0);
      return sendQueued(true).then(function () {
        schedule();
        return all().length === 0;
      });
    },

    /** The queued reports (for diagnostics and tests). */
    queue: function () {
      return all();
    },
  };

  root.OrderwatchCheckout = api;
  if (typeof module === 'object' && module && module.exports) module.exports = api;
})(typeof window !== 'undefined' ? window : typeof self !== 'undefined' ? self : this);
