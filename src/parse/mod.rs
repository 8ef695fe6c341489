//! Parsing, with no I/O: the syslog header (`syslog`), the access-log dialects
//! inside messages (`access`), and `LineParser`, which turns one received line
//! into the `LogEvent` every other part of orderwatch works on.

pub mod access;
pub mod syslog;

use bytes::Bytes;

use crate::event::{FLAG_INVALID_UTF8, FLAG_TRUNCATED, LogEvent};

/// Turns raw lines into `LogEvent`s, with the senders' time zones.
#[derive(Debug, Clone)]
pub struct LineParser {
    default_zone: jiff::tz::TimeZone,
    /// Zones by sender hostname or IP (RFC 3164 carries no zone).
    zones: Vec<(String, jiff::tz::TimeZone)>,
}

impl LineParser {
    pub fn new(default_zone: jiff::tz::TimeZone, zones: Vec<(String, jiff::tz::TimeZone)>) -> Self {
        LineParser { default_zone, zones }
    }

    fn zone_for(&self, key: &str) -> Option<&jiff::tz::TimeZone> {
        self.zones.iter().find(|(k, _)| k == key).map(|(_, z)| z)
    }

    /// `raw` is one frame without its framing; `truncated` says the sender's line was cut.
    pub fn event(&self, raw: Bytes, truncated: bool, received_at: i64, source_ip: &str) -> LogEvent {
        let raw = trim_line_end(raw);
        let received = jiff::Timestamp::from_microsecond(received_at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let zone = self.zone_for(source_ip).unwrap_or(&self.default_zone);
        let mut f = syslog::parse(&raw, received, zone);
        // A zone configured for the hostname the line names wins over the default.
        if let Some(host_zone) = f.hostname.as_deref().and_then(|h| self.zone_for(h))
            && self.zone_for(source_ip).is_none()
        {
            f = syslog::parse(&raw, received, host_zone);
        }
        let mut flags = 0;
        if truncated {
            flags |= FLAG_TRUNCATED;
        }
        if std::str::from_utf8(&raw).is_err() {
            flags |= FLAG_INVALID_UTF8;
        }
        LogEvent {
            id: 0,
            received_at,
            generated_at: f.generated_at.map_or(received_at, |t| t.as_microsecond()),
            source_name: f.hostname.unwrap_or_else(|| source_ip.to_owned()),
            source_ip: source_ip.to_owned(),
            program: f.program,
            severity: f.severity,
            facility: f.facility,
            message: f.message,
            raw,
            flags,
        }
    }
}

/// Drops a trailing LF, CR LF or NUL: framing, not content.
fn trim_line_end(mut raw: Bytes) -> Bytes {
    while let Some(&b) = raw.last() {
        if b == b'\n' || b == b'\r' || b == 0 {
            raw.truncate(raw.len() - 1);
        } else {
            break;
        }
    }
    raw
}
