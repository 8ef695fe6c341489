//! Reads the syslog header of one received frame into [`SyslogFields`]. This
//! module owns the split between header and message and the meaning of the
//! header's timestamp; framing belongs to the listeners, and the message's own
//! dialects (uWSGI, nginx) to the access-log parsers. Two wire formats arrive.
//! RFC 3164, the BSD format that uWSGI, nginx and `logger --rfc3164` send, is
//! `<PRI>MMM DD HH:MM:SS HOSTNAME TAG[PID]: MSG`, for example
//! `<30>Jun 23 17:17:41 website-backend website-backend: [pid: 20591|app: 0|...] GET ...`;
//! its HOSTNAME is often left out (uWSGI's rsyslog logger sends
//! `<29>Jun 23 17:17:41 website-backend: ...`), and rsyslog may put an RFC 3339
//! timestamp where the BSD one belongs. RFC 5424, which `logger --rfc5424`
//! sends, is `<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG`
//! with `-` for an absent field, for example
//! `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3"] An application event log entry...`.
//! An RFC 5424 timestamp carries its own offset. A BSD timestamp has neither
//! year nor zone: it is wall-clock time in the time zone configured for the
//! source, under that zone's rules on that date (a time skipped or repeated by
//! a DST change gets jiff's "compatible" reading), in whichever of the years
//! before, of and after the reception (counted in that zone) puts it closest to
//! the moment the line was received. A line without a valid `<PRI>` is not
//! syslog, and all of it is the message.
//!
//! `syslog_loose` (the parser Vector uses) reads RFC 5424 headers and RFC 3339
//! timestamps; the BSD header is read here, for the reasons given at [`parse`].

use std::borrow::Cow;

use crate::event::Text;

use chrono::{DateTime, FixedOffset};
use jiff::civil;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use syslog_loose::Variant;

/// What the syslog header says. Fields the line doesn't carry are None/empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogFields {
    /// None when the line has no (valid) timestamp.
    pub generated_at: Option<jiff::Timestamp>,
    /// The HOSTNAME field, None when absent or "-".
    pub hostname: Option<String>,
    /// APP-NAME / TAG without "[pid]"; "" when absent or "-".
    pub program: String,
    /// 0..=7 from PRI.
    pub severity: Option<u8>,
    /// 0..=23 from PRI.
    pub facility: Option<u8>,
    /// The MSG part (lossy UTF-8); the whole line when it is not syslog.
    pub message: String,
}

/// `raw` is one frame/datagram (may be invalid UTF-8: read it lossily; may carry a trailing
/// "\n" or "\r\n" or "\0"). `received_at` is when the server got it; `zone` is the sender's time
/// zone configured for this source (used only for RFC 3164, which has neither year nor zone).
///
/// What `syslog_loose` 0.23 does with these lines, and what is done here
/// instead (each case has a test below):
///
/// - It reads a line without `<PRI>`, or with a PRI above 191, as syslog. The
///   PRI is checked here first, and such a line stays whole.
/// - For RFC 3164 it takes the year from a callback and the zone as a chrono
///   zone (the local one by default), fails the whole line when the year makes
///   the date impossible (`Feb 29`), takes a lone `WORD:` after the timestamp
///   for the HOSTNAME (it is uWSGI's TAG), drops the HOSTNAME when the TAG is
///   `-`, strips a leading `-` and anything shaped like structured data from
///   the message, and trims surrounding whitespace. Working around all that
///   left nothing of its RFC 3164 reading but the BSD timestamp, which cost
///   more than half the parse time (it allocates to lowercase the month); so
///   the BSD header is read here, by the same grammar, and syslog_loose reads
///   only an RFC 3339 timestamp found in an RFC 3164 header.
/// - In RFC 5424 it eats every blank before MSG, not just the one SP of the
///   grammar, trims the line's trailing whitespace, and keeps the BOM that
///   marks a UTF-8 MSG. The message is cut again from the text here, and the
///   BOM removed (RFC 5424 section 6.4). It refuses a field that is a lone
///   `:`; such a line keeps PRI plus message.
/// - A line with a valid PRI whose header cannot be read is kept as PRI plus
///   message, as a relay does under RFC 3164 section 4.3.2.
pub fn parse(raw: &[u8], received_at: Timestamp, zone: &TimeZone) -> SyslogFields {
    let raw = strip_frame_end(raw);
    // Valid UTF-8 is the rule; `from_utf8` checks it several times faster
    // than `from_utf8_lossy`, which is kept for the frames that need it.
    let text: Cow<'_, str> = match std::str::from_utf8(raw) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(raw),
    };
    let r = read(&text, received_at, zone);
    SyslogFields {
        generated_at: r.generated_at,
        hostname: r.hostname.map(str::to_owned),
        program: r.program.to_owned(),
        severity: r.severity,
        facility: r.facility,
        message: r.message.to_owned(),
    }
}

/// `parse` for a line already known to be UTF-8 (and without its frame
/// terminators), giving its fields as slices of it: nothing is copied, which is
/// what the ingest path wants for every line.
pub fn parse_shared(line: &Text, received_at: Timestamp, zone: &TimeZone) -> SharedFields {
    let r = read(line, received_at, zone);
    SharedFields {
        generated_at: r.generated_at,
        hostname: r.hostname.map(|h| line.slice_ref(h)),
        program: line.slice_ref(r.program),
        severity: r.severity,
        facility: r.facility,
        message: line.slice_ref(r.message),
    }
}

/// `SyslogFields` as slices of the line (see `parse_shared`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFields {
    pub generated_at: Option<jiff::Timestamp>,
    pub hostname: Option<Text>,
    pub program: Text,
    pub severity: Option<u8>,
    pub facility: Option<u8>,
    pub message: Text,
}

/// The reading itself, borrowing from the line.
struct Read<'a> {
    generated_at: Option<Timestamp>,
    hostname: Option<&'a str>,
    program: &'a str,
    severity: Option<u8>,
    facility: Option<u8>,
    message: &'a str,
}

