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
        // A zone configured for the sender's IP wins; else one configured for the
        // hostname the line names (known only after a first reading); else the default.
        let ip_zone = self.zone_for(source_ip);
        let host_zone = |hostname: Option<&str>| match ip_zone {
            Some(_) => None,
            None => hostname.and_then(|h| self.zone_for(h)),
        };
        let zone = ip_zone.unwrap_or(&self.default_zone);
        // The usual case, a UTF-8 line: its fields are slices of it, not copies.
        let (f, invalid_utf8) = match Text::try_from(raw.clone()) {
            Ok(line) => {
                let f = syslog::parse_shared(&line, received, zone);
                match host_zone(f.hostname.as_deref()) {
                    Some(z) => (syslog::parse_shared(&line, received, z), false),
                    None => (f, false),
                }
            }
            Err(_) => {
                let mut f = syslog::parse(&raw, received, zone);
                if let Some(z) = host_zone(f.hostname.as_deref()) {
                    f = syslog::parse(&raw, received, z);
                }
                let shared = syslog::SharedFields {
                    generated_at: f.generated_at,
                    hostname: f.hostname.map(Text::from),
                    program: Text::from(f.program),
                    severity: f.severity,
                    facility: f.facility,
                    message: Text::from(f.message),
                };
                (shared, true)
            }
        };
        let mut flags = 0;
        if truncated {
            flags |= FLAG_TRUNCATED;
        }
        if invalid_utf8 {
            flags |= FLAG_INVALID_UTF8;
        }
        LogEvent {
            id: 0,
            received_at,
            generated_at: f.generated_at.map_or(received_at, |t| t.as_microsecond()),
            source_name: f.hostname.unwrap_or_else(|| source_ip.clone()),
            source_ip: source_ip.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn agree(line: &str) {
        let at = jiff::Timestamp::from_second(1_529_763_461).unwrap();
        let zone = jiff::tz::TimeZone::get("Europe/Volgograd").unwrap();
        let owned = syslog::parse(line.as_bytes(), at, &zone);
        let shared = syslog::parse_shared(&Text::from(line), at, &zone);
        assert_eq!(owned.generated_at, shared.generated_at);
        assert_eq!(owned.hostname.as_deref(), shared.hostname.as_deref());
        assert_eq!(owned.program, &*shared.program);
        assert_eq!((owned.severity, owned.facility), (shared.severity, shared.facility));
        assert_eq!(owned.message, &*shared.message);
    }

    #[test]
    fn shared_reading_equals_owned_reading_on_the_fixture() {
        for line in include_str!("../../testdata/uwsgi-syslog.log").lines() {
            agree(line);
        }
    }

    proptest! {
        #[test]
        fn shared_reading_equals_owned_reading(line in "(<[0-9]{1,3}>)?(1 )?[ -~]{0,80}") {
            agree(&line);
        }
    }

    #[test]
    fn invalid_utf8_is_flagged_and_read_lossily() {
        let p = LineParser::new(jiff::tz::TimeZone::UTC, vec![]);
        let ev = p.event(Bytes::from_static(b"<13>Jun 23 17:17:41 host prog: caf\xe9\n"), false, 0, &Text::from("1.2.3.4"));
        assert!(ev.invalid_utf8());
        assert_eq!((&*ev.source_name, &*ev.program, &*ev.message), ("host", "prog", "caf\u{fffd}"));
        assert_eq!(&ev.raw[..], b"<13>Jun 23 17:17:41 host prog: caf\xe9");
    }

    #[test]
    fn zone_by_hostname_applies_when_the_ip_has_none() {
        let moscow = jiff::tz::TimeZone::get("Europe/Moscow").unwrap();
        let p = LineParser::new(jiff::tz::TimeZone::UTC, vec![("web-1".into(), moscow)]);
        let received = jiff::Timestamp::from_second(1_529_763_461).unwrap().as_microsecond();
        let ev = p.event(Bytes::from_static(b"<13>Jun 23 17:17:41 web-1 app: x"), false, received, &Text::from("10.0.0.1"));
        // 17:17:41 in Moscow (UTC+3) is 14:17:41 UTC.
        assert_eq!(ev.generated_at, 1_529_763_461_000_000);
        let other = p.event(Bytes::from_static(b"<13>Jun 23 17:17:41 web-2 app: x"), false, received, &Text::from("10.0.0.2"));
        assert_eq!(other.generated_at, 1_529_763_461_000_000 + 3 * 3_600_000_000);
    }
}
