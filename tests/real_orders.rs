//! Lost orders end to end: the reference uWSGI/nginx lines by syslog, the
//! reference browser envelope and backend event by the Sentry endpoints, into
//! the real server; out come exactly the lost orders of
//! `testdata/uwsgi-syslog.expected.tsv`, joined as it says, with customer and
//! cart, the same whichever side arrives first, each announced once.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Hooks, Server};
use serde_json::Value;

const LINES: &str = include_str!("../testdata/uwsgi-syslog.log");
const EXPECTED: &str = include_str!("../testdata/uwsgi-syslog.expected.tsv");
const ENVELOPE: &[u8] = include_bytes!("../testdata/sentry-browser-order-400.envelope");
const BACKEND_EVENT: &str = include_str!("../testdata/sentry-python-order-500.event.json");

/// The fixture's first line, 17:17:41 in the shop's zone (+03:00) = 14:17:41Z.
const FIXTURE_START_UTC: i64 = 1_529_763_461;

/// The fixture moved to `base` (unix seconds): the syslog header of each line
/// (read in UTC by the server's config) and the Sentry timestamps keep their
/// distances from the first line.
struct Shifted {
    lines: Vec<u8>,
    envelope: Vec<u8>,
    backend_event: String,
}

fn shift(base: i64, key: &str) -> Shifted {
    let secs_of_day = |hms: &str| {
        let p: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        p[0] * 3600 + p[1] * 60 + p[2]
    };
    let first = secs_of_day("17:17:41");
    let mut lines = Vec::new();
    for line in LINES.lines() {
        // "<30>Jun 23 17:17:41 website-backend …": the header's time is bytes 4+7..4+15.
        let pri_end = line.find('>').unwrap() + 1;
        let stamp = &line[pri_end..pri_end + 15];
        let t = base + secs_of_day(&stamp[7..]) - first;
        let new = jiff::Timestamp::from_second(t).unwrap().strftime("%b %e %H:%M:%S").to_string();
        lines.extend_from_slice(format!("{}{}{}\n", &line[..pri_end], new, &line[pri_end + 15..]).as_bytes());
    }
    let moved = |fixture_utc: f64| base as f64 + (fixture_utc - FIXTURE_START_UTC as f64);

    // The envelope: our DSN, sent now, its event at the moved time.
    let parts: Vec<&[u8]> = ENVELOPE.split(|&b| b == b'\n').collect();
    let mut header: Value = serde_json::from_slice(parts[0]).unwrap();
    header["dsn"] = format!("http://{key}@127.0.0.1/1").into();
    header["sent_at"] = jiff::Timestamp::now().to_string().into();
    let mut event: Value = serde_json::from_slice(parts[2]).unwrap();
    event["timestamp"] = moved(event["timestamp"].as_f64().unwrap()).into();
    let event = serde_json::to_vec(&event).unwrap();
    let mut envelope = serde_json::to_vec(&header).unwrap();
    envelope.extend_from_slice(format!("\n{{\"type\":\"event\",\"length\":{}}}\n", event.len()).as_bytes());
    envelope.extend_from_slice(&event);
    for p in &parts[3..] {
        envelope.push(b'\n');
        envelope.extend_from_slice(p);
    }

    let mut backend: Value = serde_json::from_str(BACKEND_EVENT).unwrap();
    let t: jiff::Timestamp = backend["timestamp"].as_str().unwrap().parse().unwrap();
    let t = moved(t.as_millisecond() as f64 / 1000.0);
    backend["timestamp"] = jiff::Timestamp::from_millisecond((t * 1000.0) as i64).unwrap().to_string().into();
    Shifted { lines, envelope, backend_event: backend.to_string() }
}

fn config(hook: &str) -> String {
    format!(
        r#"
[http]
trusted_proxies = ["127.0.0.1"]
[syslog]
time_zone = "UTC"
[orders]
manager_users = ["manager"]
alert_delay = "500ms"
[[orders.alerts]]
destination = {{ webhook_json = "{hook}", secret = "s3cret" }}
"#
    )
}

fn project_key(s: &Server) -> String {
    let dsn = s.api("GET", "/api/v1/projects", "").json()[0]["dsn"].as_str().unwrap().to_owned();
    dsn.split("//").nth(1).unwrap().split('@').next().unwrap().to_owned()
}

