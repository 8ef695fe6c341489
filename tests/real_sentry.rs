//! The real Python Sentry SDK (sentry-sdk from PyPI, in the venv `scripts/test`
//! makes) reports a captured exception to orderwatch, gzip- and
//! brotli-compressed, unmodified: the DSN is the one orderwatch shows, and the
//! envelope is stored whole before the SDK is answered. Its events raise
//! first-seen and regression alerts to a real webhook receiver.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Hooks, Server};

/// The venv's Python; a missing venv fails the test and says how to make it.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("ORDERWATCH_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/test-venv")));
    let python = venv.join("bin/python");
    let ok = Command::new(&python).args(["-c", "import sentry_sdk, brotli"]).status().is_ok_and(|s| s.success());
    assert!(
        ok,
        "no Python venv with sentry-sdk and brotli at {}: run scripts/test (it makes one), or \
         python3 -m venv {0} && {0}/bin/pip install sentry-sdk brotli",
        venv.display()
    );
    python
}

/// The stored envelopes (event id, body) of project 1, read with Python's sqlite3.
fn stored(s: &Server) -> Vec<(String, String)> {
    let db = s.data.join("orderwatch.db");
    let out = Command::new(common::require("python3"))
        .args([
            "-c",
            "import json, sqlite3, sys\n\
             c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)\n\
             rows = c.execute('SELECT event_id, body FROM sentry_envelopes WHERE project_id = 1 ORDER BY id').fetchall()\n\
             print(json.dumps([[e, b.decode('utf-8', 'replace')] for e, b in rows]))",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_python_sdk_reports_to_orderwatch_unmodified() {
    let python = venv_python();
    let mut s = Server::start("");
    let dsn = s.api("GET", "/api/v1/projects", "").json()[0]["dsn"].as_str().unwrap().to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sentry_python.py");
    let mut ids = Vec::new();
    for algo in ["gzip", "br"] {
        let out = Command::new(&python).arg(script).arg(&dsn).arg(algo).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{algo}: the SDK failed:\n{stderr}\nserver:\n{}", s.stderr_tail(20));
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(id.len(), 32, "{algo}: {id:?}\n{stderr}");
        ids.push(id);
    }
    let rows = stored(&s);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for ((event_id, body), id) in rows.iter().zip(&ids) {
        assert_eq!(event_id, id);
        // The stored envelope, read with orderwatch's own parser: the whole event is there.
        let env = orderwatch::sentry::envelope::parse(&bytes::Bytes::from(body.clone().into_bytes())).unwrap();
        let event: serde_json::Value = serde_json::from_slice(&env.event().expect("an event item").payload).unwrap();
        assert_eq!(event["event_id"], id.as_str());
        assert_eq!(event["exception"]["values"][0]["value"], "order failed: delivery.floor must be >= 0");
        assert_eq!(event["tags"]["endpoint"], "POST /api/v1/orders/");
        assert_eq!(event["extra"]["order"]["customer"]["name"], "Ирина");
        assert_eq!(event["request"]["data"]["delivery"]["floor"], -1);
        assert_eq!(event["request"]["headers"]["X-Request-Id"], "req-5");
    }
    // Processed into one group of two events, readable through the API.
    let e = common::wait_until("the error event", std::time::Duration::from_secs(10), || {
        let r = s.api("GET", &format!("/api/v1/error-events/{}", ids[1]), "");
        (r.status == 200).then(|| r.json())
    });
    assert_eq!(e["event"]["extra"]["order"]["customer"]["name"], "Ирина");
    let groups = common::wait_until("both events in one group", std::time::Duration::from_secs(10), || {
        let g = s.api("GET", "/api/v1/error-groups", "").json();
        (g[0]["count"] == 2).then_some(g)
    });
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
    assert_eq!(groups[0]["title"], "ValueError: order failed: delivery.floor must be >= 0");
    assert_eq!(groups[0]["id"], e["group_id"]);
    // A wrong key is refused and the SDK says so.
    let bad = dsn.replacen("//", "//0000", 1);
    let out = Command::new(&python).arg(script).arg(&bad).arg("gzip").output().unwrap();
    assert!(!out.status.success(), "a wrong key must not be accepted");
    assert_eq!(stored(&s).len(), 2);
    s.stop();
}

/// Runs the SDK script once; returns the event id it reported.
fn report(python: &std::path::Path, dsn: &str, algo: &str, s: &Server) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sentry_python.py");
    let out = Command::new(python).arg(script).arg(dsn).arg(algo).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{algo}: the SDK failed:\n{stderr}\nserver:\n{}", s.stderr_tail(20));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(id.len(), 32, "{algo}: {id:?}\n{stderr}");
    id
}

/// `[[sentry.alerts]]` with a signed JSON webhook: the SDK's first event of a
/// new group raises exactly one first_seen; another event of the group
/// nothing; after the group is resolved through the API, the next event
/// exactly one regression (and the group is unresolved again).
#[test]
fn the_python_sdks_errors_raise_first_seen_and_regression_alerts() {
    use hmac::{Hmac, KeyInit, Mac};
    let python = venv_python();
    let hooks = Hooks::start();
    let secret = "a-secret-of-more-than-16";
    let mut s = Server::start(&format!(
        "[[sentry.alerts]]\nproject = 1\ndestination = {{ webhook_json = \"{}\", secret = \"{secret}\" }}\n",
        hooks.url("/groups")
    ));
    let dsn = s.api("GET", "/api/v1/projects", "").json()[0]["dsn"].as_str().unwrap().to_owned();
    let quiet = std::time::Duration::from_millis(1500);
    let within = std::time::Duration::from_secs(15);

    let first = report(&python, &dsn, "gzip", &s);
    hooks.wait("/groups", within, |h| !h.is_empty());
    std::thread::sleep(quiet);
    let got = hooks.delivered("/groups");
    assert_eq!(got.len(), 1, "exactly one first_seen: {:#?}", got.iter().map(|h| h.text()).collect::<Vec<_>>());
    let v = got[0].json();
    assert_eq!(v["kind"], "first_seen", "{v}");
    assert_eq!(v["event_id"], first.as_str());
    assert_eq!(v["project"]["id"], 1);
    assert_eq!(v["project"]["name"], "default");
    assert_eq!(v["group"]["title"], "ValueError: order failed: delivery.floor must be >= 0");
    assert_eq!(v["group"]["count"], 1);
    assert_eq!(v["group"]["status"], "unresolved");
    assert!(v["group"]["url"].is_null(), "no http.public_url, no link: {v}");
    assert_eq!(v["subject"], "[orderwatch] New error: ValueError: order failed: delivery.floor must be >= 0");
    // Signed as every signed webhook is.
    let ts = got[0].header("x-orderwatch-timestamp").expect("timestamp header");
    let sig = got[0].header("x-orderwatch-signature").expect("signature header");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(&got[0].body);
    let want: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sig, format!("sha256={want}"));
    let group = v["group"]["id"].clone();
    let e = s.api("GET", &format!("/api/v1/error-events/{first}"), "").json();
    assert_eq!(e["group_id"], group);

    // The same error again: counted, no alert.
    report(&python, &dsn, "br", &s);
    common::wait_until("the second event in the group", within, || {
        let g = s.api("GET", &format!("/api/v1/error-groups/{group}"), "").json();
        (g["count"] == 2).then_some(())
    });
    std::thread::sleep(quiet);
    assert_eq!(hooks.delivered("/groups").len(), 1, "a known group's event raises nothing");

    // Resolved; the next event is a regression, once.
    let r = s.api("PUT", &format!("/api/v1/error-groups/{group}/status"), r#"{"status":"resolved"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "resolved");
    let third = report(&python, &dsn, "gzip", &s);
    hooks.wait("/groups", within, |h| h.len() >= 2);
    std::thread::sleep(quiet);
    let got = hooks.delivered("/groups");
    assert_eq!(got.len(), 2, "exactly one regression: {:#?}", got.iter().map(|h| h.text()).collect::<Vec<_>>());
    let v = got[1].json();
    assert_eq!(v["kind"], "regression", "{v}");
    assert_eq!(v["event_id"], third.as_str());
    assert_eq!(v["group"]["id"], group);
    assert_eq!(v["group"]["count"], 3);
    assert_eq!(v["group"]["status"], "unresolved");
    assert!(v["resolved_at"].is_string(), "{v}");
    assert_eq!(v["subject"], "[orderwatch] Regression: ValueError: order failed: delivery.floor must be >= 0");
    let g = s.api("GET", &format!("/api/v1/error-groups/{group}"), "").json();
    assert_eq!((g["status"].as_str(), g["resolved_at"].is_null()), (Some("unresolved"), true), "{g}");
    assert_eq!(s.metric("orderwatch_error_group_alerts_total", &[("what", "first_seen")]), 1.0);
    assert_eq!(s.metric("orderwatch_error_group_alerts_total", &[("what", "regression")]), 1.0);
    s.stop();
}

/// An envelope acknowledged but not yet processed when orderwatch stopped (here:
/// written straight into the store while it was down) is processed at the next start.
#[test]
fn envelopes_left_unprocessed_are_processed_at_the_next_start() {
    let mut s = Server::start("");
    s.stop();
    let out = Command::new(common::require("python3"))
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1])\n\
             c.execute(\"INSERT INTO sentry_envelopes (project_id, received_at, event_id, client_ip, body) \
                        VALUES (1, 1529763482000000, '9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f', '188.32.201.9', ?)\", \
                       (open(sys.argv[2], 'rb').read(),))\n\
             c.commit()",
        ])
        .arg(s.data.join("orderwatch.db"))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sentry-browser-order-400.envelope"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    s.restart();
    let e = common::wait_until("the error event", std::time::Duration::from_secs(10), || {
        let r = s.api("GET", "/api/v1/error-events/9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f", "");
        (r.status == 200).then(|| r.json())
    });
    assert_eq!(e["event"]["user"]["ip_address"], "188.32.201.9", "{e}");
    s.stop();
}
