//! Order-flow health end to end, against the real server: uWSGI and nginx
//! access lines of order requests by HTTP bulk ingest, counted once per
//! attempt in `GET /api/v1/order-flow`, and a failure-share alert and its
//! recovery delivered to a webhook receiver exactly once each, across a
//! restart while it fires.

mod common;

use std::time::Duration;

use common::{Hooks, Server};
use serde_json::Value;

const SECRET: &str = "0123456789abcdef-health";

fn config(hook: &str) -> String {
    format!(
        r#"
[syslog]
time_zone = "UTC"
[orders]
alert_delay = "500ms"
[orders.health]
failure_share = 0.5
failure_window = "10s"
min_attempts = 4
baseline_window = "1m"
[[orders.alerts]]
destination = {{ webhook_json = "{hook}", secret = "{SECRET}" }}
"#
    )
}

/// One order POST as uWSGI logs it and, unless `uwsgi_only`, as nginx logs it too.
fn attempt(n: u32, status: u16, nginx: bool, uwsgi: bool) -> String {
    let ts = jiff::Timestamp::now().strftime("%b %e %H:%M:%S").to_string();
    let ip = format!("10.9.{}.{}", n / 250, n % 250 + 1);
    let mut out = String::new();
    if uwsgi {
        out.push_str(&format!(
            "<30>{ts} website-backend website-backend: [pid: 20593|app: 0|req: {n}/{n}] {ip} () {{52 vars in 1210 bytes}} \
             [Sat Jun 23 17:17:43 2018] POST /api/v1/orders/ => generated 412 bytes in 187 msecs (HTTP/1.1 {status}) \
             8 headers in 301 bytes (1 switches on core 0)\n"
        ));
    }
    if nginx {
        out.push_str(&format!(
            "<30>{ts} website-frontend nginx: {ip} - - [23/Jun/2018:17:18:02 +0300] \"POST /api/v1/orders/ HTTP/1.1\" \
             {status} 187 \"https://shop.example/cart/\" \"Mozilla/5.0\"\n"
        ));
    }
    out
}

fn health_hooks(hooks: &Hooks) -> Vec<Value> {
    hooks.delivered("/ow").iter().map(|h| h.json()).filter(|v| v["order_health"].is_object()).collect()
}

fn states(hooks: &Hooks) -> Vec<String> {
    health_hooks(hooks).iter().map(|v| v["order_health"]["state"].as_str().unwrap().to_owned()).collect()
}

fn flow_totals(s: &Server) -> (u64, u64) {
    let r = s.api("GET", "/api/v1/order-flow?interval=1h&from=3h", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let b = v["buckets"].as_array().unwrap();
    assert!((3..=4).contains(&b.len()), "{v}");
    let sum = |k: &str| b.iter().map(|x| x[k].as_u64().unwrap()).sum::<u64>();
    (sum("successes"), sum("failures"))
}

#[test]
fn a_jump_in_failed_orders_is_announced_once_and_its_recovery_once() {
    let hooks = Hooks::start();
    let mut s = Server::start(&config(&hooks.url("/ow")));

    // 2 orders placed and 4 failed, each in both logs, and a 502 only nginx saw (uWSGI was not reached).
    let mut body = String::new();
    for n in 0..2 {
        body.push_str(&attempt(n, 201, true, true));
    }
    for n in 2..6 {
        body.push_str(&attempt(n, 500, true, true));
    }
    body.push_str(&attempt(6, 502, true, false));
    let r = s.post_logs(body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());

    // 5 of 7 attempts failed (71%): the alert goes off.
    let fired =
        hooks.wait("/ow", Duration::from_secs(15), |h| h.iter().any(|x| x.json()["order_health"]["state"] == "firing"));
    let fired: Vec<Value> = fired.iter().map(|h| h.json()).filter(|v| v["order_health"].is_object()).collect();
    let f = &fired[0]["order_health"];
    assert_eq!(
        (f["alert"].as_str(), f["successes"].as_u64(), f["failures"].as_u64()),
        (Some("failure_share"), Some(2), Some(5)),
        "{f}"
    );
    assert_eq!(f["window_seconds"], 10);
    let text = f["text"].as_str().unwrap();
    assert!(text.starts_with("5 of 7 order attempts failed (71.4%) between "), "{text}");
    assert!(text.contains("(UTC); 2 orders were placed."), "{text}");

    // The API counts each attempt once (nginx's lines stand for the flow: it saw the 502 too).
    assert_eq!(flow_totals(&s), (2, 5));
    let bad = s.api("GET", "/api/v1/order-flow?interval=7m", "");
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("divide a day"), "{}", bad.text());
    let bad = s.api("GET", "/api/v1/order-flow?from=1h&to=2h", "");
    assert_eq!((bad.status, bad.json()["error"].as_str()), (400, Some("from must be before to")));
    assert_eq!(s.api("GET", "/api/v1/order-flow?from=yesterday", "").status, 400);
    assert_eq!(common::http(s.http, "GET", "/api/v1/order-flow", &[], b"").unwrap().status, 401);
    assert_eq!(s.metric("orderwatch_order_health_alerts_total", &[("alert", "failure_share"), ("what", "fired")]), 1.0);

    // A restart while it fires does not announce it again.
    s.stop();
    s.restart();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(states(&hooks), ["firing"]);

    // Orders go through again: 12 of 17 succeed in the window (or only these, once the failures left it).
    let mut body = String::new();
    for n in 10..20 {
        body.push_str(&attempt(n, 201, true, true));
    }
    assert_eq!(s.post_logs(body.as_bytes()).status, 200);
    hooks.wait("/ow", Duration::from_secs(15), |h| h.iter().any(|x| x.json()["order_health"]["state"] == "recovered"));
    std::thread::sleep(Duration::from_secs(3));
    let all = health_hooks(&hooks);
    assert_eq!(states(&hooks), ["firing", "recovered"], "{all:#?}");
    let rec = &all[1]["order_health"];
    assert_eq!(rec["fired_at"], f["at"], "{rec}");
    assert!(rec["successes"].as_u64().unwrap() >= 10 && rec["failure_share"].as_f64().unwrap() < 0.5, "{rec}");
    assert!(rec["text"].as_str().unwrap().contains("The failure-share alert went off at "), "{rec}");
    assert_eq!(flow_totals(&s), (12, 5));
    // The webhooks carry the alert's text for people, signed like every webhook_json.
    let hook = hooks.delivered("/ow").into_iter().find(|h| h.json()["order_health"]["state"] == "recovered").unwrap();
    assert!(hook.header("X-Orderwatch-Notification-Id").is_some());
    s.stop();
}