fn read<'a>(line: &'a str, received_at: Timestamp, zone: &TimeZone) -> Read<'a> {
    let Some((pri, after_pri)) = read_pri(line.as_bytes()) else {
        // A line that is not syslog: all of it is the message.
        return Read { generated_at: None, hostname: None, program: "", severity: None, facility: None, message: line };
    };
    let severity = Some(pri & 0x7);
    let facility = Some(pri >> 3);

    // An RFC 5424 header puts a VERSION (digits, then a blank) right after
    // the PRI; nothing in an RFC 3164 header can start that way.
    let fields = if starts_with_version(&line.as_bytes()[after_pri..]) {
        rfc5424(line)
    } else {
        rfc3164(line, after_pri, received_at, zone)
    };

    match fields {
        Some(header) => Read {
            generated_at: header.generated_at,
            hostname: header.hostname,
            program: header.program,
            severity,
            facility,
            message: &line[header.message_start..],
        },
        None => Read { generated_at: None, hostname: None, program: "", severity, facility, message: &line[after_pri..] },
    }
}

/// The header as read from one line, borrowing from it.
struct Header<'a> {
    generated_at: Option<Timestamp>,
    hostname: Option<&'a str>,
    program: &'a str,
    /// Byte offset in the line where the message begins.
    message_start: usize,
}

/// Removes the frame terminators a sender may leave on a datagram or an
/// LF-framed TCP line. Only these bytes go: other trailing whitespace belongs
/// to the message. They are ASCII, so removing them before the lossy UTF-8
/// conversion gives the same text as removing them after it.
fn strip_frame_end(raw: &[u8]) -> &[u8] {
    let end = raw
        .iter()
        .rposition(|&b| !matches!(b, b'\n' | b'\r' | b'\0'))
        .map_or(0, |i| i + 1);
    &raw[..end]
}

/// Reads `<PRIVAL>` at the start of the line: one to three digits, at most 191
/// (facility 23, severity 7), as RFC 5424 section 6.2.1 allows. Leading zeros
/// are accepted because refusing them would only turn a readable header into
/// a bare message. Returns the value and the offset just after `>`.
fn read_pri(bytes: &[u8]) -> Option<(u8, usize)> {
    if bytes.first() != Some(&b'<') {
        return None;
    }
    let digits = bytes[1..]
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=3).contains(&digits) || bytes.get(1 + digits) != Some(&b'>') {
        return None;
    }
    let value = bytes[1..=digits]
        .iter()
        .fold(0u16, |acc, &b| acc * 10 + u16::from(b - b'0'));
    let value = u8::try_from(value).ok().filter(|&v| v <= 191)?;
    Some((value, digits + 2))
}

/// Whether the text after the PRI starts with an RFC 5424 VERSION: digits
/// followed by a blank (syslog_loose accepts a tab there too).
fn starts_with_version(after_pri: &[u8]) -> bool {
    let digits = after_pri.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && matches!(after_pri.get(digits), Some(b' ' | b'\t'))
}

/// Reads an RFC 5424 line with syslog_loose and re-cuts the message.
fn rfc5424(line: &str) -> Option<Header<'_>> {
    // RFC 5424 timestamps carry their offset, so the year callback and the
    // default zone are never used.
    let msg =
        syslog_loose::parse_message_with_year_exact_tz(line, |_| 0, Some(utc()), Variant::RFC5424)
            .ok()?;
    let bytes = line.as_bytes();
    // syslog_loose consumed every blank between STRUCTURED-DATA and MSG; step
    // back over them to the end of STRUCTURED-DATA and skip the single SP the
    // grammar puts there, so spaces that begin the message are kept.
    let mut start = offset_in(line, msg.msg)?;
    while start > 0 && matches!(bytes[start - 1], b' ' | b'\t') {
        start -= 1;
    }
    if bytes.get(start) == Some(&b' ') {
        start += 1;
    }
    // RFC 5424 section 6.4: a UTF-8 MSG starts with a BOM, which marks the
    // encoding and is not part of the text.
    if line[start..].starts_with('\u{FEFF}') {
        start += '\u{FEFF}'.len_utf8();
    }
    Some(Header {
        generated_at: msg.timestamp.as_ref().and_then(instant_from_chrono),
        hostname: msg.hostname,
        program: msg.appname.unwrap_or(""),
        message_start: start,
    })
}

/// Where `part`, a slice syslog_loose cut from `line`, begins in `line`.
/// syslog_loose only ever returns slices of its input; should that change,
/// the line is treated as unreadable rather than sliced at a wrong place.
fn offset_in(line: &str, part: &str) -> Option<usize> {
    let offset = (part.as_ptr() as usize).checked_sub(line.as_ptr() as usize)?;
    (offset + part.len() <= line.len() && line.is_char_boundary(offset)).then_some(offset)
}

