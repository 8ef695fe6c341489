//! The HTTP API driven in-process through `web::app` (no sockets): auth, the
//! ingest endpoint's answers for good and bad bodies, the search API's
//! parameters and shape, and the notification outbox's list, get and retry.

use std::io::Write;
use std::str::FromStr;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use orderwatch::alerts::engine::{AlertEngine, EngineOptions};
use orderwatch::db::Db;
use orderwatch::logstore::{LogStore, StoreOptions};
use orderwatch::notify::{Message, NewNotification, Notifier, NotifySettings};
use orderwatch::parse::LineParser;
use orderwatch::web::{self, AppState, auth::Tokens};
use serde_json::Value;
use tower::ServiceExt;

const ADMIN: &str = "admin-token";
const INGEST: &str = "ingest-token";
/// The public key in the fixtures' DSNs, given to the harness's project 1.
const SENTRY_KEY: &str = "3f1c2a9be07d4e0c9b1f6a2d8c4e5f70";
/// The harness's Sentry rate limit: far above what any test posts but the one that checks it.
const SENTRY_PER_MINUTE: u32 = 1000;

struct Harness {
    app: axum::Router,
    db: Db,
    notifier: Notifier,
    _alerts: AlertEngine,
    _dir: tempfile::TempDir,
}

async fn harness(max_body_bytes: usize) -> Harness {
    harness_with(max_body_bytes, 100 * 1024).await
}

async fn harness_with(max_body_bytes: usize, max_line_bytes: usize) -> Harness {
    harness_full(max_body_bytes, max_line_bytes, Vec::new()).await
}

/// A harness whose Sentry worker raises `sentry_alerts` (`[[sentry.alerts]]`).
async fn harness_full(
    max_body_bytes: usize,
    max_line_bytes: usize,
    sentry_alerts: Vec<orderwatch::alerts::groups::GroupAlertDef>,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    let notifier = Notifier::start(db.clone(), NotifySettings::default());
    let store = LogStore::open(
        StoreOptions {
            dir: dir.path().join("logs"),
            seal_bytes: 1 << 30,
            seal_interval: std::time::Duration::from_secs(3600),
            retention_age: None,
            retention_bytes: None,
        },
        db.clone(),
    )
    .await
    .unwrap();
    let zone = jiff::tz::TimeZone::get("Europe/Volgograd").unwrap();
    db.ensure_default_project(|| SENTRY_KEY.into(), 0).await.unwrap();
    let harness_db = db.clone();
    let alerts = AlertEngine::start(
        db.clone(),
        store.clone(),
        notifier.clone(),
        EngineOptions { public_url: "http://127.0.0.1:8080".into(), default_zone: zone.clone() },
    )
    .await
    .unwrap();
    let alerting = orderwatch::sentry::process::Alerting {
        alerts: orderwatch::alerts::groups::GroupAlerts {
            defs: sentry_alerts,
            public_url: Some("http://127.0.0.1:8080".into()),
            zone: zone.clone(),
        },
        notifier: notifier.clone(),
    };
    let state = Arc::new(AppState {
        sentry: orderwatch::sentry::process::Processor::start_with(
            db.clone(),
            Some(alerting),
            orderwatch::sentry::process::OrdersHook::default(),
        ),
        orders: Default::default(),
        store,
        db,
        alerts: alerts.handle(),
        parser: Arc::new(LineParser::new(zone.clone(), vec![])),
        tokens: Tokens { admin: vec![ADMIN.into()], ingest: vec![INGEST.into()] },
        max_line_bytes,
        max_body_bytes,
        public_url: "http://127.0.0.1:8080".into(),
        // In-process requests come from no peer (127.0.0.1): as if behind a local proxy.
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        sentry_limits: orderwatch::web::sentry::RateLimits::new(SENTRY_PER_MINUTE),
        display_zone: zone,
        udp_port: None,
        prometheus: orderwatch::telemetry::prometheus(),
        notifier: notifier.clone(),
        lost_order_events: tokio::sync::broadcast::channel(16).0,
        shutdown: Default::default(),
        settings: Arc::new(orderwatch::config::Config::default().validate().unwrap()),
    });
    Harness { app: web::app(state), db: harness_db, notifier, _alerts: alerts, _dir: dir }
}

async fn call(h: &Harness, req: Request<Body>) -> (StatusCode, Value) {
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, json)
}

fn post_logs(token: Option<&str>, body: impl Into<Body>, encoding: Option<&str>) -> Request<Body> {
    let mut b = Request::post("/api/v1/logs");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if let Some(e) = encoding {
        b = b.header("content-encoding", e);
    }
    b.body(body.into()).unwrap()
}

