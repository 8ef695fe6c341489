//! The dashboard driven in-process through `web::app`, shared by
//! `tests/dashboard.rs` and `tests/pages_logviewer.rs`: a full `AppState` on a
//! temporary directory with three users (ada: admin, dev: developer, mia:
//! manager, in Russian), requests, and a login through the form.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use orderwatch::alerts::engine::{AlertEngine, EngineOptions};
use orderwatch::config::{Config, Settings};
use orderwatch::db::Db;
use orderwatch::logstore::{LogStore, StoreOptions};
use orderwatch::notify::{Notifier, NotifySettings};
use orderwatch::parse::LineParser;
use orderwatch::web::session::{self, Lang, Role};
use orderwatch::web::{self, AppState, auth::Tokens};
use tower::ServiceExt;

pub const PASSWORD: &str = "a long enough password";
/// The public key of the default project.
pub const SENTRY_KEY: &str = "3f1c2a9be07d4e0c9b1f6a2d8c4e5f70";

pub struct Harness {
    pub app: axum::Router,
    pub db: Db,
    _alerts: AlertEngine,
    _dir: tempfile::TempDir,
}

pub async fn harness() -> Harness {
    harness_with(Config::default().validate().unwrap()).await
}

pub async fn harness_with(settings: Settings) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
    db.ensure_default_project(|| SENTRY_KEY.into(), 0).await.unwrap();
    let notifier = Notifier::start(db.clone(), NotifySettings::default());
    let store = LogStore::open(
        StoreOptions {
            dir: dir.path().join("logs"),
            seal_bytes: 1 << 30,
            seal_interval: Duration::from_secs(3600),
            retention_age: None,
            retention_bytes: None,
        },
        db.clone(),
    )
    .await
    .unwrap();
    let zone = jiff::tz::TimeZone::get("Europe/Volgograd").unwrap();
    let alerts = AlertEngine::start(
        db.clone(),
        store.clone(),
        notifier.clone(),
        EngineOptions { public_url: "http://127.0.0.1:8080".into(), default_zone: zone.clone() },
    )
    .await
    .unwrap();
    for (name, role, lang) in
        [("ada", Role::Admin, Lang::En), ("dev", Role::Developer, Lang::En), ("mia", Role::Manager, Lang::Ru)]
    {
        session::add_user(&db, name, PASSWORD, role, lang).await.unwrap();
    }
    let state = Arc::new(AppState {
        sentry: orderwatch::sentry::process::Processor::start_with(
            db.clone(),
            None,
            orderwatch::sentry::process::OrdersHook::default(),
        ),
        orders: Default::default(),
        store,
        db: db.clone(),
        alerts: alerts.handle(),
        parser: Arc::new(LineParser::new(zone.clone(), vec![])),
        tokens: Tokens { admin: vec!["admin-token".into()], ingest: vec![] },
        max_line_bytes: 100 * 1024,
        max_body_bytes: 1 << 20,
        public_url: "http://127.0.0.1:8080".into(),
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        sentry_limits: orderwatch::web::sentry::RateLimits::new(1000),
        display_zone: zone,
        udp_port: None,
        prometheus: orderwatch::telemetry::prometheus(),
        notifier,
        lost_order_events: tokio::sync::broadcast::channel(16).0,
        settings: Arc::new(settings),
        shutdown: Default::default(),
    });
    Harness { app: web::app(state), db, _alerts: alerts, _dir: dir }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Resp {
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    pub fn cookies(&self) -> Vec<String> {
        self.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }
}

pub async fn send(h: &Harness, req: Request<Body>) -> Resp {
    let resp = h.app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned();
    Resp { status, headers, body }
}

pub fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

pub fn post_form(path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Request<Body> {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body)).unwrap()
}

/// The value of `name="…" value="…"` in a page.
pub fn hidden(body: &str, name: &str) -> String {
    let at = body.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} field in {body}"));
    let rest = &body[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The login form's cookie and token, then the POST: its answer.
pub async fn try_login(h: &Harness, name: &str, password: &str, ip: &str) -> Resp {
    let form = send(h, get("/login?next=/search", None)).await;
    assert_eq!(form.status, StatusCode::OK);
    let cookie = form.cookies().into_iter().find(|c| c.starts_with("ow_login=")).unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let token = hidden(&form.body, "token");
    let mut req = post_form(
        "/login",
        Some(&cookie),
        &[("name", name), ("password", password), ("next", "/search"), ("token", &token)],
    );
    req.headers_mut().insert("x-forwarded-for", ip.parse().unwrap());
    send(h, req).await
}

/// Logs in: the session cookie (`ow_session=…`) and the CSRF token.
pub async fn login(h: &Harness, name: &str) -> (String, String) {
    let r = try_login(h, name, PASSWORD, "192.0.2.1").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/search");
    let set = r.cookies().into_iter().find(|c| c.starts_with("ow_session=")).expect("a session cookie");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(part), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = send(h, get("/", Some(&cookie))).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    // A page every role may open carries the CSRF token.
    let page = send(h, get("/lost-orders", Some(&cookie))).await;
    let csrf = page.body.split("data-csrf=\"").nth(1).map(|s| s[..s.find('"').unwrap()].to_owned()).unwrap();
    assert_eq!(csrf.len(), 64, "{}", page.body);
    (cookie, csrf)
}