/// Reads an RFC 3164 line (see [`parse`] for why not with syslog_loose).
fn rfc3164<'a>(
    line: &'a str,
    after_pri: usize,
    received_at: Timestamp,
    zone: &TimeZone,
) -> Option<Header<'a>> {
    let bytes = line.as_bytes();
    let (ts_end, stamp) = rfc3164_timestamp(bytes, after_pri)?;

    // An impossible date (Feb 30, 25:00) makes the header unreadable, and
    // the line is then kept as PRI plus message.
    let generated_at = match stamp {
        Stamp::Bsd(time) => match time.year {
            None => resolve_yearless(&time, received_at, zone)?,
            Some(year) => {
                let dt = time.in_year(i16::try_from(year).ok()?)?;
                zone.to_ambiguous_timestamp(dt).compatible().ok()?
            }
        },
        Stamp::Rfc3339 => {
            // syslog_loose's RFC 3339 reader needs a space after the
            // timestamp, and the line is trimmed before that reader sees it,
            // so it gets the line up to the end of the following word.
            let mut cut = line.len();
            if bytes.get(ts_end) == Some(&b' ') {
                let word_end = token_end(bytes, ts_end + 1, false);
                if word_end > ts_end + 1 {
                    cut = word_end;
                }
            }
            let msg = syslog_loose::parse_message_with_year_exact_tz(
                &line[..cut],
                |_| 0,
                Some(utc()),
                Variant::RFC3164,
            )
            .ok()?;
            instant_from_chrono(msg.timestamp.as_ref()?)?
        }
    };

    let header = |hostname, program, message_start| Header {
        generated_at: Some(generated_at),
        hostname,
        program,
        message_start,
    };

    // Without a SP after the timestamp there is no room for HOSTNAME or TAG.
    if bytes.get(ts_end) != Some(&b' ') {
        return Some(header(None, "", ts_end));
    }
    let first_start = ts_end + 1;
    let first_end = token_end(bytes, first_start, false);
    let first = &line[first_start..first_end];
    if first.is_empty() {
        return Some(header(None, "", first_start));
    }
    // A first word that ends with a colon is a TAG, not a HOSTNAME: this is
    // how uWSGI's rsyslog logger and many embedded senders write the header
    // (`<29>Jun 23 17:17:41 website-backend: ...`). A lone ":" is a header
    // with neither field.
    if let Some(tag) = first.strip_suffix(':') {
        return Some(header(None, program_of(tag), skip_sp(bytes, first_end)));
    }
    let hostname = Some(first).filter(|h| *h != "-");

    if bytes.get(first_end) != Some(&b' ') {
        return Some(header(hostname, "", first_end));
    }
    let tag_start = first_end + 1;
    let tag_end = token_end(bytes, tag_start, true);
    if tag_start == tag_end && bytes.get(tag_start) == Some(&b' ') {
        // Two spaces after the HOSTNAME: the TAG is empty and the second
        // space is the one that ends it.
        return Some(header(hostname, "", tag_start + 1));
    }
    let mut message_start = tag_end;
    if bytes.get(message_start) == Some(&b':') {
        message_start += 1;
    }
    let program = program_of(&line[tag_start..tag_end]);
    Some(header(hostname, program, skip_sp(bytes, message_start)))
}

/// The default zone syslog_loose asks for. It only reads timestamps that
/// carry their own offset here, so the zone is never applied; passing one
/// keeps it from looking up the host's local zone should that change.
fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).expect("zero is a valid offset")
}

/// The end of a header word: the next ASCII whitespace, or for a TAG also the
/// next colon.
fn token_end(bytes: &[u8], start: usize, stop_at_colon: bool) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| b.is_ascii_whitespace() || (stop_at_colon && b == b':'))
        .map_or(bytes.len(), |i| start + i)
}

/// Skips the one SP that separates the header from the message.
fn skip_sp(bytes: &[u8], at: usize) -> usize {
    if bytes.get(at) == Some(&b' ') {
        at + 1
    } else {
        at
    }
}

/// The program name of an RFC 3164 TAG: `name[pid]` loses its `[pid]` (as
/// syslog_loose does, the pid must not be empty), and `-` means no program.
fn program_of(tag: &str) -> &str {
    let name = match (tag.find('['), tag.strip_suffix(']')) {
        (Some(open), Some(inner)) if open + 1 < inner.len() && !inner[open + 1..].contains(']') => {
            &tag[..open]
        }
        _ => tag,
    };
    if name == "-" { "" } else { name }
}

/// The two shapes of timestamp an RFC 3164 header can carry.
#[derive(Clone, Copy)]
enum Stamp {
    /// `MMM DD HH:MM:SS` or `MMM DD YYYY HH:MM:SS`: wall-clock time.
    Bsd(BsdTime),
    /// RFC 3339, as rsyslog may send it: carries its own offset.
    Rfc3339,
}

/// The fields of a BSD timestamp as sent, not yet checked to make a date.
#[derive(Clone, Copy)]
struct BsdTime {
    year: Option<u32>,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl BsdTime {
    /// This wall-clock time in `year`; None when the fields make no date in
    /// that year (Feb 29 outside leap years) or in any (Feb 30, 24:00).
    fn in_year(&self, year: i16) -> Option<civil::DateTime> {
        civil::DateTime::new(
            year,
            i8::try_from(self.month).ok()?,
            i8::try_from(self.day).ok()?,
            i8::try_from(self.hour).ok()?,
            i8::try_from(self.minute).ok()?,
            i8::try_from(self.second).ok()?,
            0,
        )
        .ok()
    }
}

/// Reads the RFC 3164 timestamp that follows the PRI and returns it with the
/// offset just after it. The forms are syslog_loose's: `MMM DD HH:MM:SS` and
/// `MMM DD YYYY HH:MM:SS` (either optionally followed by a colon, which some
/// Cisco devices send; the month in any letter case; blanks may repeat, as in
/// `Jun  3`), and RFC 3339 running to the next space.
fn rfc3164_timestamp(bytes: &[u8], after_pri: usize) -> Option<(usize, Stamp)> {
    let blanks = |i: usize| {
        i + bytes[i..]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count()
    };
    let blanks1 = |i: usize| Some(blanks(i)).filter(|&j| j > i);
    let number = |i: usize| {
        let len = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let value = bytes[i..i + len].iter().try_fold(0u32, |acc, &b| {
            acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
        })?;
        (len > 0).then_some((i + len, value))
    };
    let byte = |i: usize, b: u8| (bytes.get(i) == Some(&b)).then_some(i + 1);

    let i = blanks(after_pri);
    if bytes.get(i)?.is_ascii_digit() {
        let end = i + bytes[i..].iter().position(|&b| b == b' ')?;
        return Some((end, Stamp::Rfc3339));
    }
    let month = month_number(bytes.get(i..i + 3)?)?;
    let (i, day) = number(blanks1(i + 3)?)?;
    let (mut i, mut hour) = number(blanks1(i)?)?;
    let mut year = None;
    if bytes.get(i) != Some(&b':') {
        year = Some(hour);
        (i, hour) = number(blanks1(i)?)?;
    }
    let (i, minute) = number(byte(i, b':')?)?;
    let (i, second) = number(byte(i, b':')?)?;
    let end = byte(i, b':').unwrap_or(i);
    let time = BsdTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    };
    Some((end, Stamp::Bsd(time)))
}

/// The number of a three-letter English month name, in any letter case.
fn month_number(name: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let lower = [
        name[0].to_ascii_lowercase(),
        name[1].to_ascii_lowercase(),
        name[2].to_ascii_lowercase(),
    ];
    let index = MONTHS.iter().position(|m| **m == lower)?;
    u32::try_from(index + 1).ok()
}

