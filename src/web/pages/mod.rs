//! The dashboard: server-rendered HTML pages (askama templates in
//! `templates/`), light enhancement by `static/app.js` and vendored htmx.
//!
//! Every page handler takes a `CurrentUser` (no session: a redirect to
//! `/login`), checks the role it needs with `user.require(Role::…)?` (a 403
//! page), checks `csrf` on every POST, and renders a template whose `ctx:
//! Layout` gives the base layout the navigation for the user's role, the
//! language (`ctx.t("key")`, `web::i18n`) and the CSRF token for forms.
//! Failures are `PageError`s, which render as pages; the JSON API keeps
//! `ApiError`.
//!
//! To add a page: a module here with its handlers, a template extending
//! `base.html` with a struct holding `ctx: Layout`, its routes in `router()`,
//! its words in `i18n::WORDS`, and a `NAV` entry if it belongs in the menu.

pub mod account;
pub mod incidents;
pub mod lost_orders;
pub mod rescue;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::web::AppState;
use crate::web::i18n;
use crate::web::session::{CurrentUser, Lang, Role};

/// A menu entry: its path, its word, and the role it needs.
pub struct Nav {
    pub path: &'static str,
    pub key: &'static str,
    pub need: Role,
}

/// The menu, in order. A page another module adds goes here too.
pub const NAV: &[Nav] = &[
    Nav { path: "/lost-orders", key: "lost_orders", need: Role::Manager },
    Nav { path: "/rescue", key: "rescue_queue", need: Role::Manager },
    Nav { path: "/incidents", key: "incidents", need: Role::Developer },
    Nav { path: "/search", key: "log_search", need: Role::Developer },
    Nav { path: "/error-groups", key: "error_groups", need: Role::Developer },
    Nav { path: "/settings", key: "settings", need: Role::Developer },
    Nav { path: "/users", key: "users", need: Role::Admin },
];

/// A form that changes a status (a lost order's, an error group's).
#[derive(serde::Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub status: String,
}

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(account::login_form).post(account::login))
        .route("/logout", post(account::logout))
        .route("/account/lang", post(account::set_lang))
        .route("/users", get(account::users))
        .route("/lost-orders", get(lost_orders::list))
        .route("/lost-orders/events", get(lost_orders::events))
        .route("/lost-orders/{id}", get(lost_orders::detail))
        .route("/lost-orders/{id}/status", post(lost_orders::set_status))
        .route("/lost-orders/{id}/incident", post(lost_orders::to_incident))
        .route("/lost-orders/{id}/calls", post(rescue::record_call))
        .route("/rescue", get(rescue::queue))
        .route("/incidents", get(incidents::list).post(incidents::create))
        .route("/incidents/{id}", get(incidents::detail).post(incidents::update))
        .route("/incidents/{id}/preview", get(incidents::preview))
        .route("/incidents/{id}/send", post(incidents::send))
        // log viewer, error groups, settings
        .route("/search", get(logs::search))
        .route("/search/live", get(logs::live))
        .route("/events/{id}", get(logs::event))
        .route("/searches", get(saved::list).post(saved::create))
        .route("/searches/{id}", get(saved::detail).post(saved::update))
        .route("/searches/{id}/edit", get(saved::detail))
        .route("/searches/{id}/delete", post(saved::delete))
        .route("/error-groups", get(error_groups::list))
        .route("/error-groups/{id}", get(error_groups::detail))
        .route("/error-groups/{id}/status", post(error_groups::set_status))
        .route("/settings", get(settings::page))
}

/// What every page's base layout needs.
pub struct Layout {
    pub lang: Lang,
    pub title: String,
    /// The path of this page (the menu marks it; the language switch comes back to it).
    pub path: String,
    pub user: Option<CurrentUser>,
    /// Notices shown once at the top ("Saved.").
    pub flash: Option<String>,
}

impl Layout {
    pub fn new(user: &CurrentUser, path: &str, title: String) -> Layout {
        Layout { lang: user.lang, title, path: path.to_owned(), user: Some(user.clone()), flash: None }
    }

    pub fn anonymous(lang: Lang, title: String) -> Layout {
        Layout { lang, title, path: String::new(), user: None, flash: None }
    }

