//! The notification outbox for people (admin token):
//!
//! - `GET /api/v1/notifications?status=&source=&limit=&before_id=`: newest
//!   first, `limit` 1–1000 (default 100); the next page is
//!   `before_id=<next_before_id>`. Answer `{"notifications": [...], "next_before_id"}`.
//! - `GET /api/v1/notifications/{id}`: one, with up to 1000 of its latest attempts.
//! - `POST /api/v1/notifications/{id}/retry`: makes a pending or failed one due
//!   now, with a fresh backoff and give-up horizon (409 when already sent).
//!
//! A notification shows `id`, `created_at`, `source`, `dedup_key`, `channel`,
//! `target` (secrets masked), `summary` (an email's subject, a chat message's
//! first line), `status` (`pending`, `sent`, `failed`), `attempts` (how many),
//! `next_attempt_at` (while pending), `last_error`, `sent_at`, and
//! `attempt_log`: its latest attempts, oldest first, each `{at, duration_ms,
//! error}` (`error` null for the one that delivered). The message itself is
//! never shown: it holds the secrets.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::{NotificationFilter, NotificationRow, RetryResult};
use crate::event::{now_micros, zoned};
use crate::notify::Message;
use crate::web::AppState;
use crate::web::auth::{Api, Dev};
use crate::web::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;
/// Attempts shown per notification in a list (the count shows how many there were).
const LIST_ATTEMPTS: usize = 20;
const ONE_ATTEMPTS: usize = 1000;

#[derive(Deserialize)]
pub struct ListParams {
    status: Option<String>,
    source: Option<String>,
    limit: Option<String>,
    before_id: Option<String>,
}

fn time(us: i64, zone: &jiff::tz::TimeZone) -> String {
    zoned(us, zone)
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

fn view(n: &NotificationRow, zone: &jiff::tz::TimeZone) -> Value {
    let summary = serde_json::from_str::<Message>(&n.message)
        .map(|m| m.summary())
        .unwrap_or_default();
    let attempt_log: Vec<Value> = n
        .attempt_log
        .iter()
        .map(|a| json!({ "at": time(a.at, zone), "duration_ms": a.duration_ms, "error": a.error }))
        .collect();
    json!({
        "id": n.id,
        "created_at": time(n.created_at, zone),
        "source": n.source,
        "dedup_key": n.dedup_key,
        "channel": n.channel,
        "target": n.target,
        "summary": summary,
        "status": n.status,
        "attempts": n.attempts,
        "next_attempt_at": (n.status == "pending").then(|| time(n.next_attempt_at, zone)),
        "last_error": n.last_error,
        "sent_at": n.sent_at.map(|t| time(t, zone)),
        "attempt_log": attempt_log,
    })
}

fn param(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn id_path(id: &str) -> Result<i64, ApiError> {
    id.trim()
        .parse::<i64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "a notification id is a positive number, not {id:?}"
            ))
        })
}

pub async fn list(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let status = match param(&p.status) {
        None => None,
        Some(s @ ("pending" | "sent" | "failed")) => Some(s.to_owned()),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "status must be pending, sent or failed, not {other:?}"
            )));
        }
    };
    let limit = match param(&p.limit) {
        None => DEFAULT_LIMIT,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "limit must be a number from 1 to {MAX_LIMIT}, not {s:?}"
                )));
            }
        },
    };
    let before_id = match param(&p.before_id) {
        None => None,
        Some(s) => Some(s.parse::<i64>().map_err(|_| {
            ApiError::BadRequest(format!(
                "before_id must be a notification id (digits), not {s:?}"
            ))
        })?),
    };
    let filter = NotificationFilter {
        status,
        source: param(&p.source).map(str::to_owned),
        before_id,
        limit,
    };
    let rows = st
        .notifier
        .db()
        .list_notifications(&filter, LIST_ATTEMPTS)
        .await?;
    let next = if rows.len() as i64 == limit {
        rows.last().map(|r| r.id)
    } else {
        None
    };
    let items: Vec<Value> = rows.iter().map(|n| view(n, &st.display_zone)).collect();
    Ok(Json(
        json!({ "notifications": items, "next_before_id": next }),
    ))
}

pub async fn get_one(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id_path(&id)?;
    match st.notifier.db().notification(id, ONE_ATTEMPTS).await? {
        Some(n) => Ok(Json(view(&n, &st.display_zone))),
        None => Err(ApiError::NotFound(format!("there is no notification {id}"))),
    }
}

pub async fn retry(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id_path(&id)?;
    match st
        .notifier
        .db()
        .retry_notification(id, now_micros())
        .await?
    {
        RetryResult::Due => {
            st.notifier.wake();
            let n = st.notifier.db().notification(id, ONE_ATTEMPTS).await?;
            Ok(Json(
                n.map(|n| view(&n, &st.display_zone)).unwrap_or(Value::Null),
            ))
        }
        RetryResult::AlreadySent => Err(ApiError::Conflict(format!(
            "notification {id} was already sent"
        ))),
        RetryResult::NotFound => Err(ApiError::NotFound(format!("there is no notification {id}"))),
    }
}
