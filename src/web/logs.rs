//! `POST /api/v1/logs`: bulk log ingest. One log line per body line (a syslog
//! line or a bare message), `Content-Encoding` gzip, deflate, br or zstd accepted, answered only
//! after every line is durable. Query parameters `source_name` and `program`
//! name the sender of bare lines (default: the client's IP, no program).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::event::now_micros;
use crate::ingest::cap_line;
use crate::telemetry::{self, Listener};
use crate::web::AppState;
use crate::web::auth::Scope;
use crate::web::error::ApiError;

/// Most lines one post may carry.
pub const MAX_LINES_PER_POST: usize = 100_000;

/// Most bulk-ingest posts handled at once; more wait their turn. With the
/// per-post line cap, this bounds the memory bulk ingest can hold.
pub const MAX_CONCURRENT_POSTS: usize = 16;
static POSTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_POSTS);

#[derive(Deserialize)]
struct Params {
    source_name: Option<String>,
    program: Option<String>,
}

pub async fn ingest(State(st): State<Arc<AppState>>, req: Request) -> Result<Json<Value>, ApiError> {
    st.tokens.check(req.headers(), Scope::Ingest)?;
    let _turn = POSTS.acquire().await.map_err(|e| ApiError::Internal(e.into()))?;
    let params: Params = axum::extract::Query::try_from_uri(req.uri())
        .map(|q| q.0)
        .map_err(|e| ApiError::BadRequest(format!("bad query string: {e}")))?;
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "127.0.0.1".to_owned(), |c| c.0.ip().to_canonical().to_string());
    let peer = crate::event::Text::from(peer);
    let limit = st.max_body_bytes;
    let headers = req.headers().clone();
    let body = crate::web::body::read(&headers, req.into_body(), limit).await?;

    // Bound the work and memory one request can cause: a small gzip body can
    // expand to millions of short lines.
    let lines = memchr::memchr_iter(b'\n', &body).count() + usize::from(!body.ends_with(b"\n"));
    if lines > MAX_LINES_PER_POST {
        return Err(ApiError::PayloadTooLarge(format!(
            "the body holds {lines} lines, more than {MAX_LINES_PER_POST} in one post; split it into smaller posts"
        )));
    }
    let received_at = now_micros();
    let mut events = Vec::with_capacity(lines);
    let (mut bytes, mut truncated) = (0u64, 0u64);
    for line in body.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        bytes += line.len() as u64;
        let (line, cut) = cap_line(body.slice_ref(line), st.max_line_bytes);
        truncated += u64::from(cut);
        let mut ev = st.parser.event(line, cut, received_at, &peer);
        if ev.program.is_empty()
            && let Some(p) = &params.program
        {
            ev.program = p.as_str().into();
        }
        if ev.source_name == peer
            && let Some(s) = &params.source_name
        {
            ev.source_name = s.as_str().into();
        }
        events.push(ev);
    }
    let count = events.len() as u64;
    telemetry::lines_received(Listener::Http, count, bytes);
    if truncated > 0 {
        telemetry::lines_truncated(Listener::Http, truncated);
    }
    if events.is_empty() {
        return Ok(Json(json!({ "accepted": 0 })));
    }
    let appended = st.store.append(events, Listener::Http).await.map_err(|r| {
        telemetry::lines_rejected(Listener::Http, "store", count);
        r.error
    })?;
    Ok(Json(json!({
        "accepted": count,
        "truncated": truncated,
        "first_id": appended.first_id.to_string(),
        "last_id": appended.last_id.to_string(),
    })))
}