fn search(q: &str) -> Request<Body> {
    Request::get(format!("/api/v1/events/search.json?{q}"))
        .header("x-papertrail-token", ADMIN)
        .body(Body::empty())
        .unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

const FIXTURE: &str = include_str!("../testdata/uwsgi-syslog.log");

#[tokio::test(flavor = "multi_thread")]
async fn ingest_then_search_reads_fields_in_the_senders_zone() {
    let h = harness(1 << 20).await;
    let (status, body) = call(&h, post_logs(Some(INGEST), FIXTURE, None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 15);

    let (status, body) = call(&h, search("q=%22HTTP%2F2.0%20429%22&limit=10")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let first = &events[0];
    assert_eq!(first["source_name"], "website-backend");
    assert_eq!(first["program"], "website-backend");
    assert_eq!(first["severity"], "Info");
    assert_eq!(first["facility"], "Daemon");
    // RFC 3164 time read in the configured zone (Volgograd, UTC+3 in 2018).
    assert!(first["generated_at"].as_str().unwrap().contains("-06-23T17:17:48+03:00"), "{first}");
    assert_eq!(first["fields"]["status"], 429);
    assert_eq!(first["fields"]["method"], "POST");
    assert_eq!(first["fields"]["path"], "/api/v1/orders/");
    assert_eq!(first["fields"]["client_ip"], "176.114.214.14");
    assert_eq!(events[1]["fields"]["remote_user"], "manager");
    assert!(body["max_id"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(body["reached_beginning"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_checked_by_scope() {
    let h = harness(1 << 20).await;
    assert_eq!(call(&h, post_logs(None, "x", None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&h, post_logs(Some("wrong"), "x", None)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&h, post_logs(Some(ADMIN), "x", None)).await.0, StatusCode::OK);
    // An ingest token may post but not read.
    let req = Request::get("/api/v1/events/search.json")
        .header("authorization", format!("Bearer {INGEST}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&h, req).await.0, StatusCode::FORBIDDEN);
    // Nothing from the refused posts was stored.
    let (_, body) = call(&h, search("")).await;
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_bodies_are_read_and_bombs_refused() {
    let h = harness(64 * 1024).await;
    let (status, body) = call(&h, post_logs(Some(INGEST), gzip(FIXTURE.as_bytes()), Some("gzip"))).await;
    assert_eq!((status, body["accepted"].clone()), (StatusCode::OK, Value::from(15)));

    let bomb = gzip(&vec![b'a'; 10 << 20]);
    assert!(bomb.len() < 64 * 1024);
    let (status, body) = call(&h, post_logs(Some(INGEST), bomb, Some("gzip"))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    let (status, body) = call(&h, post_logs(Some(INGEST), "not gzip", Some("gzip"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("gzip"));

    let (status, _) = call(&h, post_logs(Some(INGEST), "x", Some("compress"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = call(&h, post_logs(Some(INGEST), vec![b'x'; 100 * 1024], None)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// A small gzip body of millions of short lines once took gigabytes of memory.
#[tokio::test(flavor = "multi_thread")]
async fn too_many_lines_in_one_post_are_refused_before_parsing() {
    let h = harness(64 << 20).await;
    let lines = "a\n".repeat(orderwatch::web::logs::MAX_LINES_PER_POST + 1);
    let (status, body) = call(&h, post_logs(Some(INGEST), gzip(lines.as_bytes()), Some("gzip"))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("split"));
    let (_, found) = call(&h, search("")).await;
    assert!(found["events"].as_array().unwrap().is_empty());
    let ok = "a\n".repeat(1000);
    assert_eq!(call(&h, post_logs(Some(INGEST), ok, None)).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn long_lines_are_truncated_and_flagged_invalid_utf8_kept() {
    let h = harness_with(1 << 20, 200).await;
    let mut body = format!("{}\n", "L".repeat(1000)).into_bytes();
    body.extend_from_slice(b"caf\xe9 latin-1 line\r\n\n\nbare message\n");
    let (status, resp) = call(&h, post_logs(Some(INGEST), body, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((resp["accepted"].as_u64(), resp["truncated"].as_u64()), (Some(3), Some(1)));
    let (_, found) = call(&h, search("limit=10")).await;
    let events = found["events"].as_array().unwrap();
    assert_eq!(events[0]["truncated"], true);
    assert_eq!(events[0]["message"].as_str().unwrap().len(), 200);
    assert_eq!(events[1]["message"], "caf\u{fffd} latin-1 line");
    assert_eq!(events[2]["message"], "bare message");
    assert_eq!(events[2]["source_name"], "127.0.0.1");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_search_parameters_say_what_is_wrong() {
    let h = harness(1 << 20).await;
    let cases = [
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("min_id=abc", "min_id"),
        ("min_time=yesterday-ish", "min_time"),
        ("tail=maybe", "tail"),
        ("q=%22unclosed", "position 0"),
        ("q=foo%3Abar", "unknown attribute `foo`"),
        ("q=status%3A", "position 7: expected a value after `status:`"),
    ];
    for (q, needle) in cases {
        let (status, body) = call(&h, search(q)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        assert!(body["error"].as_str().unwrap().contains(needle), "{q}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_polling_returns_only_newer_lines() {
    let h = harness(1 << 20).await;
    call(&h, post_logs(Some(INGEST), "one\ntwo\n", None)).await;
    let (_, first) = call(&h, search("")).await;
    let max_id = first["max_id"].as_str().unwrap().to_owned();
    let (_, none) = call(&h, search(&format!("min_id={max_id}"))).await;
    assert!(none["events"].as_array().unwrap().is_empty());
    assert_eq!(none["max_id"], max_id.as_str(), "an empty poll keeps the position");
    call(&h, post_logs(Some(INGEST), "three\n", None)).await;
    let (_, next) = call(&h, search(&format!("min_id={max_id}"))).await;
    let msgs: Vec<&str> = next["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(msgs, ["three"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_metrics() {
    let h = harness(1 << 20).await;
    call(&h, post_logs(Some(INGEST), "a\nb\n", None)).await;
    let (status, _) = call(&h, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, text) = call(&h, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap();
    assert!(text.contains("orderwatch_lines_received_total{listener=\"http\"}"), "{text}");
    assert!(text.contains("orderwatch_lines_stored_total{listener=\"http\"}"));
    assert!(text.contains("orderwatch_store_head_events"));
}

fn admin_get(uri: &str) -> Request<Body> {
    Request::get(uri).header("authorization", format!("Bearer {ADMIN}")).body(Body::empty()).unwrap()
}

fn admin_post(uri: &str) -> Request<Body> {
    Request::post(uri).header("authorization", format!("Bearer {ADMIN}")).body(Body::empty()).unwrap()
}

/// Polls a notification through the API until `cond` holds.
async fn wait_notification(h: &Harness, id: i64, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, n) = call(h, admin_get(&format!("/api/v1/notifications/{id}"))).await;
        assert_eq!(status, StatusCode::OK, "{n}");
        if cond(&n) {
            return n;
        }
        assert!(std::time::Instant::now() < deadline, "notification {id} never got there: {n:#}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn notifications_are_listed_masked_paged_and_retried() {
    let h = harness(1 << 20).await;
    // Not URLs: each attempt fails at once and for good.
    let bad = |n: usize| NewNotification {
        source: format!("alert:{}", n % 2),
        dedup_key: None,
        message: Message::Slack { url: format!("hooks.slack.com/services/T/B/SECRET{n}"), text: format!("Заказ {n}\nmore") },
    };
    let ids = h.notifier.enqueue(&(0..5).map(bad).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(ids.len(), 5);
    for &id in &ids {
        wait_notification(&h, id, |n| n["status"] == "failed").await;
    }

    let (status, _) = call(&h, Request::get("/api/v1/notifications").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = call(
        &h,
        Request::get("/api/v1/notifications").header("authorization", format!("Bearer {INGEST}")).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = call(&h, admin_get("/api/v1/notifications?limit=2")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.to_string().contains("SECRET"), "a secret leaked: {body}");
    let page: Vec<i64> = body["notifications"].as_array().unwrap().iter().map(|n| n["id"].as_i64().unwrap()).collect();
    assert_eq!(page, [ids[4], ids[3]], "newest first");
    let n = &body["notifications"][0];
    assert_eq!(n["channel"], "slack");
    assert_eq!(n["source"], "alert:0");
    assert_eq!(n["status"], "failed");
    assert_eq!(n["summary"], "Заказ 4");
    assert_eq!(n["attempts"], 1);
    assert_eq!(n["next_attempt_at"], Value::Null);
    assert_eq!(n["sent_at"], Value::Null);
    assert!(n["last_error"].as_str().unwrap().contains("not an http"), "{n}");
    // RFC 3339 in the display zone (Volgograd), to the millisecond.
    let created = n["created_at"].as_str().unwrap();
    assert!(jiff::Timestamp::from_str(created).is_ok() && created.ends_with("+03:00"), "{n}");
    assert_eq!(created.len(), "2026-11-26T15:07:00.123+03:00".len(), "{n}");
    assert_eq!(n["attempt_log"].as_array().unwrap().len(), 1);
    assert!(n["attempt_log"][0]["error"].is_string());
    let next = body["next_before_id"].as_i64().unwrap();
    assert_eq!(next, ids[3]);

    let (_, body) = call(&h, admin_get(&format!("/api/v1/notifications?before_id={next}&limit=2"))).await;
    let page: Vec<i64> = body["notifications"].as_array().unwrap().iter().map(|n| n["id"].as_i64().unwrap()).collect();
    assert_eq!(page, [ids[2], ids[1]]);
    let (_, body) = call(&h, admin_get("/api/v1/notifications?source=alert:1&status=failed")).await;
    assert_eq!(body["notifications"].as_array().unwrap().len(), 2);
    assert_eq!(body["next_before_id"], Value::Null);
    let (_, body) = call(&h, admin_get("/api/v1/notifications?status=sent")).await;
    assert!(body["notifications"].as_array().unwrap().is_empty());

    for (q, want) in [("status=lost", "status"), ("limit=0", "limit"), ("limit=1001", "limit"), ("before_id=x", "before_id")] {
        let (status, body) = call(&h, admin_get(&format!("/api/v1/notifications?{q}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(body["error"].as_str().unwrap().contains(want), "{q}: {body}");
    }
    let (status, _) = call(&h, admin_get("/api/v1/notifications/999999")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&h, admin_get("/api/v1/notifications/abc")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&h, admin_post("/api/v1/notifications/999999/retry")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Retry: due again, attempted again (and failing again, for good).
    let (status, body) = call(&h, admin_post(&format!("/api/v1/notifications/{}/retry", ids[0]))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], ids[0]);
    let n = wait_notification(&h, ids[0], |n| n["attempts"] == 2).await;
    assert_eq!(n["status"], "failed");
    assert_eq!(n["attempt_log"].as_array().unwrap().len(), 2);

    // A sent one is not sent again.
    h.notifier
        .db()
        .record_notification_attempt(ids[1], orderwatch::event::now_micros(), 3, &orderwatch::db::AttemptOutcome::Sent)
        .await
        .unwrap();
    let (status, body) = call(&h, admin_post(&format!("/api/v1/notifications/{}/retry", ids[1]))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, n) = call(&h, admin_get(&format!("/api/v1/notifications/{}", ids[1]))).await;
    assert_eq!(n["status"], "sent");
    assert!(n["sent_at"].is_string());

    let (_, text) = call(&h, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = text.as_str().unwrap();
    assert!(text.contains("orderwatch_notifications_failed{channel=\"slack\"} 4"), "{text}");
    assert!(text.contains("orderwatch_notifications_pending{channel=\"email\"} 0"), "{text}");
    assert!(text.contains("orderwatch_notifications_enqueued_total{channel=\"slack\"}"), "{text}");
    assert!(text.contains("orderwatch_notification_attempts_total{channel=\"slack\",outcome=\"failed\"}"), "{text}");
    h.notifier.shutdown().await;
}

fn admin_json(method: &str, uri: &str, body: &Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn admin_delete(uri: &str) -> Request<Body> {
    Request::delete(uri).header("authorization", format!("Bearer {ADMIN}")).body(Body::empty()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_searches_are_created_read_changed_and_deleted() {
    let h = harness(1 << 20).await;
    let seed = serde_json::json!({
        "name": "non-ok website orders",
        "query": "POST /api/v1/orders/ - \"HTTP/2.0 201\" - \"HTTP/1.1 201\" - \"Broken pipe\" program:website-backend",
        "alerts": [
            {"kind": "immediate", "time_zone": "Europe/Volgograd", "destination": {"webhook": "http://127.0.0.1:9/hook"}},
            {"kind": "periodic", "interval": "1h", "threshold": 2, "destination": {"email": {"to": ["head@shop.example"], "cc": ["dev@shop.example"]}}},
            {"kind": "inactivity", "interval": "30m", "active_hours": "09:00-21:00", "destination": {"telegram": {"bot_token": "1:A", "chat_id": -100}}},
            {"kind": "immediate", "destination": {"webhook_json": "https://hooks.example/x", "secret": "a-secret-of-more-than-16"}},
        ],
    });
    let (st, created) = call(&h, admin_json("POST", "/api/v1/searches", &seed)).await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["name"], seed["name"]);
    assert_eq!(created["origin"], "api");
    assert_eq!(created["alerts"].as_array().unwrap().len(), 4);
    assert_eq!(created["alerts"][2]["destination"]["telegram"]["chat_id"], -100);
    // Secrets are never shown.
    assert_eq!(created["alerts"][2]["destination"]["telegram"]["bot_token"], "1:***");
    assert_eq!(created["alerts"][3]["destination"]["secret"], "***");
    assert!(!created.to_string().contains("a-secret-of-more-than-16"));
    let first_alert = created["alerts"][0]["id"].as_i64().unwrap();

    let (st, list) = call(&h, admin_get("/api/v1/searches")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (st, one) = call(&h, admin_get(&format!("/api/v1/searches/{id}"))).await;
    assert_eq!((st, &one["query"]), (StatusCode::OK, &seed["query"]));

    // Changing one alert keeps the others (same ids, same cursors).
    // What GET showed (masked secrets and all) can be PUT back with a change.
    let mut changed = one.clone();
    changed.as_object_mut().unwrap().retain(|k, _| k == "name" || k == "query" || k == "alerts");
    for a in changed["alerts"].as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("id");
    }
    changed["alerts"][1]["threshold"] = 5.into();
    let (st, updated) = call(&h, admin_json("PUT", &format!("/api/v1/searches/{id}"), &changed)).await;
    assert_eq!(st, StatusCode::OK, "{updated}");
    assert_eq!(updated["alerts"][0]["id"].as_i64().unwrap(), first_alert);
    assert_ne!(updated["alerts"][1]["id"], created["alerts"][1]["id"]);
    assert_eq!(updated["alerts"][1]["threshold"], 5);
    // The masked secrets meant the stored ones: those alerts are unchanged, same ids.
    assert_eq!(updated["alerts"][2]["id"], created["alerts"][2]["id"]);
    assert_eq!(updated["alerts"][3]["id"], created["alerts"][3]["id"]);

    // Names are unique.
    let (st, dup) = call(&h, admin_json("POST", "/api/v1/searches", &seed)).await;
    assert_eq!(st, StatusCode::CONFLICT, "{dup}");

    let (st, _) = call(&h, admin_delete(&format!("/api/v1/searches/{id}"))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, gone) = call(&h, admin_get(&format!("/api/v1/searches/{id}"))).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{gone}");
    let (st, _) = call(&h, admin_delete(&format!("/api/v1/searches/{id}"))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_saved_searches_say_what_is_wrong() {
    let h = harness(1 << 20).await;
    let hook = serde_json::json!({"webhook": "http://127.0.0.1:9/"});
    let cases = [
        (serde_json::json!({"name": "x", "query": "status:>=5oo"}), "query", Some(0)),
        (serde_json::json!({"name": "x", "query": "colour:red"}), "unknown attribute", Some(0)),
        (serde_json::json!({"name": "x", "query": "a (b"}), "query", Some(0)),
        (serde_json::json!({"name": "", "query": "a"}), "name", None),
        (serde_json::json!({"name": "x", "query": "a", "alerts": [{"kind": "periodic", "interval": "2h", "destination": hook}]}), "alerts[0].interval", None),
        (serde_json::json!({"name": "x", "query": "a", "alerts": [{"kind": "immediate", "destination": {"webhook": "not a url"}}]}), "alerts[0].destination.webhook", None),
        (serde_json::json!({"name": "x", "query": "a", "alerts": [{"kind": "immediate", "destination": {"pager": "x"}}]}), "unknown field", None),
        (serde_json::json!({"name": "x", "query": "a", "colour": 1}), "unknown field", None),
        (serde_json::json!({"query": "a"}), "missing field `name`", None),
    ];
    for (body, want, position) in cases {
        let (st, err) = call(&h, admin_json("POST", "/api/v1/searches", &body)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {err}");
        let msg = err["error"].as_str().unwrap();
        assert!(msg.contains(want), "{body}: {msg}");
        if position.is_some() {
            assert!(err["position"].is_number(), "{body}: {err}");
        }
    }
    let (st, _) = call(&h, admin_json("PUT", "/api/v1/searches/999", &serde_json::json!({"name": "x", "query": "a"}))).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = call(&h, Request::get("/api/v1/searches").body(Body::empty()).unwrap()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = call(
        &h,
        Request::get("/api/v1/searches").header("authorization", format!("Bearer {INGEST}")).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // The search API takes the whole language and refuses what does not parse.
    let (st, err) = call(&h, search("q=status%3A%3E%3D")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["position"].is_number(), "{err}");
}

// ---------------------------------------------------------------- Sentry ingest

/// The browser fixture, its DSN naming project 1 (the fixture says 2).
fn browser_envelope() -> Vec<u8> {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sentry-browser-order-400.envelope"))
        .unwrap()
        .replacen("@127.0.0.1:8080/2\"", "@127.0.0.1:8080/1\"", 1)
        .into_bytes()
}

fn sentry_post(path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::post(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sentry_envelopes_are_stored_before_they_are_answered() {
    let h = harness(1 << 20).await;
    let body = browser_envelope();
    let (st, v) = call(&h, sentry_post("/api/1/envelope/", body.clone(), &[("content-type", "text/plain;charset=UTF-8")])).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, serde_json::json!({"id": "9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f"}));
    let stored = h.db.envelopes(1).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0.as_deref(), Some("9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f"));
    assert_eq!(stored[0].1, body, "kept byte for byte (session, client_report and replay_event items too)");

    // Compressed as SDKs send it.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).unwrap();
    let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    zl.write_all(&body).unwrap();
    for (enc, data) in [("gzip", gz.finish().unwrap()), ("deflate", zl.finish().unwrap()), ("zstd", zstd::encode_all(&body[..], 3).unwrap())] {
        let (st, v) = call(&h, sentry_post("/api/1/envelope/", data, &[("content-encoding", enc)])).await;
        assert_eq!(st, StatusCode::OK, "{enc}: {v}");
    }
    assert_eq!(h.db.envelopes(1).await.unwrap().len(), 4);

    // The legacy store endpoint, with the server SDK's header.
    let event = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sentry-python-order-500.event.json")).unwrap();
    let auth = format!("Sentry sentry_version=7, sentry_client=sentry.python/2.19.0, sentry_key={SENTRY_KEY}");
    let (st, v) = call(&h, sentry_post("/api/1/store/", event, &[("x-sentry-auth", &auth)])).await;
    assert_eq!((st, v), (StatusCode::OK, serde_json::json!({"id": "1a2b3c4d5e6f40718293a4b5c6d7e8f9"})));
    assert_eq!(h.db.envelopes(1).await.unwrap().len(), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn sentry_requests_that_cannot_be_kept_are_refused_and_nothing_is_stored() {
    let h = harness(1 << 20).await;
    let no_dsn = String::from_utf8(browser_envelope()).unwrap().replacen(
        &format!(", \"dsn\": \"http://{SENTRY_KEY}@127.0.0.1:8080/1\""),
        "",
        1,
    );
    assert!(!no_dsn.lines().next().unwrap().contains("dsn"));
    // (path, body, headers, status, words of the error)
    type Case<'a> = (&'a str, Vec<u8>, Vec<(&'a str, String)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        ("/api/1/envelope/", no_dsn.clone().into_bytes(), vec![], StatusCode::UNAUTHORIZED, "no Sentry key"),
        ("/api/1/envelope/?sentry_key=0000", no_dsn.clone().into_bytes(), vec![], StatusCode::FORBIDDEN, "not one of project 1"),
        ("/api/1/envelope/?sentry_key=0000", browser_envelope(), vec![], StatusCode::FORBIDDEN, "disagree"),
        ("/api/2/envelope/", browser_envelope(), vec![], StatusCode::FORBIDDEN, "project 1"),
        ("/api/x/envelope/", browser_envelope(), vec![], StatusCode::NOT_FOUND, "not a project id"),
        ("/api/1/envelope/", b"this is not an envelope\n".to_vec(), vec![], StatusCode::BAD_REQUEST, "not a Sentry envelope"),
        ("/api/1/envelope/", browser_envelope(), vec![("content-encoding", "gzip".into())], StatusCode::BAD_REQUEST, "not valid gzip"),
        ("/api/1/envelope/", no_dsn.clone().into_bytes(), vec![("x-sentry-auth", "Bearer x".into())], StatusCode::UNAUTHORIZED, "Sentry "),
    ];
    for (path, body, headers, want, msg) in cases {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (st, v) = call(&h, sentry_post(path, body, &hs)).await;
        assert_eq!(st, want, "{path}: {v}");
        assert!(v["error"].as_str().unwrap_or("").contains(msg), "{path}: {v}");
    }
    // A compression bomb: 64 MiB of zeros in a few KiB, refused with 413 at 20 MiB.
    let bomb = zstd::encode_all(&vec![0u8; 64 << 20][..], 3).unwrap();
    let (st, v) = call(&h, sentry_post(&format!("/api/1/envelope/?sentry_key={SENTRY_KEY}"), bomb, &[("content-encoding", "zstd")])).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(h.db.envelopes(1).await.unwrap().is_empty(), "nothing refused is stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn browsers_get_cors_headers() {
    let h = harness(1 << 20).await;
    let pre = Request::builder()
        .method("OPTIONS")
        .uri("/api/1/envelope/")
        .header("origin", "https://example-shop.ru")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .body(Body::empty())
        .unwrap();
    let resp = h.app.clone().oneshot(pre).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    assert!(resp.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let post = Request::post(format!("/api/1/envelope/?sentry_key={SENTRY_KEY}"))
        .header("origin", "https://example-shop.ru")
        .body(Body::from(browser_envelope()))
        .unwrap();
    let resp = h.app.clone().oneshot(post).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
}

/// The checkout reporter is served to any origin without a token, revalidated
/// by its ETag; what it posts (text/plain, key in the query: a CORS-simple
/// request, no preflight) is taken, and refusals carry CORS headers too, so the
/// page can read them.
#[tokio::test(flavor = "multi_thread")]
async fn the_checkout_reporter_is_served_and_its_simple_posts_are_taken() {
    let h = harness(1 << 20).await;
    let get = |inm: Option<&str>| {
        let mut b = Request::get("/static/orderwatch-checkout.js").header("origin", "https://example-shop.ru");
        if let Some(v) = inm {
            b = b.header("if-none-match", v);
        }
        b.body(Body::empty()).unwrap()
    };
    let resp = h.app.clone().oneshot(get(None)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let hs = resp.headers().clone();
    assert_eq!(hs["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(hs["access-control-allow-origin"], "*");
    assert!(hs["cache-control"].to_str().unwrap().contains("max-age"), "{hs:?}");
    let etag = hs["etag"].to_str().unwrap().to_owned();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(std::str::from_utf8(&body).unwrap().contains("OrderwatchCheckout"));
    let resp = h.app.clone().oneshot(get(Some(&etag))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert!(resp.into_body().collect().await.unwrap().to_bytes().is_empty());
    assert_eq!(h.app.clone().oneshot(get(Some("\"other\""))).await.unwrap().status(), StatusCode::OK);

    for (key, status) in [(SENTRY_KEY, StatusCode::OK), ("0000", StatusCode::FORBIDDEN)] {
        let post = Request::post(format!("/api/1/envelope/?sentry_key={key}&sentry_version=7"))
            .header("origin", "https://example-shop.ru")
            .header("content-type", "text/plain;charset=UTF-8")
            .body(Body::from(String::from_utf8(browser_envelope()).unwrap().replace(SENTRY_KEY, key)))
            .unwrap();
        let resp = h.app.clone().oneshot(post).await.unwrap();
        assert_eq!(resp.status(), status);
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    }
}

/// Polls an API path until it answers 200.
async fn wait_ok(h: &Harness, uri: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (st, v) = call(h, admin_get(uri)).await;
        if st == StatusCode::OK {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{uri} never answered 200: {st} {v}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_reports_become_error_events_in_groups() {
    let h = harness(1 << 20).await;
    let auth = format!("Sentry sentry_version=7, sentry_key={SENTRY_KEY}");
    // The browser's 400 (sent twice: an SDK retry is one event), and two backend 500s.
    for _ in 0..2 {
        let (st, v) =
            call(&h, sentry_post("/api/1/envelope/", browser_envelope(), &[("x-forwarded-for", "188.32.201.9")])).await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    let python = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sentry-python-order-500.event.json")).unwrap();
    // The second one on one line, as SDKs send /store/ bodies (a one-line JSON
    // object must not be taken for an envelope header).
    let again = serde_json::to_string(&serde_json::from_str::<Value>(&python).unwrap())
        .unwrap()
        .replace("1a2b3c4d5e6f40718293a4b5c6d7e8f9", "ffffffffffff40718293a4b5c6d7e8f9");
    for body in [python, again] {
        let (st, v) = call(&h, sentry_post("/api/1/store/", body.into_bytes(), &[("x-sentry-auth", &auth)])).await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }

    let e = wait_ok(&h, "/api/v1/error-events/9b2d5c1e-7f0a-4c3d-8e6b-1a2f3c4d5e6f").await;
    // The browser event's IP: the client the trusted proxy named.
    assert_eq!(e["event"]["user"]["ip_address"], "188.32.201.9", "{e}");
    assert_eq!(e["event_id"], "9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f");
    assert_eq!(e["project_id"], 1);
    assert!(e["event"]["extra"].is_object(), "the full event is kept: {e}");
    assert!(e["received_at"].as_str().unwrap().ends_with("+03:00"));
    wait_ok(&h, "/api/v1/error-events/ffffffffffff40718293a4b5c6d7e8f9").await;
    let b = wait_ok(&h, "/api/v1/error-events/1a2b3c4d5e6f40718293a4b5c6d7e8f9").await;
    assert_ne!(b["group_id"], e["group_id"]);

    let (st, groups) = call(&h, admin_get("/api/v1/error-groups")).await;
    assert_eq!(st, StatusCode::OK);
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 2, "{groups:?}");
    let backend = groups.iter().find(|g| g["id"] == b["group_id"]).unwrap();
    assert_eq!(backend["count"], 2, "two backend events, one group: {backend}");
    let browser = groups.iter().find(|g| g["id"] == e["group_id"]).unwrap();
    assert_eq!(browser["count"], 1, "the SDK's retry is not counted twice: {browser}");
    assert!(browser["title"].as_str().unwrap().starts_with("OrderSubmitError"), "{browser}");

    let (st, evs) = call(&h, admin_get(&format!("/api/v1/error-groups/{}/events", b["group_id"]))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(evs.as_array().unwrap().len(), 2);

    for (uri, want) in [
        ("/api/v1/error-events/00000000000000000000000000000000", StatusCode::NOT_FOUND),
        ("/api/v1/error-groups/999/events", StatusCode::NOT_FOUND),
        ("/api/v1/error-groups?limit=0", StatusCode::BAD_REQUEST),
    ] {
        let (st, v) = call(&h, admin_get(uri)).await;
        assert_eq!(st, want, "{uri}: {v}");
    }
    let (st, _) = call(&h, Request::get("/api/v1/error-groups").body(Body::empty()).unwrap()).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

/// Polls the error groups until one satisfies `cond`.
async fn wait_group(h: &Harness, id: &Value, cond: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (st, g) = call(h, admin_get(&format!("/api/v1/error-groups/{id}"))).await;
        if st == StatusCode::OK && cond(&g) {
            return g;
        }
        assert!(std::time::Instant::now() < deadline, "group {id} never got there: {st} {g}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The group's notifications in the outbox, oldest first.
async fn group_notifications(h: &Harness, id: &Value) -> Vec<Value> {
    let (st, v) = call(h, admin_get(&format!("/api/v1/notifications?source=error_group:{id}"))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let mut all = v["notifications"].as_array().unwrap_or_else(|| panic!("{v}")).clone();
    all.reverse();
    all
}

fn put_status(id: &Value, body: &str) -> Request<Body> {
    Request::put(format!("/api/v1/error-groups/{id}/status"))
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn resolved_groups_regress_once_ignored_ones_stay_quiet() {
    let email = serde_json::from_value(serde_json::json!({"destination": {"email": {"to": ["dev@shop.example"]}}}));
    let other_project = serde_json::from_value(
        serde_json::json!({"project": 2, "destination": {"email": {"to": ["two@shop.example"]}}}),
    );
    let h = harness_full(1 << 20, 100 * 1024, vec![email.unwrap(), other_project.unwrap()]).await;
    let auth = format!("Sentry sentry_version=7, sentry_key={SENTRY_KEY}");
    let python =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sentry-python-order-500.event.json"))
            .unwrap();
    let one_line = serde_json::to_string(&serde_json::from_str::<Value>(&python).unwrap()).unwrap();
    let send = |n: u32| {
        let event_id = format!("{n:08x}eeee40718293a4b5c6d7e8f9");
        let body = one_line.replace("1a2b3c4d5e6f40718293a4b5c6d7e8f9", &event_id);
        let h = &h;
        let auth = auth.clone();
        async move {
            let (st, v) = call(h, sentry_post("/api/1/store/", body.into_bytes(), &[("x-sentry-auth", &auth)])).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            event_id
        }
    };

    // A new group: one first-seen notification, for project 1's entry only.
    let first = send(1).await;
    let e = wait_ok(&h, &format!("/api/v1/error-events/{first}")).await;
    let id = e["group_id"].clone();
    let g = wait_group(&h, &id, |g| g["count"] == 1).await;
    assert_eq!((g["status"].as_str(), g["resolved_at"].is_null()), (Some("unresolved"), true), "{g}");
    let notes = group_notifications(&h, &id).await;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0]["dedup_key"], format!("group:{id}:first_seen:0"));
    assert_eq!(notes[0]["target"], "dev@shop.example");
    let title = g["title"].as_str().unwrap().to_owned();
    assert!(title.starts_with("IntegrityError: "), "{g}");
    assert_eq!(notes[0]["summary"], format!("[orderwatch] New error: {title}"));

    // Another event of the group: counted, no alert.
    send(2).await;
    wait_group(&h, &id, |g| g["count"] == 2).await;
    assert_eq!(group_notifications(&h, &id).await.len(), 1);

    // Resolved: the next event brings it back with one regression alert.
    let (st, g) = call(&h, put_status(&id, r#"{"status":"resolved"}"#)).await;
    assert_eq!(st, StatusCode::OK, "{g}");
    assert_eq!(g["status"], "resolved");
    assert!(g["resolved_at"].as_str().unwrap().ends_with("+03:00"), "{g}");
    let (_, list) = call(&h, admin_get("/api/v1/error-groups")).await;
    let listed = list.as_array().unwrap().iter().find(|l| l["id"] == id).unwrap().clone();
    assert_eq!(listed["status"], "resolved", "{listed}");
    for key in ["id", "project_id", "title", "culprit", "count", "first_seen", "last_seen"] {
        assert!(listed.get(key).is_some(), "{key} is still listed: {listed}");
    }
    let third = send(3).await;
    let g = wait_group(&h, &id, |g| g["count"] == 3).await;
    assert_eq!((g["status"].as_str(), g["resolved_at"].is_null()), (Some("unresolved"), true), "{g}");
    let notes = group_notifications(&h, &id).await;
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert_eq!(notes[1]["dedup_key"], format!("group:{id}:regression:{third}:0"));
    assert_eq!(notes[1]["summary"], format!("[orderwatch] Regression: {title}"));
    // Unresolved already: the next one is no regression.
    send(4).await;
    wait_group(&h, &id, |g| g["count"] == 4).await;
    assert_eq!(group_notifications(&h, &id).await.len(), 2);

    // Ignored: counted, never alerted on, even when it had been resolved.
    let (st, g) = call(&h, put_status(&id, r#"{"status": "ignored"}"#)).await;
    assert_eq!((st, g["status"].as_str()), (StatusCode::OK, Some("ignored")), "{g}");
    send(5).await;
    let g = wait_group(&h, &id, |g| g["count"] == 5).await;
    assert_eq!(g["status"], "ignored", "{g}");
    assert_eq!(group_notifications(&h, &id).await.len(), 2);
    let (_, text) = call(&h, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = text.as_str().unwrap();
    for what in ["first_seen", "regression"] {
        assert!(text.contains(&format!("orderwatch_error_group_alerts_total{{what=\"{what}\"}}")), "{text}");
    }
    h.notifier.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn group_status_mistakes_say_what_is_wrong() {
    let h = harness(1 << 20).await;
    let auth = format!("Sentry sentry_version=7, sentry_key={SENTRY_KEY}");
    let python =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sentry-python-order-500.event.json")).unwrap();
    let (st, v) = call(&h, sentry_post("/api/1/store/", python, &[("x-sentry-auth", &auth)])).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let e = wait_ok(&h, "/api/v1/error-events/1a2b3c4d5e6f40718293a4b5c6d7e8f9").await;
    let id = e["group_id"].clone();
    for (body, want) in [
        (r#"{"status":"fixed"}"#, "\"fixed\" is not a group status"),
        (r#"{"status":"resolved","why":"x"}"#, "unknown field"),
        ("resolved", "the body is not a status"),
        ("", "the body is not a status"),
    ] {
        let (st, v) = call(&h, put_status(&id, body)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{body}: {v}");
        let err = v["error"].as_str().unwrap_or_default();
        assert!(err.contains(want) && err.contains(r#"{"status": "resolved"}"#), "{body}: {err}");
    }
    assert_eq!(wait_group(&h, &id, |_| true).await["status"], "unresolved", "a refused change changes nothing");
    let (st, v) = call(&h, put_status(&serde_json::json!(999), r#"{"status":"resolved"}"#)).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no error group 999"), "{v}");
    let (st, _) = call(&h, admin_get("/api/v1/error-groups/999")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let anonymous =
        Request::put(format!("/api/v1/error-groups/{id}/status")).body(Body::from(r#"{"status":"resolved"}"#)).unwrap();
    assert_eq!(call(&h, anonymous).await.0, StatusCode::UNAUTHORIZED);
    // Unresolving a resolved group clears resolved_at.
    let (_, g) = call(&h, put_status(&id, r#"{"status":"resolved"}"#)).await;
    assert!(g["resolved_at"].is_string(), "{g}");
    let (st, g) = call(&h, put_status(&id, r#"{"status":"unresolved"}"#)).await;
    assert_eq!(
        (st, g["status"].as_str(), g["resolved_at"].is_null()),
        (StatusCode::OK, Some("unresolved"), true),
        "{g}"
    );
}

/// An envelope processing gave up on is listed with its error and, once
/// retried, processed: acknowledged reports are never dropped.
#[tokio::test]
async fn an_envelope_left_aside_is_listed_and_can_be_retried() {
    let h = harness(1 << 20).await;
    let raw = orderwatch::db::RawEnvelope {
        project_id: 1,
        received_at: 1,
        event_id: None,
        client_ip: "10.0.0.1",
        body: b"{}\n{\"type\":\"event\"}\n{\"event_id\":\"0123456789abcdef0123456789abcdef\",\"message\":\"m\"}\n",
    };
    // Stored directly, not through the endpoint, after the worker's first pass
    // (its next is 5 s away unless woken): it must not get to it first.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let id = h.db.store_envelope(&raw).await.unwrap();
    for _ in 0..orderwatch::db::MAX_PROCESSING_ATTEMPTS {
        h.db.envelope_failed(id, "disk on fire").await.unwrap();
    }
    let (st, v) = call(&h, admin_get("/api/v1/sentry/envelopes/left-aside")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v[0]["id"], id);
    assert_eq!(v[0]["last_error"], "disk on fire");
    let (st, _) = call(&h, admin_post(&format!("/api/v1/sentry/envelopes/{id}/retry"))).await;
    assert_eq!(st, StatusCode::OK);
    let mut found = None;
    for _ in 0..100 {
        let (st, v) = call(&h, admin_get("/api/v1/error-events/0123456789abcdef0123456789abcdef")).await;
        if st == StatusCode::OK {
            found = Some(v);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(found.is_some(), "the retried envelope was processed");
    let (_, v) = call(&h, admin_get("/api/v1/sentry/envelopes/left-aside")).await;
    assert_eq!(v, serde_json::json!([]));
    let (st, _) = call(&h, admin_post(&format!("/api/v1/sentry/envelopes/{id}/retry"))).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "a processed envelope is not retried");
}
