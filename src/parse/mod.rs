//! Parsing, with no I/O: the syslog header (`syslog`), the access-log dialects
//! inside messages (`access`), and `LineParser`, which turns one received line
//! into the `LogEvent` every other part of orderwatch works on.

pub mod access;
pub mod syslog;

use bytes::Bytes;

use crate::event::{FLAG_INVALID_UTF8, FLAG_TRUNCATED, LogEvent, Text};

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
    /// `source_ip` is shared by all lines of a connection (cloning `Text` copies no bytes).
    pub fn event(&self, raw: Bytes, truncated: bool, received_at: i64, source_ip: &Text) -> LogEvent {
        let raw = trim_line_end(raw);
        let received = jiff::Timestamp::from_microsecond(received_at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let ip_zone = self.zone_for(source_ip);
        let mut f = syslog::parse(&raw, received, ip_zone.unwrap_or(&self.default_zone));
        // A zone configured for the hostname the line names wins over the default.
        if ip_zone.is_none()
            && let Some(host_zone) = f.hostname.as_deref().and_then(|h| self.zone_for(h))
        {
            f = syslog::parse(&raw, received, host_zone);
        }
        let mut flags = 0;
        if truncated {
            flags |= FLAG_TRUNCATED;
        }
        // The header fields and the message are almost always pieces of a valid
        // UTF-8 raw line: share its bytes instead of keeping copies in memory.
        let text = Text::try_from(raw.clone()).ok();
        if text.is_none() {
            flags |= FLAG_INVALID_UTF8;
        }
        let share = |s: String| -> Text {
            if let Some(t) = &text
                && let Some(piece) = find_piece(t, &s)
            {
                return piece;
            }
            Text::from(s)
        };
        LogEvent {
            id: 0,
            received_at,
            generated_at: f.generated_at.map_or(received_at, |t| t.as_microsecond()),
            source_name: f.hostname.map_or_else(|| source_ip.clone(), share),
            source_ip: source_ip.clone(),
            program: share(f.program),
            severity: f.severity,
            facility: f.facility,
            message: share(f.message),
            raw,
            flags,
        }
    }
}

/// `piece` as a slice of `line` (its last occurrence for a suffix, else its first).
fn find_piece(line: &Text, piece: &str) -> Option<Text> {
    if piece.is_empty() {
        return Some(Text::new());
    }
    let start = if line.ends_with(piece) {
        line.len() - piece.len()
    } else {
        memchr::memmem::find(line.as_bytes(), piece.as_bytes())?
    };
    Some(line.slice_ref(&line[start..start + piece.len()]))
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
