//! `GET /api/v1/events/search.json`: log search in the hosted log service's
//! shape (parameters `q`, `min_id`, `max_id`, `min_time`, `max_time`, `limit`,
//! `tail`; answer `{events, min_id, max_id, reached_beginning,
//! reached_record_limit, reached_time_limit}`), so its clients work unchanged.
//! The semantics are in `logstore::search`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::event::{EventView, now_micros, parse_time};
use crate::logstore::SearchRequest;
use crate::web::AppState;
use crate::web::auth::{Api, Dev};
use crate::web::error::ApiError;

pub const DEFAULT_LIMIT: usize = 1000;
pub const MAX_LIMIT: usize = 10_000;

#[derive(Deserialize, Default)]
pub struct SearchParams {
    q: Option<String>,
    min_id: Option<String>,
    max_id: Option<String>,
    min_time: Option<String>,
    max_time: Option<String>,
    limit: Option<String>,
    tail: Option<String>,
}

fn id_param(name: &str, v: &Option<String>) -> Result<Option<u64>, ApiError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim().parse::<u64>().map_err(|_| ApiError::BadRequest(format!("{name} must be an event id (digits), not {s:?}")))
        })
        .transpose()
}

fn time_param(name: &str, v: &Option<String>) -> Result<Option<i64>, ApiError> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| parse_time(s, now_micros()).map_err(|e| ApiError::BadRequest(format!("{name}: {e}"))))
        .transpose()
}

fn bool_param(name: &str, v: &Option<String>) -> Result<Option<bool>, ApiError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(other) => Err(ApiError::BadRequest(format!("{name} must be true or false, not {other:?}"))),
    }
}

pub async fn search(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Query(p): Query<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    let matcher = crate::query::compile(p.q.as_deref().unwrap_or(""))?;
    let limit = match p.limit.as_deref().filter(|s| !s.is_empty()) {
        None => DEFAULT_LIMIT,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(ApiError::BadRequest(format!("limit must be a number from 1 to {MAX_LIMIT}, not {s:?}"))),
        },
    };
    let min_id = id_param("min_id", &p.min_id)?;
    let max_id = id_param("max_id", &p.max_id)?;
    let min_time = time_param("min_time", &p.min_time)?;
    let max_time = time_param("max_time", &p.max_time)?;
    // As the hosted service: `tail` defaults to true when only a lower id bound is given.
    let tail = bool_param("tail", &p.tail)?.unwrap_or(min_id.is_some() && max_id.is_none() && max_time.is_none());
    let req = SearchRequest {
        min_id,
        max_id,
        min_time,
        max_time,
        limit,
        oldest_first: min_id.is_some() && !tail,
        ..SearchRequest::default()
    };
    let store = st.store.clone();
    let newest = store.newest_id();
    let result = tokio::task::spawn_blocking(move || store.search(&req, &matcher))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("search task failed: {e}")))?;
    let events: Vec<EventView> = result.events.iter().map(|e| EventView::new(e, &st.display_zone)).collect();
    // With nothing examined, a live tail continues from the newest id it could
    // have seen; unless the search ran out of time, when nothing may be skipped.
    let max_id = if result.max_id != 0 {
        result.max_id
    } else if max_id.is_none() && !result.reached_time_limit {
        min_id.unwrap_or(0).max(newest)
    } else {
        min_id.unwrap_or(0)
    };
    Ok(Json(json!({
        "events": events,
        "min_id": result.min_id.to_string(),
        "max_id": max_id.to_string(),
        "reached_beginning": result.reached_beginning,
        "reached_record_limit": result.reached_record_limit,
        "reached_time_limit": result.reached_time_limit,
    })))
}
