//! `ingest-load alert-latency`: the alert-latency benchmark of
//! `scripts/bench-alerts` (see BENCHMARKS.md). It measures, under background
//! ingest load, the time from a log line being sent to orderwatch's syslog TCP
//! listener until the webhook of an immediate alert that matches it arrives.
//!
//! 1. Two std-only HTTP/1.1 receivers on 127.0.0.1 (ephemeral ports; keep-alive,
//!    `Content-Length` and chunked bodies, `Expect: 100-continue`): one for the
//!    marker search's webhook, one for every other search's, so a periodic
//!    digest never queues in front of a marker in the notifier's
//!    per-destination limit. Each delivery's receipt `Instant` is taken as soon
//!    as its body is complete; its form field `payload` is URL-decoded and
//!    parsed (a small JSON reader), and each event's `id` and `message` kept.
//! 2. `--searches` − 1 realistic saved searches that rarely or never match
//!    (words, phrases, `OR`, negations, `program:`, `status:>=500`, `path:/api/*`,
//!    `method:POST`, `ip:`, `duration:`, …) with a periodic `1h` alert each, so
//!    the matcher has real work; then the marker search, the phrase
//!    `"latency-marker run=<id>"`, with an immediate alert (`--batch`).
//! 3. One TCP connection sends the generated uWSGI/nginx stream of the ingest
//!    benchmark (pre-rendered, replayed from a pool) at `--rate` lines/s, in
//!    10 ms slices, for the whole run. A sender more than 100 ms behind its
//!    schedule (back-pressure) does not burst to catch up; the lines it skipped
//!    are reported.
//! 4. After `--warmup-ms`, a second TCP connection sends one marker line every
//!    `--marker-interval-ms`: `<30>… website-backend website-backend:
//!    latency-marker run=<id> seq=N`; the `Instant` just before its write is
//!    the start of its latency.
//! 5. After the last marker it waits up to `--wait-secs` for the rest, then
//!    prints `key=value` lines: markers sent, delivered, missing, latency
//!    percentiles (nearest rank) from the send to the receipt of the first
//!    delivery holding that marker (events deduplicated by id: delivery is at
//!    least once), the deliveries, the background rate achieved, and with
//!    `--pid` orderwatch's CPU time over the marker phase. It deletes the
//!    searches it created (unless `--keep-searches yes`) and exits 3 when a
//!    marker is missing.
//!
//! The webhooks point at 127.0.0.1: orderwatch must run on this machine.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{Framing, Host, Rng, die, frame, local, proc_cpu_seconds, self_cpu_seconds, start_line, stored_tcp};

// ---------------------------------------------------------------- options

struct Opts {
    http: String,
    tcp: String,
    token: String,
    rate: u64,
    searches: usize,
    markers: u64,
    interval: Duration,
    batch: String,
    pid: Option<String>,
    warmup: Duration,
    wait: Duration,
    framing: Framing,
    seed: u64,
    pool_lines: Option<u64>,
    csv: Option<String>,
    keep_searches: bool,
}

const USAGE: &str =
    "usage: ingest-load alert-latency --http HOST:PORT --tcp HOST:PORT [--token T (default $ORDERWATCH_API_TOKEN)]
                   [--rate 50000] [--searches 100] [--markers 300] [--marker-interval-ms 200] [--batch 500ms]
                   [--warmup-ms 2000] [--wait-secs 10] [--framing octet|lf] [--seed 1] [--pool-lines N]
                   [--pid ORDERWATCH_PID] [--csv PATH] [--keep-searches yes|no]
  The webhook receivers listen on 127.0.0.1: orderwatch must run on this machine.";

fn parse_opts(args: &[String]) -> Opts {
    let mut o = Opts {
        http: String::new(),
        tcp: String::new(),
        token: std::env::var("ORDERWATCH_API_TOKEN").unwrap_or_default(),
        rate: 50_000,
        searches: 100,
        markers: 300,
        interval: Duration::from_millis(200),
        batch: "500ms".into(),
        pid: None,
        warmup: Duration::from_millis(2000),
        wait: Duration::from_secs(10),
        framing: Framing::Octet,
        seed: 1,
        pool_lines: None,
        csv: None,
        keep_searches: false,
    };
    let mut i = 0;
    while i < args.len() {
        let key = args[i].as_str();
        if key == "-h" || key == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let val = args.get(i + 1).unwrap_or_else(|| die(&format!("{key} needs a value\n{USAGE}"))).clone();
        let num = |v: &str| -> u64 {
            v.replace('_', "").parse().unwrap_or_else(|_| die(&format!("{key}: not a number: {v}")))
        };
        let yes_no = |v: &str| -> bool {
            match v {
                "yes" => true,
                "no" => false,
                _ => die(&format!("{key} is yes or no")),
            }
        };
        match key {
            "--http" => o.http = val,
            "--tcp" => o.tcp = val,
            "--token" => o.token = val,
            "--rate" => o.rate = num(&val),
            "--searches" => o.searches = num(&val) as usize,
            "--markers" => o.markers = num(&val),
            "--marker-interval-ms" => o.interval = Duration::from_millis(num(&val)),
            "--batch" => o.batch = val,
            "--pid" => o.pid = Some(num(&val).to_string()),
            "--warmup-ms" => o.warmup = Duration::from_millis(num(&val)),
            "--wait-secs" => o.wait = Duration::from_secs(num(&val)),
            "--framing" => {
                o.framing = match val.as_str() {
                    "octet" => Framing::Octet,
                    "lf" => Framing::Lf,
                    _ => die("--framing is octet or lf"),
                }
            }
            "--seed" => o.seed = num(&val),
            "--pool-lines" => o.pool_lines = Some(num(&val).max(1)),
            "--csv" => o.csv = Some(val),
            "--keep-searches" => o.keep_searches = yes_no(&val),
            _ => die(&format!("unknown option {key}\n{USAGE}")),
        }
        i += 2;
    }
    if o.http.is_empty() || o.tcp.is_empty() {
        die(&format!("give --http and --tcp\n{USAGE}"));
    }
    if o.token.is_empty() {
        die("give --token (or set ORDERWATCH_API_TOKEN): creating saved searches needs an admin token");
    }
    if o.searches == 0 {
        die("--searches counts the marker search too: at least 1");
    }
    if o.markers == 0 {
        die("--markers: at least 1");
    }
    if o.interval.is_zero() {
        die("--marker-interval-ms: at least 1");
    }
    o
}

// ---------------------------------------------------------------- HTTP/1.1, both sides

/// A request's or response's start line and headers.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    /// The first header of that name (case-insensitive), trimmed.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn version(&self, request: bool) -> &str {
        let mut parts = self.start.split(' ');
        if request { parts.nth(2).unwrap_or("") } else { parts.next().unwrap_or("") }
    }

    /// Whether the connection ends after this message.
    pub(crate) fn closes(&self, request: bool) -> bool {
        let conn = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let tokens: Vec<&str> = conn.split(',').map(str::trim).collect();
        if self.version(request).eq_ignore_ascii_case("HTTP/1.0") {
            !tokens.contains(&"keep-alive")
        } else {
            tokens.contains(&"close")
        }
    }
}

