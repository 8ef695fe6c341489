//! `LogEvent`: the one type every log source (syslog UDP/TCP/TLS, HTTP bulk) is
//! normalised into at the edge, before anything is stored, matched or detected.
//!
//! Times are Unix microseconds (`i64`) so they are cheap to compare, encode and
//! store in any database; `jiff` turns them into zoned times only for display.
//! The raw line is kept byte for byte (minus its framing), so a parser bug can
//! always be fixed and the line read again.

use bytes::Bytes;
use serde::Serialize;

/// Immutable UTF-8 text backed by `Bytes`: a hostname, program or message is
/// usually a slice of the raw line it came in, shared rather than copied.
pub type Text = bytestring::ByteString;

/// The line was longer than the configured cap and was cut.
pub const FLAG_TRUNCATED: u8 = 1;
/// The line was not valid UTF-8; `message` is a lossy reading of `raw`.
pub const FLAG_INVALID_UTF8: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Monotonic, sortable, unique; assigned by the log store when the event is
    /// appended (0 before). It is close to `received_at` in µs, which keeps ids
    /// increasing across restarts and below 2^53 so JavaScript reads them exactly.
    pub id: u64,
    pub received_at: i64,
    /// When the sender says the line was written; `received_at` when it does not say.
    pub generated_at: i64,
    /// The sender's hostname from the syslog header, else its IP address.
    pub source_name: Text,
    pub source_ip: Text,
    pub program: Text,
    pub severity: Option<u8>,
    pub facility: Option<u8>,
    pub message: Text,
    pub raw: Bytes,
    pub flags: u8,
}

impl LogEvent {
    /// A copy that shares no memory with the buffer the line was read into.
    /// Texts are slices of `raw`, and `raw` is a slice of a whole read buffer,
    /// so one event kept for long (an alert's pending line) would otherwise
    /// pin that whole buffer.
    pub fn detached(&self) -> LogEvent {
        let own = |t: &Text| Text::from(t.to_string());
        LogEvent {
            source_name: own(&self.source_name),
            source_ip: own(&self.source_ip),
            program: own(&self.program),
            message: own(&self.message),
            raw: Bytes::copy_from_slice(&self.raw),
            ..*self
        }
    }

    pub fn truncated(&self) -> bool {
        self.flags & FLAG_TRUNCATED != 0
    }
    pub fn invalid_utf8(&self) -> bool {
        self.flags & FLAG_INVALID_UTF8 != 0
    }
}

/// Severity names as the hosted log service shows them.
pub fn severity_name(s: Option<u8>) -> Option<&'static str> {
    const NAMES: [&str; 8] = [
        "Emergency",
        "Alert",
        "Critical",
        "Error",
        "Warning",
        "Notice",
        "Info",
        "Debug",
    ];
    s.and_then(|s| NAMES.get(s as usize).copied())
}

/// Facility names as the hosted log service shows them.
pub fn facility_name(f: Option<u8>) -> Option<&'static str> {
    const NAMES: [&str; 24] = [
        "Kernel", "User", "Mail", "Daemon", "Auth", "Syslog", "Lpr", "News", "Uucp", "Cron",
        "Authpriv", "Ftp", "Ntp", "Audit", "Alert", "Clock", "Local0", "Local1", "Local2",
        "Local3", "Local4", "Local5", "Local6", "Local7",
    ];
    f.and_then(|f| NAMES.get(f as usize).copied())
}

/// A `LogEvent` as the search API and the CLI show it (Papertrail's shape, plus
/// the access-log fields orderwatch reads from the message).
#[derive(Debug, Serialize)]
pub struct EventView<'a> {
    /// A string, as Papertrail sends it, so no client loses precision.
    pub id: String,
    pub received_at: String,
    pub generated_at: String,
    pub display_received_at: String,
    pub source_name: &'a str,
    pub source_ip: &'a str,
    pub program: &'a str,
    pub severity: Option<&'static str>,
    pub facility: Option<&'static str>,
    pub message: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<crate::parse::access::AccessLog>,
}

impl<'a> EventView<'a> {
    pub fn new(ev: &'a LogEvent, zone: &jiff::tz::TimeZone) -> Self {
        let received = zoned(ev.received_at, zone);
        EventView {
            id: ev.id.to_string(),
            received_at: received.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            generated_at: zoned(ev.generated_at, zone)
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
            display_received_at: received.strftime("%b %d %H:%M:%S").to_string(),
            source_name: &ev.source_name,
            source_ip: &ev.source_ip,
            program: &ev.program,
            severity: severity_name(ev.severity),
            facility: facility_name(ev.facility),
            message: &ev.message,
            truncated: ev.truncated(),
            fields: crate::parse::access::parse(&ev.message),
        }
    }
}

/// A Unix-µs time in `zone`; out-of-range values clamp instead of panicking.
pub fn zoned(micros: i64, zone: &jiff::tz::TimeZone) -> jiff::ZonedDateTime {
    let ts = jiff::Timestamp::from_microsecond(micros).unwrap_or(if micros < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    });
    ts.to_zoned_datetime(zone.clone())
}

/// Now, in Unix microseconds.
pub fn now_micros() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// Reads a time given by a person or a client, as Unix µs: epoch seconds
/// (`1529763461`, `1529763461.5`, as the hosted service's API takes them), an
/// RFC 3339 time (`2018-06-23T17:17:41+03:00`), or a span ago (`90s`, `1h`, `2d`).
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return secs.checked_mul(1_000_000).ok_or_else(|| format!("{t:?} is out of range"));
    }
    if let Ok(secs) = t.parse::<f64>()
        && secs.is_finite()
        && secs.abs() < 1e13
    {
        return Ok((secs * 1e6) as i64);
    }
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Ok(ts.as_microsecond());
    }
    if let Ok(span) = humantime::parse_duration(t) {
        return Ok(now - span.as_micros().min(i64::MAX as u128) as i64);
    }
    Err(format!(
        "{t:?} is not a time; write epoch seconds (1529763461), RFC 3339 (2018-06-23T17:17:41Z) or a span ago (1h)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = 1_000_000_000_000_000;
        assert_eq!(parse_time("1529763461", now).unwrap(), 1_529_763_461_000_000);
        assert_eq!(parse_time("1529763461.5", now).unwrap(), 1_529_763_461_500_000);
        assert_eq!(parse_time("2018-06-23T17:17:41+03:00", now).unwrap(), 1_529_763_461_000_000);
        assert_eq!(parse_time("1h", now).unwrap(), now - 3_600_000_000);
        assert!(parse_time("yesterday-ish", now).unwrap_err().contains("epoch seconds"));
    }
}