fn send_logs(s: &Server, sh: &Shifted) {
    common::send_tcp(s.tcp, &sh.lines);
}

fn send_events(s: &Server, sh: &Shifted, key: &str) {
    // The browser's address reaches orderwatch through the shop's proxy.
    let r = common::http(
        s.http,
        "POST",
        &format!("/api/1/envelope/?sentry_key={key}&sentry_version=7"),
        &[("Content-Type", "application/x-sentry-envelope"), ("X-Forwarded-For", "188.32.201.9")],
        &sh.envelope,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let auth = format!("Sentry sentry_key={key}, sentry_version=7, sentry_client=sentry.python/2.75.0");
    let r = common::http(
        s.http,
        "POST",
        "/api/1/store/",
        &[("Content-Type", "application/json"), ("X-Sentry-Auth", &auth)],
        sh.backend_event.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

/// (status code, client IP, cause) of each lost order the fixture names.
fn expected() -> BTreeSet<(i64, String, String)> {
    EXPECTED
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f[6].starts_with("yes"))
        .map(|f| (f[4].parse().unwrap(), f[5].to_owned(), f[7].split(' ').next().unwrap().to_owned()))
        .collect()
}

fn lost_orders(s: &Server) -> Vec<Value> {
    let r = s.api("GET", "/api/v1/lost-orders", "");
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

/// Runs the scenario; `events_first` sends the Sentry side before the logs.
fn scenario(events_first: bool) -> Vec<Value> {
    let hooks = Hooks::start();
    let mut s = Server::start(&config(&hooks.url("/lost")));
    let key = project_key(&s);
    let sh = shift(jiff::Timestamp::now().as_second() - 300, &key);
    if events_first {
        send_events(&s, &sh, &key);
        std::thread::sleep(Duration::from_millis(500));
        send_logs(&s, &sh);
    } else {
        send_logs(&s, &sh);
        std::thread::sleep(Duration::from_millis(500));
        send_events(&s, &sh, &key);
    }
    let want = expected();
    // Settled: the right number, each with its evidence joined, and each announced.
    let all = common::wait_until("the lost orders of the fixture", Duration::from_secs(20), || {
        let all = lost_orders(&s);
        let rejected_joined = all.iter().any(|o| o["status_code"] == 400 && o["customer"]["name"].is_string());
        let backend_joined = all.iter().any(|o| o["status_code"] == 500 && o["backend_errors"][0].is_object());
        (all.len() == want.len() && rejected_joined && backend_joined).then_some(all)
    });
    let got: BTreeSet<(i64, String, String)> = all
        .iter()
        .map(|o| {
            (
                o["status_code"].as_i64().unwrap(),
                o["client_ip"].as_str().unwrap().to_owned(),
                o["cause"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, want, "the lost orders of uwsgi-syslog.expected.tsv");

    // Line 4 (uWSGI), line 15 (nginx) and the browser's report: one lost order.
    let rejected = all.iter().find(|o| o["status_code"] == 400).unwrap();
    let one = s.api("GET", &format!("/api/v1/lost-orders/{}", rejected["id"]), "").json();
    let kinds: Vec<(&str, &str)> = one["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["source"].as_str().unwrap()))
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(sorted, [("frontend", "frontend"), ("request", "log:nginx"), ("request", "log:website-backend")]);
    assert!(
        one["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["raw"].as_str().is_some_and(|r| r.contains("188.32.201.9 () {50 vars")))
    );
    assert_eq!(one["customer"]["name"], "Ирина Соколова");
    assert_eq!(one["customer"]["phone"], "+7 917 555-12-34");
    assert_eq!(one["customer"]["email"], "irina.sokolova@example.ru");
    assert_eq!(one["address"], "Волгоград, ул. Мира, house 17, apartment 4, floor -1", "the basement floor");
    assert_eq!(one["cart"]["total"], 8448.0);
    assert_eq!(one["cart"]["items"].as_array().unwrap().len(), 2);
    assert_eq!(one["refused"][0], "delivery.floor: Ensure this value is greater than or equal to 0.");
    assert_eq!(one["status"], "new");

    // Line 5 and the backend's IntegrityError: one lost order, the customer from the request it got.
    let server_error = all.iter().find(|o| o["status_code"] == 500).unwrap();
    assert!(server_error["backend_errors"][0]["title"].as_str().unwrap().starts_with("IntegrityError"));
    assert_eq!(server_error["customer"]["name"], "Павел Ким");
    // Line 13 (502, the same customer a minute later) is an attempt of its own.
    let bad_gateway = all.iter().find(|o| o["status_code"] == 502).unwrap();
    assert_eq!(bad_gateway["backend_errors"].as_array().unwrap().len(), 0);
    assert_eq!(bad_gateway["contact_missing"], true);
    // The manager's 429 says so; the other is not a manager.
    let manager = all.iter().find(|o| o["client_ip"] == "91.210.4.77").unwrap();
    assert_eq!((manager["manager"].clone(), manager["remote_user"].clone()), (true.into(), "manager".into()));
    let spam = all.iter().find(|o| o["client_ip"] == "176.114.214.14").unwrap();
    assert_eq!(spam["manager"], false);
    assert_eq!(spam["attempts_last_hour"], 1);

    // Each announced exactly once, with the customer in the message.
    let hooks_got = hooks.wait("/lost", Duration::from_secs(15), |h| {
        h.iter().filter_map(|x| x.json()["lost_order"]["id"].as_i64()).collect::<BTreeSet<_>>().len() >= want.len()
    });
    std::thread::sleep(Duration::from_secs(1));
    let mut bodies: Vec<Vec<u8>> = hooks.delivered("/lost").into_iter().map(|h| h.body).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), want.len(), "one notification per lost order: {}", hooks_got.len());
    let irina = bodies
        .iter()
        .map(|b| serde_json::from_slice::<Value>(b).unwrap())
        .find(|v| v["lost_order"]["status_code"] == 400)
        .unwrap();
    assert_eq!(irina["lost_order"]["customer"]["phone"], "+7 917 555-12-34");

    // "It was me".
    let r = s.api("POST", &format!("/api/v1/lost-orders/{}/status", rejected["id"]), r#"{"status":"test"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.api("GET", "/api/v1/lost-orders?status=test", "").json().as_array().unwrap().len(), 1);
    assert_eq!(s.api("POST", "/api/v1/lost-orders/999/status", r#"{"status":"test"}"#).status, 404);
    assert_eq!(
        s.api("POST", &format!("/api/v1/lost-orders/{}/status", rejected["id"]), r#"{"status":"gone"}"#).status,
        400
    );
    assert_eq!(s.api("GET", "/api/v1/lost-orders?cause=oops", "").status, 400);

    // The CLI lists the same.
    let out = common::run(std::process::Command::new(common::bin()).args([
        "lost-orders",
        "--server",
        &format!("http://{}", s.http),
        "--token",
        &s.token,
    ]));
    assert_eq!(out.lines().count(), want.len(), "{out}");
    assert!(out.contains("Ирина Соколова") && out.contains("8 448.00"), "{out}");

    // A restart reads nothing twice.
    s.stop();
    s.restart();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(lost_orders(&s).len(), want.len());
    s.stop();
    all
}

fn shape(all: &[Value]) -> BTreeSet<String> {
    all.iter()
        .map(|o| format!("{} {} {} {} {}", o["status_code"], o["client_ip"], o["cause"], o["customer"], o["cart"]))
        .collect()
}

#[test]
fn the_reference_fixture_gives_exactly_its_lost_orders_whichever_side_arrives_first() {
    let logs_first = scenario(false);
    let events_first = scenario(true);
    assert_eq!(shape(&logs_first), shape(&events_first));
}

/// An incident from the suggestions, its letter previewed and then sent over
/// real SMTP: To the head, Cc the developers, the cause, what was done, and
/// each customer with the cart; the incident and its lost orders reported; a
/// manager's call recorded from the rescue queue.
#[test]
fn the_report_letter_reaches_the_head_over_smtp() {
    use common::smtp::{SinkTls, SmtpSink};
    let smtp_port = common::free_tcp_port();
    let hooks = Hooks::start();
    let config = format!(
        "{}\n[report]\nto = [\"head@shop.example\"]\ncc = [\"dev1@shop.example\", \"dev2@shop.example\"]\n",
        config(&hooks.url("/lost"))
    );
    let mut s = Server::with(common::Opts {
        config,
        env: vec![
            ("ORDERWATCH_SMTP_URL".into(), format!("smtp://127.0.0.1:{smtp_port}?tls=none")),
            ("ORDERWATCH_SMTP_FROM".into(), "orderwatch <alerts@shop.example>".into()),
        ],
        ..common::Opts::default()
    });
    let sink = SmtpSink::start(&s.dir, smtp_port, SinkTls::Plain, None);
    let key = project_key(&s);
    let sh = shift(jiff::Timestamp::now().as_second() - 300, &key);
    send_logs(&s, &sh);
    send_events(&s, &sh, &key);
    common::wait_until("the rejected order with its customer", Duration::from_secs(20), || {
        lost_orders(&s).iter().find(|o| o["status_code"] == 400 && o["customer"]["name"].is_string()).cloned()
    });

    let sugg = s.api("GET", "/api/v1/incidents/suggestions", "").json();
    let floor = sugg.as_array().unwrap().iter().find(|g| g["key"] == "rejected: field delivery.floor").unwrap().clone();
    assert_eq!(floor["title"], "Orders refused by the server: delivery.floor");
    let body = serde_json::json!({
        "title": "We did not allow a basement floor",
        "plain_cause": "We changed the order API and did not allow a basement delivery floor, i.e. a floor below zero.",
        "actions": "Fixed the validation and deployed at 18:40; managers call the customer.",
        "lost_orders": floor["lost_orders"],
    });
    let r = s.api("POST", "/api/v1/incidents", &body.to_string());
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    // Bad input is refused with a message.
    assert_eq!(s.api("POST", "/api/v1/incidents", r#"{"lost_orders":[999]}"#).status, 400);
    assert_eq!(s.api("POST", "/api/v1/incidents", r#"{"cause":"weather"}"#).status, 400);
    assert_eq!(s.api("PUT", &format!("/api/v1/incidents/{id}"), r#"{"status":"done"}"#).status, 400);
    assert_eq!(s.api("POST", "/api/v1/incidents/999/report/preview", "").status, 404);

    let preview = s.api("POST", &format!("/api/v1/incidents/{id}/report/preview"), "").json();
    assert_eq!(preview["subject"], "Lost order: We did not allow a basement floor (1)");
    let sent = s.api("POST", &format!("/api/v1/incidents/{id}/report/send"), "");
    assert_eq!(sent.status, 202, "{}", sent.text());
    assert_eq!(sent.json()["letter"], preview, "the preview is the letter sent");

    let mail = common::wait_until("the letter", Duration::from_secs(20), || sink.messages().into_iter().next());
    let h = &mail["headers"];
    assert_eq!(h["to"], "head@shop.example");
    assert_eq!(h["cc"], "dev1@shop.example, dev2@shop.example");
    assert_eq!(h["subject"], "Lost order: We did not allow a basement floor (1)");
    let text = mail["parts"].as_array().unwrap().iter().find(|p| p["content_type"] == "text/plain").unwrap()["content"]
        .as_str()
        .unwrap()
        .replace("\r\n", "\n");
    for want in [
        "did not allow a basement delivery floor",
        "Fixed the validation",
        "Ирина Соколова",
        "+7 917 555-12-34",
        "irina.sokolova@example.ru",
        "Волгоград, ул. Мира, house 17, apartment 4, floor -1",
        "Штукатурка гипсовая Knauf Ротбанд 30 кг × 12 × 489.00 = 5 868.00",
        "Total: 8 448.00",
        "delivery.floor: Ensure this value is greater than or equal to 0.",
    ] {
        assert!(text.contains(want), "the letter lacks {want:?}:\n{text}");
    }
    let inc = s.api("GET", &format!("/api/v1/incidents/{id}"), "").json();
    assert_eq!(inc["status"], "reported");
    assert_eq!(inc["orders"][0]["status"], "reported");
    assert_eq!(inc["reports"].as_array().unwrap().len(), 1, "a copy is kept");
    let whats: Vec<&str> = inc["timeline"].as_array().unwrap().iter().map(|e| e["what"].as_str().unwrap()).collect();
    assert_eq!(whats, ["created", "reported"]);

    // The managers' queue: call the customer, save the order.
    let queue = s.api("GET", "/api/v1/rescue-queue", "").json();
    let lo = inc["orders"][0]["id"].as_i64().unwrap();
    assert!(queue.as_array().unwrap().iter().any(|o| o["id"] == lo));
    let r = s.api("POST", &format!("/api/v1/lost-orders/{lo}/calls"), r#"{"outcome":"no_answer","note":"voicemail"}"#);
    assert_eq!(r.status, 201, "{}", r.text());
    let r =
        s.api("POST", &format!("/api/v1/lost-orders/{lo}/calls"), r#"{"outcome":"rescued","note":"ordered by phone"}"#);
    assert_eq!(r.json()["status"], "rescued");
    assert_eq!(r.json()["calls"].as_array().unwrap().len(), 2);
    assert_eq!(s.api("POST", &format!("/api/v1/lost-orders/{lo}/calls"), r#"{"outcome":"maybe"}"#).status, 400);
    assert!(!s.api("GET", "/api/v1/rescue-queue", "").json().as_array().unwrap().iter().any(|o| o["id"] == lo));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(sink.messages().len(), 1, "one letter");
    s.stop();
}

/// A backend event with no client IP (the Python SDK sends none without
/// send_default_pii) but the request id, the nginx line with that request id,
/// and the uWSGI line with neither: one lost order, whichever comes first,
/// and it keeps the customer and cart only the backend event carried.
#[test]
fn a_backend_event_without_an_ip_joins_its_request_and_keeps_the_customer() {
    for backend_first in [true, false] {
        let hooks = Hooks::start();
        let s = Server::start(&config(&hooks.url("/lost")));
        let key = project_key(&s);
        let now = jiff::Timestamp::now();
        let stamp = now.strftime("%b %e %H:%M:%S").to_string();
        let nginx_time = now.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string();
        let mut event: Value = serde_json::from_str(BACKEND_EVENT).unwrap();
        event["timestamp"] = now.to_string().into();
        event["request"]["headers"] = serde_json::json!({"X-Request-Id": "c0ffee00c0ffee00c0ffee00c0ffee00"});
        let lines = format!(
            "<30>{stamp} web nginx: 5.18.77.140 - - [{nginx_time}] \"POST /api/v1/orders/ HTTP/2.0\" 500 145 \"-\" \"Mozilla/5.0\" rt=1.203 rid=c0ffee00c0ffee00c0ffee00c0ffee00\n\
             <30>{stamp} website-backend: [pid: 20592|app: 0|req: 201/4946615] 5.18.77.140 () {{50 vars in 1099 bytes}} [Sat Jun 23 17:18:08 2018] POST /api/v1/orders/ => generated 145 bytes in 1203 msecs (HTTP/2.0 500) 7 headers in 254 bytes (1 switches on core 0)\n"
        );
        let post_event = || {
            let auth = format!("Sentry sentry_key={key}, sentry_version=7");
            let r = common::http(
                s.http,
                "POST",
                "/api/1/store/",
                &[("Content-Type", "application/json"), ("X-Sentry-Auth", &auth)],
                event.to_string().as_bytes(),
            )
            .unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
        };
        if backend_first {
            post_event();
            std::thread::sleep(Duration::from_millis(700));
            assert_eq!(s.post_logs(lines.as_bytes()).status, 200);
        } else {
            assert_eq!(s.post_logs(lines.as_bytes()).status, 200);
            std::thread::sleep(Duration::from_millis(700));
            post_event();
        }
        let all = common::wait_until("one lost order with its three pieces", Duration::from_secs(15), || {
            let all = lost_orders(&s);
            let one = all.first()?;
            let full = s.api("GET", &format!("/api/v1/lost-orders/{}", one["id"]), "").json();
            (all.len() == 1 && full["evidence"].as_array().map(Vec::len) == Some(3)).then_some(full)
        });
        assert_eq!(all["cause"], "server_error", "backend first: {backend_first}");
        assert_eq!(all["customer"]["name"], "Павел Ким", "backend first: {backend_first}: {all:#}");
        assert_eq!(all["cart"]["total"], 9400.0);
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(lost_orders(&s).len(), 1, "still one");
    }
}