const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// One CRLF- (or LF-) terminated line, without its terminator; `None` at EOF before any byte.
fn read_line(r: &mut impl BufRead, limit: &mut usize) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = r.by_ref().take(*limit as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *limit {
        return Err(bad("the header is too long"));
    }
    *limit -= n;
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the connection closed mid-line"));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map(Some).map_err(|_| bad("a header line is not UTF-8"))
}

/// Reads a start line and headers; `None` when the peer closed before sending anything.
pub(crate) fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut limit = MAX_HEAD_BYTES;
    // Empty lines before a request are allowed (RFC 9112, 2.2).
    let start = loop {
        match read_line(r, &mut limit)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut limit)?.ok_or_else(|| bad("the connection closed inside the header"))?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').ok_or_else(|| bad(format!("not a header line: {line:?}")))?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(Some(Head { start, headers }))
}

/// Reads a message body: chunked, by `Content-Length`, or (a response without
/// either) up to the end of the connection.
pub(crate) fn read_body(r: &mut impl BufRead, head: &Head, response: bool) -> std::io::Result<Vec<u8>> {
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|te| te.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked")));
    let mut body = Vec::new();
    if chunked {
        let mut limit = MAX_HEAD_BYTES;
        loop {
            let line = read_line(r, &mut limit)?.ok_or_else(|| bad("the connection closed inside a chunked body"))?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(size_text, 16).map_err(|_| bad(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !read_line(r, &mut limit)?.ok_or_else(|| bad("the connection closed in the trailers"))?.is_empty()
                {
                }
                return Ok(body);
            }
            if body.len() + size > MAX_BODY_BYTES {
                return Err(bad("the body is too large"));
            }
            let from = body.len();
            body.resize(from + size, 0);
            r.read_exact(&mut body[from..])?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
            if &crlf != b"\r\n" {
                return Err(bad("a chunk does not end with CRLF"));
            }
            limit = MAX_HEAD_BYTES;
        }
    }
    if let Some(cl) = head.header("content-length") {
        let n: usize = cl.parse().map_err(|_| bad(format!("bad Content-Length {cl:?}")))?;
        if n > MAX_BODY_BYTES {
            return Err(bad("the body is too large"));
        }
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if response {
        r.take(MAX_BODY_BYTES as u64).read_to_end(&mut body)?;
    }
    Ok(body)
}

/// One webhook request as received.
struct Delivery {
    /// When its body was complete.
    at: Instant,
    path: String,
    notification_id: Option<String>,
    events: Vec<Event>,
    error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Event {
    id: String,
    message: String,
}

/// A webhook receiver: every POST is answered 200 and recorded.
struct Receiver {
    addr: SocketAddr,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    fn start(name: &str) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let sink = deliveries.clone();
        let name = name.to_owned();
        std::thread::Builder::new().name(format!("{name}-accept")).spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let sink = sink.clone();
                let _ = std::thread::Builder::new().name(format!("{name}-conn")).spawn(move || serve_conn(conn, &sink));
            }
        })?;
        Ok(Receiver { addr, deliveries })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Serves one connection: requests one after another (keep-alive) until the
/// peer closes, asks to close, or sends something unreadable.
fn serve_conn(stream: TcpStream, sink: &Mutex<Vec<Delivery>>) {
    let _ = stream.set_nodelay(true);
    // Idle pooled connections are closed by the client; this only bounds a stuck one.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(600)));
    let Ok(mut w) = stream.try_clone() else { return };
    let mut r = BufReader::new(stream);
    loop {
        let head = match read_head(&mut r) {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                let _ = write!(w, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                eprintln!("ingest-load: the webhook receiver got an unreadable request: {e}");
                return;
            }
        };
        if head.header("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
            && w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
        {
            return;
        }
        let body = match read_body(&mut r, &head, false) {
            Ok(b) => b,
            Err(e) => {
                let _ = write!(w, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                eprintln!("ingest-load: the webhook receiver could not read a body: {e}");
                return;
            }
        };
        let at = Instant::now();
        let close = head.closes(true);
        let mut parts = head.start.split(' ');
        let method = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("").to_owned();
        let status = if method == "POST" { "200 OK" } else { "405 Method Not Allowed" };
        let conn = if close { "Connection: close\r\n" } else { "" };
        if write!(w, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n{conn}\r\n").is_err() {
            return;
        }
        if method == "POST" {
            let (events, error) = match decode_payload(head.header("content-type"), &body) {
                Ok(ev) => (ev, None),
                Err(e) => (Vec::new(), Some(e)),
            };
            let notification_id = head.header("x-orderwatch-notification-id").map(str::to_owned);
            sink.lock().unwrap().push(Delivery { at, path, notification_id, events, error });
        }
        if close {
            return;
        }
    }
}

/// An API call (`Connection: close`): the status and the body.
fn api(addr: &str, method: &str, path: &str, token: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let call = || -> std::io::Result<(u16, String)> {
        let sock = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
        let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5))?;
        // Creating a search reloads the alert engine, under load: allow it time.
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.set_write_timeout(Some(Duration::from_secs(30)))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n"
        );
        if let Some(b) = body {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        req.push_str(body.unwrap_or(""));
        s.write_all(req.as_bytes())?;
        let mut r = BufReader::new(s);
        let head = read_head(&mut r)?.ok_or_else(|| bad("the server closed without answering"))?;
        let status = head
            .start
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad(format!("not an HTTP answer: {:?}", head.start)))?;
        let body = if method == "HEAD" || status == 204 || status == 304 {
            Vec::new()
        } else {
            read_body(&mut r, &head, true)?
        };
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    call().map_err(|e| format!("{method} http://{addr}{path}: {e}"))
}

// ---------------------------------------------------------------- the webhook payload

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte;
/// a `%` not followed by two hex digits is kept as it is.
fn url_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// The value of a form field.
fn form_field(body: &[u8], name: &str) -> Option<Vec<u8>> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=').unwrap_or(pair.len());
        (url_decode(&pair[..eq]) == name.as_bytes()).then(|| url_decode(pair.get(eq + 1..).unwrap_or(&[])))
    })
}

/// The events of a hosted-service-style webhook: form field `payload`, JSON with `events`.
fn decode_payload(content_type: Option<&str>, body: &[u8]) -> Result<Vec<Event>, String> {
    let ct = content_type.unwrap_or("(none)");
    let media = ct.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(format!("Content-Type is {ct:?}, not application/x-www-form-urlencoded"));
    }
    let payload = form_field(body, "payload").ok_or("the form has no `payload` field")?;
    let payload = String::from_utf8(payload).map_err(|_| "the payload is not UTF-8".to_owned())?;
    let json = parse_json(&payload).map_err(|e| format!("the payload is not JSON: {e}"))?;
    let Some(Json::Arr(events)) = json.get("events") else {
        return Err("the payload has no `events` array".into());
    };
    events
        .iter()
        .map(|ev| {
            let id = ev.get("id").and_then(Json::as_text).ok_or("an event has no `id`")?;
            let message = ev.get("message").and_then(Json::as_str).ok_or("an event has no `message`")?;
            Ok(Event { id, message: message.to_owned() })
        })
        .collect()
}

