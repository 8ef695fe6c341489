//! orderwatch's own telemetry: typed internal events, each emitting its counter
//! (and, where a person needs to know, its log line) from this one place.
//! Counters end in `_total` and carry the listener (`udp`, `tcp`, `tls`, `http`)
//! or, for notifications, the channel.
//! `/metrics` renders them in the Prometheus text format.

use std::sync::OnceLock;

use metrics::counter;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Where lines came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Udp,
    Tcp,
    Tls,
    Http,
}

impl Listener {
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Udp => "udp",
            Listener::Tcp => "tcp",
            Listener::Tls => "tls",
            Listener::Http => "http",
        }
    }
}

/// Installs the process-wide Prometheus recorder once; later calls return the same handle.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness); ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

pub fn lines_received(l: Listener, lines: u64, bytes: u64) {
    counter!("orderwatch_lines_received_total", "listener" => l.as_str()).increment(lines);
    counter!("orderwatch_bytes_received_total", "listener" => l.as_str()).increment(bytes);
}

pub fn lines_truncated(l: Listener, lines: u64) {
    counter!("orderwatch_lines_truncated_total", "listener" => l.as_str()).increment(lines);
}

/// Lines that were received but will not be stored, with why.
pub fn lines_rejected(l: Listener, reason: &'static str, lines: u64) {
    counter!("orderwatch_lines_rejected_total", "listener" => l.as_str(), "reason" => reason)
        .increment(lines);
}

pub fn lines_stored(l: Listener, lines: u64) {
    counter!("orderwatch_lines_stored_total", "listener" => l.as_str()).increment(lines);
}

pub fn connection_closed(l: Listener, reason: &'static str) {
    counter!("orderwatch_connections_closed_total", "listener" => l.as_str(), "reason" => reason)
        .increment(1);
}

pub fn chunk_sealed(events: u64, raw: u64, stored: u64) {
    counter!("orderwatch_chunks_sealed_total").increment(1);
    counter!("orderwatch_chunk_events_sealed_total").increment(events);
    counter!("orderwatch_chunk_bytes_raw_total").increment(raw);
    counter!("orderwatch_chunk_bytes_stored_total").increment(stored);
}

pub fn store_error(kind: &'static str) {
    counter!("orderwatch_store_errors_total", "kind" => kind).increment(1);
}

/// A notification stored in the outbox (counted at insert, in the inserting transaction).
pub fn notification_enqueued(channel: &str) {
    counter!("orderwatch_notifications_enqueued_total", "channel" => channel.to_owned()).increment(1);
}

/// One delivery attempt and its outcome: `sent`, `retry` (transient failure,
/// tried again later) or `failed` (permanent, or failing for too long).
pub fn notification_attempt(channel: &str, outcome: &'static str) {
    counter!("orderwatch_notification_attempts_total", "channel" => channel.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Lines the alert scanner has run through every saved search (compare with
/// `orderwatch_lines_stored_total` to see it keep up).
pub fn alert_lines_scanned(lines: u64) {
    counter!("orderwatch_alert_lines_scanned_total").increment(lines);
}

/// An alert raised a notification: `matches`, `inactive` or `recovered`.
pub fn alert_fired(what: &'static str) {
    counter!("orderwatch_alerts_fired_total", "what" => what).increment(1);
}

/// An alert could not store its notification and cursor (retried in 1 s).
pub fn alert_commit_failed() {
    counter!("orderwatch_alert_commit_errors_total").increment(1);
}

/// Notifications stored for error-group alerts: `first_seen` or `regression`.
pub fn error_group_alert(what: &'static str, notifications: u64) {
    counter!("orderwatch_error_group_alerts_total", "what" => what).increment(notifications);
}

/// Order attempts in the last `orders.health.failure_window` (default 30m), as the health check counts them.
pub fn order_attempts(successes: u64, failures: u64) {
    metrics::gauge!("orderwatch_order_attempts", "outcome" => "success").set(successes as f64);
    metrics::gauge!("orderwatch_order_attempts", "outcome" => "failure").set(failures as f64);
}

/// An order-flow health alert (`no_orders`, `failure_share`) `fired` or `recovered`.
pub fn order_health_alert(alert: &'static str, what: &'static str) {
    counter!("orderwatch_order_health_alerts_total", "alert" => alert, "what" => what).increment(1);
}

/// Makes the alert counters visible at zero.
pub fn register_alerts() {
    alert_lines_scanned(0);
    for what in ["matches", "inactive", "recovered"] {
        counter!("orderwatch_alerts_fired_total", "what" => what).increment(0);
    }
    counter!("orderwatch_alert_commit_errors_total").increment(0);
    for what in ["first_seen", "regression"] {
        error_group_alert(what, 0);
    }
}

/// Makes the notification counters of every channel visible at zero.
pub fn register_notifications() {
    for channel in crate::notify::CHANNELS {
        counter!("orderwatch_notifications_enqueued_total", "channel" => channel).increment(0);
        for outcome in ["sent", "retry", "failed"] {
            counter!("orderwatch_notification_attempts_total", "channel" => channel, "outcome" => outcome).increment(0);
        }
    }
}

/// Makes the per-listener counters visible at zero from the start, so a
/// dashboard sees a listener before its first line (and a rate of 0 is a rate).
pub fn register(listeners: &[Listener]) {
    for &l in listeners {
        lines_received(l, 0, 0);
        lines_truncated(l, 0);
        lines_stored(l, 0);
    }
}