    /// The word for `key` in the page's language.
    pub fn t(&self, key: &str) -> &'static str {
        i18n::t(self.lang, key)
    }

    pub fn csrf(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.csrf.as_str())
    }

    pub fn nav(&self) -> Vec<(&'static str, &'static str, bool)> {
        let Some(u) = &self.user else { return Vec::new() };
        NAV.iter()
            .filter(|n| u.role.allows(n.need))
            .map(|n| (n.path, self.t(n.key), self.path.starts_with(n.path)))
            .collect()
    }

    pub fn lang_code(&self) -> &'static str {
        self.lang.as_str()
    }

    pub fn other_lang(&self) -> (&'static str, &'static str) {
        match self.lang {
            Lang::En => ("ru", "Русский"),
            Lang::Ru => ("en", "English"),
        }
    }

    pub fn role_word(&self) -> &'static str {
        self.user.as_ref().map_or("", |u| self.t(u.role.as_str()))
    }
}

/// Messages next to form fields: field name → message.
#[derive(Default, Debug)]
pub struct FieldErrors(pub BTreeMap<&'static str, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, msg: impl Into<String>) {
        self.0.entry(field).or_insert_with(|| msg.into());
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Renders a page; pages hold customer data, so nothing is cached or framed.
pub fn render(t: &impl Template) -> Response {
    render_status(StatusCode::OK, t)
}

pub fn render_status(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => {
            let mut r = (status, html).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            secure_headers(h);
            r
        }
        Err(e) => PageError::Internal(Lang::En, anyhow::anyhow!("cannot render a page: {e}")).into_response(),
    }
}

fn secure_headers(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'"),
    );
}

/// A page that failed: each renders as a page in the user's language.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No session: to the login page, back to `next` (a path only) after it.
    #[error("log in first")]
    Login { next: String },
    /// The user is kept so the page still has the menu.
    #[error("forbidden")]
    Forbidden(Lang, Option<Box<CurrentUser>>),
    #[error("the form is out of date")]
    Csrf(Lang),
    #[error("{1}")]
    NotFound(Lang, String, Option<Box<CurrentUser>>),
    #[error("{1}")]
    BadRequest(Lang, String),
    #[error("internal error")]
    Internal(Lang, anyhow::Error),
}

impl PageError {
    pub fn not_found(user: &CurrentUser, what: String) -> PageError {
        PageError::NotFound(user.lang, what, Some(Box::new(user.clone())))
    }
}

impl From<crate::db::DbError> for PageError {
    fn from(e: crate::db::DbError) -> Self {
        PageError::Internal(Lang::En, e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    ctx: Layout,
    code: u16,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut user = None;
        let (status, lang, message) = match self {
            PageError::Login { next } => {
                let next = crate::web::session::safe_next(Some(&next));
                let q: String =
                    url::form_urlencoded::Serializer::new(String::new()).append_pair("next", &next).finish();
                return Redirect::to(&format!("/login?{q}")).into_response();
            }
            PageError::Forbidden(l, u) => {
                user = u;
                (StatusCode::FORBIDDEN, l, i18n::t(l, "forbidden_text").to_owned())
            }
            PageError::Csrf(l) => (StatusCode::FORBIDDEN, l, i18n::t(l, "csrf_text").to_owned()),
            PageError::NotFound(l, m, u) => {
                user = u;
                (StatusCode::NOT_FOUND, l, m)
            }
            PageError::BadRequest(l, m) => (StatusCode::BAD_REQUEST, l, m),
            PageError::Internal(l, e) => {
                tracing::error!(error = format!("{e:#}"), "a page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, l, i18n::t(l, "internal_text").to_owned())
            }
        };
        let title = format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
        let ctx = match user {
            Some(u) => Layout::new(&u, "", title),
            None => Layout::anonymous(lang, title),
        };
        render_status(status, &ErrorPage { ctx, code: status.as_u16(), message })
    }
}

/// The client's address, through trusted proxies (for login rate limiting).
pub struct ClientIp(pub String);

impl FromRequestParts<Arc<AppState>> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        Ok(ClientIp(crate::web::client_ip::resolve(peer, &parts.headers, &st.trusted_proxies).to_string()))
    }
}

/// `/`: the first page a role works on.
async fn home(user: CurrentUser) -> Redirect {
    Redirect::to(if user.can(Role::Developer) { "/lost-orders" } else { "/rescue" })
}

// log viewer, error groups, settings
pub mod error_groups;
pub mod logs;
pub mod saved;
pub mod settings;

/// Every unknown path: a 404 page, or the API's JSON 404 under `/api/`.
pub async fn fallback(
    axum::extract::State(st): axum::extract::State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if uri.path().starts_with("/api/") {
        return crate::web::error::ApiError::NotFound(format!("no API endpoint at {}", uri.path())).into_response();
    }
    let user = crate::web::session::from_headers(&st.db, &headers).await.ok().flatten();
    let lang = user.as_ref().map_or(Lang::En, |u| u.lang);
    PageError::NotFound(lang, i18n::t(lang, "no_such_page").into(), user.map(Box::new)).into_response()
}