/// A JSON value; numbers keep their text (event ids exceed f64's exact range).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
    /// A string's text or a number's digits.
    fn as_text(&self) -> Option<String> {
        match self {
            Json::Str(s) | Json::Num(s) => Some(s.clone()),
            _ => None,
        }
    }
}

pub(crate) fn parse_json(s: &str) -> Result<Json, String> {
    let mut p = JsonParser { b: s.as_bytes(), i: 0 };
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(format!("trailing characters at byte {}", p.i));
    }
    Ok(v)
}

struct JsonParser<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }

    fn eat(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 200 {
            return self.err("nested too deeply");
        }
        self.ws();
        let Some(&c) = self.b.get(self.i) else { return self.err("unexpected end") };
        match c {
            b'{' => {
                self.i += 1;
                let mut m = Vec::new();
                self.ws();
                if self.eat(b"}") {
                    return Ok(Json::Obj(m));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return self.err("expected a key");
                    }
                    let k = self.string()?;
                    self.ws();
                    if !self.eat(b":") {
                        return self.err("expected ':'");
                    }
                    let v = self.value(depth + 1)?;
                    m.push((k, v));
                    self.ws();
                    if self.eat(b",") {
                        continue;
                    }
                    if self.eat(b"}") {
                        return Ok(Json::Obj(m));
                    }
                    return self.err("expected ',' or '}'");
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.eat(b"]") {
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value(depth + 1)?);
                    self.ws();
                    if self.eat(b",") {
                        continue;
                    }
                    if self.eat(b"]") {
                        return Ok(Json::Arr(a));
                    }
                    return self.err("expected ',' or ']'");
                }
            }
            b'"' => self.string().map(Json::Str),
            b't' if self.eat(b"true") => Ok(Json::Bool(true)),
            b'f' if self.eat(b"false") => Ok(Json::Bool(false)),
            b'n' if self.eat(b"null") => Ok(Json::Null),
            b'-' | b'0'..=b'9' => {
                let from = self.i;
                while self.i < self.b.len() && matches!(self.b[self.i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.b[from..self.i]).unwrap();
                if text.parse::<f64>().is_err() {
                    return self.err("bad number");
                }
                Ok(Json::Num(text.to_owned()))
            }
            _ => self.err("unexpected character"),
        }
    }

    /// A string, the opening quote at `self.i`.
    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else { return self.err("unterminated string") };
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|_| "a string is not UTF-8".to_owned()),
                b'\\' => {
                    let Some(&e) = self.b.get(self.i) else { return self.err("unterminated escape") };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            if (0xD800..0xDC00).contains(&hi) && self.b[self.i..].starts_with(b"\\u") {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                                        .unwrap_or('\u{FFFD}')
                                } else {
                                    self.i = save;
                                    '\u{FFFD}'
                                }
                            } else {
                                char::from_u32(hi).unwrap_or('\u{FFFD}')
                            }
                        }
                        _ => return self.err("bad escape"),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return self.err("a control character in a string"),
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let Some(h) = self.b.get(self.i..self.i + 4) else { return self.err("short \\u escape") };
        let v = std::str::from_utf8(h).ok().and_then(|h| u32::from_str_radix(h, 16).ok());
        match v {
            Some(v) => {
                self.i += 4;
                Ok(v)
            }
            None => self.err("bad \\u escape"),
        }
    }
}

/// A JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------- markers and statistics

const MARKER: &str = "latency-marker";

/// The marker line's message text (what the alert's payload shows as `message`).
fn marker_message(run: &str, seq: u64) -> String {
    format!("{MARKER} run={run} seq={seq}")
}

/// The sequence number of a marker of this run in an event's message.
fn marker_seq(message: &str, run: &str) -> Option<u64> {
    let prefix = format!("{MARKER} run={run} seq=");
    let at = message.find(&prefix)? + prefix.len();
    let digits: &str = &message[at..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// A framed marker line, stamped with the shop's local time like the background stream.
fn marker_line(run: &str, seq: u64, unix: i64, framing: Framing) -> Vec<u8> {
    let mut msg = Vec::with_capacity(128);
    start_line(&mut msg, 30, local(unix));
    let _ = write!(msg, " website-backend website-backend: {}", marker_message(run, seq));
    let mut out = Vec::with_capacity(msg.len() + 8);
    frame(&mut out, &msg, framing);
    out
}

/// Nearest-rank percentile of sorted values (`p` in 0..=100); NaN when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// What the marker deliveries say so far, taken in incrementally.
#[derive(Default)]
struct Tally {
    /// Deliveries taken in.
    seen: usize,
    /// Per marker: when the first delivery holding it arrived, and that delivery's index.
    first: HashMap<u64, (Instant, usize)>,
    /// Event id → marker seq, for deduplication.
    ids: HashMap<String, u64>,
    notification_ids: HashSet<String>,
    repeated_notifications: u64,
    duplicate_events: u64,
    /// A marker seq seen under a second event id (stored twice?).
    seq_under_two_ids: u64,
    /// Events in the marker deliveries that are not this run's markers.
    foreign_events: u64,
    /// Markers with a seq that was never sent.
    stray_markers: u64,
    events: u64,
    errors: Vec<String>,
    /// Deliveries that held exactly one new marker.
    single: u64,
}

impl Tally {
    fn take(&mut self, all: &[Delivery], run: &str, sent: u64) {
        for (idx, d) in all.iter().enumerate().skip(self.seen) {
            if let Some(e) = &d.error {
                self.errors.push(format!("delivery {} to {}: {e}", idx + 1, d.path));
            }
            if let Some(n) = &d.notification_id
                && !self.notification_ids.insert(n.clone())
            {
                self.repeated_notifications += 1;
            }
            let mut new_here = 0;
            for ev in &d.events {
                self.events += 1;
                let Some(seq) = marker_seq(&ev.message, run) else {
                    self.foreign_events += 1;
                    continue;
                };
                if seq == 0 || seq > sent {
                    self.stray_markers += 1;
                    continue;
                }
                if self.ids.insert(ev.id.clone(), seq).is_some() {
                    // A repeat; it counts only if it arrived first (two connections at once).
                    self.duplicate_events += 1;
                    if let Some(f) = self.first.get_mut(&seq)
                        && d.at < f.0
                    {
                        *f = (d.at, idx);
                    }
                    continue;
                }
                match self.first.get_mut(&seq) {
                    Some(f) => {
                        self.seq_under_two_ids += 1;
                        if d.at < f.0 {
                            *f = (d.at, idx);
                        }
                    }
                    None => {
                        self.first.insert(seq, (d.at, idx));
                        new_here += 1;
                    }
                }
            }
            if new_here == 1 {
                self.single += 1;
            }
        }
        self.seen = all.len();
    }
}

// ---------------------------------------------------------------- background load

/// Framed lines of the generated stream, and where each ends.
struct Pool {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

/// End offsets of the framed lines in `buf`.
fn line_ends(buf: &[u8], framing: Framing) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut p = 0;
    while p < buf.len() {
        p = match framing {
            Framing::Lf => p + buf[p..].iter().position(|&b| b == b'\n').map_or(buf.len() - p, |i| i + 1),
            Framing::Octet => {
                let sp = p + buf[p..].iter().position(|&b| b == b' ').expect("octet framing has a space");
                let len: usize = std::str::from_utf8(&buf[p..sp]).unwrap().parse().unwrap();
                sp + 1 + len
            }
        };
        ends.push(p);
    }
    ends
}

fn render_pool(seed: u64, lines: u64, framing: Framing, start_unix: i64) -> Pool {
    let mut host = Host::new(seed, 0, start_unix);
    let mut buf = Vec::with_capacity((lines * 290) as usize);
    let mut n = 0;
    while n < lines {
        n += host.next_lines(&mut buf, framing, lines - n).1;
    }
    let ends = line_ends(&buf, framing);
    Pool { buf, ends }
}

struct BgStats {
    lines: u64,
    seconds: f64,
    longest_write: Duration,
    /// Lines the schedule dropped because the sender was more than 100 ms behind.
    skipped: u64,
    error: Option<String>,
}

const SLICE: Duration = Duration::from_millis(10);

/// Sends the pool round and round at `rate` lines/s until `stop`.
fn send_background(mut stream: TcpStream, pool: &Pool, rate: u64, stop: &AtomicBool, progress: &AtomicU64) -> BgStats {
    let total = pool.ends.len();
    let max_behind = (rate / 10).max(1);
    let t0 = Instant::now();
    let (mut sent, mut skipped, mut pos, mut tick) = (0u64, 0u64, 0usize, 0u32);
    let mut longest = Duration::ZERO;
    let mut error = None;
    'run: while !stop.load(Ordering::Relaxed) {
        let scheduled = (rate as f64 * t0.elapsed().as_secs_f64()) as u64;
        let mut want = scheduled.saturating_sub(sent + skipped);
        if want > max_behind {
            skipped += want - max_behind;
            want = max_behind;
        }
        while want > 0 {
            let n = (want as usize).min(total - pos);
            let from = if pos == 0 { 0 } else { pool.ends[pos - 1] };
            let to = pool.ends[pos + n - 1];
            let w0 = Instant::now();
            if let Err(e) = stream.write_all(&pool.buf[from..to]) {
                error = Some(format!("the background connection failed after {sent} lines: {e}"));
                break 'run;
            }
            longest = longest.max(w0.elapsed());
            pos = (pos + n) % total;
            sent += n as u64;
            want -= n as u64;
        }
        progress.store(sent, Ordering::Relaxed);
        tick += 1;
        let next = t0 + SLICE * tick;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            // Behind by whole slices: do not sleep-skip, but do not owe sleeps either.
            tick = (now.duration_since(t0).as_nanos() / SLICE.as_nanos()) as u32;
        }
    }
    let _ = stream.flush();
    BgStats { lines: sent, seconds: t0.elapsed().as_secs_f64(), longest_write: longest, skipped, error }
}

