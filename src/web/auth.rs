//! Token checks for the API. A token comes as `Authorization: Bearer <token>`
//! or, for clients of the hosted log service, `X-Papertrail-Token: <token>`.
//! Admin tokens (`ORDERWATCH_API_TOKEN` and the one generated at first start)
//! may do everything; ingest tokens may only post logs. Comparison is constant-time.

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::web::error::ApiError;

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
