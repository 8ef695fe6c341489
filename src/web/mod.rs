//! The HTTP side: the JSON API, the dashboard's pages (`pages`), health and
//! metrics. One module per resource, each with its handlers; `app()` assembles
//! the routes with their limits and is what tests drive in-process. Only this
//! module knows request and response shapes.

pub mod assets;
pub mod auth;
pub mod body;
pub mod checkout;
pub mod client_ip;
pub mod errors;
pub mod error;
pub mod i18n;
pub mod incidents;
pub mod logs;
pub mod notifications;
pub mod order_flow;
pub mod orders;
pub mod pages;
pub mod projects;
pub mod search;
pub mod searches;
pub mod sentry;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::alerts::engine::AlertsHandle;
use crate::db::Db;

use crate::logstore::LogStore;
use crate::notify::Notifier;
use crate::parse::LineParser;

/// Everything the handlers share.
pub struct AppState {
    pub store: LogStore,
    pub db: Db,
    pub alerts: AlertsHandle,
    pub parser: Arc<LineParser>,
    pub tokens: auth::Tokens,
    pub max_line_bytes: usize,
    pub max_body_bytes: usize,
    /// Per-project Sentry envelope limits (`sentry.envelopes_per_minute`).
    pub sentry_limits: sentry::RateLimits,
    /// Proxies whose `X-Forwarded-For` is believed (`http.trusted_proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The address people reach orderwatch at (links, DSNs).
    pub public_url: String,
    /// The zone times are shown in.
    pub display_zone: jiff::tz::TimeZone,
    /// The UDP syslog port, for the kernel's drop counter on /metrics.
    pub udp_port: Option<u16>,
    pub prometheus: metrics_exporter_prometheus::PrometheusHandle,
    /// Turns stored Sentry envelopes into error events; woken after each is stored.
    pub sentry: crate::sentry::process::Processor,
    /// The lost-order detector's settings (endpoints, report recipients).
    pub orders: Arc<crate::orders::OrdersSettings>,
    /// The notification outbox (the API lists and retries; others enqueue).
    pub notifier: Notifier,
    /// Ids of lost orders the detector created or changed (the live list listens).
    pub lost_order_events: tokio::sync::broadcast::Sender<i64>,
    /// Cancelled at shutdown: long-lived answers (the live list's event stream) end with it.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// The effective configuration, with the addresses actually bound (the settings page shows it, secrets masked).
    pub settings: Arc<crate::config::Settings>,
}

pub fn app(state: Arc<AppState>) -> Router {
    let compressed_limit = state.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/static/orderwatch-checkout.js", get(checkout::script))
        .route("/static/{*path}", get(assets::get))
        .route(
            "/api/v1/logs",
            // Bound the body on the wire too, before decompression (the handler bounds it after).
            post(logs::ingest).layer(tower_http::limit::RequestBodyLimitLayer::new(compressed_limit)),
        )
        .route("/api/v1/events/search.json", get(search::search))
        .route("/api/v1/notifications", get(notifications::list))
        .route("/api/v1/notifications/{id}", get(notifications::get_one))
        .route("/api/v1/notifications/{id}/retry", post(notifications::retry))
        .route("/api/v1/projects", get(projects::list))
        .route("/api/v1/error-events/{event_id}", get(errors::event))
        .route("/api/v1/error-groups", get(errors::groups))
        .route("/api/v1/error-groups/{id}/events", get(errors::group_events))
        .route("/api/v1/error-groups/{id}", get(errors::group))
        .route("/api/v1/error-groups/{id}/status", axum::routing::put(errors::set_status))
        .route("/api/v1/sentry/envelopes/left-aside", get(errors::left_aside))
        .route("/api/v1/sentry/envelopes/{id}/retry", post(errors::retry_envelope))
        .route("/api/v1/lost-orders", get(orders::list))
        .route("/api/v1/lost-orders/{id}", get(orders::get_one))
        .route("/api/v1/lost-orders/{id}/status", post(orders::set_status))
        .route("/api/v1/lost-orders/{id}/calls", post(incidents::add_call))
        .route("/api/v1/rescue-queue", get(incidents::rescue_queue))
        .route("/api/v1/incidents", get(incidents::list).post(incidents::create))
        .route("/api/v1/incidents/suggestions", get(incidents::suggestions))
        .route("/api/v1/incidents/{id}", get(incidents::get_one).put(incidents::update))
        .route("/api/v1/incidents/{id}/lost-orders", post(incidents::change_orders))
        .route("/api/v1/incidents/{id}/report/preview", post(incidents::preview))
        .route("/api/v1/incidents/{id}/report/send", post(incidents::send))
        .route("/api/v1/order-flow", get(order_flow::buckets))
        .merge(
            // Sentry SDKs: bodies bounded on the wire too, CORS for browsers.
            Router::new()
                .route("/api/{project_id}/envelope/", post(sentry::envelope))
                .route("/api/{project_id}/store/", post(sentry::store))
                .layer(tower_http::limit::RequestBodyLimitLayer::new(sentry::MAX_ENVELOPE_BYTES))
                .layer(sentry::cors()),
        )
        .route("/api/v1/searches", get(searches::list).post(searches::create))
        .route("/api/v1/searches/{id}", get(searches::get).put(searches::update).delete(searches::delete))
        // Forms are small; nothing a page takes needs more.
        .merge(pages::router().layer(axum::extract::DefaultBodyLimit::max(64 * 1024)))
        .fallback(pages::fallback)
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(st): State<Arc<AppState>>) -> impl IntoResponse {
    let mut text = st.prometheus.render();
    let (chunks, events, raw, stored) = st.store.chunk_totals();
    text.push_str(&format!(
        "# TYPE orderwatch_store_chunks gauge\norderwatch_store_chunks {chunks}\n\
         # TYPE orderwatch_store_chunk_events gauge\norderwatch_store_chunk_events {events}\n\
         # TYPE orderwatch_store_chunk_raw_bytes gauge\norderwatch_store_chunk_raw_bytes {raw}\n\
         # TYPE orderwatch_store_chunk_stored_bytes gauge\norderwatch_store_chunk_stored_bytes {stored}\n\
         # TYPE orderwatch_store_head_events gauge\norderwatch_store_head_events {}\n",
        st.store.head_len()
    ));
    // The outbox by status: pending is the queue, failed needs a person.
    match st.notifier.db().notification_counts().await {
        Ok(counts) => {
            for status in ["pending", "failed"] {
                text.push_str(&format!("# TYPE orderwatch_notifications_{status} gauge\n"));
                for channel in crate::notify::CHANNELS {
                    let n: i64 = counts.iter().filter(|c| c.0 == status && c.1 == channel).map(|c| c.2).sum();
                    text.push_str(&format!("orderwatch_notifications_{status}{{channel=\"{channel}\"}} {n}\n"));
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot count notifications for /metrics"),
    }
    if let Some(drops) = st.udp_port.and_then(crate::ingest::syslog::kernel_udp_drops) {
        text.push_str(&format!(
            "# HELP orderwatch_udp_kernel_drops_total Datagrams the kernel dropped because the receive buffer was full.\n\
             # TYPE orderwatch_udp_kernel_drops_total counter\norderwatch_udp_kernel_drops_total {drops}\n"
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
