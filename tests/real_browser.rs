//! Real browsers report failed orders to orderwatch: headless Debian
//! `chromium` driven by `playwright-core`, the real `@sentry/browser`, and the
//! checkout reporter (`static/orderwatch-checkout.js`), all from npm in
//! `tests/browser` (`scripts/test` runs `npm ci` there and names it in
//! `ORDERWATCH_TEST_BROWSER_DIR`). The test pages come from their own origin
//! (a node server in `tests/browser/driver.mjs`), so every report is a
//! cross-origin request, as on a shop. What arrived is read back through
//! orderwatch's API and its stored envelopes.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::browser::{Driver, browser_dir};
use common::{Server, urlencode, wait_until};
use serde_json::{Value, json};


/// The driver: a headless chromium and the shop's page server, commanded over stdin.
struct Browser {
    d: Driver,
    /// The test pages' origin (not orderwatch's).
    origin: String,
}

impl Browser {
    fn start() -> Browser {
        let d = Driver::start("driver.mjs");
        let origin = d.ready["origin"].as_str().expect("the driver names its page server's origin").to_owned();
        Browser { d, origin }
    }

    fn cmd(&mut self, c: Value) -> Value {
        self.d.cmd(c)
    }


    fn goto(&mut self, url: &str) {
        self.cmd(json!({"cmd": "goto", "url": url}));
    }

    /// Runs `js` (an async function's body) in the page; its result.
    fn eval(&mut self, js: &str) -> Value {
        self.d.eval(js)
    }

    /// Loads the checkout page with the reporter from `src` (orderwatch's or the page server's copy).
    fn checkout(&mut self, src: &str, dsn: &str) {
        self.goto(&format!("/checkout.html?src={}&dsn={}", urlencode(src), urlencode(dsn)));
        assert_eq!(self.eval("return typeof OrderwatchCheckout + ' ' + window.initError"), "object null");
    }

    /// The reporter's entries in localStorage: (event id, stored report).
    fn stored(&mut self) -> Vec<(String, Value)> {
        let v = self.eval(
            "const out = []; for (let i = 0; i < localStorage.length; i++) { const k = localStorage.key(i); \
             if (k.startsWith('orderwatch.checkout.report.')) out.push([k.slice(27), JSON.parse(localStorage.getItem(k))]); } \
             return out;",
        );
        serde_json::from_value(v).unwrap()
    }
}


fn dsn(s: &Server) -> String {
    s.api("GET", "/api/v1/projects", "").json()[0]["dsn"].as_str().unwrap().to_owned()
}

fn script_url(s: &Server) -> String {
    format!("http://{}/static/orderwatch-checkout.js", s.http)
}

/// The error event once orderwatch has processed it.
fn event(s: &Server, id: &str, timeout: Duration) -> Value {
    wait_until(&format!("error event {id}"), timeout, || {
        let r = s.api("GET", &format!("/api/v1/error-events/{id}"), "");
        (r.status == 200).then(|| r.json())
    })
}

fn groups(s: &Server) -> Vec<Value> {
    s.api("GET", "/api/v1/error-groups", "").json().as_array().unwrap().clone()
}

