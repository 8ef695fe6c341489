//! Reading one web-backend access-log message into fields, and writing such a record back.
//!
//! This module owns the step between "a syslog message arrived" and "we know which HTTP
//! request it reports": [`parse`] takes the message (the syslog header already removed) and
//! returns an [`AccessLog`] when the message is an access-log line of a known dialect, or
//! `None` when it is something else, which the caller then stores as a plain message.
//! [`format`] is its inverse and exists for property tests, benchmarks and test generators.
//! The dialects, with one example message each, are:
//!
//! - [`Dialect::Uwsgi`], the default uWSGI request log line:
//!   `[pid: 20591|app: 0|req: 310/4946598] 95.165.12.7 () {46 vars in 981 bytes} [Sat Jun 23 17:17:41 2018] GET /api/v1/catalog/?page=2 => generated 18233 bytes in 41 msecs (HTTP/2.0 200) 7 headers in 260 bytes (1 switches on core 0)`
//! - [`Dialect::UwsgiError`], the lines uWSGI prints when the client went away before the
//!   response was written (always [`Kind::ClientGone`]):
//!   `Sat Jun 23 17:18:21 2018 - uwsgi_response_write_body_do(): Broken pipe [core/writer.c line 341] during POST /api/v1/orders/ (46.39.55.31)`
//! - [`Dialect::NginxCombined`], nginx's `combined` format, optionally followed by
//!   `$request_time`, `$request_id` or `key=value` pairs such as `rt=0.187 rid=…`:
//!   `188.32.201.9 - - [23/Jun/2018:17:18:02 +0300] "POST /api/v1/orders/ HTTP/2.0" 400 187 "https://example-shop.ru/cart/" "Mozilla/5.0"`
//! - [`Dialect::Gunicorn`], gunicorn's default access format, which has the same shape as
//!   `combined`; a line is only called gunicorn when its bytes field is `-`:
//!   `127.0.0.1 - - [23/Jun/2018:17:18:02 +0000] "GET /api/v1/orders/ HTTP/1.1" 200 - "-" "python-requests/2.31"`
//! - [`Dialect::Json`], a JSON object with the usual access-log keys, flat or nested:
//!   `{"method":"POST","path":"/api/v1/orders/","status":201,"request_time":0.187,"remote_addr":"46.39.55.2"}`
//!
//! Rules shared by every dialect: strings are exactly the bytes of the line (nothing is
//! lowercased or unescaped); `path` always starts with `/` and never holds the query, which
//! goes to `query` (an empty query is `None`); a method is only kept when it is an uppercase
//! token of ASCII letters; a status is only kept when it lies in 100..=999; `-` stands for
//! "absent" in the text dialects; a number that does not fit in a `u64` makes the line "not an
//! access line", because no real server writes such a number and guessing would be worse.

use memchr::{memchr, memmem};
use serde_json::{Map, Value};

/// What a line reports: a finished request, or a client that disconnected before the
/// response was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Request,
    ClientGone,
}

/// The log format a line was read as; [`format`] writes a record back in this format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    Uwsgi,
    UwsgiError,
    NginxCombined,
    Gunicorn,
    Json,
}

