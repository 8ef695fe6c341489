//! Saved searches and alerts, end to end: the real server, lines in over HTTP
//! and syslog, notifications out to a real HTTP receiver (and SMTP in
//! `real_notify`). The seed's saved search on the reference fixture; every
//! kind of alert; exactly once across a crash.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Hook, Hooks, Server};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("../testdata/uwsgi-syslog.log");
const SEED_QUERY: &str =
    r#"POST /api/v1/orders/ - "HTTP/2.0 201" - "HTTP/1.1 201" - "Broken pipe" program:website-backend"#;

fn create(s: &Server, search: &Value) -> Value {
    let r = s.api("POST", "/api/v1/searches", &search.to_string());
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// The events of every Papertrail-style webhook delivery, keyed by event id, with how many deliveries carried each.
fn delivered_events(hooks: &[Hook]) -> BTreeMap<String, (String, usize)> {
    let mut out = BTreeMap::new();
    // The notifier delivers at least once: the same body twice is one notification.
    let mut bodies: Vec<&[u8]> = hooks.iter().map(|h| h.body.as_slice()).collect();
    bodies.sort();
    bodies.dedup();
    for b in bodies {
        let text = String::from_utf8_lossy(b);
        let payload = text
            .split('&')
            .find_map(|p| p.strip_prefix("payload="))
            .map(common::form_decode)
            .unwrap_or_else(|| text.into_owned());
        let v: Value = serde_json::from_str(&payload).unwrap_or_else(|e| panic!("not a payload ({e}): {payload}"));
        for ev in v["events"].as_array().unwrap() {
            let e = out
                .entry(ev["id"].as_str().unwrap().to_owned())
                .or_insert((ev["message"].as_str().unwrap().to_owned(), 0));
            e.1 += 1;
        }
    }
    out
}

fn req_number(message: &str) -> &str {
    // "[pid: 20593|app: 0|req: 154/4946604]" → "154/4946604"
    message.split("req: ").nth(1).and_then(|r| r.split(']').next()).unwrap_or(message)
}

/// The seed's saved search, unchanged, from the config file: on the reference
/// fixture it raises each lost order's line exactly once (and, being a
/// substring search, the POST to /api/v1/orders/1187/items/ too, as the hosted
/// service does). The field-aware query raises exactly the lost orders.
#[test]
fn seed_search_raises_each_lost_order_once() {
    let hooks = Hooks::start();
    let config = format!(
        r#"
[[searches]]
name = "non-ok website orders"
query = '{SEED_QUERY}'
[[searches.alerts]]
kind = "immediate"
time_zone = "Europe/Volgograd"
destination = {{ webhook = "{}" }}
"#,
        hooks.url("/seed")
    );
    let mut s = Server::start(&config);
    let fields = create(
        &s,
        &json!({
            "name": "lost orders by fields",
            "query": "method:POST path:/api/v1/orders/ status:>=300 program:website-backend",
            "alerts": [{"kind": "immediate", "batch": "200ms", "destination": {"webhook": hooks.url("/fields")}}],
        }),
    );
    assert_eq!(fields["alerts"][0]["kind"], "immediate");

    assert_eq!(s.post_logs(FIXTURE.as_bytes()).status, 200);
    s.wait_for("", 15, Duration::from_secs(10));

    let want_seed = ["154/4946604", "77/4946611", "201/4946615", "78/4946630", "3/4946641", "202/4946650"];
    hooks.wait("/seed", Duration::from_secs(10), |h| delivered_events(h).len() >= want_seed.len());
    let want_fields = ["154/4946604", "77/4946611", "201/4946615", "3/4946641", "202/4946650"];
    hooks.wait("/fields", Duration::from_secs(10), |h| delivered_events(h).len() >= want_fields.len());
    // Nothing more trickles in.
    std::thread::sleep(Duration::from_secs(2));
    for (path, want) in [("/seed", &want_seed[..]), ("/fields", &want_fields[..])] {
        let got = delivered_events(&hooks.delivered(path)).into_values().collect::<Vec<_>>();
        let mut reqs: Vec<&str> = got.iter().map(|(m, _)| req_number(m)).collect();
        reqs.sort();
        let mut want = want.to_vec();
        want.sort();
        assert_eq!(reqs, want, "{path}: the lines alerted");
        assert!(got.iter().all(|(_, n)| *n == 1), "{path}: a line was in two notifications: {got:?}");
    }
    // The hosted service's payload shape.
    let first = &hooks.delivered("/seed")[0];
    assert_eq!(first.header("content-type"), Some("application/x-www-form-urlencoded"));
    let p: Value = serde_json::from_str(&first.form("payload").unwrap()).unwrap();
    assert_eq!(p["saved_search"]["name"], "non-ok website orders");
    assert_eq!(p["saved_search"]["query"], SEED_QUERY);
    assert_eq!(p["frequency"], "immediate");
    let ev = &p["events"][0];
    assert_eq!(ev["program"], "website-backend");
    assert_eq!(ev["severity"], "Info");
    assert_eq!(ev["facility"], "Daemon");
    assert!(ev["received_at"].as_str().unwrap().ends_with("+03:00"), "in the alert's zone: {ev}");
    let m = s.get("/metrics").text();
    assert!(common::metric(&m, "orderwatch_alerts_fired_total", &[("what", "matches")]) >= 2.0, "{m}");
    assert_eq!(common::metric(&m, "orderwatch_alert_lines_scanned_total", &[]), 15.0, "{m}");
    assert_eq!(common::metric(&m, "orderwatch_alert_commit_errors_total", &[]), 0.0, "{m}");
    s.stop();
}

/// Lines matched while the destination is down are delivered once it is up,
/// across a kill -9 and a restart, each line in exactly one notification.
#[test]
fn alerts_are_exactly_once_across_a_crash() {
    let hooks = Hooks::start();
    hooks.set_status(503);
    let mut s = Server::start("");
    create(
        &s,
        &json!({
            "name": "failed orders",
            "query": "order failed",
            "alerts": [{"kind": "immediate", "batch": "100ms", "destination": {"webhook": hooks.url("/h")}}],
        }),
    );
    let batch = |from: usize, to: usize| -> String {
        (from..to).map(|i| format!("<30>Jun 23 17:17:48 web app: order failed n={i}\n")).collect()
    };
    assert_eq!(s.post_logs(batch(0, 20).as_bytes()).status, 200);
    // Refused deliveries are being retried.
    hooks_wait_any(&hooks, "/h");
    s.kill9();
    s.restart();
    assert_eq!(s.post_logs(batch(20, 30).as_bytes()).status, 200);
    std::thread::sleep(Duration::from_millis(500));
    s.kill9();
    s.restart();
    assert_eq!(s.post_logs(batch(30, 40).as_bytes()).status, 200);
    hooks.set_status(200);
    hooks.wait("/h", Duration::from_secs(60), |h| delivered_events(h).len() >= 40);
    std::thread::sleep(Duration::from_secs(2));
    let got = delivered_events(&hooks.delivered("/h"));
    assert_eq!(got.len(), 40, "every line once: {got:?}");
    assert!(got.values().all(|(_, n)| *n == 1), "a line in two notifications: {got:?}");
    let n: Vec<usize> = {
        let mut n: Vec<usize> = got.values().map(|(m, _)| m.rsplit('=').next().unwrap().parse().unwrap()).collect();
        n.sort();
        n
    };
    assert_eq!(n, (0..40).collect::<Vec<_>>());
    s.stop();
}

fn hooks_wait_any(hooks: &Hooks, path: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !hooks.all().iter().any(|h| h.path == path) {
        assert!(std::time::Instant::now() < deadline, "no delivery attempt reached {path}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A periodic alert reports the lines of its window at the minute's end, when
/// there are at least `threshold` of them; another with a higher threshold stays quiet.
#[test]
fn periodic_alert_reports_its_window() {
    let hooks = Hooks::start();
    let mut s = Server::start("");
    let search = create(
        &s,
        &json!({
            "name": "slow checkout",
            "query": "checkout slow",
            "alerts": [
                {"kind": "periodic", "interval": "1m", "threshold": 3, "time_zone": "Asia/Kolkata", "destination": {"webhook": hooks.url("/three")}},
                {"kind": "periodic", "interval": "1m", "threshold": 4, "destination": {"webhook": hooks.url("/four")}},
            ],
        }),
    );
    assert_eq!(search["alerts"].as_array().unwrap().len(), 2);
    let lines: String = (0..3).map(|i| format!("<30>Jun 23 17:17:48 web app: checkout slow {i}\n")).collect();
    assert_eq!(s.post_logs(lines.as_bytes()).status, 200);
    s.wait_for("checkout slow", 3, Duration::from_secs(10));
    // The lines may straddle a minute boundary; within two minutes all three are reported.
    let got = hooks.wait("/three", Duration::from_secs(130), |h| delivered_events(h).len() >= 3);
    let p: Value = serde_json::from_str(&got.last().unwrap().form("payload").unwrap()).unwrap();
    assert_eq!(p["frequency"], "1 minute");
    assert!(p["events"][0]["received_at"].as_str().unwrap().ends_with("+05:30"), "{p}");
    assert!(hooks.delivered("/four").is_empty(), "threshold 4 with 3 lines must stay quiet");
    s.stop();
}

/// An inactivity alert fires when its search matched nothing for its window,
/// once, and says when the search matches again. Signed JSON is verifiable.
#[test]
fn inactivity_alert_fires_and_recovers() {
    use hmac::{Hmac, KeyInit, Mac};
    let hooks = Hooks::start();
    let mut s = Server::start("");
    let secret = "a-secret-of-more-than-16";
    create(
        &s,
        &json!({
            "name": "orders placed",
            "query": "order placed",
            "alerts": [{"kind": "inactivity", "interval": "1m", "destination": {"webhook_json": hooks.url("/quiet"), "secret": secret}}],
        }),
    );
    let fired = hooks.wait("/quiet", Duration::from_secs(90), |h| !h.is_empty());
    let v = fired[0].json();
    assert_eq!(v["inactivity"]["state"], "inactive", "{v}");
    assert_eq!(v["alert"]["kind"], "inactivity");
    assert!(
        v["alert"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("No events matched your orders placed search in the past 1 minute."),
        "{v}"
    );
    // The signature verifies.
    let ts = fired[0].header("x-orderwatch-timestamp").expect("timestamp header");
    let sig = fired[0].header("x-orderwatch-signature").expect("signature header");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&fired[0].body);
    let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sig, format!("sha256={want}"));

    // Quiet stays one notification, and a line recovers it.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(hooks.delivered("/quiet").len(), 1);
    assert_eq!(s.post_logs(b"<30>Jun 23 17:17:48 web app: order placed id=1\n").status, 200);
    let both = hooks.wait("/quiet", Duration::from_secs(10), |h| h.len() >= 2);
    let v = both[1].json();
    assert_eq!(v["inactivity"]["state"], "recovered", "{v}");
    assert_eq!(v["events"][0]["message"], "order placed id=1");
    s.stop();
}

/// An email alert through a real SMTP server that is down at first: the
/// notification waits (its failed attempts visible), then arrives once, in the
/// hosted service's form, with both parts and every time in the alert's zone.
#[test]
fn email_alert_waits_for_smtp_and_arrives_once_in_the_familiar_form() {
    use common::smtp::{SinkTls, SmtpSink};
    let smtp_port = common::free_tcp_port();
    let mut s = Server::with(common::Opts {
        env: vec![
            ("ORDERWATCH_SMTP_URL".into(), format!("smtp://127.0.0.1:{smtp_port}?tls=none")),
            ("ORDERWATCH_SMTP_FROM".into(), "orderwatch <alerts@shop.example>".into()),
        ],
        ..common::Opts::default()
    });
    create(
        &s,
        &json!({
            "name": "non-ok website orders",
            "query": SEED_QUERY,
            "alerts": [{"kind": "immediate", "time_zone": "Europe/Volgograd",
                        "destination": {"email": {"to": ["head@shop.example"], "cc": ["dev1@shop.example", "dev2@shop.example"]}}}],
        }),
    );
    let line = FIXTURE.lines().nth(2).unwrap(); // the 429
    assert_eq!(s.post_logs(format!("{line}\n").as_bytes()).status, 200);
    let stored = s.wait_one("\"HTTP/2.0 429\"");

    // SMTP is down: the notification is there, retried, with the error.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let n = loop {
        let list = s.api("GET", "/api/v1/notifications?source=alert:1", "").json();
        if let Some(n) =
            list["notifications"].as_array().and_then(|a| a.first()).filter(|n| n["attempts"].as_i64() >= Some(1))
        {
            break n.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no failed attempt visible: {list}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(n["status"], "pending", "{n}");
    assert!(n["last_error"].as_str().unwrap_or("").to_lowercase().contains("refused"), "{n}");

    let sink = SmtpSink::start(&s.dir, smtp_port, SinkTls::Plain, None);
    let mail = common::wait_until("the alert email", Duration::from_secs(30), || sink.messages().into_iter().next());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sink.messages().len(), 1, "exactly one email");

    let h = &mail["headers"];
    assert_eq!(h["to"], "head@shop.example");
    assert_eq!(h["cc"], "dev1@shop.example, dev2@shop.example");
    assert_eq!(h["from"], "orderwatch <alerts@shop.example>");
    let mut rcpt: Vec<&str> = mail["rcpt_tos"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    rcpt.sort();
    assert_eq!(rcpt, ["dev1@shop.example", "dev2@shop.example", "head@shop.example"]);
    // The times, in Volgograd (UTC+3, no DST).
    let received: jiff::Timestamp = stored["received_at"].as_str().unwrap().parse().unwrap();
    let vg = jiff::tz::TimeZone::get("Europe/Volgograd").unwrap();
    let local = received.to_zoned_datetime(vg.clone());
    let subject = h["subject"].as_str().unwrap();
    assert!(subject.starts_with("\"non-ok website orders\" alert: 1 match (at "), "{subject}");
    // Fired when the line came (SMTP being down does not change what it says).
    let minutes: Vec<String> = [0, 60]
        .iter()
        .map(|d| {
            (received + jiff::SignedDuration::from_secs(*d))
                .to_zoned_datetime(vg.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .collect();
    assert!(
        minutes.iter().any(|m| subject == format!("\"non-ok website orders\" alert: 1 match (at {m})")),
        "{subject} vs {minutes:?}"
    );
    let date = jiff::fmt::rfc2822::parse(h["date"].as_str().unwrap()).unwrap().timestamp();
    assert!((date.as_second() - received.as_second()).abs() < 120, "Date {date} vs received {received}");

    let parts = mail["parts"].as_array().unwrap();
    let text = parts.iter().find(|p| p["content_type"] == "text/plain").expect("a text part")["content"]
        .as_str()
        .unwrap()
        .replace("\r\n", "\n");
    let html =
        parts.iter().find(|p| p["content_type"] == "text/html").expect("an HTML part")["content"].as_str().unwrap();
    let message = line.split_once("website-backend: ").unwrap().1;
    let want_line = format!("{} website-backend website-backend: {message}", local.strftime("%b %d %H:%M:%S"));
    assert!(text.starts_with("1 event matched your non-ok website orders search in the past"), "{text}");
    assert!(text.contains(&want_line), "{text}\nwanted {want_line}");
    assert!(text.contains(&format!("/events/{}", stored["id"].as_str().unwrap())), "{text}");
    assert!(text.contains(&format!("Query: {SEED_QUERY}")), "{text}");
    assert!(text.contains("Times are in Europe/Volgograd (UTC+03:00)."), "{text}");
    assert!(html.contains(&format!("/events/{}\">", stored["id"].as_str().unwrap())), "{html}");
    assert!(html.contains("Europe/Volgograd"));

    let n = s.api("GET", &format!("/api/v1/notifications/{}", n["id"]), "").json();
    assert_eq!(n["status"], "sent", "{n}");
    sink.stop();
    s.stop();
}

/// Saved searches of the config file: read-only through the API, updated from
/// the file at start (an unchanged alert keeps its id, so its cursor), removed
/// when the file drops them, and refused when a name clashes with an API one.
#[test]
fn config_searches_follow_the_file() {
    let config = |query: &str| {
        format!(
            r#"
[[searches]]
name = "orders"
query = '{query}'
[[searches.alerts]]
kind = "immediate"
destination = {{ webhook = "http://127.0.0.1:9/hook" }}
[[searches.alerts]]
kind = "periodic"
interval = "1h"
destination = {{ webhook = "http://127.0.0.1:9/hourly" }}
"#
        )
    };
    let mut s = Server::start(&config("POST /api/v1/orders/"));
    let list = s.api("GET", "/api/v1/searches", "").json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let search = &list[0];
    assert_eq!(search["origin"], "config");
    let id = search["id"].as_i64().unwrap();
    let alert_ids: Vec<i64> = search["alerts"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect();
    let body = json!({"name": "orders", "query": "x"}).to_string();
    for method in ["PUT", "DELETE"] {
        let r = s.api(method, &format!("/api/v1/searches/{id}"), if method == "PUT" { &body } else { "" });
        assert_eq!(r.status, 409, "{method}: {}", r.text());
        assert!(r.text().contains("config file"), "{}", r.text());
    }

    // The query changes in the file; the alerts stay the same and keep their ids.
    s.stop();
    s.set_config(&config("POST /api/v1/orders/ status:>=400"));
    s.restart();
    let after = s.api("GET", &format!("/api/v1/searches/{id}"), "").json();
    assert_eq!(after["query"], "POST /api/v1/orders/ status:>=400");
    let ids: Vec<i64> = after["alerts"].as_array().unwrap().iter().map(|a| a["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, alert_ids);

    // An API search may not share a name with a config one.
    let r = s.api("POST", "/api/v1/searches", &json!({"name": "orders", "query": "y"}).to_string());
    assert_eq!(r.status, 409, "{}", r.text());

    // Dropped from the file, dropped from orderwatch.
    s.stop();
    s.set_config("");
    s.restart();
    assert_eq!(s.api("GET", "/api/v1/searches", "").json(), json!([]));
    s.stop();
}

/// Changing an alert (here its destination and batch) hands the lines it had
/// not yet reported to its successor instead of dropping them.
#[test]
fn a_changed_alert_keeps_its_unreported_lines() {
    let hooks = Hooks::start();
    let mut s = Server::start("");
    let def = |path: &str, batch: &str| {
        json!({"name": "refused orders", "query": "order refused",
               "alerts": [{"kind": "immediate", "batch": batch, "destination": {"webhook": hooks.url(path)}}]})
    };
    let created = create(&s, &def("/a", "1h"));
    let id = created["id"].as_i64().unwrap();
    assert_eq!(s.post_logs(b"<30>Jun 23 17:17:48 web app: order refused n=1\n").status, 200);
    hooks.wait("/a", Duration::from_secs(10), |h| !h.is_empty());
    // The second line waits for the 1h batch window...
    assert_eq!(s.post_logs(b"<30>Jun 23 17:17:49 web app: order refused n=2\n").status, 200);
    s.wait_for("\"order refused\"", 2, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    // ...when the alert is changed.
    let r = s.api("PUT", &format!("/api/v1/searches/{id}"), &def("/b", "100ms").to_string());
    assert_eq!(r.status, 200, "{}", r.text());
    let got = hooks.wait("/b", Duration::from_secs(10), |h| !h.is_empty());
    let events = delivered_events(&got);
    let msgs: Vec<&str> = events.values().map(|(m, _)| m.as_str()).collect();
    assert_eq!(msgs, ["order refused n=2"]);
    assert_eq!(delivered_events(&hooks.delivered("/a")).len(), 1);
    s.stop();
}