/// Event ids of the stored envelopes (every send orderwatch took, duplicates too).
fn stored_envelope_ids(s: &Server) -> Vec<String> {
    let out = Command::new(common::require("python3"))
        .args([
            "-c",
            "import json, sqlite3, sys\n\
             c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
             print(json.dumps([r[0] for r in c.execute('SELECT event_id FROM sentry_envelopes ORDER BY id')]))",
        ])
        .arg(s.data.join("orderwatch.db"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A failed order as the shop's submit code reports it (JS object literal).
const ORDER: &str = "{url: '/api/v1/orders/', method: 'POST', status: 400, \
    requestBody: JSON.stringify({order: {contact: {name: 'Ирина', email: 'irina@example.ru'}, delivery: {floor: -1}}}), \
    responseBody: '{\"delivery\": {\"floor\": [\"Ensure this value is greater than or equal to 0.\"]}}', \
    cart: {items: [{sku: 'PLAST-KNAUF-30', name: 'Штукатурка Knauf Ротбанд 30 кг', qty: 12, price: 489}], \
           nested: {a: {b: {c: {d: {e: 'deep'}}}}}}, \
    customer: {email: 'irina@example.ru', name: 'Ирина'}, tags: {checkout_step: 'confirm'}}";

/// a. The real @sentry/browser on a shop page of another origin: a refused
/// order is captured with the cart and context, arrives whole (normalizeDepth
/// 10), the address filled in, and the page reads orderwatch's answer (CORS).
#[test]
fn the_sentry_browser_sdk_reports_a_refused_order_across_origins() {
    let mut s = Server::start("");
    let mut b = Browser::start();
    b.goto(&format!("/sentry.html?dsn={}", urlencode(&dsn(&s))));
    b.eval("for (let i = 0; i < 200 && !window.sentryReady; i++) await new Promise(r => setTimeout(r, 25)); if (!window.sentryReady) throw new Error('Sentry did not load');");
    let r = b.eval(
        "return await submitOrder({order: {contact: {name: 'Ирина Соколова', email: 'irina@example.ru'}, \
         delivery: {city: 'Волгоград', floor: -1}, items: [{sku: 'PLAST-KNAUF-30', qty: 12, \
         options: {pack: {kind: {size: {kg: 30}}}}}], total: 5868}})",
    );
    assert_eq!(r["status"], 400, "{r}");
    assert_eq!(r["flushed"], true, "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    // The page saw orderwatch's 200: the answer carried CORS headers.
    let sent = b.eval("return window.sent");
    assert_eq!(sent[0]["id"], id.as_str(), "{sent}");
    assert_eq!(sent[0]["res"]["statusCode"], 200, "{sent}");

    let e = event(&s, &id, Duration::from_secs(10));
    let ev = &e["event"];
    assert_eq!(ev["extra"]["cart"]["order"]["items"][0]["options"]["pack"]["kind"]["size"]["kg"], 30, "{ev}");
    assert_eq!(ev["extra"]["cart"]["order"]["contact"]["name"], "Ирина Соколова");
    assert_eq!(
        ev["contexts"]["order"]["response"]["delivery"]["floor"][0],
        "Ensure this value is greater than or equal to 0."
    );
    assert_eq!(ev["tags"]["api.endpoint"], "/api/v1/orders/");
    assert_eq!(ev["tags"]["api.status"], "400");
    assert_eq!(ev["user"]["ip_address"], "127.0.0.1", "{}", ev["user"]);
    assert_eq!(ev["user"]["email"], "irina@example.ru");
    assert_eq!(ev["exception"]["values"][0]["value"], "POST /api/v1/orders/ failed with 400");
    assert!(ev["request"]["url"].as_str().unwrap().starts_with(&b.origin), "{}", ev["request"]);
    let g = groups(&s);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(g[0]["count"], 1);
    assert_eq!(g[0]["id"], e["group_id"]);
    s.stop();
}

/// b. The checkout reporter with orderwatch down: the report waits in
/// localStorage and arrives, once, when orderwatch is back (by its backoff;
/// and, for a page reloaded while orderwatch was down, at the next load).
#[test]
fn the_checkout_reporter_keeps_a_report_until_orderwatch_is_back() {
    let mut s = Server::start("");
    let dsn = dsn(&s);
    let mut b = Browser::start();
    b.checkout(&script_url(&s), &dsn);
    s.stop();

    let t0 = Instant::now();
    let id = b.eval(&format!("return OrderwatchCheckout.reportFailedOrder({ORDER})"));
    let id = id.as_str().unwrap().to_owned();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|c| c.is_ascii_hexdigit()), "{id}");
    let stored = b.stored();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].0, id);
    let ev: Value = serde_json::from_str(stored[0].1["event"].as_str().unwrap()).unwrap();
    assert_eq!(ev["extra"]["cart"]["nested"]["a"]["b"]["c"]["d"]["e"], "deep");
    // The first send fails (connection refused) and is recorded; the report stays.
    let attempts = wait_until("a failed attempt", Duration::from_secs(10), || {
        let st = b.stored();
        let a = st.first().map_or(0, |x| x.1["attempts"].as_u64().unwrap_or(0));
        (a >= 1).then_some(a)
    });
    assert!(attempts >= 1);

    s.restart_on_same_ports();
    let e = event(&s, &id, Duration::from_secs(20));
    eprintln!("delivered by backoff {:?} after the report", t0.elapsed());
    assert_eq!(e["event"]["tags"]["orderwatch.kind"], "order_submit_failed");
    assert_eq!(e["event"]["user"]["ip_address"], "127.0.0.1");
    wait_until("an empty queue", Duration::from_secs(10), || b.stored().is_empty().then_some(()));
    assert_eq!(b.eval("return OrderwatchCheckout.queue().length"), 0);
    let g = groups(&s);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(g[0]["count"], 1, "{g:?}");
    assert_eq!(stored_envelope_ids(&s).iter().filter(|x| **x == id).count(), 1);

    // Reloaded while orderwatch is down (the reporter from the shop's own copy):
    // the report survives the reload, and the next load after the restart sends it.
    s.stop();
    let id2 = b.eval(&format!("return OrderwatchCheckout.reportFailedOrder({ORDER})")).as_str().unwrap().to_owned();
    b.checkout("/orderwatch-checkout.js", &dsn);
    let stored = b.stored();
    assert_eq!(stored.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(), [id2.as_str()], "{stored:?}");
    s.restart_on_same_ports();
    b.checkout(&script_url(&s), &dsn);
    event(&s, &id2, Duration::from_secs(10));
    wait_until("an empty queue", Duration::from_secs(10), || b.stored().is_empty().then_some(()));
    let g = groups(&s);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(g[0]["count"], 2, "two reports, each once: {g:?}");
    let ids = stored_envelope_ids(&s);
    assert_eq!(ids.iter().filter(|x| **x == id).count(), 1, "{ids:?}");
    s.stop();
}