// ---------------------------------------------------------------- saved searches

/// Realistic saved searches of a shop that rarely or never match the generated
/// stream (and never a marker): words, phrases, OR, negations and attributes.
fn background_queries(n: usize, seed: u64) -> Vec<String> {
    const FIXED: [&str; 50] = [
        r#"POST /api/v1/orders/ - "HTTP/2.0 201" - "HTTP/1.1 201" - "Broken pipe" program:website-backend"#,
        "status:>=500 path:/api/v1/orders/*",
        "status:5xx path:/api/* method:POST",
        "method:POST path:/api/v1/orders/ status:>=400",
        r#""Broken pipe" path:/api/v1/orders/"#,
        r#""OSError: write error" program:website-worker"#,
        "Traceback program:website-backend -shop.payments",
        r#""payment gateway timeout" "after 10049 ms""#,
        r#""order validation failed" "greater than or equal to 5""#,
        "ERROR shop.stock",
        r#"WARNING django.request -"Not Found""#,
        "duration:>20000 path:/api/v1/orders/",
        "duration:>10000 method:POST status:>=500",
        "status:429 path:/api/v1/auth/*",
        "status:403 path:/api/v1/orders/*",
        "method:POST path:/api/v1/auth/login/ status:5xx",
        "program:nginx status:>=500",
        "program:nginx status:404 path:/static/js/*",
        "sender:website-frontend status:502",
        "ip:10.0.0.0/8 -path:/healthz",
        "path:/healthz status:>=300",
        "severity:critical OR severity:alert OR severity:emergency",
        "facility:auth",
        r#""segmentation fault" OR segfault OR "core dumped""#,
        r#"OutOfMemoryError OR "Cannot allocate memory" OR MemoryError"#,
        r#""database is locked" OR "deadlock detected""#,
        r#""too many connections" OR "remaining connection slots""#,
        r#""Connection refused" program:website-backend"#,
        r#""DAMN ! worker" OR "worker respawn""#,
        r#""uwsgi_response_write_body_do" "/api/v1/orders/" -SIGPIPE"#,
        "(status:500 OR status:502) method:POST path:/api/v1/cart/*",
        r#"program:(website-backend website-worker) "Read timed out" -"pay.example.net""#,
        r#"message:"HTTPSConnectionPool(host='sms.example.net'""#,
        "manager method:POST path:/api/v1/orders/*/items/ status:>=400",
        "path:/api/v1/cart/items/ status:>=500",
        "path:/api/v1/delivery/slots/* status:5xx",
        "path:/api/v1/search/* duration:>8000",
        r#""sort=-price" status:>=500"#,
        r#""Googlebot" status:5xx"#,
        "YandexBot path:/product/* status:>=500",
        r#""core/writer.c" -"Broken pipe""#,
        r#""generated 0 bytes" status:200 method:POST"#,
        "sender:website-backend -program:website-backend",
        "kernel OR systemd OR sshd",
        r#"sshd "Failed password""#,
        r#""Out of memory: Killed process" OR oom-kill"#,
        r#""No space left on device" OR "disk full""#,
        r#""CSRF verification failed" OR "SuspiciousOperation""#,
        r#"celery "Task" "raised unexpected""#,
        r#"stripe OR yookassa "webhook signature""#,
    ];
    const CATEGORIES: [&str; 12] = [
        "sofas",
        "chairs",
        "tables",
        "beds",
        "wardrobes",
        "lamps",
        "rugs",
        "kitchen",
        "kids",
        "office",
        "garden",
        "sale",
    ];
    let mut rng = Rng::new(seed ^ 0x5EA2_C4E5);
    let mut out: Vec<String> = FIXED.iter().take(n).map(|s| s.to_string()).collect();
    let mut i = 0u64;
    while out.len() < n {
        let q = match i % 8 {
            0 => format!("path:/api/v1/products/{}/ status:>=500", rng.range(1, 25_000)),
            1 => format!(r#""(order {})""#, rng.range(100_000, 999_999)),
            2 => format!(r#""cart={}" -WARNING"#, rng.range(100_000, 999_999)),
            3 => format!(
                "ip:{}.{}.{}.0/24 status:403",
                [95, 176, 188, 5, 46, 91][rng.below(6) as usize],
                rng.below(256),
                rng.below(256)
            ),
            4 => format!("path:/api/v1/orders/{}/items/ status:5xx", rng.range(1_000, 99_999)),
            5 => format!("program:nginx path:/catalog/{}/ status:>=500", CATEGORIES[rng.below(12) as usize]),
            6 => format!(r#""category={}" status:502 duration:>5000"#, CATEGORIES[rng.below(12) as usize]),
            _ => format!(r#""req: {}/" status:500"#, rng.range(1, 5_000)),
        };
        // The few-valued templates repeat after a while; a shop saves each search once.
        if !out.contains(&q) {
            out.push(q);
        }
        i += 1;
    }
    out
}

fn create_search(o: &Opts, name: &str, query: &str, alert: &str) -> Result<i64, String> {
    let body = format!(r#"{{"name":{},"query":{},"alerts":[{alert}]}}"#, json_str(name), json_str(query));
    let (status, answer) = api(&o.http, "POST", "/api/v1/searches", &o.token, Some(&body))?;
    if status != 201 {
        let answer: String = answer.chars().take(600).collect();
        return Err(format!(
            "POST /api/v1/searches answered {status} for the search {name:?} (query {query:?}): {answer}"
        ));
    }
    parse_json(&answer)
        .ok()
        .and_then(|j| j.get("id").and_then(Json::as_text))
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| format!("POST /api/v1/searches answered 201 without a numeric `id`: {answer}"))
}

fn delete_searches(o: &Opts, ids: &[i64]) {
    let mut failed = 0;
    for id in ids {
        match api(&o.http, "DELETE", &format!("/api/v1/searches/{id}"), &o.token, None) {
            Ok((200..=299 | 404, _)) => {}
            Ok((status, body)) => {
                failed += 1;
                if failed == 1 {
                    eprintln!("ingest-load: DELETE /api/v1/searches/{id} answered {status}: {body}");
                }
            }
            Err(e) => {
                failed += 1;
                if failed == 1 {
                    eprintln!("ingest-load: {e}");
                }
            }
        }
    }
    if failed > 0 {
        eprintln!("ingest-load: {failed} of the {} saved searches this run made could not be deleted", ids.len());
    }
}

// ---------------------------------------------------------------- the run

/// Says why, deletes the searches made so far, and exits.
fn give_up(o: &Opts, ids: &[i64], why: &str) -> ! {
    eprintln!("ingest-load: {why}");
    delete_searches(o, ids);
    std::process::exit(2);
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn connect(addr: &str, what: &str) -> Result<TcpStream, String> {
    let s = TcpStream::connect(addr).map_err(|e| format!("cannot connect the {what} to {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    s.set_write_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    Ok(s)
}

struct Outcome {
    sent: Vec<Instant>,
    tally: Tally,
    deliveries: usize,
    other_deliveries: usize,
    other_events: u64,
    other_errors: Vec<String>,
    bg: BgStats,
    marker_seconds: f64,
    server_cpu: f64,
    stored_lines: Option<u64>,
    deliveries_at: Vec<Instant>,
}

fn run(o: &Opts, run_id: &str, pool: &Pool, markers: &Receiver, others: &Receiver) -> Result<Outcome, String> {
    let bg_stream = connect(&o.tcp, "background connection")?;
    let mut marker_stream = connect(&o.tcp, "marker connection")?;
    let stored0 = stored_tcp(&o.http).ok();

    let stop = AtomicBool::new(false);
    let progress = AtomicU64::new(0);
    std::thread::scope(|s| {
        let bg = s.spawn(|| send_background(bg_stream, pool, o.rate, &stop, &progress));
        let stop_bg = |bg: std::thread::ScopedJoinHandle<'_, BgStats>| {
            stop.store(true, Ordering::Relaxed);
            bg.join().unwrap()
        };
        eprintln!("ingest-load: background load at {} lines/s; markers after {} ms", o.rate, o.warmup.as_millis());
        std::thread::sleep(o.warmup);
        if bg.is_finished() {
            let st = stop_bg(bg);
            return Err(st.error.unwrap_or_else(|| "the background sender stopped early".into()));
        }

        let server_cpu = || o.pid.as_deref().map_or(f64::NAN, proc_cpu_seconds);
        let cpu0 = server_cpu();
        let mut sent = Vec::with_capacity(o.markers as usize);
        let mut tally = Tally::default();
        let t_markers = Instant::now();
        let mut last_report = Instant::now();
        let progress_line = |sent: u64, tally: &Tally, last_report: &mut Instant| {
            if last_report.elapsed() >= Duration::from_secs(5) {
                eprintln!(
                    "ingest-load: {:.0}s: {sent}/{} markers sent, {} delivered; {} background lines",
                    t_markers.elapsed().as_secs_f64(),
                    o.markers,
                    tally.first.len(),
                    progress.load(Ordering::Relaxed)
                );
                *last_report = Instant::now();
            }
        };
        for seq in 1..=o.markers {
            let due = t_markers + o.interval * (seq - 1) as u32;
            loop {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep((due - now).min(Duration::from_millis(20)));
                tally.take(&markers.deliveries.lock().unwrap(), run_id, seq - 1);
            }
            let line = marker_line(run_id, seq, unix_now(), o.framing);
            let at = Instant::now();
            if let Err(e) = marker_stream.write_all(&line) {
                let _ = stop_bg(bg);
                return Err(format!("sending marker {seq} failed: {e}"));
            }
            sent.push(at);
            if bg.is_finished() {
                let st = stop_bg(bg);
                return Err(st.error.unwrap_or_else(|| "the background sender stopped early".into()));
            }
            progress_line(seq, &tally, &mut last_report);
        }
        let last_sent = Instant::now();
        while tally.first.len() < o.markers as usize && last_sent.elapsed() < o.wait {
            std::thread::sleep(Duration::from_millis(10));
            tally.take(&markers.deliveries.lock().unwrap(), run_id, o.markers);
            progress_line(o.markers, &tally, &mut last_report);
        }
        let marker_seconds = t_markers.elapsed().as_secs_f64();
        let cpu1 = server_cpu();
        let bg = stop_bg(bg);
        if let Some(e) = &bg.error {
            return Err(e.clone());
        }
        let stored_lines = match (stored0, stored_tcp(&o.http).ok()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        tally.take(&markers.deliveries.lock().unwrap(), run_id, o.markers);
        let m = markers.deliveries.lock().unwrap();
        let deliveries_at = m.iter().map(|d| d.at).collect();
        let oth = others.deliveries.lock().unwrap();
        Ok(Outcome {
            sent,
            deliveries: m.len(),
            other_deliveries: oth.len(),
            other_events: oth.iter().map(|d| d.events.len() as u64).sum(),
            other_errors: oth.iter().filter_map(|d| d.error.clone()).collect(),
            tally,
            bg,
            marker_seconds,
            server_cpu: cpu1 - cpu0,
            stored_lines,
            deliveries_at,
        })
    })
}

pub fn main(args: Vec<String>) {
    let o = parse_opts(&args);
    let run_id = format!("{:x}{:04x}", std::process::id(), unix_now() as u64 & 0xffff);
    let markers =
        Receiver::start("marker-hook").unwrap_or_else(|e| die(&format!("cannot start the webhook receiver: {e}")));
    let others =
        Receiver::start("other-hook").unwrap_or_else(|e| die(&format!("cannot start the webhook receiver: {e}")));

    // The saved searches: the realistic ones first, the marker search last.
    let t_searches = Instant::now();
    let mut ids = Vec::with_capacity(o.searches);
    let prefix = format!("bench {run_id}");
    let periodic = |i: usize| {
        format!(
            r#"{{"kind":"periodic","interval":"1h","destination":{{"webhook":{}}}}}"#,
            json_str(&others.url(&format!("/periodic/{i}")))
        )
    };
    for (i, q) in background_queries(o.searches - 1, o.seed).iter().enumerate() {
        match create_search(&o, &format!("{prefix} background {}", i + 1), q, &periodic(i + 1)) {
            Ok(id) => ids.push(id),
            Err(e) => give_up(&o, &ids, &e),
        }
    }
    let marker_query = format!("\"{MARKER} run={run_id}\"");
    let immediate = format!(
        r#"{{"kind":"immediate","batch":{},"destination":{{"webhook":{}}}}}"#,
        json_str(&o.batch),
        json_str(&markers.url("/marker"))
    );
    match create_search(&o, &format!("{prefix} markers"), &marker_query, &immediate) {
        Ok(id) => ids.push(id),
        Err(e) => give_up(&o, &ids, &e),
    }
    eprintln!(
        "ingest-load: created {} saved searches in {:.1}s; marker search {marker_query}, immediate, batch {}",
        ids.len(),
        t_searches.elapsed().as_secs_f64(),
        o.batch
    );

    // The background stream, rendered before anything is measured and replayed from a pool.
    let expected_secs = (o.warmup + o.interval * o.markers as u32 + o.wait).as_secs_f64() + 1.0;
    let pool_lines = o.pool_lines.unwrap_or(((o.rate as f64 * expected_secs) as u64).clamp(1_000, 1_000_000));
    let t_gen = Instant::now();
    let pool = render_pool(o.seed, pool_lines, o.framing, unix_now());
    eprintln!(
        "ingest-load: rendered {} background lines ({:.0} MB) in {:.1}s",
        pool.ends.len(),
        pool.buf.len() as f64 / 1e6,
        t_gen.elapsed().as_secs_f64()
    );

    let cpu0 = self_cpu_seconds();
    let outcome = run(&o, &run_id, &pool, &markers, &others);
    let client_cpu = self_cpu_seconds() - cpu0;
    if let Err(e) = &outcome {
        eprintln!("ingest-load: {e}");
    }
    if o.keep_searches {
        eprintln!("ingest-load: kept the saved searches named \"{prefix} …\"");
    } else {
        delete_searches(&o, &ids);
    }
    match outcome {
        Ok(r) => report(&o, &r, client_cpu),
        Err(_) => std::process::exit(2),
    }
}

fn report(o: &Opts, r: &Outcome, client_cpu: f64) {
    let t = &r.tally;
    let mut lat: Vec<(u64, f64, usize)> = (1..=r.sent.len() as u64)
        .filter_map(|seq| {
            let (at, idx) = t.first.get(&seq)?;
            Some((seq, at.duration_since(r.sent[seq as usize - 1]).as_secs_f64() * 1e3, *idx))
        })
        .collect();
    let mut sorted: Vec<f64> = lat.iter().map(|l| l.1).collect();
    sorted.sort_by(f64::total_cmp);
    let missing: Vec<u64> = (1..=r.sent.len() as u64).filter(|s| !t.first.contains_key(s)).collect();
    let mean = if sorted.is_empty() { f64::NAN } else { sorted.iter().sum::<f64>() / sorted.len() as f64 };

    if let Some(path) = &o.csv {
        let t0 = r.sent[0];
        let mut csv = String::from("seq,sent_ms,latency_ms,delivery,delivery_at_ms\n");
        for seq in 1..=r.sent.len() as u64 {
            let sent_ms = r.sent[seq as usize - 1].duration_since(t0).as_secs_f64() * 1e3;
            match lat.iter().find(|l| l.0 == seq) {
                Some(&(_, ms, idx)) => {
                    let d_ms = r.deliveries_at[idx].duration_since(t0).as_secs_f64() * 1e3;
                    csv.push_str(&format!("{seq},{sent_ms:.3},{ms:.3},{},{d_ms:.3}\n", idx + 1));
                }
                None => csv.push_str(&format!("{seq},{sent_ms:.3},,,\n")),
            }
        }
        if let Err(e) = std::fs::write(path, csv) {
            eprintln!("ingest-load: cannot write {path}: {e}");
        }
    }

    let marker_deliveries = t.first.values().map(|f| f.1).collect::<HashSet<_>>().len();
    println!("searches={}", o.searches);
    println!("batch={}", o.batch);
    println!("marker_interval_ms={}", o.interval.as_millis());
    println!("markers_sent={}", r.sent.len());
    println!("markers_delivered={}", t.first.len());
    println!("markers_missing={}", missing.len());
    println!("latency_ms_min={:.1}", sorted.first().copied().unwrap_or(f64::NAN));
    println!("latency_ms_p50={:.1}", percentile(&sorted, 50.0));
    println!("latency_ms_p90={:.1}", percentile(&sorted, 90.0));
    println!("latency_ms_p99={:.1}", percentile(&sorted, 99.0));
    println!("latency_ms_max={:.1}", sorted.last().copied().unwrap_or(f64::NAN));
    println!("latency_ms_mean={mean:.1}");
    println!("deliveries={}", r.deliveries);
    println!("marker_deliveries={marker_deliveries}");
    println!("deliveries_single_marker={}", t.single);
    println!("markers_per_delivery={:.2}", t.first.len() as f64 / marker_deliveries.max(1) as f64);
    println!("delivered_events={}", t.events);
    println!("duplicate_events={}", t.duplicate_events);
    println!("repeated_notifications={}", t.repeated_notifications);
    println!("foreign_events={}", t.foreign_events);
    println!("delivery_errors={}", t.errors.len());
    println!("other_deliveries={}", r.other_deliveries);
    println!("other_events={}", r.other_events);
    println!("bg_rate_target={}", o.rate);
    println!("bg_lines_sent={}", r.bg.lines);
    println!("bg_seconds={:.3}", r.bg.seconds);
    println!("bg_rate_achieved={:.0}", r.bg.lines as f64 / r.bg.seconds);
    println!("bg_lines_skipped={}", r.bg.skipped);
    println!("bg_longest_write_ms={:.1}", r.bg.longest_write.as_secs_f64() * 1e3);
    if let Some(n) = r.stored_lines {
        println!("server_stored_lines={n}");
    }
    println!("marker_phase_seconds={:.3}", r.marker_seconds);
    if o.pid.is_some() {
        println!("server_cpu_seconds={:.2}", r.server_cpu);
        println!("server_cpu_cores={:.2}", r.server_cpu / r.marker_seconds);
    }
    println!("client_cpu_seconds={client_cpu:.2}");

    lat.sort_by(|a, b| b.1.total_cmp(&a.1));
    let slowest: Vec<String> = lat.iter().take(5).map(|(s, ms, _)| format!("seq {s}: {ms:.0} ms")).collect();
    if !slowest.is_empty() {
        eprintln!("ingest-load: slowest markers: {}", slowest.join(", "));
    }
    for e in t.errors.iter().chain(&r.other_errors).take(5) {
        eprintln!("ingest-load: WARNING: {e}");
    }
    if t.foreign_events > 0 {
        eprintln!(
            "ingest-load: WARNING: {} events in the marker deliveries are not this run's markers",
            t.foreign_events
        );
    }
    if t.seq_under_two_ids > 0 {
        eprintln!(
            "ingest-load: WARNING: {} markers arrived under two different event ids (stored twice?)",
            t.seq_under_two_ids
        );
    }
    if t.stray_markers > 0 {
        eprintln!("ingest-load: WARNING: {} delivered markers have a seq that was never sent", t.stray_markers);
    }
    if r.bg.skipped > 0 {
        eprintln!(
            "ingest-load: WARNING: the background sender fell behind its schedule and skipped {} lines (orderwatch held it back)",
            r.bg.skipped
        );
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().take(50).map(u64::to_string).collect();
        eprintln!(
            "ingest-load: {} of {} markers were not delivered within {} s after the last: seq {}{}",
            missing.len(),
            r.sent.len(),
            o.wait.as_secs(),
            list.join(" "),
            if missing.len() > 50 { " …" } else { "" }
        );
        std::process::exit(3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, extra: &str, body: &str) -> String {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// The form body the notifier sends for one event.
    fn form(id: &str, message: &str) -> String {
        let json = format!(
            r#"{{"events":[{{"id":"{id}","message":{},"program":"website-backend"}}],"saved_search":{{"id":1}},"min_id":"{id}","max_id":"{id}","reached_record_limit":false,"frequency":"immediate"}}"#,
            json_str(message)
        );
        let mut out = String::from("payload=");
        for b in json.bytes() {
            match b {
                b' ' => out.push('+'),
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(b as char),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }

    fn wait_for(r: &Receiver, n: usize) {
        let t = Instant::now();
        while r.deliveries.lock().unwrap().len() < n {
            assert!(t.elapsed() < Duration::from_secs(5), "no delivery");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Reads one response head (and its empty body).
    fn response(r: &mut BufReader<TcpStream>) -> Head {
        let h = read_head(r).unwrap().unwrap();
        assert_eq!(read_body(r, &h, false).unwrap(), b"");
        h
    }

    #[test]
    fn receiver_keeps_the_connection_and_reads_both_body_kinds() {
        let rx = Receiver::start("test").unwrap();
        let s = TcpStream::connect(rx.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);

        // Content-Length.
        w.write_all(
            post("/marker", "X-Orderwatch-Notification-Id: 7\r\n", &form("101", "latency-marker run=ab seq=1"))
                .as_bytes(),
        )
        .unwrap();
        let h = response(&mut r);
        assert!(h.start.starts_with("HTTP/1.1 200"), "{h:?}");
        assert!(!h.closes(false));

        // Chunked, in several chunks with an extension and a trailer, on the same connection,
        // after Expect: 100-continue.
        let body = form("102", "latency-marker run=ab seq=2 — ünïcode \"quoted\"");
        let (a, b) = body.split_at(body.len() / 3);
        let chunked = format!("{:x};ext=1\r\n{a}\r\n{:X}\r\n{b}\r\n0\r\nX-Trailer: y\r\n\r\n", a.len(), b.len());
        let head = "POST /marker HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
        w.write_all(head.as_bytes()).unwrap();
        let cont = read_head(&mut r).unwrap().unwrap();
        assert!(cont.start.starts_with("HTTP/1.1 100"), "{cont:?}");
        w.write_all(chunked.as_bytes()).unwrap();
        assert!(response(&mut r).start.starts_with("HTTP/1.1 200"));

        // Not a form: answered 200, recorded with an error. Then Connection: close ends it.
        let json = "POST /other HTTP/1.1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}";
        w.write_all(json.as_bytes()).unwrap();
        let h = response(&mut r);
        assert!(h.closes(false));
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "the receiver closed after Connection: close");

        wait_for(&rx, 3);
        let d = rx.deliveries.lock().unwrap();
        assert_eq!(d[0].path, "/marker");
        assert_eq!(d[0].notification_id.as_deref(), Some("7"));
        assert_eq!(d[0].events, [Event { id: "101".into(), message: "latency-marker run=ab seq=1".into() }]);
        assert_eq!(d[1].events[0].message, "latency-marker run=ab seq=2 — ünïcode \"quoted\"");
        assert!(d[1].error.is_none());
        assert!(d[2].error.as_deref().unwrap().contains("application/json"), "{:?}", d[2].error);
        assert!(d[0].at <= d[1].at && d[1].at <= d[2].at);
    }

    #[test]
    fn receiver_serves_http_1_0_and_several_connections() {
        let rx = Receiver::start("test").unwrap();
        for i in 0..3 {
            let mut s = TcpStream::connect(rx.addr).unwrap();
            let req = post("/p", "", &form(&i.to_string(), "x")).replacen("HTTP/1.1", "HTTP/1.0", 1);
            s.write_all(req.as_bytes()).unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("Connection: close"), "{answer}");
        }
        wait_for(&rx, 3);
    }

    #[test]
    fn url_decoding() {
        assert_eq!(url_decode(b"a+b%20c%2Bd%3d%E2%80%94"), "a b c+d=—".as_bytes());
        assert_eq!(url_decode(b"100%"), b"100%");
        assert_eq!(url_decode(b"%zz%4"), b"%zz%4");
        assert_eq!(url_decode(b"%41%4a%4A"), b"AJJ");
        assert_eq!(url_decode(b""), b"");
        assert_eq!(form_field(b"a=1&payload=x%26y&b", "payload").unwrap(), b"x&y");
        assert_eq!(form_field(b"b&pay%6Coad=%7B%7D", "payload").unwrap(), b"{}");
        assert_eq!(form_field(b"payload", "payload").unwrap(), b"");
        assert!(form_field(b"a=1", "payload").is_none());
    }

    #[test]
    fn payload_events() {
        let body = form("924738417398165504", "latency-marker run=1f seq=42");
        let ev = decode_payload(Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap();
        assert_eq!(ev, [Event { id: "924738417398165504".into(), message: "latency-marker run=1f seq=42".into() }]);
        // The reference payload of the hosted service, as the form the notifier sends.
        let reference = r#"{"events":[{"id":"924738417398165504","received_at":"2018-06-23T17:17:48+03:00","source_id":2180349,"severity":"Info","message":"[pid: 20593|app: 0|req: 154/4946604] 176.114.214.14 () {48 vars in 1018 bytes} [Sat Jun 23 17:17:48 2018] POST /api/v1/orders/ => generated 99 bytes in 2 msecs (HTTP/2.0 429)"},{"id":5,"message":"two\nlines \u00e9 \ud83d\ude00 \/"}],"saved_search":{"id":42,"query":"POST - \"HTTP/2.0 201\""},"max_id":"1","min_id":"1","reached_record_limit":false,"frequency":"1 hour"}"#;
        let body = format!(
            "payload={}",
            reference.replace('%', "%25").replace('&', "%26").replace('+', "%2B").replace(' ', "+")
        );
        let ev = decode_payload(Some("application/x-www-form-urlencoded"), body.as_bytes()).unwrap();
        assert_eq!(ev.len(), 2);
        assert!(ev[0].message.ends_with("(HTTP/2.0 429)"));
        assert_eq!(ev[1], Event { id: "5".into(), message: "two\nlines é 😀 /".into() });
        assert!(decode_payload(None, b"payload=%7B%7D").unwrap_err().contains("Content-Type"));
        assert!(
            decode_payload(Some("application/x-www-form-urlencoded"), b"payload=%7B%7D")
                .unwrap_err()
                .contains("events")
        );
        assert!(
            decode_payload(Some("application/x-www-form-urlencoded"), b"payload=%7B").unwrap_err().contains("not JSON")
        );
    }

    #[test]
    fn json_reader() {
        assert_eq!(
            parse_json(" [1, -2.5e3, true, false, null, \"\"] ").unwrap(),
            Json::Arr(vec![
                Json::Num("1".into()),
                Json::Num("-2.5e3".into()),
                Json::Bool(true),
                Json::Bool(false),
                Json::Null,
                Json::Str(String::new()),
            ])
        );
        assert_eq!(
            parse_json(r#"{"id": 17, "a": {}}"#).unwrap().get("id").and_then(Json::as_text).as_deref(),
            Some("17")
        );
        assert_eq!(parse_json(r#""\ud800x""#).unwrap(), Json::Str("\u{FFFD}x".into()));
        for bad in ["", "[1,]", "{\"a\" 1}", "[1 2]", "\"a", "tru", "01x", "{\"a\":1}}", "\"\u{1}\""] {
            assert!(parse_json(bad).is_err(), "{bad:?}");
        }
        assert!(parse_json(&"[".repeat(500)).is_err());
        let s = "tab\t \"q\" back\\slash \u{7} é";
        assert_eq!(parse_json(&json_str(s)).unwrap(), Json::Str(s.into()));
    }

    #[test]
    fn api_reads_chunked_and_length_answers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let answers = [
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"id\"\r\n4\r\n:12}\r\n0\r\n\r\n",
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 19\r\n\r\n{\"error\":\"bad q\"}xx",
                "HTTP/1.1 204 No Content\r\n\r\n",
            ];
            let mut bodies = Vec::new();
            for a in answers {
                let (s, _) = listener.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let h = read_head(&mut r).unwrap().unwrap();
                bodies.push((
                    h.start.clone(),
                    h.header("authorization").map(str::to_owned),
                    read_body(&mut r, &h, false).unwrap(),
                ));
                (&s).write_all(a.as_bytes()).unwrap();
            }
            bodies
        });
        let o =
            parse_opts(&["--http".into(), addr.clone(), "--tcp".into(), addr.clone(), "--token".into(), "tok".into()]);
        assert_eq!(create_search(&o, "n", "q \"x\"", "{}").unwrap(), 12);
        let e = create_search(&o, "n", "q", "{}").unwrap_err();
        assert!(e.contains("400") && e.contains("bad q"), "{e}");
        assert_eq!(api(&addr, "DELETE", "/api/v1/searches/12", "tok", None).unwrap(), (204, String::new()));
        let got = server.join().unwrap();
        assert_eq!(got[0].0, "POST /api/v1/searches HTTP/1.1");
        assert_eq!(got[0].1.as_deref(), Some("Bearer tok"));
        assert_eq!(String::from_utf8(got[0].2.clone()).unwrap(), r#"{"name":"n","query":"q \"x\"","alerts":[{}]}"#);
        assert_eq!(got[2].0, "DELETE /api/v1/searches/12 HTTP/1.1");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 90.0), 90.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        let w = [3.0, 7.0, 9.0];
        assert_eq!(percentile(&w, 50.0), 7.0);
        assert_eq!(percentile(&w, 99.0), 9.0);
        assert_eq!(percentile(&[5.0], 99.0), 5.0);
        assert!(percentile(&[], 50.0).is_nan());
        // 300 markers: p99 is the 297th value, so the three slowest are beyond it.
        let m: Vec<f64> = (1..=300).map(f64::from).collect();
        assert_eq!(percentile(&m, 99.0), 297.0);
    }

    #[test]
    fn markers_are_found_deduplicated_and_timed() {
        let line = marker_line("ab12", 7, 1_795_154_400, Framing::Octet);
        let text = String::from_utf8(line).unwrap();
        assert!(text.ends_with(" website-backend website-backend: latency-marker run=ab12 seq=7"), "{text}");
        let (len, rest) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), rest.len());
        assert_eq!(marker_seq("latency-marker run=ab12 seq=7", "ab12"), Some(7));
        assert_eq!(marker_seq("latency-marker run=ab12 seq=12 tail", "ab12"), Some(12));
        assert_eq!(marker_seq("latency-marker run=ab1 seq=7", "ab12"), None);
        assert_eq!(marker_seq("GET /api/v1/cart/ 200", "ab12"), None);

        let t0 = Instant::now();
        let ev = |id: &str, seq: u64| Event { id: id.into(), message: marker_message("r", seq) };
        let d = |ms: u64, nid: &str, events: Vec<Event>| Delivery {
            at: t0 + Duration::from_millis(ms),
            path: "/marker".into(),
            notification_id: Some(nid.into()),
            events,
            error: None,
        };
        let all = vec![
            d(10, "1", vec![ev("a", 1)]),
            d(20, "2", vec![ev("b", 2), ev("c", 3), Event { id: "z".into(), message: "other".into() }]),
            d(30, "2", vec![ev("b", 2), ev("c", 3)]), // a redelivery
            d(40, "3", vec![ev("d", 9)]),             // never sent
        ];
        let mut t = Tally::default();
        t.take(&all[..2], "r", 3);
        assert_eq!(t.first.len(), 3);
        t.take(&all, "r", 3);
        assert_eq!(t.seen, 4);
        assert_eq!(t.first[&1], (t0 + Duration::from_millis(10), 0));
        assert_eq!(t.first[&3], (t0 + Duration::from_millis(20), 1));
        assert_eq!(t.duplicate_events, 2);
        assert_eq!(t.repeated_notifications, 1);
        assert_eq!(t.foreign_events, 1);
        assert_eq!(t.stray_markers, 1);
        assert_eq!(t.single, 1);
        assert_eq!(t.seq_under_two_ids, 0);
    }

    #[test]
    fn background_pool_and_queries() {
        for framing in [Framing::Octet, Framing::Lf] {
            let pool = render_pool(1, 2_000, framing, 1_795_154_400);
            assert!(pool.ends.len() >= 2_000 && pool.ends.len() <= 2_002);
            assert_eq!(*pool.ends.last().unwrap(), pool.buf.len());
            let text = String::from_utf8_lossy(&pool.buf);
            assert!(!text.contains(MARKER), "the background never looks like a marker");
        }
        let q = background_queries(250, 1);
        assert_eq!(q.len(), 250);
        assert!(q.iter().all(|q| !q.contains(MARKER)));
        assert_eq!(q.iter().collect::<HashSet<_>>().len(), 250, "all different");
        assert_eq!(background_queries(3, 1).len(), 3);
        assert!(background_queries(0, 1).is_empty());
    }
}
