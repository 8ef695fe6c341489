//! Token checks for the API. A token comes as `Authorization: Bearer <token>`
//! or, for clients of the hosted log service, `X-Papertrail-Token: <token>`.
//! Admin tokens (`ORDERWATCH_API_TOKEN` and the one generated at first start)
//! may do everything; ingest tokens may only post logs. Comparison is constant-time.
//!
//! The JSON API under `/api/v1` also accepts a dashboard session (the
//! `ow_session` cookie, see `web::session`), with the session's CSRF token in
//! `X-CSRF-Token` for anything but GET and HEAD. A handler states what it
//! needs with the `Api<N>` extractor:
//!
//! | caller | may use |
//! |---|---|
//! | admin token (bearer) | everything |
//! | session of an admin or developer | everything (`Api<Dev>` and `Api<Mgr>`) |
//! | session of a manager | `Api<Mgr>` only: lost orders (list, one), the rescue queue, recording a call |
//! | ingest token | `POST /api/v1/logs` only |
//!
//! Without a token or a session the answer is 401; a session whose role is
//! not enough, or a write without the CSRF header, is 403.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use subtle::ConstantTimeEq;

use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::session::{self, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Admin,
    Ingest,
}

#[derive(Clone, Default)]
pub struct Tokens {
    pub admin: Vec<String>,
    pub ingest: Vec<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens {{ admin: {} , ingest: {} }}", self.admin.len(), self.ingest.len())
    }
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
            return Some(v[7..].trim());
        }
    }
    headers.get("x-papertrail-token").and_then(|v| v.to_str().ok()).map(str::trim)
}

fn any_eq(list: &[String], token: &str) -> bool {
    // Check every entry, so timing does not tell which one (or whether any) matched.
    list.iter().fold(false, |acc, t| acc | bool::from(t.as_bytes().ct_eq(token.as_bytes())))
}

impl Tokens {
    pub fn check(&self, headers: &HeaderMap, scope: Scope) -> Result<(), ApiError> {
        let token = presented(headers).ok_or(ApiError::Unauthorized(
            "this endpoint needs a token: send `Authorization: Bearer <token>`".into(),
        ))?;
        if token.is_empty() {
            return Err(ApiError::Unauthorized("the token is empty".into()));
        }
        let admin = any_eq(&self.admin, token);
        let ingest = any_eq(&self.ingest, token);
        match (scope, admin, ingest) {
            (_, true, _) | (Scope::Ingest, _, true) => Ok(()),
            (Scope::Admin, false, true) => Err(ApiError::Forbidden("an ingest token may only post logs".into())),
            _ => Err(ApiError::Unauthorized("unknown token".into())),
        }
    }
}

/// A new random token: 32 bytes, URL-safe hex.
pub fn generate_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Who called the API: `api-token`, or a user's name (for the audit log).
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: String,
    pub role: Role,
}

/// The role an endpoint needs (see the table at the top).
pub trait Need {
    const ROLE: Role;
}

/// Developers and admins.
pub struct Dev;
impl Need for Dev {
    const ROLE: Role = Role::Developer;
}

/// Managers too: lost orders and the rescue queue.
pub struct Mgr;
impl Need for Mgr {
    const ROLE: Role = Role::Manager;
}

/// An API caller allowed what `N` needs: an admin token, or a session with the role.
pub struct Api<N> {
    pub caller: Caller,
    _need: PhantomData<N>,
}

impl<N: Need> FromRequestParts<Arc<AppState>> for Api<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let caller = authorize(st, &parts.headers, &parts.method, N::ROLE).await?;
        Ok(Api { caller, _need: PhantomData })
    }
}

/// A token when one is presented (so token clients see exactly the errors
/// they did before sessions existed), else the session.
pub async fn authorize(st: &AppState, headers: &HeaderMap, method: &Method, need: Role) -> Result<Caller, ApiError> {
    if presented(headers).is_some() || session::cookie_token(headers).is_none() {
        st.tokens.check(headers, Scope::Admin).map_err(|e| match e {
            ApiError::Unauthorized(m) if presented(headers).is_none() => {
                ApiError::Unauthorized(format!("{m}, or log in to the dashboard at /login").into())
            }
            e => e,
        })?;
        return Ok(Caller { who: "api-token".into(), role: Role::Admin });
    }
    let Some(user) = session::from_headers(&st.db, headers).await? else {
        return Err(ApiError::Unauthorized("the session has ended; log in again at /login".into()));
    };
    if !user.role.allows(need) {
        return Err(ApiError::Forbidden(
            format!("a {} may use only the lost-order and rescue endpoints", user.role.as_str()).into(),
        ));
    }
    if method != Method::GET && method != Method::HEAD {
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
        if !session::csrf_matches(&user.csrf, sent) {
            return Err(ApiError::Forbidden(
                "a change made with the dashboard's session needs its CSRF token in X-CSRF-Token".into(),
            ));
        }
    }
    Ok(Caller { who: user.name, role: user.role })
}