/// One access-log line read into fields; absent fields are `None`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccessLog {
    pub kind: Kind,
    pub dialect: Dialect,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The path without the query string; it always starts with `/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The part after the first `?`, without the `?`; never empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// For example `HTTP/2.0`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    /// The time the server spent on the request, in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Reads one log *message* (the syslog header is already removed) as an access-log line
/// of any known dialect. `None` means "not an access log line": it is then stored as a
/// plain message. Must never panic, on any input. Must be fast (target well under 1 µs for a
/// typical uWSGI line: no regex, no allocation before the dialect is known; use memchr / byte scanning).
///
/// The dialect is chosen by the first byte, so that each line is scanned by one reader only:
/// `[` is a uWSGI request line, `{` is JSON (or a uWSGI request line with a memory report in
/// front), anything else is tried as `combined`/gunicorn and then as a uWSGI
/// client-disconnect line. A `combined` request line that is `-` or not `METHOD URI [PROTOCOL]`
/// (for example the escaped TLS bytes nginx logs when HTTPS is spoken to a plain port) still
/// gives a [`Kind::Request`], with method, path, query and protocol `None`, because its
/// status (usually 400) is still evidence worth keeping.
pub fn parse(message: &str) -> Option<AccessLog> {
    let line = message.trim_start();
    match *line.as_bytes().first()? {
        b'[' => parse_uwsgi(line),
        b'{' => {
            // uWSGI's `memory-report` option puts two brace groups in front of the normal
            // line; they must not be mistaken for a JSON object.
            if line.starts_with("{address space usage:") {
                let at = memmem::find(line.as_bytes(), b"[pid: ")?;
                parse_uwsgi(&line[at..])
            } else {
                parse_json(line)
            }
        }
        // `combined` goes first: no uWSGI error line has its shape, while a `combined` line
        // may well contain an error line's keywords, in its user agent for example.
        _ => parse_combined(line).or_else(|| parse_uwsgi_error(line)),
    }
}

/// Writes `log` back as a line of its own dialect, such that `parse(&format(&log)) == Some(log)`
/// for every `log` that the dialect can express. Used by property tests and by benchmarks/test generators.
///
/// Fields a dialect cannot carry are dropped (for example `request_id` in uWSGI lines), and
/// fields a dialect always has but the record lacks are written as `-`. The parts of a line
/// that the record does not model (pid, vars, timestamps, referer, user agent) are written
/// as fixed plausible values. `NginxCombined` and `Gunicorn` share one writer, so a record's
/// `response_bytes` decides which of the two the line reads back as.
pub fn format(log: &AccessLog) -> String {
    match log.dialect {
        Dialect::Uwsgi => format_uwsgi(log),
        Dialect::UwsgiError => format_uwsgi_error(log),
        Dialect::NginxCombined | Dialect::Gunicorn => format_combined(log),
        Dialect::Json => format_json(log),
    }
}

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// The fields of a line as slices of the input, so that nothing is allocated until the line
/// is known to be an access-log line.
#[derive(Default)]
struct Fields<'a> {
    method: Option<&'a str>,
    path: Option<&'a str>,
    query: Option<&'a str>,
    protocol: Option<&'a str>,
    status: Option<u16>,
    response_bytes: Option<u64>,
    duration_us: Option<u64>,
    client_ip: Option<&'a str>,
    remote_user: Option<&'a str>,
    request_id: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn into_log(self, kind: Kind, dialect: Dialect) -> AccessLog {
        let own = |s: Option<&str>| s.map(str::to_owned);
        AccessLog {
            kind,
            dialect,
            method: own(self.method),
            path: own(self.path),
            query: own(self.query),
            protocol: own(self.protocol),
            status: self.status,
            response_bytes: self.response_bytes,
            duration_us: self.duration_us,
            client_ip: own(self.client_ip),
            remote_user: own(self.remote_user),
            request_id: own(self.request_id),
        }
    }

    /// Stores a request target, split into path and query.
    fn set_uri(&mut self, uri: &'a str) {
        let (path, query) = split_uri(uri);
        self.path = path;
        self.query = query;
    }
}

/// A method is an uppercase token of ASCII letters; the length cap keeps binary garbage that
/// happens to be letters from being taken for one.
fn is_method(s: &str) -> bool {
    (1..=20).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// `-` and the empty string are how the text formats say "no value".
fn dash_to_none(s: &str) -> Option<&str> {
    if s.is_empty() || s == "-" {
        None
    } else {
        Some(s)
    }
}

/// Splits a request target into path and query. Origin-form targets (`/a?b`) split on the
/// first `?`; absolute-form targets (`https://host/a?b`, as sent to proxies) lose their scheme
/// and host; a target that is only a query (`?b`) has no path; anything else (`*`, `-`,
/// `host:443` of CONNECT, garbage) has neither, because a path must start with `/`.
fn split_uri(uri: &str) -> (Option<&str>, Option<&str>) {
    let bytes = uri.as_bytes();
    match bytes.first() {
        Some(b'/') => match memchr(b'?', bytes) {
            Some(q) => (Some(&uri[..q]), non_empty(&uri[q + 1..])),
            None => (Some(uri), None),
        },
        Some(b'?') => (None, non_empty(&uri[1..])),
        Some(_) => {
            let Some(sep) = memmem::find(bytes, b"://") else {
                return (None, None);
            };
            let scheme = &bytes[..sep];
            let scheme_ok = !scheme.is_empty()
                && scheme
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            if !scheme_ok {
                return (None, None);
            }
            let after_authority = &uri[sep + 3..];
            match after_authority.find(['/', '?']) {
                // The remainder starts with '/' or '?', so this recursion ends at once.
                Some(at) => split_uri(&after_authority[at..]),
                None => (None, None),
            }
        }
        None => (None, None),
    }
}

/// Finds the first `needle` by looking for its byte at `anchor` with memchr. On lines of a
/// few hundred bytes this is several times faster than setting up a general substring
/// searcher on every call, provided the anchor byte is rare (a bracket, not a space).
fn find_at(hay: &[u8], needle: &[u8], anchor: usize) -> Option<usize> {
    memchr::memchr_iter(needle[anchor], hay).find_map(|i| {
        let start = i.checked_sub(anchor)?;
        hay[start..].starts_with(needle).then_some(start)
    })
}

fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses plain decimal digits; `u64::from_str` alone would also accept a leading `+`.
fn parse_u64(s: &str) -> Option<u64> {
    if all_digits(s) { s.parse().ok() } else { None }
}

/// A status token: `Some(None)` for `-` or for a number outside 100..=999 (which no HTTP
/// client could act on), `None` when the token is not a status at all.
fn status_token(tok: &str) -> Option<Option<u16>> {
    if tok == "-" {
        return Some(None);
    }
    if !all_digits(tok) {
        return None;
    }
    let status = tok.parse::<u16>().ok().filter(|s| (100..=999).contains(s));
    Some(status)
}

/// A count token: `Some(None)` for `-`, `None` when it is neither `-` nor a `u64`.
fn count_token(tok: &str) -> Option<Option<u64>> {
    if tok == "-" {
        Some(None)
    } else {
        parse_u64(tok).map(Some)
    }
}

/// Parses a non-negative decimal such as `0.187` exactly (no floating point, so that
/// microseconds survive a round trip) and scales it by `10^scale`; fraction digits beyond the
/// scale are cut off.
fn parse_scaled(s: &str, scale: u32) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !all_digits(int) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unit = 10u64.pow(scale);
    let mut value = parse_u64(int)?.checked_mul(unit)?;
    let mut place = unit;
    for digit in frac.bytes().take(scale as usize) {
        place /= 10;
        value = value.checked_add(u64::from(digit - b'0') * place)?;
    }
    Some(value)
}

/// Splits at the first space; the remainder excludes the space and is empty when there is
/// none.
fn split_token(s: &str) -> (&str, &str) {
    match memchr(b' ', s.as_bytes()) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// Splits a request line `METHOD URI PROTOCOL` (nginx `$request`, gunicorn `%(r)s`, a JSON
/// `request` string). The URI is everything between the first and the last space, so a URI
/// with spaces in it survives. Anything that does not start with a method gives nothing.
fn parse_request_line<'a>(line: &'a str, fields: &mut Fields<'a>) {
    let Some(first) = memchr(b' ', line.as_bytes()) else {
        if is_method(line) {
            fields.method = Some(line);
        }
        return;
    };
    let method = &line[..first];
    if !is_method(method) {
        return;
    }
    fields.method = Some(method);
    let rest = &line[first + 1..];
    match memchr::memrchr(b' ', rest.as_bytes()) {
        Some(last) => {
            fields.set_uri(&rest[..last]);
            fields.protocol = dash_to_none(&rest[last + 1..]);
        }
        None => fields.set_uri(rest),
    }
}

/// Writes path and query back as a request target, or `empty` when there is neither.
fn push_uri(out: &mut String, log: &AccessLog, empty: &str) {
    if log.path.is_none() && log.query.is_none() {
        out.push_str(empty);
        return;
    }
    if let Some(path) = &log.path {
        out.push_str(path);
    }
    if let Some(query) = &log.query {
        out.push('?');
        out.push_str(query);
    }
}

fn push_or_dash(out: &mut String, value: Option<&str>) {
    out.push_str(value.unwrap_or("-"));
}

fn push_num_or_dash<T: std::fmt::Display>(out: &mut String, value: Option<T>) {
    use std::fmt::Write as _;
    match value {
        // Writing into a String cannot fail.
        Some(v) => drop(write!(out, "{v}")),
        None => out.push('-'),
    }
}

/// Microseconds as seconds the way nginx's `$request_time` prints them (three decimals),
/// with six decimals only when the value needs them, so that parsing gives the same value.
fn seconds_text(us: u64) -> String {
    if us.is_multiple_of(1000) {
        std::format!("{}.{:03}", us / 1_000_000, (us / 1000) % 1000)
    } else {
        std::format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
    }
}

// ---------------------------------------------------------------------------------------
// uWSGI request lines
// ---------------------------------------------------------------------------------------

// uWSGI (core/logging.c) writes:
// "[pid: %d|app: %d|req: %d/%llu] %s (%s) {%d vars in %d bytes} [%s] %s %s => generated
//  %llu bytes in %llu %s%s(%s %d) %d headers in %llu bytes (%d switches on core %d)"
// where the two `%s` after the duration are the unit (`msecs`, or `micros` with
// `log-micros`) and either " " or " via sendfile() " / " via route() " / " via offload() ".
// The `via` part is also accepted between `bytes` and `in`, where some copies of the format
// show it.
const GENERATED: &[u8] = b" => generated ";

fn parse_uwsgi(line: &str) -> Option<AccessLog> {
    let rest = line.strip_prefix("[pid: ")?;
    let close = memchr(b']', rest.as_bytes())?;
    let rest = rest[close + 1..].strip_prefix(' ')?;
    let (addr, rest) = rest.split_once(' ')?;

    let mut f = Fields {
        client_ip: dash_to_none(addr),
        ..Fields::default()
    };

    // The remote user is printed in parentheses. A copy of a line with a bare token instead
    // is accepted too; there `-` is the usual "nobody", while `(-)` is kept verbatim because
    // uWSGI would only print it for a user literally named `-`.
    let rest = if let Some(inner) = rest.strip_prefix('(') {
        let end = find_at(inner.as_bytes(), b") {", 2)?;
        f.remote_user = non_empty(&inner[..end]);
        &inner[end + 2..]
    } else {
        let (user, rest) = rest.split_once(' ')?;
        f.remote_user = dash_to_none(user);
        rest
    };

    // Skip `{N vars in M bytes}` and the request start time, whose year-less day-and-time
    // the caller already has from the syslog header.
    let rest = rest.strip_prefix('{')?;
    let end = find_at(rest.as_bytes(), b"} [", 0)?;
    let rest = &rest[end + 3..];
    let end = find_at(rest.as_bytes(), b"] ", 0)?;
    let rest = &rest[end + 2..];

    let end = find_at(rest.as_bytes(), GENERATED, 2)?;
    let request = &rest[..end];
    let rest = &rest[end + GENERATED.len()..];
    let (method, uri) = split_token(request);
    if is_method(method) {
        f.method = Some(method);
    }
    f.set_uri(uri);

    let (bytes, rest) = rest.split_once(' ')?;
    f.response_bytes = count_token(bytes)?;
    let rest = skip_via(rest.strip_prefix("bytes")?);
    let rest = rest.strip_prefix(" in ")?;
    let (duration, rest) = rest.split_once(' ')?;
    let (per_unit, rest) = if let Some(rest) = rest.strip_prefix("msecs") {
        (1000, rest)
    } else if let Some(rest) = rest.strip_prefix("micros") {
        (1, rest)
    } else {
        return None;
    };
    f.duration_us = match count_token(duration)? {
        Some(n) => Some(n.checked_mul(per_unit)?),
        None => None,
    };
    let rest = skip_via(rest).strip_prefix(" (")?;
    let end = memchr(b')', rest.as_bytes())?;
    let (protocol, status) = rest[..end].rsplit_once(' ')?;
    f.protocol = dash_to_none(protocol);
    f.status = status_token(status)?;
    Some(f.into_log(Kind::Request, Dialect::Uwsgi))
}

/// Skips any number of ` via <word>()` markers.
fn skip_via(mut rest: &str) -> &str {
    while let Some(after) = rest.strip_prefix(" via ") {
        let (word, _) = split_token(after);
        if !word.ends_with("()") {
            break;
        }
        rest = &after[word.len()..];
    }
    rest
}

fn format_uwsgi(log: &AccessLog) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("[pid: 20591|app: 0|req: 1/1] ");
    push_or_dash(&mut out, log.client_ip.as_deref());
    out.push_str(" (");
    out.push_str(log.remote_user.as_deref().unwrap_or(""));
    out.push_str(") {46 vars in 981 bytes} [Sat Jun 23 17:17:41 2018] ");
    push_or_dash(&mut out, log.method.as_deref());
    out.push(' ');
    push_uri(&mut out, log, "-");
    out.push_str(" => generated ");
    push_num_or_dash(&mut out, log.response_bytes);
    out.push_str(" bytes in ");
    match log.duration_us {
        Some(us) if us.is_multiple_of(1000) => {
            push_num_or_dash(&mut out, Some(us / 1000));
            out.push_str(" msecs");
        }
        Some(us) => {
            push_num_or_dash(&mut out, Some(us));
            out.push_str(" micros");
        }
        None => out.push_str("- msecs"),
    }
    out.push_str(" (");
    push_or_dash(&mut out, log.protocol.as_deref());
    out.push(' ');
    push_num_or_dash(&mut out, log.status);
    out.push_str(") 7 headers in 260 bytes (1 switches on core 0)");
    out
}

// ---------------------------------------------------------------------------------------
// uWSGI client-disconnect lines
// ---------------------------------------------------------------------------------------

