//! Order flow (admin token): `GET /api/v1/order-flow?interval=1h&from=&to=`,
//! the order attempts that succeeded and failed per bucket, counted as the
//! health alerts count them (`orders::health`: one source per endpoint, so
//! the nginx and uWSGI lines of one request count once). Buckets are aligned
//! to local midnight in the display zone; `from` defaults to 24 buckets
//! before `to`, `to` to now; times as `search` takes them (epoch seconds,
//! RFC 3339, or a span ago such as `6h`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::event::{now_micros, parse_time};
use crate::orders::health::{self, flow};
use crate::orders::render::time;
use crate::web::AppState;
use crate::web::auth::{Api, Dev};
use crate::web::error::ApiError;

#[derive(Deserialize)]
pub struct FlowParams {
    interval: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub async fn buckets(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Query(p): Query<FlowParams>,
) -> Result<Json<Value>, ApiError> {
    let interval = health::parse_interval(p.interval.as_deref().unwrap_or("1h")).map_err(ApiError::BadRequest)?;
    let now = now_micros();
    let time_param = |name: &str, v: &Option<String>| {
        v.as_deref().map(|s| parse_time(s, now).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))).transpose()
    };
    let to = time_param("to", &p.to)?.unwrap_or(now);
    let from = time_param("from", &p.from)?.unwrap_or(to - 24 * interval.as_micros() as i64);
    if from >= to {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    let zone = &st.display_zone;
    let spans = health::buckets(from, to, interval, zone).map_err(ApiError::BadRequest)?;
    let mut out = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        let c = flow(&st.db.order_flow_counts(start, end).await?);
        out.push(json!({
            "start": time(start, zone),
            "end": time(end, zone),
            "successes": c.successes,
            "failures": c.failures,
            "failure_share": c.share(),
        }));
    }
    Ok(Json(json!({
        "interval_seconds": interval.as_secs(),
        "time_zone": zone.iana_name().unwrap_or("the server's zone"),
        "from": time(from, zone),
        "to": time(to, zone),
        "buckets": out,
    })))
}
