//! Ingest: the listeners through which lines arrive. Each one only frames and
//! hands bytes to `parse::LineParser`, then appends `LogEvent`s to the store;
//! none of them interprets a line itself.
//!
//! - `syslog`: UDP (one message per datagram, RFC 5426), TCP (RFC 6587 framing,
//!   see `framing`) and TLS (RFC 5425, the same framing inside TLS).
//! - HTTP bulk ingest lives in `web::logs`, because it is an HTTP endpoint, and
//!   uses the same `LineParser`.

pub mod framing;
pub mod syslog;

use std::sync::Arc;

use crate::logstore::LogStore;
use crate::parse::LineParser;

/// What every listener needs.
pub struct IngestContext {
    pub store: LogStore,
    pub parser: Arc<LineParser>,
    pub max_line_bytes: usize,
    pub idle_timeout: std::time::Duration,
}

/// Truncates `bytes` to `max`, saying whether it did.
pub fn cap_line(bytes: bytes::Bytes, max: usize) -> (bytes::Bytes, bool) {
    if bytes.len() > max { (bytes.slice(..max), true) } else { (bytes, false) }
}