// uWSGI's `uwsgi_req_error()` prints "%s: %s [%s line %d] during %s %s (%s)" when it knows
// the request and "%s %s [%s line %d] " otherwise; its SIGPIPE handler prints the second
// message below; the Python plugin raises `OSError: write error` (`IOError` on Python 2).
// The verbose variants put a 24-byte ctime date and " - " in front.
const SIGPIPE: &str = "SIGPIPE: writing to a closed pipe/socket/fd";
const SIGPIPE_FULL: &str =
    "SIGPIPE: writing to a closed pipe/socket/fd (probably the client disconnected)";
const CTIME: &str = "Sat Jun 23 17:18:21 2018";

fn parse_uwsgi_error(line: &str) -> Option<AccessLog> {
    let body = strip_ctime(line).trim_end();
    let mut f = Fields::default();
    if body.starts_with("OSError: write error") || body.starts_with("IOError: write error") {
        // Nothing to read: the exception names no request.
    } else if let Some(rest) = body.strip_prefix(SIGPIPE) {
        let request = memmem::find(rest.as_bytes(), b" on request ")
            .and_then(|at| rest[at + 12..].strip_suffix(") !!!"))
            .and_then(|inner| Some((inner, memmem::rfind(inner.as_bytes(), b" (ip ")?)));
        if let Some((inner, ip_at)) = request {
            f.set_uri(&inner[..ip_at]);
            f.client_ip = dash_to_none(&inner[ip_at + 5..]);
        }
    } else if body.starts_with("uwsgi_response_") {
        let during = memmem::find(body.as_bytes(), b" during ");
        let head = &body.as_bytes()[..during.unwrap_or(body.len())];
        // Only a failed write to a peer that hung up means the client is gone; a TIMEOUT or
        // any other error is a server problem and stays a plain message.
        let gone = memmem::find(head, b"Broken pipe").is_some()
            || memmem::find(head, b"Connection reset by peer").is_some();
        if !gone {
            return None;
        }
        let request = during
            .and_then(|at| body[at + 8..].strip_suffix(')'))
            .and_then(|inner| Some((inner, memmem::rfind(inner.as_bytes(), b" (")?)));
        if let Some((inner, ip_at)) = request {
            let (method, uri) = split_token(&inner[..ip_at]);
            if is_method(method) {
                f.method = Some(method);
            }
            f.set_uri(uri);
            f.client_ip = dash_to_none(&inner[ip_at + 2..]);
        }
    } else {
        return None;
    }
    Some(f.into_log(Kind::ClientGone, Dialect::UwsgiError))
}

/// Removes a leading `Sat Jun 23 17:18:21 2018 - `, which has a fixed width because ctime
/// pads the day of the month with a space. Its spaces and colons are checked too, so that a
/// 24-byte first token of some other line is never taken for a date.
fn strip_ctime(line: &str) -> &str {
    let b = line.as_bytes();
    let is_ctime = b.len() >= 27
        && &b[24..27] == b" - "
        && b[..3].iter().all(u8::is_ascii_alphabetic)
        && [3, 7, 10, 19].iter().all(|&i| b[i] == b' ')
        && b[13] == b':'
        && b[16] == b':';
    if is_ctime {
        // Bytes 24..27 are ASCII, so 27 is a character boundary.
        &line[27..]
    } else {
        line
    }
}

fn format_uwsgi_error(log: &AccessLog) -> String {
    let mut out = String::with_capacity(160);
    let nothing = log.method.is_none()
        && log.path.is_none()
        && log.query.is_none()
        && log.client_ip.is_none();
    if nothing {
        out.push_str("OSError: write error");
    } else if let Some(method) = &log.method {
        out.push_str(CTIME);
        out.push_str(
            " - uwsgi_response_write_body_do(): Broken pipe [core/writer.c line 341] during ",
        );
        out.push_str(method);
        out.push(' ');
        push_uri(&mut out, log, "");
        out.push_str(" (");
        push_or_dash(&mut out, log.client_ip.as_deref());
        out.push(')');
    } else {
        // Without a method only the SIGPIPE message can carry the path and the address.
        out.push_str(CTIME);
        out.push_str(" - ");
        out.push_str(SIGPIPE_FULL);
        out.push_str(" on request ");
        push_uri(&mut out, log, "");
        out.push_str(" (ip ");
        push_or_dash(&mut out, log.client_ip.as_deref());
        out.push_str(") !!!");
    }
    out
}

// ---------------------------------------------------------------------------------------
// nginx combined and gunicorn
// ---------------------------------------------------------------------------------------

// nginx: `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
// "$http_referer" "$http_user_agent"`; gunicorn: `%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s
// "%(f)s" "%(a)s"`. The two cannot be told apart by shape. nginx always prints a number of
// bytes, while gunicorn prints `-` when the response had no length, so a `-` there means
// gunicorn and everything else is called nginx: most gunicorn lines therefore read as
// `NginxCombined`, which is harmless because the fields are the same.

fn parse_combined(line: &str) -> Option<AccessLog> {
    let (addr, rest) = line.split_once(' ')?;
    let (ident, rest) = rest.split_once(' ')?;
    let (user, rest) = rest.split_once(' ')?;
    if addr.is_empty() || ident.is_empty() || user.is_empty() {
        return None;
    }
    // The time has a space in it, so it is skipped by its brackets, not as a token.
    let rest = rest.strip_prefix('[')?;
    let end = memchr(b']', rest.as_bytes())?;
    let rest = rest[end + 1..].strip_prefix(" \"")?;
    // nginx escapes `"` inside `$request` as `\x22`, so the next quote closes it.
    let end = memchr(b'"', rest.as_bytes())?;
    let request = &rest[..end];
    let rest = rest[end + 1..].strip_prefix(' ')?;
    let (status, rest) = split_token(rest);
    let (bytes, rest) = split_token(rest);

    let mut f = Fields {
        client_ip: dash_to_none(addr),
        remote_user: dash_to_none(user),
        status: status_token(status)?,
        response_bytes: count_token(bytes)?,
        ..Fields::default()
    };
    parse_request_line(request, &mut f);
    scan_combined_extras(rest, &mut f);
    let dialect = if f.response_bytes.is_none() {
        Dialect::Gunicorn
    } else {
        Dialect::NginxCombined
    };
    Some(f.into_log(Kind::Request, dialect))
}

/// Reads what shops append after the user agent: `$request_time` (seconds with a dot),
/// `$request_id` (32 hex digits, or a UUID from an upstream), or `key=value` pairs. The first
/// two quoted strings are the referer and the user agent and are skipped; the first duration
/// and the first request id found win. Integers without a key are ignored because they could
/// be any counter (`$request_length`, `$connection`…).
fn scan_combined_extras<'a>(mut rest: &'a str, f: &mut Fields<'a>) {
    let mut quoted = 0;
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            return;
        }
        if let Some(inner) = rest.strip_prefix('"') {
            let end = memchr(b'"', inner.as_bytes()).unwrap_or(inner.len());
            let token = &inner[..end];
            rest = inner.get(end + 1..).unwrap_or("");
            quoted += 1;
            // A quoted `key=value` is not read: its value could hold spaces, which the
            // `key=value` form that `format` writes could not carry back.
            if quoted > 2 {
                bare_extra(token, f);
            }
        } else {
            let (token, after) = split_token(rest);
            rest = after;
            match token.split_once('=') {
                Some((key, value)) => keyed_extra(key, unquote(value), f),
                None => bare_extra(token, f),
            }
        }
    }
}

fn bare_extra<'a>(token: &'a str, f: &mut Fields<'a>) {
    let duration = if f.duration_us.is_none() && token.contains('.') {
        parse_scaled(token, 6)
    } else {
        None
    };
    if duration.is_some() {
        f.duration_us = duration;
    } else if f.request_id.is_none() && looks_like_request_id(token) {
        f.request_id = Some(token);
    }
}

fn keyed_extra<'a>(key: &str, value: &'a str, f: &mut Fields<'a>) {
    match key {
        "rt" | "request_time" if f.duration_us.is_none() => {
            f.duration_us = parse_scaled(value, 6);
        }
        "rid" | "request_id" | "req_id" | "x_request_id" if f.request_id.is_none() => {
            f.request_id = dash_to_none(value);
        }
        _ => {}
    }
}

/// Removes one pair of surrounding quotes, but only when no other quote is inside, so that a
/// value keeps reading the same after `format` writes it without quotes.
fn unquote(value: &str) -> &str {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) if !inner.contains('"') => inner,
        _ => value,
    }
}

/// nginx's `$request_id` is 32 hex digits; proxies in front often pass a UUID instead.
fn looks_like_request_id(token: &str) -> bool {
    let b = token.as_bytes();
    match b.len() {
        32 => b.iter().all(u8::is_ascii_hexdigit),
        36 => b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        }),
        _ => false,
    }
}