/// c. Leaving the page right after a report: the keepalive fetch delivers it;
/// and a report queued while orderwatch was down goes out by sendBeacon when
/// the page is left, stays queued (a beacon proves nothing), and its resend at
/// the next load is not a second event.
#[test]
fn a_report_made_as_the_page_is_left_still_arrives_once() {
    let mut s = Server::start("");
    let dsn = dsn(&s);
    let mut b = Browser::start();

    // Report, then navigate away at once.
    b.checkout(&script_url(&s), &dsn);
    let id = b.eval(&format!(
        "const id = OrderwatchCheckout.reportFailedOrder({ORDER}); setTimeout(() => {{ location.href = '/leave.html'; }}, 0); return id;"
    ));
    let id = id.as_str().unwrap().to_owned();
    b.cmd(json!({"cmd": "wait_url", "suffix": "/leave.html"}));
    event(&s, &id, Duration::from_secs(10));
    // Back at the checkout: a leftover copy (if the page died before the answer) is sent again, harmlessly.
    b.checkout(&script_url(&s), &dsn);
    wait_until("an empty queue", Duration::from_secs(10), || b.stored().is_empty().then_some(()));

    // Queued while orderwatch is down, with its next retry seconds away...
    s.stop();
    let id2 = b.eval(&format!("return OrderwatchCheckout.reportFailedOrder({ORDER})")).as_str().unwrap().to_owned();
    wait_until("three failed attempts", Duration::from_secs(15), || {
        let st = b.stored();
        (st.first().is_some_and(|x| x.1["attempts"].as_u64().unwrap_or(0) >= 3)).then_some(())
    });
    s.restart_on_same_ports();
    // ...the page is left: the beacon is what delivers it.
    b.goto("/leave.html");
    let left = b.stored();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].1["beaconAt"].as_f64().is_some(), "no beacon recorded: {left:?}");
    event(&s, &id2, Duration::from_secs(10));
    // The next load resends the queued copy; orderwatch takes it and counts the event once.
    b.checkout(&script_url(&s), &dsn);
    wait_until("an empty queue", Duration::from_secs(10), || b.stored().is_empty().then_some(()));
    let ids = stored_envelope_ids(&s);
    assert!(ids.iter().filter(|x| **x == id2).count() >= 2, "the beacon and the resend: {ids:?}");
    let g = groups(&s);
    assert_eq!(g.len(), 1, "{g:?}");
    assert_eq!(g[0]["count"], 2, "two reports, each counted once: {g:?}");
    // An artifact to look at: the page the report was beaconed from left for.
    let _ = b.cmd(
        json!({"cmd": "screenshot", "path": PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("real_browser-left.png")}),
    );
    s.stop();
}

