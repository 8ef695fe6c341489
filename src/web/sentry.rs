//! The Sentry ingest endpoints unmodified SDKs post to:
//! `POST /api/{project_id}/envelope/` and the legacy `POST /api/{project_id}/store/`.
//!
//! A request is read (any of gzip, deflate, br, zstd; capped after
//! decompression), split into its envelope (400 when it is not one), its key
//! checked against the project (401 when there is none, 403 when it is not the
//! project's), and the body stored durably before the SDK is answered
//! `{"id": "<event id>"}`. Processing (grouping, lost orders) reads the stored
//! envelopes afterwards, so a processing bug can never lose a report. Browsers
//! get CORS headers (the routes' `CorsLayer`). The client's address (for
//! `user.ip_address` `{{auto}}`) honours `X-Forwarded-For` only from
//! `http.trusted_proxies`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::sentry::process::StoredEnvelope;
use crate::event::now_micros;
use crate::sentry::auth::{self, AuthError};
use crate::sentry::envelope::{self, Envelope};
use crate::web::AppState;
use crate::web::error::ApiError;

/// The largest envelope, after decompression (Sentry's own limit is 200 MiB
/// for attachments; orderwatch keeps reports, not crash dumps).
pub const MAX_ENVELOPE_BYTES: usize = 20 << 20;

#[derive(Deserialize, Default)]
struct Params {
    sentry_key: Option<String>,
}

#[derive(Clone, Copy)]
enum Endpoint {
    Envelope,
    Store,
}

pub async fn envelope(st: State<Arc<AppState>>, project: Path<String>, req: Request) -> Result<Json<Value>, ApiError> {
    ingest(st, project, req, Endpoint::Envelope).await
}

pub async fn store(st: State<Arc<AppState>>, project: Path<String>, req: Request) -> Result<Json<Value>, ApiError> {
    ingest(st, project, req, Endpoint::Store).await
}

async fn ingest(
    State(st): State<Arc<AppState>>,
    Path(project): Path<String>,
    req: Request,
    endpoint: Endpoint,
) -> Result<Json<Value>, ApiError> {
    let project_id: i64 = project.parse().map_err(|_| {
        ApiError::NotFound(format!("{project:?} is not a project id: post to /api/<project id>/envelope/, as the DSN says"))
    })?;
    let params: Params = axum::extract::Query::try_from_uri(req.uri()).map(|q| q.0).unwrap_or_default();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let headers = req.headers().clone();
    let client_ip = crate::web::client_ip::resolve(peer, &headers, &st.trusted_proxies).to_string();
    let body = crate::web::body::read(&headers, req.into_body(), MAX_ENVELOPE_BYTES).await?;
    let env = match endpoint {
        Endpoint::Envelope => envelope::parse(&body),
        Endpoint::Store => envelope::from_store_body(body.clone()),
    }
    .map_err(|e| ApiError::BadRequest(format!("not a Sentry envelope: {e}")))?;

    let key = auth::request_key(auth_header(&headers), params.sentry_key.as_deref(), env.header.dsn.as_deref(), project_id)
        .map_err(|e| match e {
            AuthError::Missing | AuthError::BadHeader(_) | AuthError::BadDsn(_) => ApiError::Unauthorized(e.to_string().into()),
            AuthError::Disagree(_) | AuthError::WrongProject { .. } => ApiError::Forbidden(e.to_string().into()),
        })?;
    match st.db.project_by_key(&key).await? {
        Some(p) if p.id == project_id => {}
        _ => {
            return Err(ApiError::Forbidden(
                format!("the key is not one of project {project_id}'s; check the DSN (GET /api/v1/projects lists them)").into(),
            ));
        }
    }
    st.sentry_limits.take(project_id, now_micros())?;

    let event_id = event_id(&env);
    // What is kept is always an envelope: a /store/ body becomes one whose
    // event item is that body, byte for byte.
    let kept = match endpoint {
        Endpoint::Envelope => body.to_vec(),
        Endpoint::Store => envelope::serialize(&env),
    };
    st.sentry
        .store(StoredEnvelope {
            project_id,
            received_at: now_micros(),
            event_id: event_id.clone(),
            client_ip: client_ip.to_string(),
            body: kept,
        })
        .await?;
    Ok(Json(match event_id {
        Some(id) => json!({ "id": id }),
        // An envelope of sessions or client reports only: nothing to name.
        None => json!({}),
    }))
}