fn format_combined(log: &AccessLog) -> String {
    let mut out = String::with_capacity(200);
    push_or_dash(&mut out, log.client_ip.as_deref());
    out.push_str(" - ");
    push_or_dash(&mut out, log.remote_user.as_deref());
    out.push_str(" [23/Jun/2018:17:18:02 +0300] \"");
    match &log.method {
        Some(method) => {
            out.push_str(method);
            out.push(' ');
            let start = out.len();
            push_uri(&mut out, log, "");
            let uri_has_space = out[start..].contains(' ');
            match &log.protocol {
                Some(protocol) => {
                    out.push(' ');
                    out.push_str(protocol);
                }
                // The last word of a request line with spaces is read as the protocol, so
                // an absent one must be written as `-` (read back as "no protocol").
                None if uri_has_space => out.push_str(" -"),
                None => {}
            }
        }
        None => out.push('-'),
    }
    out.push_str("\" ");
    push_num_or_dash(&mut out, log.status);
    out.push(' ');
    push_num_or_dash(&mut out, log.response_bytes);
    out.push_str(" \"-\" \"-\"");
    if let Some(us) = log.duration_us {
        out.push_str(" rt=");
        out.push_str(&seconds_text(us));
    }
    if let Some(id) = &log.request_id {
        out.push_str(" rid=");
        out.push_str(id);
    }
    out
}

// ---------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------

// Key names, in order of preference, as nginx `log_format … escape=json`, Django/structlog,
// Elastic Common Schema (`http.request.method`), pino-http (`req`/`res`) and Google Cloud
// (`httpRequest`) name them. A dotted name matches a literal dotted key or nested objects.
const METHOD_KEYS: &[&str] = &[
    "method",
    "request_method",
    "http_method",
    "request.method",
    "req.method",
    "http.request.method",
    "httpRequest.requestMethod",
];
const URI_KEYS: &[&str] = &[
    "path",
    "uri",
    "request_uri",
    "url",
    "request.url",
    "request.path",
    "request.uri",
    "req.url",
    "url.original",
    "url.full",
    "url.path",
    "httpRequest.requestUrl",
];
const QUERY_KEYS: &[&str] = &[
    "query",
    "query_string",
    "args",
    "request.query",
    "request.query_string",
    "url.query",
];
const PROTOCOL_KEYS: &[&str] = &[
    "protocol",
    "server_protocol",
    "request.protocol",
    "httpRequest.protocol",
];
const STATUS_KEYS: &[&str] = &[
    "status",
    "status_code",
    "response_status",
    "statusCode",
    "response.status",
    "response.status_code",
    "res.statusCode",
    "http.response.status_code",
    "httpRequest.status",
];
const BYTES_KEYS: &[&str] = &[
    "bytes",
    "body_bytes_sent",
    "response_bytes",
    "size",
    "bytes_sent",
    "content_length",
    "response.bytes",
    "response.size",
    "http.response.body.bytes",
    "httpRequest.responseSize",
];
const DURATION_US_KEYS: &[&str] = &["duration_us"];
const DURATION_MS_KEYS: &[&str] = &[
    "duration_ms",
    "elapsed_ms",
    "response_time_ms",
    "responseTime",
];
const DURATION_S_KEYS: &[&str] = &["duration", "request_time"];
const IP_KEYS: &[&str] = &[
    "remote_addr",
    "client_ip",
    "ip",
    "remote_ip",
    "client",
    "x_forwarded_for",
    "client.ip",
    "source.ip",
    "req.remoteAddress",
    "httpRequest.remoteIp",
];
const USER_KEYS: &[&str] = &["remote_user", "user", "user.name"];
const REQUEST_ID_KEYS: &[&str] = &[
    "request_id",
    "x_request_id",
    "requestId",
    "req_id",
    "trace_id",
    "request.id",
    "http.request.id",
];

fn parse_json(line: &str) -> Option<AccessLog> {
    // serde_json limits nesting depth, so hostile input cannot overflow the stack.
    let value: Value = serde_json::from_str(line).ok()?;
    let obj = value.as_object()?;

    let mut f = Fields {
        method: first(obj, METHOD_KEYS, |v| json_str(v).filter(|m| is_method(m))),
        protocol: first(obj, PROTOCOL_KEYS, json_str),
        status: first(obj, STATUS_KEYS, |v| {
            json_u64(v)
                .filter(|s| (100..=999).contains(s))
                .map(|s| s as u16)
        }),
        response_bytes: first(obj, BYTES_KEYS, json_u64),
        duration_us: first(obj, DURATION_US_KEYS, |v| json_scaled(v, 0))
            .or_else(|| first(obj, DURATION_MS_KEYS, |v| json_scaled(v, 3)))
            .or_else(|| first(obj, DURATION_S_KEYS, |v| json_scaled(v, 6))),
        // A forwarded-for value is a list; its first entry is the original client.
        client_ip: first(obj, IP_KEYS, |v| {
            json_str(v).and_then(|s| dash_to_none(s.split(',').next().unwrap_or("").trim()))
        }),
        remote_user: first(obj, USER_KEYS, json_str),
        request_id: first(obj, REQUEST_ID_KEYS, json_str),
        ..Fields::default()
    };
    if let Some(uri) = first(obj, URI_KEYS, json_str) {
        f.set_uri(uri);
    }
    // nginx's `$request` is the whole request line; it only fills what is still missing.
    if let Some(request) = obj.get("request").and_then(json_str) {
        let mut from_line = Fields::default();
        if request.starts_with('/') {
            from_line.set_uri(request);
        } else {
            parse_request_line(request, &mut from_line);
        }
        f.method = f.method.or(from_line.method);
        f.protocol = f.protocol.or(from_line.protocol);
        if f.path.is_none() && f.query.is_none() {
            f.path = from_line.path;
            f.query = from_line.query;
        }
    }
    // An explicit query key (nginx `$args`) wins over the query part of the URI.
    if let Some(query) = first(obj, QUERY_KEYS, json_str) {
        f.query = Some(query);
    }
    // Structured application logs are JSON too; without a method or a status this object
    // does not describe an HTTP request.
    if f.method.is_none() && f.status.is_none() {
        return None;
    }
    Some(f.into_log(Kind::Request, Dialect::Json))
}

fn first<'a, T>(
    obj: &'a Map<String, Value>,
    keys: &[&str],
    read: impl Fn(&'a Value) -> Option<T>,
) -> Option<T> {
    keys.iter().find_map(|key| lookup(obj, key).and_then(&read))
}

/// Finds `a.b.c` as a literal key, or as `b.c` inside the object under `a`.
fn lookup<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if let Some(value) = obj.get(key) {
        return Some(value);
    }
    let (head, tail) = key.split_once('.')?;
    lookup(obj.get(head)?.as_object()?, tail)
}

/// A string value; `""` and `-` are what nginx writes for unset variables.
fn json_str(value: &Value) -> Option<&str> {
    value.as_str().and_then(dash_to_none)
}

/// The floats that convert to a `u64` without saturating; NaN is outside it.
const U64_RANGE: std::ops::Range<f64> = 0.0..18_446_744_073_709_551_616.0;

/// A count given as a JSON integer, an integral float, or a string of digits.
fn json_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            let f = n.as_f64()?;
            (U64_RANGE.contains(&f) && f.fract() == 0.0).then_some(f as u64)
        }),
        Value::String(s) => parse_u64(s),
        _ => None,
    }
}

/// A duration in units of `10^-scale` seconds, converted to microseconds (`scale` is 6 for
/// seconds, 3 for milliseconds, 0 for microseconds). Strings are read exactly; floats are
/// rounded to the nearest microsecond.
fn json_scaled(value: &Value, scale: u32) -> Option<u64> {
    match value {
        Value::Number(n) => match n.as_u64() {
            Some(whole) => whole.checked_mul(10u64.pow(scale)),
            None => {
                let us = (n.as_f64()? * 10f64.powi(scale as i32)).round();
                U64_RANGE.contains(&us).then_some(us as u64)
            }
        },
        Value::String(s) => parse_scaled(s, scale),
        _ => None,
    }
}

