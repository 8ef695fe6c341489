//! Reading what the Sentry ingest stored (admin token):
//! `GET /api/v1/error-events/{event_id}` (the event's full JSON, with its
//! project, group and received time), `GET /api/v1/error-groups` (title,
//! culprit, count, first and last seen, status; most recently seen first),
//! `GET /api/v1/error-groups/{id}` (one group), `GET
//! /api/v1/error-groups/{id}/events` (newest first), and `PUT
//! /api/v1/error-groups/{id}/status` with `{"status": "resolved"}`
//! (`unresolved`, `resolved` or `ignored`). Envelopes processing gave up on:
//! `GET /api/v1/sentry/envelopes/left-aside`, `POST /api/v1/sentry/envelopes/{id}/retry`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::{ErrorEventRow, ErrorGroup, GroupStatus};
use crate::event::{now_micros, zoned};
use crate::web::AppState;
use crate::web::auth::{Api, Dev};
use crate::web::error::ApiError;

use crate::web::error::{Limit, limit};

fn time(st: &AppState, t: i64) -> String {
    zoned(t, &st.display_zone).strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

fn event_json(st: &AppState, e: ErrorEventRow) -> Value {
    let event: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
    json!({
        "event_id": e.event_id,
        "project_id": e.project_id,
        "group_id": e.group_id,
        "received_at": time(st, e.received_at),
        "event": event,
    })
}

fn group_json(st: &AppState, g: ErrorGroup) -> Value {
    json!({
        "id": g.id,
        "project_id": g.project_id,
        "title": g.title,
        "culprit": g.culprit,
        "count": g.count,
        "first_seen": time(st, g.first_seen),
        "last_seen": time(st, g.last_seen),
        "status": g.status.as_str(),
        "resolved_at": g.resolved_at.map(|t| time(st, t)),
    })
}

fn no_group(id: i64) -> ApiError {
    ApiError::NotFound(format!("there is no error group {id}; GET /api/v1/error-groups lists them"))
}

pub async fn event(
    State(st): State<Arc<AppState>>,
    api: Api<Dev>,
    Path(event_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let found = match crate::sentry::envelope::normalise_event_id(&event_id) {
        Some(id) => st.db.error_event(&id).await?,
        None => None,
    };
    let e = found.ok_or_else(|| {
        ApiError::NotFound(format!("there is no error event {event_id} (yet: events are read a moment after they arrive)"))
    })?;
    st.db.audit_event_reads(&api.caller.who, &[e.event_id.as_str()], now_micros()).await?;
    Ok(Json(event_json(&st, e)))
}

pub async fn groups(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Query(l): Query<Limit>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let all = st.db.error_groups(limit(&l)?).await?;
    Ok(Json(all.into_iter().map(|g| group_json(&st, g)).collect()))
}

pub async fn group_events(
    State(st): State<Arc<AppState>>,
    api: Api<Dev>,
    Path(id): Path<i64>,
    Query(l): Query<Limit>,
) -> Result<Json<Vec<Value>>, ApiError> {
    if st.db.error_group(id).await?.is_none() {
        return Err(no_group(id));
    }
    let all = st.db.group_events(id, limit(&l)?).await?;
    let ids: Vec<&str> = all.iter().map(|e| e.event_id.as_str()).collect();
    st.db.audit_event_reads(&api.caller.who, &ids, now_micros()).await?;
    Ok(Json(all.into_iter().map(|e| event_json(&st, e)).collect()))
}

pub async fn group(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let g = st.db.error_group(id).await?.ok_or_else(|| no_group(id))?;
    Ok(Json(group_json(&st, g)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
}

/// `{"status": "resolved"}`: the next event received after it reopens the
/// group with a regression alert; `ignored`: never alerted on; `unresolved`.
pub async fn set_status(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let expected = r#"send {"status": "unresolved"}, {"status": "resolved"} or {"status": "ignored"}"#;
    let b: StatusBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a status ({e}); {expected}")))?;
    let status = GroupStatus::parse(b.status.trim())
        .ok_or_else(|| ApiError::BadRequest(format!("{:?} is not a group status; {expected}", b.status)))?;
    let g = st.db.set_group_status(id, status, now_micros()).await?.ok_or_else(|| no_group(id))?;
    Ok(Json(group_json(&st, g)))
}

/// `GET /api/v1/sentry/envelopes/left-aside`: stored envelopes processing
/// gave up on after repeated failures (kept, never dropped), with the last error.
pub async fn left_aside(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Query(l): Query<Limit>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let all = st.db.left_aside_envelopes(limit(&l)?).await?;
    Ok(Json(
        all.into_iter()
            .map(|e| {
                json!({
                    "id": e.id,
                    "project_id": e.project_id,
                    "received_at": time(&st, e.received_at),
                    "event_id": e.event_id,
                    "attempts": e.attempts,
                    "last_error": e.last_error,
                })
            })
            .collect(),
    ))
}

/// `POST /api/v1/sentry/envelopes/{id}/retry`: processing tries the envelope again.
pub async fn retry_envelope(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    if !st.db.retry_envelope(id).await? {
        return Err(ApiError::NotFound(format!("there is no unprocessed Sentry envelope {id}")));
    }
    st.sentry.wake();
    Ok(Json(json!({"id": id, "retrying": true})))
}
