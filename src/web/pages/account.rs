//! Logging in and out, the user's language, and (admins) the users and the
//! audit log.
//!
//! The login form has no session yet, so its CSRF token is a double submit:
//! `GET /login` sets a random `ow_login` cookie (`Path=/login`) and puts the
//! same value in the form; `POST /login` needs both to match.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{ClientIp, FieldErrors, Layout, PageError, render, render_status};
use crate::orders::render::time;
use crate::web::AppState;
use crate::web::i18n;
use crate::web::session::{self, CurrentUser, Lang, LoginError, Role};

const LOGIN_COOKIE: &str = "ow_login";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    ctx: Layout,
    next: String,
    name: String,
    token: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
pub struct NextParam {
    next: Option<String>,
}

fn secure(st: &AppState) -> bool {
    st.public_url.starts_with("https://")
}

fn login_page(st: &AppState, status: StatusCode, next: String, name: String, errors: FieldErrors) -> Response {
    let token = session::random_token();
    let lang = Lang::En;
    let page = LoginPage {
        ctx: Layout::anonymous(lang, i18n::t(lang, "log_in").into()),
        next,
        name,
        token: token.clone(),
        errors,
    };
    let mut r = render_status(status, &page);
    let cookie = format!(
        "{LOGIN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/login; Max-Age=3600{}",
        if secure(st) { "; Secure" } else { "" }
    );
    r.headers_mut().append(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("an ASCII cookie"));
    r
}

/// `GET /login`.
pub async fn login_form(State(st): State<Arc<AppState>>, Query(q): Query<NextParam>) -> Response {
    login_page(&st, StatusCode::OK, session::safe_next(q.next.as_deref()), String::new(), FieldErrors::default())
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    token: String,
}

fn login_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == LOGIN_COOKIE)
        .map(|(_, v)| v.trim())
}

/// `POST /login`: a session cookie and a 303 to `next`, or the form again with the reason.
pub async fn login(
    State(st): State<Arc<AppState>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Result<Response, PageError> {
    let lang = Lang::En;
    let next = session::safe_next(Some(&f.next));
    let mut errors = FieldErrors::default();
    if !login_cookie(&headers).is_some_and(|c| session::csrf_matches(c, &f.token)) {
        errors.add("form", i18n::t(lang, "login_form_expired"));
        return Ok(login_page(&st, StatusCode::FORBIDDEN, next, f.name, errors));
    }
    if f.name.trim().is_empty() {
        errors.add("name", i18n::t(lang, "required"));
    }
    if f.password.is_empty() {
        errors.add("password", i18n::t(lang, "required"));
    }
    if !errors.is_empty() {
        return Ok(login_page(&st, StatusCode::BAD_REQUEST, next, f.name, errors));
    }
    match session::login(&st.db, &f.name, &f.password, &ip).await {
        Ok((token, user)) => {
            tracing::info!(user = %user.name, "logged in to the dashboard");
            let mut r = Redirect::to(&next).into_response();
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                HeaderValue::from_str(&session::session_cookie(&token, secure(&st))).expect("an ASCII cookie"),
            );
            h.append(
                header::SET_COOKIE,
                HeaderValue::from_str(&format!("{LOGIN_COOKIE}=; Path=/login; Max-Age=0")).expect("an ASCII cookie"),
            );
            Ok(r)
        }
        Err(LoginError::Invalid) => {
            errors.add("password", i18n::t(lang, "login_invalid"));
            Ok(login_page(&st, StatusCode::UNAUTHORIZED, next, f.name, errors))
        }
        Err(LoginError::TooMany) => {
            tracing::warn!(client_ip = %ip, "login refused: too many failures");
            errors.add("form", i18n::t(lang, "login_too_many"));
            Ok(login_page(&st, StatusCode::TOO_MANY_REQUESTS, next, f.name, errors))
        }
        Err(LoginError::Db(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`.
pub async fn logout(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&f.csrf)?;
    session::logout(&st.db, &headers).await?;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&session::clear_cookie(secure(&st))).expect("an ASCII cookie"),
    );
    Ok(r)
}

#[derive(Deserialize)]
pub struct LangForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    back: String,
}

/// `POST /account/lang`: the user's language, kept in the users table.
pub async fn set_lang(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Form(f): Form<LangForm>,
) -> Result<Redirect, PageError> {
    user.check_csrf(&f.csrf)?;
    let lang = Lang::parse(&f.lang)
        .ok_or_else(|| PageError::BadRequest(user.lang, format!("language {:?} is neither en nor ru", f.lang)))?;
    st.db.set_user_lang(user.id, lang.as_str()).await?;
    Ok(Redirect::to(&session::safe_next(Some(&f.back))))
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    ctx: Layout,
    users: Vec<(String, String, String, String)>,
    audit: Vec<(String, String, String, String)>,
}

/// `GET /users` (admins): who may log in, and who read which customer data.
pub async fn users(State(st): State<Arc<AppState>>, user: CurrentUser) -> Result<Response, PageError> {
    user.require(Role::Admin)?;
    let zone = &st.display_zone;
    let users = st.db.users().await?.into_iter().map(|u| (u.name, u.role, u.lang, time(u.created_at, zone))).collect();
    let audit =
        st.db.audit_log(200).await?.into_iter().map(|a| (time(a.at, zone), a.who, a.action, a.object)).collect();
    let ctx = Layout::new(&user, "/users", i18n::t(user.lang, "users").into());
    Ok(render(&UsersPage { ctx, users, audit }))
}