fn format_json(log: &AccessLog) -> String {
    let mut obj = Map::new();
    let mut put_str = |key: &str, value: &Option<String>| {
        if let Some(v) = value {
            obj.insert(key.to_owned(), Value::from(v.as_str()));
        }
    };
    put_str("method", &log.method);
    put_str("path", &log.path);
    put_str("query", &log.query);
    put_str("protocol", &log.protocol);
    put_str("client_ip", &log.client_ip);
    put_str("remote_user", &log.remote_user);
    put_str("request_id", &log.request_id);
    if let Some(status) = log.status {
        obj.insert("status".to_owned(), Value::from(status));
    }
    if let Some(bytes) = log.response_bytes {
        obj.insert("bytes".to_owned(), Value::from(bytes));
    }
    if let Some(us) = log.duration_us {
        obj.insert("duration_us".to_owned(), Value::from(us));
    }
    Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Chainable setters, so that each expected record in a table fits on a line or two.
    trait Build {
        fn m(self, v: &str) -> Self;
        fn p(self, v: &str) -> Self;
        fn q(self, v: &str) -> Self;
        fn proto(self, v: &str) -> Self;
        fn st(self, v: u16) -> Self;
        fn b(self, v: u64) -> Self;
        fn us(self, v: u64) -> Self;
        fn ip(self, v: &str) -> Self;
        fn user(self, v: &str) -> Self;
        fn rid(self, v: &str) -> Self;
    }

    impl Build for AccessLog {
        fn m(mut self, v: &str) -> Self {
            self.method = Some(v.into());
            self
        }
        fn p(mut self, v: &str) -> Self {
            self.path = Some(v.into());
            self
        }
        fn q(mut self, v: &str) -> Self {
            self.query = Some(v.into());
            self
        }
        fn proto(mut self, v: &str) -> Self {
            self.protocol = Some(v.into());
            self
        }
        fn st(mut self, v: u16) -> Self {
            self.status = Some(v);
            self
        }
        fn b(mut self, v: u64) -> Self {
            self.response_bytes = Some(v);
            self
        }
        fn us(mut self, v: u64) -> Self {
            self.duration_us = Some(v);
            self
        }
        fn ip(mut self, v: &str) -> Self {
            self.client_ip = Some(v.into());
            self
        }
        fn user(mut self, v: &str) -> Self {
            self.remote_user = Some(v.into());
            self
        }
        fn rid(mut self, v: &str) -> Self {
            self.request_id = Some(v.into());
            self
        }
    }

    fn rec(kind: Kind, dialect: Dialect) -> AccessLog {
        AccessLog {
            kind,
            dialect,
            method: None,
            path: None,
            query: None,
            protocol: None,
            status: None,
            response_bytes: None,
            duration_us: None,
            client_ip: None,
            remote_user: None,
            request_id: None,
        }
    }

    fn uwsgi() -> AccessLog {
        rec(Kind::Request, Dialect::Uwsgi)
    }
    fn gone() -> AccessLog {
        rec(Kind::ClientGone, Dialect::UwsgiError)
    }
    fn nginx() -> AccessLog {
        rec(Kind::Request, Dialect::NginxCombined)
    }
    fn gunicorn() -> AccessLog {
        rec(Kind::Request, Dialect::Gunicorn)
    }
    fn json() -> AccessLog {
        rec(Kind::Request, Dialect::Json)
    }

    /// Checks a table and, for every line that parses, that writing the record back and
    /// reading it again gives the same record.
    fn check_table(table: &[(&str, Option<AccessLog>)]) {
        for (line, expected) in table {
            let got = parse(line);
            assert_eq!(&got, expected, "line: {line}");
            if let Some(log) = got {
                assert_eq!(
                    parse(&format(&log)),
                    Some(log.clone()),
                    "reformatted: {}",
                    format(&log)
                );
            }
        }
    }

    const L1: &str = "[pid: 20591|app: 0|req: 310/4946598] 95.165.12.7 () {46 vars in 981 bytes} [Sat Jun 23 17:17:41 2018] GET /api/v1/catalog/?page=2 => generated 18233 bytes in 41 msecs (HTTP/2.0 200) 7 headers in 260 bytes (1 switches on core 0)";

    #[test]
    fn uwsgi_lines() {
        let orders = uwsgi().m("POST").p("/api/v1/orders/");
        check_table(&[
            (
                L1,
                Some(
                    uwsgi()
                        .m("GET")
                        .p("/api/v1/catalog/")
                        .q("page=2")
                        .proto("HTTP/2.0")
                        .st(200)
                        .b(18233)
                        .us(41_000)
                        .ip("95.165.12.7"),
                ),
            ),
            (
                "[pid: 20595|app: 0|req: 3/4946641] 91.210.4.77 (manager) {54 vars in 1301 bytes} [Sat Jun 23 17:18:44 2018] POST /api/v1/orders/ => generated 99 bytes in 3 msecs (HTTP/2.0 429) 8 headers in 295 bytes (1 switches on core 0)",
                Some(
                    orders
                        .clone()
                        .proto("HTTP/2.0")
                        .st(429)
                        .b(99)
                        .us(3000)
                        .ip("91.210.4.77")
                        .user("manager"),
                ),
            ),
            // The runbook's copy of this line shows a bare `C` where uWSGI prints `()`.
            (
                "[pid: 20593|app: 0|req: 154/4946604] 176.114.214.14 C {48 vars in 1018 bytes} [Sat Jun 23 17:17:48 2018] POST /api/v1/orders/ => generated 99 bytes in 2 msecs (HTTP/2.0 429) 8 headers in 295 bytes (1 switches on core 0)",
                Some(
                    orders
                        .clone()
                        .proto("HTTP/2.0")
                        .st(429)
                        .b(99)
                        .us(2000)
                        .ip("176.114.214.14")
                        .user("C"),
                ),
            ),
            (
                "[pid: 1|app: 0|req: 1/1] 1.2.3.4 - {48 vars in 1018 bytes} [Sat Jun 23 17:17:48 2018] POST /api/v1/orders/ => generated 99 bytes in 2 msecs (HTTP/1.1 201) 8 headers in 295 bytes (1 switches on core 0)",
                Some(
                    orders
                        .clone()
                        .proto("HTTP/1.1")
                        .st(201)
                        .b(99)
                        .us(2000)
                        .ip("1.2.3.4"),
                ),
            ),
            (
                "[pid: 1|app: -1|req: -1/2] 2a02:6b8::1 () {30 vars in 500 bytes} [Sat Jun  2 01:02:03 2018] GET /static/app.js => generated 1234 bytes via sendfile() in 5 msecs (HTTP/1.1 200) 4 headers in 120 bytes (0 switches on core 3)",
                Some(
                    uwsgi()
                        .m("GET")
                        .p("/static/app.js")
                        .proto("HTTP/1.1")
                        .st(200)
                        .b(1234)
                        .us(5000)
                        .ip("2a02:6b8::1"),
                ),
            ),
            // Where uWSGI itself prints the `via` marker: after the unit.
            (
                "[pid: 1|app: 0|req: 1/1] 10.0.0.1 () {30 vars in 500 bytes} [Sat Jun 23 17:17:48 2018] GET /f => generated 7 bytes in 6 msecs via offload() (HTTP/1.1 200) 4 headers in 120 bytes (0 switches on core 0)",
                Some(
                    uwsgi()
                        .m("GET")
                        .p("/f")
                        .proto("HTTP/1.1")
                        .st(200)
                        .b(7)
                        .us(6000)
                        .ip("10.0.0.1"),
                ),
            ),
            (
                "[pid: 1|app: 0|req: 1/1] 10.0.0.1 () {30 vars in 500 bytes} [Sat Jun 23 17:17:48 2018] GET /r => generated 0 bytes via route() in 1 msecs (HTTP/1.1 302) 4 headers in 120 bytes (0 switches on core 0)",
                Some(
                    uwsgi()
                        .m("GET")
                        .p("/r")
                        .proto("HTTP/1.1")
                        .st(302)
                        .b(0)
                        .us(1000)
                        .ip("10.0.0.1"),
                ),
            ),
            (
                "[pid: 1|app: 0|req: 1/1] - () {30 vars in 500 bytes} [Sat Jun 23 17:17:48 2018] PROPFIND /dav/ => generated 10 bytes in 1503 micros (HTTP/1.1 207) 4 headers in 120 bytes (0 switches on core 0)",
                Some(
                    uwsgi()
                        .m("PROPFIND")
                        .p("/dav/")
                        .proto("HTTP/1.1")
                        .st(207)
                        .b(10)
                        .us(1503),
                ),
            ),
            // uWSGI's fallback when the line would not fit in 4096 bytes.
            (
                "[pid: 1|app: 0|req: 1/1] 0.0.0.0 () {30 vars in 500 bytes} [Sat Jun 23 17:17:48 2018] - - => generated 10 bytes in 3 msecs (- 414) 4 headers in 120 bytes (0 switches on core 0)",
                Some(uwsgi().st(414).b(10).us(3000).ip("0.0.0.0")),
            ),
            (
                "{address space usage: 10 bytes/0MB} {rss usage: 5 bytes/0MB} [pid: 1|app: 0|req: 1/1] 1.1.1.1 () {30 vars in 500 bytes} [Sat Jun 23 17:17:48 2018] DELETE /api/v1/orders/7/?x=1&y=2 => generated 0 bytes in 9 msecs (HTTP/1.1 204) 4 headers in 120 bytes (0 switches on core 0)",
                Some(
                    uwsgi()
                        .m("DELETE")
                        .p("/api/v1/orders/7/")
                        .q("x=1&y=2")
                        .proto("HTTP/1.1")
                        .st(204)
                        .b(0)
                        .us(9000)
                        .ip("1.1.1.1"),
                ),
            ),
            // An absolute-form target loses its scheme and host; a lowercase method is not one.
            (
                "[pid: 1|app: 0|req: 1/1] 1.1.1.1 () {1 vars in 2 bytes} [Sat Jun 23 17:17:48 2018] get http://shop.example/a?b=c => generated 1 bytes in 1 msecs (HTTP/1.1 405) 1 headers in 2 bytes (0 switches on core 0)",
                Some(
                    uwsgi()
                        .p("/a")
                        .q("b=c")
                        .proto("HTTP/1.1")
                        .st(405)
                        .b(1)
                        .us(1000)
                        .ip("1.1.1.1"),
                ),
            ),
            // A status outside 100..=999 is no status.
            (
                "[pid: 1|app: 0|req: 1/1] 1.1.1.1 () {1 vars in 2 bytes} [Sat Jun 23 17:17:48 2018] GET / => generated 0 bytes in 1 msecs (HTTP/1.1 0) 0 headers in 0 bytes (0 switches on core 0)",
                Some(
                    uwsgi()
                        .m("GET")
                        .p("/")
                        .proto("HTTP/1.1")
                        .b(0)
                        .us(1000)
                        .ip("1.1.1.1"),
                ),
            ),
            // Numbers that do not fit, unknown units and missing parts: not an access line.
            (
                "[pid: 1|app: 0|req: 1/1] 1.1.1.1 () {1 vars in 2 bytes} [Sat Jun 23 17:17:48 2018] GET / => generated 99999999999999999999 bytes in 1 msecs (HTTP/1.1 200) x",
                None,
            ),
            (
                "[pid: 1|app: 0|req: 1/1] 1.1.1.1 () {1 vars in 2 bytes} [Sat Jun 23 17:17:48 2018] GET / => generated 1 bytes in 18446744073709552 msecs (HTTP/1.1 200) x",
                None,
            ),
            (
                "[pid: 1|app: 0|req: 1/1] 1.1.1.1 () {1 vars in 2 bytes} [Sat Jun 23 17:17:48 2018] GET / => generated 1 bytes in 1 secs (HTTP/1.1 200) x",
                None,
            ),
            (
                "[pid: 1|app: 0|req: 1/1] 1.1.1.1 () {1 vars in 2 bytes} [Sat Jun 23 17:17:48 2018] GET / => generated +1 bytes in 1 msecs (HTTP/1.1 200) x",
                None,
            ),
            (
                "[pid: 1|app: 0|req: 1/1] 1.1.1.1 () {1 vars in 2 bytes} [Sat Jun 23 17:17:48 2018] GET / => generated 1 bytes in 1 msecs (HTTP/1.1 OK) x",
                None,
            ),
            (
                "[pid: 1|app: 0|req: 1/1] 1.1.1.1 () [Sat Jun 23 17:17:48 2018] GET / => generated 1 bytes in 1 msecs (HTTP/1.1 200) x",
                None,
            ),
        ]);
    }

    #[test]
    fn uwsgi_error_lines() {
        let ip = "46.39.55.31";
        check_table(&[
            (
                "Sat Jun 23 17:18:21 2018 - uwsgi_response_write_body_do(): Broken pipe [core/writer.c line 341] during POST /api/v1/orders/ (46.39.55.31)",
                Some(gone().m("POST").p("/api/v1/orders/").ip(ip)),
            ),
            (
                "uwsgi_response_writev_headers_and_body_do(): Broken pipe [core/writer.c line 306] during GET /x?y=1 (1.2.3.4)",
                Some(gone().m("GET").p("/x").q("y=1").ip("1.2.3.4")),
            ),
            (
                "Sat Jun  2 07:08:09 2018 - uwsgi_response_write_headers_do(): Connection reset by peer [core/writer.c line 248] during GET /api/v1/orders/?a=b (2a02:6b8::1)",
                Some(
                    gone()
                        .m("GET")
                        .p("/api/v1/orders/")
                        .q("a=b")
                        .ip("2a02:6b8::1"),
                ),
            ),
            // Printed when uWSGI does not know the request.
            (
                "Sat Jun 23 17:18:21 2018 - uwsgi_response_write_body_do() Broken pipe [core/writer.c line 341] ",
                Some(gone()),
            ),
            (
                "Sat Jun 23 17:18:21 2018 - SIGPIPE: writing to a closed pipe/socket/fd (probably the client disconnected) on request /api/v1/orders/ (ip 46.39.55.31) !!!",
                Some(gone().p("/api/v1/orders/").ip(ip)),
            ),
            (
                "SIGPIPE: writing to a closed pipe/socket/fd (probably the client disconnected) on request /a?b=c (ip ::1) !!!",
                Some(gone().p("/a").q("b=c").ip("::1")),
            ),
            (
                "SIGPIPE: writing to a closed pipe/socket/fd (probably the client disconnected) !!!",
                Some(gone()),
            ),
            ("OSError: write error", Some(gone())),
            ("IOError: write error", Some(gone())),
            (
                "Sat Jun 23 17:18:21 2018 - OSError: write error",
                Some(gone()),
            ),
            // A timeout is a server-side problem, not a client that went away.
            (
                "Sat Jun 23 17:18:21 2018 - uwsgi_response_write_body_do() TIMEOUT !!!",
                None,
            ),
            ("OSError: [Errno 28] No space left on device", None),
            ("Sat Jun 23 17:18:21 2018 - something else", None),
        ]);
    }

    #[test]
    fn combined_and_gunicorn_lines() {
        let rid = "0123456789abcdef0123456789abcdef";
        let order = |d: AccessLog| {
            d.m("POST")
                .p("/api/v1/orders/")
                .proto("HTTP/2.0")
                .st(400)
                .b(187)
                .ip("188.32.201.9")
        };
        check_table(&[
            (
                r#"188.32.201.9 - - [23/Jun/2018:17:18:02 +0300] "POST /api/v1/orders/ HTTP/2.0" 400 187 "https://example-shop.ru/cart/" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/67.0.3396.87 Safari/537.36""#,
                Some(order(nginx())),
            ),
            (
                r#"188.32.201.9 - - [23/Jun/2018:17:18:02 +0300] "POST /api/v1/orders/ HTTP/2.0" 400 187 "-" "curl/8.0" 0.187 0123456789abcdef0123456789abcdef"#,
                Some(order(nginx()).us(187_000).rid(rid)),
            ),
            (
                r#"188.32.201.9 - - [23/Jun/2018:17:18:02 +0300] "POST /api/v1/orders/ HTTP/2.0" 400 187 "-" "curl/8.0" "0.187" "0123456789abcdef0123456789abcdef""#,
                Some(order(nginx()).us(187_000).rid(rid)),
            ),
            (
                r#"188.32.201.9 - - [23/Jun/2018:17:18:02 +0300] "POST /api/v1/orders/ HTTP/2.0" 400 187 "-" "curl/8.0" rt=0.187 uct="0.000" rid=abc"#,
                Some(order(nginx()).us(187_000).rid("abc")),
            ),
            (
                r#"188.32.201.9 - - [23/Jun/2018:17:18:02 +0300] "POST /api/v1/orders/ HTTP/2.0" 400 187 "-" "curl/8.0" request_time="1.5" request_id="f00d""#,
                Some(order(nginx()).us(1_500_000).rid("f00d")),
            ),
            (
                r#"188.32.201.9 - - [23/Jun/2018:17:18:02 +0300] "POST /api/v1/orders/ HTTP/2.0" 400 187 "-" "curl/8.0" rt=- rid=-"#,
                Some(order(nginx())),
            ),
            (
                r#"10.0.0.5 - alice [23/Jun/2018:17:18:02 +0300] "GET /account/?tab=orders HTTP/1.1" 200 5120 "-" "-""#,
                Some(
                    nginx()
                        .m("GET")
                        .p("/account/")
                        .q("tab=orders")
                        .proto("HTTP/1.1")
                        .st(200)
                        .b(5120)
                        .ip("10.0.0.5")
                        .user("alice"),
                ),
            ),
            // Common log format: no referer and user agent.
            (
                r#"::1 - - [23/Jun/2018:17:18:02 +0300] "HEAD / HTTP/1.0" 200 0"#,
                Some(
                    nginx()
                        .m("HEAD")
                        .p("/")
                        .proto("HTTP/1.0")
                        .st(200)
                        .b(0)
                        .ip("::1"),
                ),
            ),
            (
                r#"127.0.0.1 - - [23/Jun/2018:17:18:02 +0000] "GET /api/v1/orders/ HTTP/1.1" 200 2 "-" "python-requests/2.31""#,
                Some(
                    nginx()
                        .m("GET")
                        .p("/api/v1/orders/")
                        .proto("HTTP/1.1")
                        .st(200)
                        .b(2)
                        .ip("127.0.0.1"),
                ),
            ),
            (
                r#"127.0.0.1 - - [23/Jun/2018:17:18:02 +0000] "GET /api/v1/orders/ HTTP/1.1" 200 - "-" "python-requests/2.31""#,
                Some(
                    gunicorn()
                        .m("GET")
                        .p("/api/v1/orders/")
                        .proto("HTTP/1.1")
                        .st(200)
                        .ip("127.0.0.1"),
                ),
            ),
            // A request line that is `-` or not a request keeps only the status and counts.
            (
                r#"5.6.7.8 - - [23/Jun/2018:17:18:02 +0300] "-" 400 0 "-" "-""#,
                Some(nginx().st(400).b(0).ip("5.6.7.8")),
            ),
            (
                r#"5.6.7.8 - - [23/Jun/2018:17:18:02 +0300] "\x16\x03\x01\x02\x00\x01\x00\x01\xFC\x03\x03" 400 157 "-" "-""#,
                Some(nginx().st(400).b(157).ip("5.6.7.8")),
            ),
            (
                r#"5.6.7.8 - - [23/Jun/2018:17:18:02 +0300] "GET /" 400 0 "-" "-""#,
                Some(nginx().m("GET").p("/").st(400).b(0).ip("5.6.7.8")),
            ),
            (
                r#"5.6.7.8 - - [23/Jun/2018:17:18:02 +0300] "CONNECT shop.example:443 HTTP/1.1" 405 0 "-" "-""#,
                Some(
                    nginx()
                        .m("CONNECT")
                        .proto("HTTP/1.1")
                        .st(405)
                        .b(0)
                        .ip("5.6.7.8"),
                ),
            ),
            // Without a protocol the last word is still split off as one; an empty one
            // after a trailing space is no protocol, and the path keeps what came before.
            (
                r#"5.6.7.8 - - [23/Jun/2018:17:18:02 +0300] "POST /x HTTP/2.0 " 400 0"#,
                Some(
                    nginx()
                        .m("POST")
                        .p("/x HTTP/2.0")
                        .st(400)
                        .b(0)
                        .ip("5.6.7.8"),
                ),
            ),
            // Not combined: missing quotes, a status that is no number, a byte count that
            // does not fit.
            ("5.6.7.8 - - [23/Jun/2018:17:18:02 +0300] GET / 200 0", None),
            (
                r#"5.6.7.8 - - [23/Jun/2018:17:18:02 +0300] "GET /" OK 0"#,
                None,
            ),
            (
                r#"5.6.7.8 - - [23/Jun/2018:17:18:02 +0300] "GET /" 200 18446744073709551616"#,
                None,
            ),
            (
                r#"5.6.7.8 - - [23/Jun/2018:17:18:02 +0300] "GET /" 200"#,
                None,
            ),
        ]);
    }

    #[test]
    fn json_lines() {
        check_table(&[
            (
                r#"{"method":"POST","path":"/api/v1/orders/","status":201,"request_time":0.187,"remote_addr":"46.39.55.2"}"#,
                Some(
                    json()
                        .m("POST")
                        .p("/api/v1/orders/")
                        .st(201)
                        .us(187_000)
                        .ip("46.39.55.2"),
                ),
            ),
            (
                r#"  {"request_method":"GET","request_uri":"/c/?page=2","server_protocol":"HTTP/2.0","status":"200","body_bytes_sent":"512","request_time":"0.041","x_forwarded_for":"1.2.3.4, 10.0.0.1","remote_user":"-","request_id":"abc"}"#,
                Some(
                    json()
                        .m("GET")
                        .p("/c/")
                        .q("page=2")
                        .proto("HTTP/2.0")
                        .st(200)
                        .b(512)
                        .us(41_000)
                        .ip("1.2.3.4")
                        .rid("abc"),
                ),
            ),
            // nginx `escape=json` with `$uri` and `$args` (empty when there are none).
            (
                r#"{"request":"POST /api/v1/orders/?x=1 HTTP/1.1","uri":"/api/v1/orders/","args":"","status":400,"bytes_sent":187}"#,
                Some(
                    json()
                        .m("POST")
                        .p("/api/v1/orders/")
                        .proto("HTTP/1.1")
                        .st(400)
                        .b(187),
                ),
            ),
            (
                r#"{"request":"POST /api/v1/orders/?x=1 HTTP/1.1","status":400}"#,
                Some(
                    json()
                        .m("POST")
                        .p("/api/v1/orders/")
                        .q("x=1")
                        .proto("HTTP/1.1")
                        .st(400),
                ),
            ),
            (
                r#"{"http_method":"PUT","url":"https://shop.example/api/v1/orders/5?force=1","status_code":409,"duration_ms":12.5,"client_ip":"::1","user":"bob","requestId":"r-1"}"#,
                Some(
                    json()
                        .m("PUT")
                        .p("/api/v1/orders/5")
                        .q("force=1")
                        .st(409)
                        .us(12_500)
                        .ip("::1")
                        .user("bob")
                        .rid("r-1"),
                ),
            ),
            (
                r#"{"request":{"method":"POST","url":"/api/v1/orders/"},"response":{"status":502},"elapsed_ms":30001}"#,
                Some(json().m("POST").p("/api/v1/orders/").st(502).us(30_001_000)),
            ),
            (
                r#"{"http":{"request":{"method":"GET","id":"ecs-1"},"response":{"status_code":200,"body":{"bytes":10}}},"url":{"path":"/p","query":"a=b"},"client":{"ip":"9.9.9.9"}}"#,
                Some(
                    json()
                        .m("GET")
                        .p("/p")
                        .q("a=b")
                        .st(200)
                        .b(10)
                        .ip("9.9.9.9")
                        .rid("ecs-1"),
                ),
            ),
            (
                r#"{"http.request.method":"DELETE","url.path":"/d","http.response.status_code":204}"#,
                Some(json().m("DELETE").p("/d").st(204)),
            ),
            (
                r#"{"level":30,"req":{"id":1,"method":"GET","url":"/x?y","remoteAddress":"::ffff:1.2.3.4"},"res":{"statusCode":304},"responseTime":4}"#,
                Some(
                    json()
                        .m("GET")
                        .p("/x")
                        .q("y")
                        .st(304)
                        .us(4000)
                        .ip("::ffff:1.2.3.4"),
                ),
            ),
            (
                r#"{"status":"error","status_code":500.0,"duration_us":77,"query_string":"q=1"}"#,
                Some(json().st(500).us(77).q("q=1")),
            ),
            // A status alone is enough; a method alone too.
            (r#"{"status":404}"#, Some(json().st(404))),
            (r#"{"method":"OPTIONS"}"#, Some(json().m("OPTIONS"))),
            // Application logs without method or status are not access lines.
            (
                r#"{"event":"order created","order_id":1187,"level":"info"}"#,
                None,
            ),
            (r#"{"method":"get","status":"ok"}"#, None),
            (r#"{"status":42}"#, None),
            (r#"[1,2,3]"#, None),
            (r#"{"method":"GET""#, None),
            (r#"{"method":"GET"} trailing"#, None),
        ]);
    }

    #[test]
    fn garbage_is_not_an_access_line() {
        let table: &[(&str, Option<AccessLog>)] = &[
            ("", None),
            ("   ", None),
            ("[pid:", None),
            ("[pid: ", None),
            ("[pid: 1]", None),
            ("[pid: 1|app: 0|req: 1/1] 1.2.3.4 (", None),
            ("{", None),
            ("{address space usage:", None),
            ("-", None),
            ("- - - [", None),
            ("- - - [] \"", None),
            ("Sat Jun 23 17:18:21 2018 - ", None),
            ("Traceback (most recent call last):", None),
            ("Internal Server Error: /api/v1/orders/", None),
            ("\u{0}\u{1}\u{fffd}", None),
            ("ÿ€ - - [é] \"ü\" 2", None),
        ];
        check_table(table);
    }

    /// Cuts every reference line at every character boundary: nothing may panic, and what
    /// does parse must survive a round trip through `format`.
    #[test]
    fn every_prefix_of_every_reference_line() {
        let lines = FIXTURE_LOG.lines().map(message_of).chain([
            r#"188.32.201.9 - - [23/Jun/2018:17:18:02 +0300] "POST /api/v1/orders/ HTTP/2.0" 400 187 "-" "curl/8.0" rt=0.187 rid=abc 0.5 0123456789abcdef0123456789abcdef"#,
            r#"{"request":{"method":"POST","url":"https://a.b/api/v1/orders/?x=1"},"response":{"status":502},"elapsed_ms":30001,"x_forwarded_for":"1.2.3.4, 5.6.7.8"}"#,
            "uwsgi_response_writev_headers_and_body_do(): Connection reset by peer [core/writer.c line 306] during GET /x?y=1 (1.2.3.4)",
            "{address space usage: 10 bytes/0MB} {rss usage: 5 bytes/0MB} [pid: 1|app: 0|req: 1/1] 1.1.1.1 (u) {30 vars in 500 bytes} [Sat Jun 23 17:17:48 2018] GET /a => generated 1 bytes via sendfile() in 9 micros via route() (HTTP/1.1 204) x",
        ]);
        for line in lines {
            for (cut, _) in line.char_indices().chain([(line.len(), ' ')]) {
                let prefix = &line[..cut];
                if let Some(log) = parse(prefix) {
                    assert_invariants(&log);
                    assert_eq!(parse(&format(&log)), Some(log), "prefix: {prefix}");
                }
            }
        }
    }

    const FIXTURE_LOG: &str = include_str!("../../testdata/uwsgi-syslog.log");
    const FIXTURE_TSV: &str = include_str!("../../testdata/uwsgi-syslog.expected.tsv");

    /// Removes the RFC 3164 header: the message starts after the first ": " that follows the
    /// `<PRI>`; the header's own time has colons but none followed by a space.
    fn message_of(line: &str) -> &str {
        let after_pri = &line[line.find('>').expect("PRI") + 1..];
        after_pri.split_once(": ").expect("tag").1
    }

    #[test]
    fn reference_fixture() {
        let expected: Vec<&str> = FIXTURE_TSV
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect();
        let lines: Vec<&str> = FIXTURE_LOG.lines().collect();
        assert_eq!(lines.len(), expected.len());
        assert_eq!(lines.len(), 15);
        for (line, row) in lines.iter().zip(&expected) {
            let cols: Vec<&str> = row.split('\t').collect();
            let (no, kind, method, target, status, ip) =
                (cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]);
            let got = parse(message_of(line));
            if no == "9" {
                // `OSError: write error` is evidence that a client went away, so the parser
                // reports ClientGone; it names no request to attach to, so the lost-order
                // detector treats it as "other", which is what the TSV records.
                assert_eq!(kind, "other");
                assert_eq!(got, Some(gone()), "line 9");
                continue;
            }
            let log = got.unwrap_or_else(|| panic!("line {no} did not parse"));
            let want_kind = match kind {
                "request" => Kind::Request,
                "client_gone" => Kind::ClientGone,
                other => panic!("unknown kind {other}"),
            };
            let dash = |s: &str| (s != "-").then(|| s.to_owned());
            let got_target = log.path.clone().map(|p| match &log.query {
                Some(q) => std::format!("{p}?{q}"),
                None => p,
            });
            assert_eq!(log.kind, want_kind, "line {no}");
            assert_eq!(log.method, dash(method), "line {no}");
            assert_eq!(got_target, dash(target), "line {no}");
            assert_eq!(log.status.map(|s| s.to_string()), dash(status), "line {no}");
            assert_eq!(log.client_ip, dash(ip), "line {no}");
            let dialect = match no {
                "15" => Dialect::NginxCombined,
                "7" | "8" => Dialect::UwsgiError,
                _ => Dialect::Uwsgi,
            };
            assert_eq!(log.dialect, dialect, "line {no}");
        }
        // The remote user of line 12 is not in the TSV's columns, only in its notes.
        assert_eq!(
            parse(message_of(lines[11])).unwrap().remote_user.as_deref(),
            Some("manager")
        );
    }

    #[test]
    fn serializes_without_absent_fields() {
        let log = parse(L1).unwrap();
        assert_eq!(
            serde_json::to_string(&log).unwrap(),
            r#"{"kind":"request","dialect":"uwsgi","method":"GET","path":"/api/v1/catalog/","query":"page=2","protocol":"HTTP/2.0","status":200,"response_bytes":18233,"duration_us":41000,"client_ip":"95.165.12.7"}"#
        );
        assert_eq!(
            serde_json::to_string(&gone()).unwrap(),
            r#"{"kind":"client_gone","dialect":"uwsgi_error"}"#
        );
    }

    fn assert_invariants(log: &AccessLog) {
        if let Some(status) = log.status {
            assert!((100..=999).contains(&status));
        }
        if let Some(path) = &log.path {
            assert!(
                path.starts_with('/') && !path.contains('?'),
                "path {path:?}"
            );
        }
        if let Some(method) = &log.method {
            assert!(is_method(method), "method {method:?}");
        }
        assert_ne!(log.query.as_deref(), Some(""));
        assert_eq!(
            log.kind == Kind::ClientGone,
            log.dialect == Dialect::UwsgiError
        );
    }

    // ---- generators ----------------------------------------------------------------

    fn method() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "PROPFIND"])
                .prop_map(String::from),
            1 => "[A-Z]{1,12}",
        ]
    }

    /// Paths as servers log them: no spaces, quotes or `?`.
    fn path() -> impl Strategy<Value = String> {
        "(/[a-zA-Z0-9_.~%:@!$&'()*+,;=-]{0,10}){1,4}/?"
    }

    fn query() -> impl Strategy<Value = String> {
        "[a-z0-9_]{1,8}=[a-zA-Z0-9%._~+/?-]{0,12}(&[a-z]{1,6}=[a-z0-9]{0,6}){0,3}"
    }

    fn protocol() -> impl Strategy<Value = String> {
        prop::sample::select(vec!["HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/3.0"])
            .prop_map(String::from)
    }

    fn ip() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
            any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
        ]
    }

    fn user() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9][a-zA-Z0-9._@-]{0,15}"
    }

    fn request_id() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9a-f]{32}",
            "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[a-zA-Z0-9][a-zA-Z0-9_.:-]{0,23}",
        ]
    }

    fn duration() -> impl Strategy<Value = u64> {
        prop_oneof![
            (0u64..120_000).prop_map(|ms| ms * 1000),
            0u64..120_000_000,
            any::<u64>()
        ]
    }

    fn bytes() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..10_000_000, any::<u64>()]
    }

    fn status() -> impl Strategy<Value = u16> {
        100u16..600
    }

    use proptest::option::of;

    fn uwsgi_log() -> impl Strategy<Value = AccessLog> {
        (
            (of(method()), of(path()), of(query()), of(protocol())),
            (of(status()), of(bytes()), of(duration())),
            (of(ip()), of(user())),
        )
            .prop_map(
                |(
                    (method, path, query, protocol),
                    (status, response_bytes, duration_us),
                    (client_ip, remote_user),
                )| {
                    AccessLog {
                        method,
                        path,
                        query,
                        protocol,
                        status,
                        response_bytes,
                        duration_us,
                        client_ip,
                        remote_user,
                        ..uwsgi()
                    }
                },
            )
    }

    fn uwsgi_error_log() -> impl Strategy<Value = AccessLog> {
        (of(method()), of(path()), of(query()), of(ip())).prop_map(
            |(method, path, query, client_ip)| AccessLog {
                method,
                path,
                query,
                client_ip,
                ..gone()
            },
        )
    }

    /// nginx and gunicorn lines; the byte count decides which of the two a line is.
    fn combined_log(gunicorn_dialect: bool) -> impl Strategy<Value = AccessLog> {
        (
            of((method(), of(path()), of(query()), of(protocol()))),
            (of(status()), bytes(), of(duration())),
            (of(ip()), of(user()), of(request_id())),
        )
            .prop_map(
                move |(
                    request,
                    (status, bytes, duration_us),
                    (client_ip, remote_user, request_id),
                )| {
                    let (method, path, query, protocol) = match request {
                        Some((m, p, q, proto)) => (Some(m), p, q, proto),
                        None => (None, None, None, None),
                    };
                    let base = if gunicorn_dialect {
                        gunicorn()
                    } else {
                        nginx()
                    };
                    AccessLog {
                        method,
                        path,
                        query,
                        protocol,
                        status,
                        response_bytes: (!gunicorn_dialect).then_some(bytes),
                        duration_us,
                        client_ip,
                        remote_user,
                        request_id,
                        ..base
                    }
                },
            )
    }

    /// JSON carries any string, so these include quotes, backslashes and non-ASCII text.
    fn json_log() -> impl Strategy<Value = AccessLog> {
        let text = || "[a-zA-Z0-9][^\u{0}]{0,20}";
        (
            (
                of(method()),
                of("/[^?]{0,20}"),
                // Not "-" or "": in JSON those mean "absent".
                of(text()),
                of(protocol()),
            ),
            (of(status()), of(bytes()), of(duration())),
            (of(ip()), of(text()), of(text())),
        )
            .prop_map(
                |(
                    (method, path, query, protocol),
                    (status, response_bytes, duration_us),
                    (client_ip, remote_user, request_id),
                )| {
                    AccessLog {
                        method,
                        path,
                        query,
                        protocol,
                        // A JSON line needs a method or a status to be an access line at all.
                        status: status.or(Some(200)),
                        response_bytes,
                        duration_us,
                        client_ip,
                        remote_user,
                        request_id,
                        ..json()
                    }
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn roundtrip_uwsgi(log in uwsgi_log()) {
            prop_assert_eq!(parse(&format(&log)), Some(log));
        }

        #[test]
        fn roundtrip_uwsgi_error(log in uwsgi_error_log()) {
            prop_assert_eq!(parse(&format(&log)), Some(log));
        }

        #[test]
        fn roundtrip_nginx(log in combined_log(false)) {
            prop_assert_eq!(parse(&format(&log)), Some(log));
        }

        #[test]
        fn roundtrip_gunicorn(log in combined_log(true)) {
            prop_assert_eq!(parse(&format(&log)), Some(log));
        }

        #[test]
        fn roundtrip_json(log in json_log()) {
            prop_assert_eq!(parse(&format(&log)), Some(log));
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>()) {
            if let Some(log) = parse(&s) {
                assert_invariants(&log);
                prop_assert_eq!(parse(&format(&log)), Some(log));
            }
        }

        /// Random text spliced into real lines reaches far deeper into each reader than
        /// random strings do.
        #[test]
        fn never_panics_on_mangled_lines(
            which in 0usize..15,
            at in any::<prop::sample::Index>(),
            cut in any::<prop::sample::Index>(),
            insert in "[ -~]{0,6}|[\\[\\](){}\" ?=./:-]{0,3}|\\PC{0,3}",
        ) {
            let line = message_of(FIXTURE_LOG.lines().nth(which).unwrap());
            let boundaries: Vec<usize> = line.char_indices().map(|(i, _)| i).chain([line.len()]).collect();
            let start = boundaries[at.index(boundaries.len())];
            let end = boundaries[cut.index(boundaries.len())].max(start);
            let mangled = std::format!("{}{}{}", &line[..start], insert, &line[end..]);
            if let Some(log) = parse(&mangled) {
                assert_invariants(&log);
                prop_assert_eq!(parse(&format(&log)), Some(log), "mangled: {}", mangled);
            }
        }
    }
}
