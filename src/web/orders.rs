//! Lost orders (admin token): `GET /api/v1/lost-orders` (newest first;
//! `cause`, `status`, `min_time`, `max_time`, `before_id`, `limit`),
//! `GET /api/v1/lost-orders/{id}` (with every piece of evidence: raw log
//! lines and the Sentry events) and `POST /api/v1/lost-orders/{id}/status`
//! (`{"status": "test"}` is "it was me").

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::Value;

use crate::db::LostOrderFilter;
use crate::event::{now_micros, parse_time};
use crate::orders::Cause;
use crate::orders::render::lost_order_json;
use crate::web::AppState;
use crate::web::auth::{Api, Dev, Mgr};
use crate::web::session::Role;
use crate::web::error::ApiError;

/// The statuses a lost order moves through.
pub const STATUSES: [&str; 6] = ["new", "test", "investigating", "reported", "rescued", "lost"];

#[derive(Deserialize)]
pub struct ListParams {
    cause: Option<String>,
    status: Option<String>,
    min_time: Option<String>,
    max_time: Option<String>,
    before_id: Option<i64>,
    limit: Option<i64>,
}

pub async fn list(
    State(st): State<Arc<AppState>>,
    api: Api<Mgr>,
    Query(p): Query<ListParams>,
) -> Result<Json<Vec<Value>>, ApiError> {
    if let Some(c) = p.cause.as_deref().filter(|c| Cause::parse(c).is_none()) {
        let all: Vec<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        return Err(ApiError::BadRequest(format!("cause {c:?} is none of {}", all.join(", "))));
    }
    if let Some(s) = p.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::BadRequest(format!("status {s:?} is none of {}", STATUSES.join(", "))));
    }
    let time = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| parse_time(s, now_micros()).map_err(|e| ApiError::BadRequest(format!("{name}: {e}"))))
            .transpose()
    };
    let limit = match p.limit {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(n) => return Err(ApiError::BadRequest(format!("limit must be from 1 to 1000, not {n}"))),
    };
    let f = LostOrderFilter {
        cause: p.cause,
        status: p.status,
        min_time: time("min_time", &p.min_time)?,
        max_time: time("max_time", &p.max_time)?,
        before_id: p.before_id,
        limit,
    };
    let rows = st.db.lost_orders(&f).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    st.db.audit_customer_reads(&api.caller.who, &ids, now_micros()).await?;
    Ok(Json(rows.iter().map(|r| lost_order_json(r, None, &st.display_zone)).collect()))
}

pub async fn get_one(
    State(st): State<Arc<AppState>>,
    api: Api<Mgr>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let (row, pieces) = st.db.lost_order_with_evidence(id).await?.ok_or_else(|| not_found(id))?;
    st.db.audit_customer_reads(&api.caller.who, &[id], now_micros()).await?;
    let mut evidence = Vec::new();
    // Logs (raw lines, error events) are not a manager's.
    let pieces = if api.caller.role.allows(Role::Developer) { pieces } else { Vec::new() };
    for e in pieces {
        let body = match e.piece() {
            Ok(p) if e.raw.is_none() => {
                st.db.error_event(&p.reference).await?.and_then(|ev| serde_json::from_str::<Value>(&ev.body).ok())
            }
            _ => None,
        };
        evidence.push((e, body));
    }
    let mut v = lost_order_json(&row, Some(&evidence), &st.display_zone);
    v["calls"] = crate::web::incidents::calls_json(&st, id).await?;
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    status: String,
}

pub async fn set_status(
    State(st): State<Arc<AppState>>,
    api: Api<Dev>,
    Path(id): Path<i64>,
    Json(c): Json<StatusChange>,
) -> Result<Json<Value>, ApiError> {
    if !STATUSES.contains(&c.status.as_str()) {
        return Err(ApiError::BadRequest(format!("status {:?} is none of {}", c.status, STATUSES.join(", "))));
    }
    if !st.db.set_lost_order_status(id, &c.status, now_micros()).await? {
        return Err(not_found(id));
    }
    let row = st.db.lost_order(id).await?.ok_or_else(|| not_found(id))?;
    // The answer holds the customer: a read like any other.
    st.db.audit_customer_reads(&api.caller.who, &[id], now_micros()).await?;
    Ok(Json(lost_order_json(&row, None, &st.display_zone)))
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("there is no lost order {id}"))
}