/// d. The envelope the reporter builds (run in Node), through orderwatch's own
/// parser: item length in UTF-8 bytes (Cyrillic, a 4-byte emoji), the event
/// schema the lost-order detector reads, stored byte for byte.
#[test]
fn the_reporters_envelope_is_what_orderwatch_and_the_detector_read() {
    let dir = browser_dir();
    let mut s = Server::start("");
    let out = Command::new(common::require("node")).arg(dir.join("envelope.mjs")).arg(dsn(&s)).output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), s.stderr_tail(20));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["queuedAtOnce"], true, "{r}");
    assert_eq!(r["flushed"], true, "{r}");
    assert_eq!(r["left"], 0, "{r}");
    let refused = r["refused"].as_str().unwrap();
    let network = r["network"].as_str().unwrap();
    let sent = r["sent"].as_array().unwrap();
    assert_eq!(sent.len(), 2, "{r}");
    for x in sent {
        assert_eq!(x["headers"]["Content-Type"], "text/plain;charset=UTF-8");
        assert!(x["url"].as_str().unwrap().contains("/api/1/envelope/?sentry_key="), "{x}");
    }

    let body = sent[0]["body"].as_str().unwrap();
    let env = orderwatch::sentry::envelope::parse(&bytes::Bytes::from(body.to_owned().into_bytes())).unwrap();
    assert_eq!(env.header.event_id.as_deref(), Some(refused));
    let mut lines = body.split('\n');
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["sdk"]["name"], "orderwatch.checkout");
    assert!(header["sent_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(header["dsn"], dsn(&s));
    let item: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let payload = lines.next().unwrap();
    assert_eq!(item, json!({"type": "event", "length": payload.len()}), "the length counts UTF-8 bytes");
    assert!(payload.len() > payload.chars().count() + 100, "non-ASCII text is in the event");
    let event_item = env.event().expect("an event item");
    assert_eq!(event_item.payload.as_ref(), payload.as_bytes());

    // Read back from orderwatch: the schema, whole.
    let e = event(&s, refused, Duration::from_secs(10));
    let ev = &e["event"];
    assert_eq!(ev["event_id"], refused);
    let t = ev["timestamp"].as_f64().unwrap();
    let before = r["before"].as_f64().unwrap();
    assert!(t >= before && t < before + 5.0, "the failure's time: {t} vs {before}");
    assert_eq!(ev["platform"], "javascript");
    assert_eq!(ev["level"], "error");
    assert_eq!(ev["logger"], "orderwatch.checkout");
    assert_eq!(ev["release"], "shop@2018.06.22");
    assert_eq!(ev["environment"], "production");
    assert_eq!(ev["sdk"]["name"], "orderwatch.checkout");
    let ex = &ev["exception"]["values"][0];
    assert_eq!(ex["type"], "OrderSubmitError");
    assert_eq!(ex["value"], "POST /api/v1/orders/ failed with 400");
    assert_eq!(ex["mechanism"], json!({"type": "orderwatch.checkout", "handled": true}));
    assert_eq!(ev["request"]["url"], "https://example-shop.ru/cart/checkout/");
    assert_eq!(ev["request"]["headers"]["User-Agent"], "orderwatch-test/1.0 (node)");
    assert_eq!(ev["user"]["ip_address"], "127.0.0.1");
    assert_eq!(ev["user"]["email"], "irina.sokolova@example.ru");
    assert_eq!(ev["user"]["username"], "Ирина");
    assert_eq!(ev["tags"]["orderwatch.kind"], "order_submit_failed");
    assert_eq!(ev["tags"]["api.endpoint"], "/api/v1/orders/");
    assert_eq!(ev["tags"]["api.method"], "POST");
    assert_eq!(ev["tags"]["api.status"], "400", "the reporter's tags win over the shop's");
    assert_eq!(ev["tags"]["shop"], "стройка");
    let resp_body = r#"{"delivery": {"floor": ["Ensure this value is greater than or equal to 0."]}}"#;
    assert_eq!(
        ev["contexts"]["response"],
        json!({"type": "response", "status_code": 400, "body_size": resp_body.len()})
    );
    let extra = &ev["extra"];
    assert_eq!(extra["request"]["method"], "POST");
    assert_eq!(extra["request"]["url"], "/api/v1/orders/?utm=x");
    assert_eq!(extra["request"]["body"]["order"]["contact"]["name"], "Ирина Соколова", "JSON text parsed");
    assert_eq!(extra["response"], json!({"status": 400, "body": serde_json::from_str::<Value>(resp_body).unwrap()}));
    assert_eq!(extra["cart"]["order"]["items"][0]["name"], "Штукатурка гипсовая Knauf Ротбанд 30 кг 🧱");
    assert_eq!(extra["cart"]["order"]["deep"]["a"]["b"]["c"]["d"]["e"]["f"], "глубоко", "no depth limit");
    assert_eq!(extra["customer"]["email"], "irina.sokolova@example.ru");
    assert_eq!(extra["attempt"], 2);

    let e = event(&s, network, Duration::from_secs(10));
    let ev = &e["event"];
    assert_eq!(ev["exception"]["values"][0]["type"], "OrderSubmitNetworkError");
    assert_eq!(ev["exception"]["values"][0]["value"], "POST /api/v1/orders/ failed: TypeError: Failed to fetch");
    assert_eq!(ev["tags"]["api.status"], "network");
    assert_eq!(ev["extra"]["error"], "TypeError: Failed to fetch");
    assert!(ev["extra"].get("response").is_none() && ev.get("contexts").is_none(), "{ev}");
    assert_eq!(ev["extra"]["request"]["body"]["order"]["contact"]["name"], "Ирина Соколова");

    // Each report stored once (the two were sent at the same time: in either order).
    let mut ids = stored_envelope_ids(&s);
    ids.sort();
    let mut want = [refused, network];
    want.sort();
    assert_eq!(ids, want);
    s.stop();
}