/// `X-Sentry-Auth`, or the older `Authorization: Sentry …`.
fn auth_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-sentry-auth").and_then(|v| v.to_str().ok()).or_else(|| {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.trim_start().get(..6).is_some_and(|p| p.eq_ignore_ascii_case("sentry")))
    })
}

/// The envelope's event id, else its event item's own `event_id`.
fn event_id(env: &Envelope) -> Option<String> {
    env.header.event_id.clone().or_else(|| {
        let item = env.event()?;
        let v: Value = serde_json::from_slice(&item.payload).ok()?;
        envelope::normalise_event_id(v.get("event_id")?.as_str()?)
    })
}

/// Per-project envelopes a minute, in fixed minute windows (in memory: a
/// restart forgets them, which only ever lets more through).
pub struct RateLimits {
    per_minute: u32,
    windows: std::sync::Mutex<std::collections::HashMap<i64, (i64, u32)>>,
}

impl RateLimits {
    /// `per_minute` 0: no limit.
    pub fn new(per_minute: u32) -> RateLimits {
        RateLimits { per_minute, windows: Default::default() }
    }

    /// Counts one envelope of `project`, or refuses it with 429 until the minute is over.
    pub fn take(&self, project: i64, now_us: i64) -> Result<(), ApiError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let minute = now_us.div_euclid(60_000_000);
        let mut w = self.windows.lock().unwrap();
        let e = w.entry(project).or_insert((minute, 0));
        if e.0 != minute {
            *e = (minute, 0);
        }
        if e.1 >= self.per_minute {
            // Rounded up: an SDK that waits exactly this long finds the new minute.
            let retry_after = (((minute + 1) * 60_000_000 - now_us + 999_999) / 1_000_000).max(1) as u64;
            return Err(ApiError::RateLimited {
                retry_after,
                message: format!(
                    "project {project} may post {} envelopes a minute (sentry.envelopes_per_minute); retry in {retry_after} s",
                    self.per_minute
                ),
            });
        }
        e.1 += 1;
        Ok(())
    }
}

/// CORS for browser SDKs: any origin, the headers SDKs send, and the rate-limit
/// headers they read.
pub fn cors() -> tower_http::cors::CorsLayer {
    use axum::http::{HeaderName, Method};
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            HeaderName::from_static("content-type"),
            HeaderName::from_static("content-encoding"),
            HeaderName::from_static("x-sentry-auth"),
            HeaderName::from_static("authorization"),
            HeaderName::from_static("sentry-trace"),
            HeaderName::from_static("baggage"),
        ])
        .expose_headers([HeaderName::from_static("x-sentry-rate-limits"), HeaderName::from_static("retry-after")])
        .max_age(std::time::Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;

    #[test]
    fn a_project_over_its_minute_gets_429_with_the_headers_sdks_read() {
        let limits = RateLimits::new(2);
        let t = 1_529_763_482_000_000; // 14:18:02 UTC: 58 s left in the minute
        assert!(limits.take(1, t).is_ok());
        assert!(limits.take(1, t + 1).is_ok());
        assert!(limits.take(2, t).is_ok(), "another project has its own");
        let err = limits.take(1, t + 2).unwrap_err();
        assert!(err.to_string().contains("sentry.envelopes_per_minute"), "{err}");
        let r = err.into_response();
        assert_eq!(r.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "58");
        assert_eq!(r.headers()["x-sentry-rate-limits"], "58::project");
        // The next minute starts afresh.
        assert!(limits.take(1, t + 58_000_000).is_ok());
        // 0: no limit.
        let none = RateLimits::new(0);
        assert!((0..10_000).all(|i| none.take(1, t + i).is_ok()));
    }
}