/// Converts a chrono instant, keeping microseconds (RFC 5424 allows no more
/// digits, and the store keeps microseconds). chrono reports a leap second as
/// a fraction of a second of one second or more; it carries into the next
/// second.
fn instant_from_chrono(ts: &DateTime<FixedOffset>) -> Option<Timestamp> {
    let micros = ts
        .timestamp()
        .checked_mul(1_000_000)?
        .checked_add(i64::from(ts.timestamp_subsec_micros()))?;
    Timestamp::from_microsecond(micros).ok()
}

/// Two wall-clock times compared in civil time differ from the same pair
/// compared as instants by at most the difference of their UTC offsets, which
/// jiff bounds by ±25:59:59. Only candidates closer than that need the exact
/// comparison.
const MAX_OFFSET_SWING: SignedDuration = SignedDuration::from_hours(52);

/// Places a year-less BSD timestamp in time. The year is the one before, of,
/// or after the reception (counted in `zone`) that puts the time closest to
/// `received_at`, so a clock a little behind or ahead across New Year still
/// lands in the right year. Feb 29 exists only in leap years: when none of
/// the three years has one, the nearest leap years (at most four years away)
/// compete instead. An impossible date gives None.
fn resolve_yearless(time: &BsdTime, received_at: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
    let now = zone.to_datetime(received_at);
    let year = now.year();
    let instant = |dt| zone.to_ambiguous_timestamp(dt).compatible().ok();

    // Nearly every line is stamped within seconds of its reception. When the
    // date in the reception's year is within 150 days of it, the same date a
    // year earlier or later is at least 215 days away, so the search below
    // would choose this year anyway.
    if let Some(dt) = time.in_year(year)
        && dt.duration_since(now).abs() <= SignedDuration::from_hours(150 * 24)
    {
        return instant(dt);
    }

    // The closest and second-closest candidates by civil-time distance, which
    // is cheap; converting to instants needs the zone's rules.
    let mut best: Option<(SignedDuration, civil::DateTime)> = None;
    let mut runner_up: Option<(SignedDuration, civil::DateTime)> = None;
    for spread in [1i16, 4] {
        for y in year.saturating_sub(spread)..=year.saturating_add(spread) {
            let Some(dt) = time.in_year(y) else {
                continue;
            };
            let distance = dt.duration_since(now).abs();
            match best {
                // Candidates come in increasing year order, so on a tie the
                // earlier year, the more likely one for a log line, stays.
                Some((best_distance, _)) if best_distance <= distance => {
                    if runner_up.is_none_or(|(d, _)| distance < d) {
                        runner_up = Some((distance, dt));
                    }
                }
                _ => {
                    runner_up = best;
                    best = Some((distance, dt));
                }
            }
        }
        if best.is_some() {
            break;
        }
    }

    let (best_distance, best_dt) = best?;
    let best_ts = instant(best_dt)?;
    if let Some((runner_distance, runner_dt)) = runner_up
        && runner_distance - best_distance <= MAX_OFFSET_SWING
        && let Some(runner_ts) = instant(runner_dt)
        && runner_ts.duration_since(received_at).abs() < best_ts.duration_since(received_at).abs()
    {
        return Some(runner_ts);
    }
    Some(best_ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;

    /// The access-log lines of the reference setup (uWSGI and nginx behind it),
    /// as a syslog receiver gets them.
    const UWSGI_LOG: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/uwsgi-syslog.log"
    ));

    fn ts(s: &str) -> Timestamp {
        s.parse()
            .unwrap_or_else(|e| panic!("bad timestamp {s:?} in a test: {e}"))
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).expect("the bundled tzdb has this zone")
    }

    struct Case {
        line: &'static str,
        received: &'static str,
        generated_at: Option<&'static str>,
        hostname: Option<&'static str>,
        program: &'static str,
        pri: Option<(u8, u8)>, // (facility, severity)
        message: &'static str,
    }

    /// Received in June 2018 (Volgograd was UTC+3 then), unless a case says otherwise.
    const JUNE_2018: &str = "2018-06-23T17:30:00+03:00";

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        // uWSGI's rsyslog logger: no HOSTNAME, the first word is the TAG.
        Case { line: "<29>Jun 23 17:17:41 website-backend: [pid: 1|app: 0|req: 1/2] GET / => generated 2 bytes",
               received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"), hostname: None,
               program: "website-backend", pri: Some((3, 5)), message: "[pid: 1|app: 0|req: 1/2] GET / => generated 2 bytes" },
        Case { line: "<30>Jun 23 17:17:41 website-backend website-backend: msg",
               received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"), hostname: Some("website-backend"),
               program: "website-backend", pri: Some((3, 6)), message: "msg" },
        Case { line: "<13>Jun 23 17:17:41 host prog[123]: msg",
               received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"), hostname: Some("host"),
               program: "prog", pri: Some((1, 5)), message: "msg" },
        Case { line: "<13>Jun  3 07:07:01 host prog: msg",
               received: JUNE_2018, generated_at: Some("2018-06-03T07:07:01+03:00"), hostname: Some("host"),
               program: "prog", pri: Some((1, 5)), message: "msg" },
        // rsyslog can send RFC 3339 in an RFC 3164 header; its offset wins over the zone.
        Case { line: "<13>2018-06-23T17:17:41+02:00 host prog: msg",
               received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+02:00"), hostname: Some("host"),
               program: "prog", pri: Some((1, 5)), message: "msg" },
        Case { line: "<13>Jun 23 2017 17:17:41 host prog: msg",
               received: JUNE_2018, generated_at: Some("2017-06-23T17:17:41+03:00"), hostname: Some("host"),
               program: "prog", pri: Some((1, 5)), message: "msg" },
        Case { line: "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] An application event log entry...",
               received: JUNE_2018, generated_at: Some("2003-10-11T22:14:15.003Z"), hostname: Some("mymachine.example.com"),
               program: "evntslog", pri: Some((20, 5)), message: "An application event log entry..." },
        Case { line: "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - \u{FEFF}BOM'd text",
               received: JUNE_2018, generated_at: Some("2003-10-11T22:14:15.003Z"), hostname: Some("mymachine.example.com"),
               program: "evntslog", pri: Some((20, 5)), message: "BOM'd text" },
        Case { line: "<34>1 - - - - - -",
               received: JUNE_2018, generated_at: None, hostname: None,
               program: "", pri: Some((4, 2)), message: "" },
        // What `logger --rfc3164` and `logger --rfc5424` send.
        Case { line: "<13>Nov 26 11:30:00 myhost root: hello",
               received: "2026-11-26T08:30:02Z", generated_at: Some("2026-11-26T11:30:00+03:00"), hostname: Some("myhost"),
               program: "root", pri: Some((1, 5)), message: "hello" },
        Case { line: "<13>1 2026-11-26T11:30:00.123456+00:00 myhost root - - [timeQuality tzKnown=\"1\" isSynced=\"0\"] hello",
               received: "2026-11-26T11:30:01Z", generated_at: Some("2026-11-26T11:30:00.123456Z"), hostname: Some("myhost"),
               program: "root", pri: Some((1, 5)), message: "hello" },
        // RFC 5424 has exactly one SP before MSG; more belong to the message.
        Case { line: "<13>1 2026-11-26T11:30:00.1234567+00:00 h a - - -   three spaces ",
               received: JUNE_2018, generated_at: Some("2026-11-26T11:30:00.123456Z"), hostname: Some("h"),
               program: "a", pri: Some((1, 5)), message: "  three spaces " },
        // Not syslog: kept whole.
        Case { line: "hello world",
               received: JUNE_2018, generated_at: None, hostname: None, program: "", pri: None, message: "hello world" },
        Case { line: "[pid: 20591|app: 0|req: 310/4946598] 95.165.12.7 () {46 vars in 981 bytes} [Sat Jun 23 17:17:41 2018] GET /",
               received: JUNE_2018, generated_at: None, hostname: None, program: "", pri: None,
               message: "[pid: 20591|app: 0|req: 310/4946598] 95.165.12.7 () {46 vars in 981 bytes} [Sat Jun 23 17:17:41 2018] GET /" },
        Case { line: "Jun 23 17:17:41 host prog: no PRI",
               received: JUNE_2018, generated_at: None, hostname: None, program: "", pri: None, message: "Jun 23 17:17:41 host prog: no PRI" },
        Case { line: "<999>x", received: JUNE_2018, generated_at: None, hostname: None, program: "", pri: None, message: "<999>x" },
        Case { line: "<192>x", received: JUNE_2018, generated_at: None, hostname: None, program: "", pri: None, message: "<192>x" },
        Case { line: "<1234>x", received: JUNE_2018, generated_at: None, hostname: None, program: "", pri: None, message: "<1234>x" },
        Case { line: "<>x", received: JUNE_2018, generated_at: None, hostname: None, program: "", pri: None, message: "<>x" },
        Case { line: "<12", received: JUNE_2018, generated_at: None, hostname: None, program: "", pri: None, message: "<12" },
        Case { line: "", received: JUNE_2018, generated_at: None, hostname: None, program: "", pri: None, message: "" },
        // A valid PRI with an unreadable header keeps the PRI (RFC 3164 section 4.3.2).
        Case { line: "<13>hello world", received: JUNE_2018, generated_at: None, hostname: None,
               program: "", pri: Some((1, 5)), message: "hello world" },
        Case { line: "<13>Feb 30 10:00:00 host prog: msg", received: JUNE_2018, generated_at: None, hostname: None,
               program: "", pri: Some((1, 5)), message: "Feb 30 10:00:00 host prog: msg" },
        Case { line: "<191>Jun 23 17:17:41 h p: max PRI", received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"),
               hostname: Some("h"), program: "p", pri: Some((23, 7)), message: "max PRI" },
        Case { line: "<0>Jun 23 17:17:41 h p: min PRI", received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"),
               hostname: Some("h"), program: "p", pri: Some((0, 0)), message: "min PRI" },
        // syslog_loose would eat a leading "-", structured-data look-alikes and spaces.
        Case { line: "<13>Jun 23 17:17:41 host prog: - dash", received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"),
               hostname: Some("host"), program: "prog", pri: Some((1, 5)), message: "- dash" },
        Case { line: "<13>Jun 23 17:17:41 host prog: [a b=\"c\"] looks like SD", received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"),
               hostname: Some("host"), program: "prog", pri: Some((1, 5)), message: "[a b=\"c\"] looks like SD" },
        Case { line: "<13>Jun 23 17:17:41 host prog:   indented  ", received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"),
               hostname: Some("host"), program: "prog", pri: Some((1, 5)), message: "  indented  " },
        // syslog_loose would drop the HOSTNAME when the TAG is "-".
        Case { line: "<13>Jun 23 17:17:41 host -: msg", received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"),
               hostname: Some("host"), program: "", pri: Some((1, 5)), message: "msg" },
        Case { line: "<13>Jun 23 17:17:41 host  two spaces end the header", received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"),
               hostname: Some("host"), program: "", pri: Some((1, 5)), message: "two spaces end the header" },
        Case { line: "<34>Oct 11 22:14:15 : a message", received: "2018-10-12T00:00:00Z", generated_at: Some("2018-10-11T22:14:15+03:00"),
               hostname: None, program: "", pri: Some((4, 2)), message: "a message" },
        Case { line: "<13>Jun 23 17:17:41 host", received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"),
               hostname: Some("host"), program: "", pri: Some((1, 5)), message: "" },
        // The BSD timestamp as syslog_loose reads it: any letter case, a
        // colon after the seconds, blanks after the PRI.
        Case { line: "<13>jUN 23 17:17:41 h p: m", received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"),
               hostname: Some("h"), program: "p", pri: Some((1, 5)), message: "m" },
        Case { line: "<189>Jun 23 17:17:41: %SYS-5-CONFIG_I: Configured", received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"),
               hostname: None, program: "%SYS-5-CONFIG_I", pri: Some((23, 5)), message: "Configured" },
        Case { line: "<13> Jun\t23  17:17:41 h p: m", received: JUNE_2018, generated_at: Some("2018-06-23T17:17:41+03:00"),
               hostname: Some("h"), program: "p", pri: Some((1, 5)), message: "m" },
        Case { line: "<13>2018-06-23T17:17:41.123456789+03:00 host prog: fraction", received: JUNE_2018,
               generated_at: Some("2018-06-23T17:17:41.123456+03:00"), hostname: Some("host"), program: "prog",
               pri: Some((1, 5)), message: "fraction" },
        // Dates that do not exist, and a leap second (jiff has none), make the
        // header unreadable.
        Case { line: "<13>Jun 31 10:00:00 h p: m", received: JUNE_2018, generated_at: None, hostname: None,
               program: "", pri: Some((1, 5)), message: "Jun 31 10:00:00 h p: m" },
        Case { line: "<13>Jun 23 24:00:00 h p: m", received: JUNE_2018, generated_at: None, hostname: None,
               program: "", pri: Some((1, 5)), message: "Jun 23 24:00:00 h p: m" },
        Case { line: "<13>Jun 30 23:59:60 h p: m", received: JUNE_2018, generated_at: None, hostname: None,
               program: "", pri: Some((1, 5)), message: "Jun 30 23:59:60 h p: m" },
        Case { line: "<13>Jux 23 17:17:41 h p: m", received: JUNE_2018, generated_at: None, hostname: None,
               program: "", pri: Some((1, 5)), message: "Jux 23 17:17:41 h p: m" },
        Case { line: "<13>Jun 23 99999999999:17:41 h p: m", received: JUNE_2018, generated_at: None, hostname: None,
               program: "", pri: Some((1, 5)), message: "Jun 23 99999999999:17:41 h p: m" },
        // syslog_loose refuses an RFC 5424 field that is a lone ":".
        Case { line: "<13>1 - : app - - - msg", received: JUNE_2018, generated_at: None, hostname: None,
               program: "", pri: Some((1, 5)), message: "1 - : app - - - msg" },
        // uWSGI writes a traceback's newlines as #012; they stay as sent.
        Case { line: "<27>Jun 23 17:18:21 website-backend: Traceback (most recent call last):#012  File \"x.py\", line 1#012",
               received: JUNE_2018, generated_at: Some("2018-06-23T17:18:21+03:00"), hostname: None, program: "website-backend",
               pri: Some((3, 3)), message: "Traceback (most recent call last):#012  File \"x.py\", line 1#012" },
    ];

    fn check(case: &Case, raw: &[u8], zone: &TimeZone) {
        let got = parse(raw, ts(case.received), zone);
        let want = SyslogFields {
            generated_at: case.generated_at.map(ts),
            hostname: case.hostname.map(str::to_owned),
            program: case.program.to_owned(),
            severity: case.pri.map(|(_, s)| s),
            facility: case.pri.map(|(f, _)| f),
            message: case.message.to_owned(),
        };
        assert_eq!(got, want, "line {:?}", String::from_utf8_lossy(raw));
    }

    #[test]
    fn table() {
        let zone = tz("Europe/Volgograd");
        for case in CASES {
            check(case, case.line.as_bytes(), &zone);
        }
    }

    #[test]
    fn frame_terminators_are_removed_and_nothing_else() {
        let zone = tz("Europe/Volgograd");
        for case in CASES {
            for end in ["\n", "\r\n", "\0", "\r\n\0"] {
                check(case, format!("{}{end}", case.line).as_bytes(), &zone);
            }
        }
    }

    #[test]
    fn invalid_utf8_is_read_lossily() {
        let zone = tz("UTC");
        let got = parse(
            b"<13>Jun 23 17:17:41 h\xff p: caf\xe9 \xf0\x9f",
            ts("2018-06-23T18:00:00Z"),
            &zone,
        );
        assert_eq!(got.hostname.as_deref(), Some("h\u{FFFD}"));
        assert_eq!(got.program, "p");
        assert_eq!(got.message, "caf\u{FFFD} \u{FFFD}");
        let got = parse(b"\xff\xfe not syslog", ts("2018-06-23T18:00:00Z"), &zone);
        assert_eq!(got.message, "\u{FFFD}\u{FFFD} not syslog");
        assert_eq!(got.severity, None);
    }

    #[test]
    fn uwsgi_fixture() {
        let zone = tz("Europe/Volgograd");
        let received = ts("2018-06-23T17:26:00+03:00");
        let lines: Vec<&str> = UWSGI_LOG.lines().collect();
        assert_eq!(lines.len(), 15);
        for (n, line) in lines.iter().enumerate() {
            let got = parse(line.as_bytes(), received, &zone);
            let (host, program) = if n == 14 {
                ("website-frontend", "nginx")
            } else {
                ("website-backend", "website-backend")
            };
            let severity = if line.starts_with("<27>") { 3 } else { 6 };
            let clock = &line[11..19];
            let tag_end = line.find(&format!(" {program}: ")).unwrap() + program.len() + 3;
            let want = SyslogFields {
                generated_at: Some(ts(&format!("2018-06-23T{clock}+03:00"))),
                hostname: Some(host.to_owned()),
                program: program.to_owned(),
                severity: Some(severity),
                facility: Some(3),
                message: line[tag_end..].to_owned(),
            };
            assert_eq!(got, want, "fixture line {}", n + 1);
        }
    }

    /// Parses a year-less RFC 3164 timestamp received at `received`.
    fn yearless(stamp: &str, received: &str, zone: &str) -> Option<Timestamp> {
        let line = format!("<13>{stamp} host prog: msg");
        let got = parse(line.as_bytes(), ts(received), &tz(zone));
        assert_eq!(got.message, "msg", "header of {line:?} must still be read");
        got.generated_at
    }

    #[test]
    fn late_line_after_new_year_is_last_year() {
        assert_eq!(
            yearless(
                "Dec 31 23:59:58",
                "2019-01-01T00:00:01+01:00",
                "Europe/Berlin"
            ),
            Some(ts("2018-12-31T23:59:58+01:00"))
        );
    }

    #[test]
    fn clock_ahead_before_new_year_is_next_year() {
        assert_eq!(
            yearless(
                "Jan  1 00:00:01",
                "2018-12-31T23:59:59+01:00",
                "Europe/Berlin"
            ),
            Some(ts("2019-01-01T00:00:01+01:00"))
        );
    }

    #[test]
    fn year_is_counted_in_the_senders_zone() {
        // 23:30 UTC on Dec 31 is already New Year in Berlin.
        assert_eq!(
            yearless("Jan  1 00:29:00", "2018-12-31T23:30:00Z", "Europe/Berlin"),
            Some(ts("2019-01-01T00:29:00+01:00"))
        );
        assert_eq!(
            yearless("Dec 31 23:59:00", "2018-12-31T23:30:00Z", "Europe/Berlin"),
            Some(ts("2018-12-31T23:59:00+01:00"))
        );
    }

    #[test]
    fn feb_29_picks_the_closest_leap_year() {
        let berlin = "Europe/Berlin";
        assert_eq!(
            yearless("Feb 29 12:00:00", "2021-01-10T00:00:00Z", berlin),
            Some(ts("2020-02-29T12:00:00+01:00"))
        );
        assert_eq!(
            yearless("Feb 29 12:00:00", "2023-12-31T00:00:00Z", berlin),
            Some(ts("2024-02-29T12:00:00+01:00"))
        );
        assert_eq!(
            yearless("Feb 29 23:59:59", "2024-03-01T00:00:01+01:00", berlin),
            Some(ts("2024-02-29T23:59:59+01:00"))
        );
        // No leap year among 2025..=2027: the nearest ones, 2024 and 2028, compete.
        assert_eq!(
            yearless("Feb 29 12:00:00", "2026-01-01T00:00:00Z", berlin),
            Some(ts("2024-02-29T12:00:00+01:00"))
        );
        assert_eq!(
            yearless("Feb 29 12:00:00", "2026-06-01T00:00:00Z", berlin),
            Some(ts("2028-02-29T12:00:00+01:00"))
        );
    }

    #[test]
    fn dst_gap_and_fold_use_compatible_disambiguation() {
        // 2024-03-31 is the last Sunday of March: Berlin's clocks jump from
        // 02:00 to 03:00, so 02:30 does not exist and means 03:30 CEST.
        assert_eq!(
            yearless(
                "Mar 31 02:30:00",
                "2024-03-31T03:35:00+02:00",
                "Europe/Berlin"
            ),
            Some(ts("2024-03-31T03:30:00+02:00"))
        );
        // 2024-10-27: 02:30 happens twice; the first (CEST) is chosen.
        assert_eq!(
            yearless(
                "Oct 27 02:30:00",
                "2024-10-27T03:00:00+01:00",
                "Europe/Berlin"
            ),
            Some(ts("2024-10-27T02:30:00+02:00"))
        );
        // Summer and winter time in one zone.
        assert_eq!(
            yearless("Jan 15 12:00:00", "2024-01-15T12:00:00Z", "Europe/Berlin"),
            Some(ts("2024-01-15T12:00:00+01:00"))
        );
        assert_eq!(
            yearless("Jul 15 12:00:00", "2024-07-15T12:00:00Z", "Europe/Berlin"),
            Some(ts("2024-07-15T12:00:00+02:00"))
        );
    }

    #[test]
    fn historic_zone_rules_apply() {
        // Volgograd moved from UTC+3 to UTC+4 on 2018-10-28.
        assert_eq!(
            yearless(
                "Nov  1 12:00:00",
                "2018-11-01T09:00:00Z",
                "Europe/Volgograd"
            ),
            Some(ts("2018-11-01T12:00:00+04:00"))
        );
    }

    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];

    fn civil_datetime() -> impl Strategy<Value = civil::DateTime> {
        (
            2000i16..2035,
            1i8..=12,
            1i8..=31,
            0i8..24,
            0i8..60,
            0i8..60,
            0i32..1_000_000,
        )
            .prop_filter_map("valid date", |(y, mo, d, h, mi, s, us)| {
                civil::DateTime::new(y, mo, d, h, mi, s, us * 1000).ok()
            })
    }

    /// Printable text that does not start with a space, including characters
    /// syslog_loose would treat specially at the start of a message.
    fn message() -> impl Strategy<Value = String> {
        prop_oneof![
            "[!-~][ -~]{0,60}",
            "[-\\[:][ -~]{0,60}",
            "[^ \\p{C}][^\\p{C}]{0,40}",
        ]
    }

    proptest! {
        #[test]
        fn rfc3164_round_trip(
            pri in 0u8..=191,
            dt in civil_datetime(),
            hostname in proptest::option::of("[a-z0-9][a-z0-9.-]{0,20}"),
            program in "[A-Za-z0-9_./-]{1,16}",
            pid in proptest::option::of(1u32..4_000_000),
            message in message(),
            delay_s in -3600i64..86_400,
            zone_name in prop_oneof![Just("Europe/Berlin"), Just("America/New_York"), Just("Asia/Kolkata"), Just("UTC")],
        ) {
            prop_assume!(program != "-" && hostname.as_deref() != Some("-"));
            let zone = tz(zone_name);
            let dt = dt.with().subsec_nanosecond(0).build().unwrap();
            let expected = zone.to_ambiguous_timestamp(dt).compatible().unwrap();
            let received = expected + SignedDuration::from_secs(delay_s);
            let tag = match pid { Some(pid) => format!("{program}[{pid}]"), None => program.clone() };
            let host = hostname.as_deref().map(|h| format!("{h} ")).unwrap_or_default();
            let line = format!(
                "<{pri}>{} {:>2} {:02}:{:02}:{:02} {host}{tag}: {message}",
                MONTHS[dt.month() as usize - 1], dt.day(), dt.hour(), dt.minute(), dt.second(),
            );
            let got = parse(line.as_bytes(), received, &zone);
            prop_assert_eq!(got, SyslogFields {
                generated_at: Some(expected),
                hostname,
                program,
                severity: Some(pri & 7),
                facility: Some(pri >> 3),
                message,
            }, "line {:?}", line);
        }

        #[test]
        fn rfc5424_round_trip(
            pri in 0u8..=191,
            dt in civil_datetime(),
            offset_minutes in -720i32..=840,
            hostname in proptest::option::of("[a-z0-9][a-z0-9.-]{0,20}"),
            program in proptest::option::of("[!-~]{1,16}"),
            procid in "-|[0-9]{1,7}",
            msgid in "-|[A-Z0-9]{1,8}",
            sd in prop_oneof![Just("-"), Just("[timeQuality tzKnown=\"1\" isSynced=\"0\"]"), Just("[a@1 b=\"c\"][d@2]")],
            bom in any::<bool>(),
            message in message(),
        ) {
            // "-" is NILVALUE. syslog_loose refuses a field that is a lone ":"
            // (valid in RFC 5424, but no sender names an app that way).
            prop_assume!(!matches!(program.as_deref(), Some("-" | ":")) && hostname.as_deref() != Some("-"));
            let offset = jiff::tz::Offset::from_seconds(offset_minutes * 60).unwrap();
            let expected = offset.to_timestamp(dt).unwrap();
            let line = format!(
                "<{pri}>1 {} {} {} {procid} {msgid} {sd} {}{message}",
                expected.display_with_offset(offset),
                hostname.as_deref().unwrap_or("-"),
                program.as_deref().unwrap_or("-"),
                if bom { "\u{FEFF}" } else { "" },
            );
            let got = parse(line.as_bytes(), ts("2020-01-01T00:00:00Z"), &tz("Europe/Berlin"));
            prop_assert_eq!(got, SyslogFields {
                generated_at: Some(expected),
                hostname,
                program: program.unwrap_or_default(),
                severity: Some(pri & 7),
                facility: Some(pri >> 3),
                message,
            }, "line {:?}", line);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            raw in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..200),
                // Mostly well-formed headers with noise, to get deep into the grammar.
                ("<[0-9]{1,3}>", "(1 )?", "[A-Za-z]{3} [ 0-9]{1,2} [0-9:]{1,9}|[0-9T:.+Z-]{1,30}|-", "[ -~\\t]{0,40}")
                    .prop_map(|(a, b, c, d)| format!("{a}{b}{c} {d}").into_bytes()),
            ],
            received_us in -10_000_000_000_000_000i64..10_000_000_000_000_000,
        ) {
            let received = Timestamp::from_microsecond(received_us).unwrap();
            let got = parse(&raw, received, &tz("Europe/Berlin"));
            check_invariants(&raw, &got);
        }
    }

    /// A month name in any letter case, or three letters that may not be one.
    fn month_like() -> impl Strategy<Value = String> {
        prop_oneof![
            (0..12usize, any::<[bool; 3]>()).prop_map(|(m, upper)| {
                MONTHS[m]
                    .chars()
                    .zip(upper)
                    .map(|(c, up)| {
                        if up {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect()
            }),
            "[A-Za-z]{3}",
        ]
    }

    proptest! {
        /// The BSD timestamp is read here instead of by syslog_loose (see
        /// `parse`); this checks both accept the same text and read the same
        /// fields from it.
        #[test]
        fn bsd_timestamp_reads_like_syslog_loose(
            month in month_like(),
            rest in "[ \t]{1,2}[0-9]{1,3}[ \t]{1,2}([0-9]{1,5}[ \t]{1,2})?[0-9]{1,3}:[0-9]{1,3}:[0-9]{1,3}:?( [ -~]{0,10})?",
        ) {
            let line = format!("<13>{month}{rest}");
            let ours = rfc3164_timestamp(line.as_bytes(), 4).map(|(_, stamp)| stamp);
            // syslog_loose hands the year-less fields to the year callback.
            let yearless = Cell::new(None);
            let yearless_ref = &yearless;
            let theirs = syslog_loose::parse_message_with_year_exact_tz(
                &line,
                move |date| {
                    yearless_ref.set(Some(date));
                    2024
                },
                Some(utc()),
                Variant::RFC3164,
            );
            match (ours, yearless.get(), theirs.ok().and_then(|m| m.timestamp)) {
                (Some(Stamp::Bsd(t)), Some(date), _) => {
                    prop_assert_eq!(t.year, None);
                    prop_assert_eq!((t.month, t.day, t.hour, t.minute, t.second), date);
                }
                (Some(Stamp::Bsd(t)), None, Some(ts)) => {
                    use chrono::{Datelike, Timelike};
                    let wall = ts.naive_utc();
                    prop_assert_eq!(t.year.map(|y| y as i32), Some(wall.year()));
                    prop_assert_eq!(
                        (t.month, t.day, t.hour, t.minute, t.second),
                        (wall.month(), wall.day(), wall.hour(), wall.minute(), wall.second())
                    );
                }
                // syslog_loose checks a dated timestamp while reading it;
                // here the check comes later and gives the same refusal.
                (Some(Stamp::Bsd(t)), None, None) => {
                    let year = t.year.and_then(|y| i16::try_from(y).ok());
                    prop_assert!(year.and_then(|y| t.in_year(y)).is_none(), "syslog_loose refused {:?}", line);
                }
                (None, None, None) => {}
                (ours, yearless, theirs) => prop_assert!(
                    false,
                    "{:?}: here {}, syslog_loose {:?} / {:?}",
                    line,
                    if ours.is_some() { "read it" } else { "refused it" },
                    yearless,
                    theirs
                ),
            }
        }
    }

    /// The properties the fuzz target checks too.
    fn check_invariants(raw: &[u8], got: &SyslogFields) {
        let end = raw
            .iter()
            .rposition(|&b| !matches!(b, b'\n' | b'\r' | b'\0'))
            .map_or(0, |i| i + 1);
        let line = String::from_utf8_lossy(&raw[..end]);
        assert!(
            line.ends_with(got.message.as_str()),
            "message {:?} is not a suffix of {line:?}",
            got.message
        );
        assert_eq!(got.severity.is_some(), got.facility.is_some());
        assert!(got.severity.is_none_or(|s| s <= 7));
        assert!(got.facility.is_none_or(|f| f <= 23));
        if got.severity.is_none() {
            assert_eq!(got.message, line, "a line without PRI is kept whole");
            assert!(got.generated_at.is_none() && got.hostname.is_none() && got.program.is_empty());
        }
        assert!(!got.program.bytes().any(|b| b.is_ascii_whitespace()));
        assert!(got.hostname.as_deref().is_none_or(|h| !h.is_empty()
            && h != "-"
            && !h.bytes().any(|b| b.is_ascii_whitespace())));
        assert!(got.program != "-");
    }
}
