//! The one application error type: it alone maps failures to HTTP status codes
//! and a JSON body `{"error": "..."}`. 5xx bodies stay generic and the detail
//! goes to orderwatch's own log.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::db::DbError;
use crate::logstore::StoreError;
use crate::query::QueryError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(Cow<'static, str>),
    #[error("{0}")]
    Forbidden(Cow<'static, str>),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 429 with `Retry-After` and Sentry's `X-Sentry-Rate-Limits`.
    #[error("{message}")]
    RateLimited { retry_after: u64, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(m) => ApiError::Conflict(m),
            e => ApiError::Internal(e.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, json!({ "error": self.to_string() })),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, json!({ "error": self.to_string() })),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, json!({ "error": self.to_string() })),
            ApiError::Query(q) => (
                StatusCode::BAD_REQUEST,
                json!({ "error": self.to_string(), "position": q.position }),
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, json!({ "error": self.to_string() })),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, json!({ "error": self.to_string() })),
            ApiError::RateLimited { retry_after, .. } => {
                let mut r =
                    (StatusCode::TOO_MANY_REQUESTS, Json(json!({ "error": self.to_string() }))).into_response();
                let h = r.headers_mut();
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
                if let Ok(v) = HeaderValue::from_str(&format!("{retry_after}::project")) {
                    h.insert("x-sentry-rate-limits", v);
                }
                return r;
            }
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, json!({ "error": self.to_string() })),
            ApiError::Store(StoreError::Write(_)) => {
                tracing::error!(error = %self, "refused a request: the store cannot write");
                (StatusCode::INSUFFICIENT_STORAGE, json!({ "error": self.to_string() }))
            }
            ApiError::Store(StoreError::Closed | StoreError::Busy) => {
                let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": self.to_string() }))).into_response();
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return r;
            }
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": "internal error; see the orderwatch log" }))
            }
        };
        let mut r = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}

/// `?limit=` of the list endpoints: 100 by default, 1 to 1000.
#[derive(serde::Deserialize)]
pub struct Limit {
    limit: Option<i64>,
}

pub fn limit(l: &Limit) -> Result<i64, ApiError> {
    match l.limit {
        None => Ok(100),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!("limit must be from 1 to 1000, not {n}"))),
    }
}
