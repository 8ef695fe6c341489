//! `ingest-load`: the load generator of `scripts/bench-ingest` (see BENCHMARKS.md).
//!
//! It pre-renders `--lines` syslog lines in memory (so generating them costs
//! nothing during the measurement), opens `--conns` TCP connections to
//! `--addr`, releases them all at once and writes every line as fast as the
//! receiver takes them, RFC 6587 octet-counted (`--framing octet`, default) or
//! LF-terminated (`--framing lf`). The clock starts before the first byte is
//! sent and stops when the receiver has *done* the work:
//!
//! * `--wait-metrics HOST:PORT`: orderwatch's `/metrics` shows
//!   `orderwatch_lines_stored_total{listener="tcp"}` (written and fsynced)
//!   grown by `--lines`;
//!   With `--wait-sealed yes` it then also waits until every stored line is
//!   sealed into a compressed chunk (`orderwatch_store_head_events` is 0) and
//!   reports that time as well;
//! * `--wait-file PATH`: the file (rsyslog's omfile output) holds `--lines`
//!   more newlines than when the run started. While it grows only its size is
//!   polled (reading it would take CPU from the receiver); when it has been
//!   still for 300 ms its lines are counted, and the clock stops at the moment
//!   it first reached that final size.
//!
//! Two streams:
//!
//! * `--stream uwsgi` (default): a synthetic but realistic shop backend, one
//!   per connection (`website-backend-<n>`, 8 uWSGI workers each, own pids and
//!   request counters, a simulated clock advancing ≈ 25 ms a line): 87 %
//!   uWSGI request-log lines (varied client IPs with a skew towards regulars,
//!   paths, query strings, methods, statuses, sizes, durations, vars/headers),
//!   10 % nginx `combined` lines from `website-frontend`, and uWSGI
//!   client-disconnect triplets and Django warnings for the rest. Every line
//!   differs, so the compression measured on it is honest.
//! * `--stream fixture --fixture FILE`: the lines of FILE (the project's
//!   `testdata/uwsgi-syslog.log`) over and over, each round shifted 120 s later
//!   (the syslog header, uWSGI's `[Sat Jun 23 17:17:41 2018]`, the error lines'
//!   `Sat Jun 23 17:18:21 2018 -` and nginx's `[23/Jun/2018:17:18:02 +0300]`
//!   are rewritten), everything else byte for byte the same.
//!
//! `--dump -` (or a path) writes the unframed lines, LF-terminated, and sends
//! nothing: the raw text for comparisons such as `zstd -3`.
//!
//! With `--pid PID` it also reports the receiver's CPU time (user + system,
//! from `/proc/PID/stat`) over the same interval(s).
//!
//! Results go to stdout as `key=value` lines; progress and errors to stderr.
//! Only the standard library is used (and flate2 for the Sentry mode's gzip).
//!
//! `ingest-load alert-latency …` is the alert-latency benchmark of
//! `scripts/bench-alerts` instead (see `latency.rs`), and `ingest-load sentry …`
//! the Sentry ingest benchmark of `scripts/bench-sentry` (see `sentry.rs`).

mod latency;
mod sentry;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- options

#[derive(Clone, Copy, PartialEq)]
enum Framing {
    Octet,
    Lf,
}

enum Stream {
    Uwsgi,
    Fixture(Vec<Vec<u8>>),
}

struct Opts {
    addr: Option<String>,
    lines: u64,
    conns: usize,
    framing: Framing,
    stream: Stream,
    seed: u64,
    start_unix: i64,
    wait_metrics: Option<String>,
    wait_file: Option<String>,
    wait_sealed: bool,
    pid: Option<String>,
    timeout: Duration,
    dump: Option<String>,
}

const USAGE: &str = "usage: ingest-load [--addr HOST:PORT] [--lines N] [--conns K] [--framing octet|lf]
                   [--stream uwsgi|fixture] [--fixture FILE] [--seed S] [--start-unix T]
                   [--wait-metrics HOST:PORT [--wait-sealed yes] | --wait-file PATH] [--timeout SECS]
                   [--pid RECEIVER_PID] [--dump PATH|-]";

fn die(msg: &str) -> ! {
    eprintln!("ingest-load: {msg}");
    std::process::exit(2);
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        addr: None,
        lines: 1_000_000,
        conns: 4,
        framing: Framing::Octet,
        stream: Stream::Uwsgi,
        seed: 1,
        // 2026-11-20 06:00:00 UTC: a fixed start keeps the stream reproducible.
        start_unix: 1_795_154_400,
        wait_metrics: None,
        wait_file: None,
        wait_sealed: false,
        pid: None,
        timeout: Duration::from_secs(240),
        dump: None,
    };
    let mut fixture_path = None;
    let mut stream_name = String::from("uwsgi");
    let args: Vec<String> = std::env::args().skip(1).collect();
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
        match key {
            "--addr" => o.addr = Some(val),
            "--lines" => o.lines = num(&val),
            "--conns" => o.conns = num(&val).max(1) as usize,
            "--framing" => {
                o.framing = match val.as_str() {
                    "octet" => Framing::Octet,
                    "lf" => Framing::Lf,
                    _ => die("--framing is octet or lf"),
                }
            }
            "--stream" => stream_name = val,
            "--fixture" => fixture_path = Some(val),
            "--seed" => o.seed = num(&val),
            "--start-unix" => o.start_unix = num(&val) as i64,
            "--wait-metrics" => o.wait_metrics = Some(val),
            "--wait-file" => o.wait_file = Some(val),
            "--wait-sealed" => {
                o.wait_sealed = match val.as_str() {
                    "yes" => true,
                    "no" => false,
                    _ => die("--wait-sealed is yes or no"),
                }
            }
            "--pid" => o.pid = Some(num(&val).to_string()),
            "--timeout" => o.timeout = Duration::from_secs(num(&val)),
            "--dump" => o.dump = Some(val),
            _ => die(&format!("unknown option {key}\n{USAGE}")),
        }
        i += 2;
    }
    o.stream = match stream_name.as_str() {
        "uwsgi" => Stream::Uwsgi,
        "fixture" => {
            let path = fixture_path.unwrap_or_else(|| die("--stream fixture needs --fixture FILE"));
            let text = std::fs::read(&path).unwrap_or_else(|e| die(&format!("cannot read {path}: {e}")));
            let lines: Vec<Vec<u8>> =
                text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| l.to_vec()).collect();
            if lines.is_empty() {
                die(&format!("{path} holds no lines"));
            }
            Stream::Fixture(lines)
        }
        _ => die("--stream is uwsgi or fixture"),
    };
    if o.dump.is_none() && o.addr.is_none() {
        die(&format!("give --addr (or --dump)\n{USAGE}"));
    }
    if o.wait_metrics.is_some() && o.wait_file.is_some() {
        die("give one of --wait-metrics and --wait-file");
    }
    o
}

// ---------------------------------------------------------------- randomness

/// SplitMix64: small, fast, and good enough for test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut r = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    /// Log-normal with the given median.
    fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
    /// Exponential with the given mean.
    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).max(1e-12).ln()
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// Index into `0..n` skewed towards 0 (a few regulars make most requests).
    fn skewed(&mut self, n: u64) -> u64 {
        let u = self.unit();
        ((u * u * u) * n as f64) as u64
    }
}

// ---------------------------------------------------------------- time

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const WDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
/// The shop's zone, as in the fixture (Moscow, +03:00, no DST).
const LOCAL_OFFSET: i64 = 3 * 3600;

#[derive(Clone, Copy)]
struct Tm {
    year: i64,
    mon: usize, // 0..12
    day: i64,
    hour: i64,
    min: i64,
    sec: i64,
    wday: usize,
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Local wall-clock time of a Unix second.
fn local(unix: i64) -> Tm {
    let t = unix + LOCAL_OFFSET;
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (year, m, day) = civil_from_days(days);
    Tm {
        year,
        mon: (m - 1) as usize,
        day,
        hour: secs / 3600,
        min: secs / 60 % 60,
        sec: secs % 60,
        wday: (days + 4).rem_euclid(7) as usize,
    }
}

fn unix_of_local(year: i64, mon: usize, day: i64, h: i64, m: i64, s: i64) -> i64 {
    days_from_civil(year, mon as i64 + 1, day) * 86_400 + h * 3600 + m * 60 + s - LOCAL_OFFSET
}

/// RFC 3164 header time: `Jun 23 17:17:41`, day padded with a space.
/// Starts a new RFC 3164 line in `out`: `<PRI>Mon DD HH:MM:SS`.
fn start_line(out: &mut Vec<u8>, pri: u8, t: Tm) {
    out.clear();
    let _ = write!(out, "<{pri}>");
    put_syslog_time(out, t);
}

fn put_syslog_time(out: &mut Vec<u8>, t: Tm) {
    let _ = write!(out, "{} {:>2} {:02}:{:02}:{:02}", MONTHS[t.mon], t.day, t.hour, t.min, t.sec);
}

/// uWSGI's ctime style: `Sat Jun 23 17:17:41 2018`.
fn put_ctime(out: &mut Vec<u8>, t: Tm) {
    let _ = write!(
        out,
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        WDAYS[t.wday], MONTHS[t.mon], t.day, t.hour, t.min, t.sec, t.year
    );
}

/// nginx `$time_local`: `23/Jun/2018:17:18:02 +0300`.
fn put_nginx_time(out: &mut Vec<u8>, t: Tm) {
    let _ = write!(out, "{:02}/{}/{}:{:02}:{:02}:{:02} +0300", t.day, MONTHS[t.mon], t.year, t.hour, t.min, t.sec);
}

// ---------------------------------------------------------------- the uWSGI/nginx stream

const CATEGORIES: [&str; 12] = [
    "sofas", "chairs", "tables", "beds", "wardrobes", "lamps", "rugs", "kitchen", "kids", "office", "garden", "sale",
];
const SORTS: [&str; 4] = ["price", "-price", "popular", "new"];
const WORDS: [&str; 16] = [
    "sofa", "oak+table", "lamp", "chair", "bed+160", "white", "mirror", "shelf", "desk", "kids+bed", "rug", "stool",
    "cabinet", "grey+sofa", "armchair", "pillow",
];
const USER_AGENTS: [&str; 8] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.107 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 YaBrowser/24.10",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];
const REFERERS: [&str; 6] = [
    "-",
    "https://example-shop.ru/",
    "https://example-shop.ru/cart/",
    "https://example-shop.ru/catalog/sofas/",
    "https://yandex.ru/",
    "https://www.google.com/",
];

/// One simulated backend host: eight uWSGI workers and a clock.
struct Host {
    rng: Rng,
    name: String,
    pids: [u32; 8],
    worker_req: [u64; 8],
    global_req: u64,
    clock_us: i64,
    ips: Vec<String>,
    scratch: Vec<u8>,
}

struct Request {
    method: &'static str,
    path: String,
    status: u32,
    bytes: u64,
}

impl Host {
    fn new(seed: u64, index: usize, start_unix: i64) -> Host {
        let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(index as u64));
        let base = rng.range(1_000, 60_000) as u32;
        let mut pids = [0u32; 8];
        for (i, p) in pids.iter_mut().enumerate() {
            *p = base + i as u32 + if rng.chance(0.2) { rng.range(8, 400) as u32 } else { 0 };
        }
        let mut worker_req = [0u64; 8];
        for w in worker_req.iter_mut() {
            *w = rng.range(1, 5_000);
        }
        // Clients: mostly Russian-looking public ranges, a few thousand of them.
        let prefixes: [u8; 12] = [95, 176, 188, 5, 46, 91, 37, 78, 79, 83, 85, 217];
        let ips = (0..4_000)
            .map(|_| {
                format!(
                    "{}.{}.{}.{}",
                    rng.pick(&prefixes),
                    rng.below(256),
                    rng.below(256),
                    rng.range(1, 254)
                )
            })
            .collect();
        Host {
            name: format!("website-backend-{}", index + 1),
            pids,
            worker_req,
            global_req: rng.range(1_000_000, 9_000_000),
            clock_us: start_unix * 1_000_000 + rng.below(1_000_000) as i64,
            ips,
            scratch: Vec::with_capacity(1024),
            rng,
        }
    }

    fn request(&mut self) -> Request {
        let r = &mut self.rng;
        let u = r.unit();
        let (method, path, ok_status, size) = if u < 0.28 {
            let mut p = format!("/api/v1/catalog/?page={}", r.skewed(60) + 1);
            if r.chance(0.6) {
                p.push_str("&category=");
                p.push_str(r.pick::<&str>(&CATEGORIES));
            }
            if r.chance(0.3) {
                p.push_str("&sort=");
                p.push_str(r.pick::<&str>(&SORTS));
            }
            ("GET", p, 200, r.lognormal(18_000.0, 0.4))
        } else if u < 0.52 {
            ("GET", format!("/api/v1/products/{}/", r.skewed(25_000) + 1), 200, r.lognormal(4_500.0, 0.5))
        } else if u < 0.63 {
            ("GET", "/api/v1/cart/".to_string(), 200, r.lognormal(900.0, 0.8))
        } else if u < 0.69 {
            ("POST", "/api/v1/cart/items/".to_string(), 201, r.lognormal(700.0, 0.6))
        } else if u < 0.76 {
            ("GET", format!("/api/v1/search/?q={}", *r.pick(&WORDS[..])), 200, r.lognormal(9_000.0, 0.7))
        } else if u < 0.78 {
            ("POST", "/api/v1/orders/".to_string(), 201, r.lognormal(410.0, 0.1))
        } else if u < 0.80 {
            ("GET", "/api/v1/orders/".to_string(), 200, r.lognormal(600.0, 1.0))
        } else if u < 0.81 {
            ("POST", format!("/api/v1/orders/{}/items/", r.range(1_000, 99_999)), 200, r.lognormal(90.0, 0.3))
        } else if u < 0.87 {
            ("GET", "/api/v1/users/me/".to_string(), 200, r.lognormal(350.0, 0.3))
        } else if u < 0.89 {
            ("POST", "/api/v1/auth/login/".to_string(), 200, r.lognormal(120.0, 0.2))
        } else if u < 0.94 {
            ("GET", "/healthz".to_string(), 200, 2.0)
        } else {
            ("GET", format!("/api/v1/delivery/slots/?zone={}", r.range(1, 40)), 200, r.lognormal(1_500.0, 0.3))
        };
        let v = r.unit();
        let status = if method == "POST" && path == "/api/v1/orders/" {
            // The lines this product exists for: most orders succeed, some do not.
            if v < 0.90 {
                201
            } else if v < 0.95 {
                400
            } else if v < 0.98 {
                429
            } else if v < 0.995 {
                500
            } else {
                502
            }
        } else if v < 0.93 {
            ok_status
        } else if v < 0.95 {
            304
        } else if v < 0.975 {
            404
        } else if v < 0.99 {
            if method == "POST" { 400 } else { 301 }
        } else if v < 0.995 {
            403
        } else if v < 0.999 {
            500
        } else {
            502
        };
        let bytes = match status {
            304 => 0,
            301 => 0,
            400 | 403 | 404 | 429 => r.range(60, 220),
            500 | 502 => r.range(140, 170),
            _ => size.max(2.0) as u64,
        };
        Request { method, path, status, bytes }
    }

    /// Renders the next event(s) of this host into `out` (framed), returning
    /// the unframed bytes written plus one LF per line, and the line count.
    fn next_lines(&mut self, out: &mut Vec<u8>, framing: Framing, budget: u64) -> (u64, u64) {
        // Requests arrive as a Poisson process, ≈ 40 a second per host.
        self.clock_us += self.rng.exp(25_000.0) as i64;
        let now = self.clock_us / 1_000_000;
        let u = self.rng.unit();
        let mut raw = 0;
        let mut n = 0;
        let mut emit = |msg: &[u8], out: &mut Vec<u8>| {
            frame(out, msg, framing);
            raw += msg.len() as u64 + 1;
            n += 1;
        };
        let mut msg = std::mem::take(&mut self.scratch);
        if u < 0.10 {
            // nginx in front: static files and pages, combined format.
            let r = &mut self.rng;
            let ip = self.ips[r.skewed(self.ips.len() as u64) as usize].clone();
            let v = r.unit();
            let (path, size) = if v < 0.5 {
                (format!("/static/js/app.{:08x}.js", r.below(4) as u32 * 0x1f3a_9b27 + 0x0a1b_2c3d), r.range(150_000, 152_000))
            } else if v < 0.7 {
                (format!("/media/products/{}/{}.jpg", r.skewed(25_000) + 1, r.range(1, 6)), r.range(20_000, 180_000))
            } else if v < 0.85 {
                (format!("/catalog/{}/", *r.pick(&CATEGORIES[..])), r.range(30_000, 36_000))
            } else {
                (format!("/product/{}/", r.skewed(25_000) + 1), r.range(40_000, 48_000))
            };
            let status = if r.chance(0.2) { 304 } else if r.chance(0.02) { 404 } else { 200 };
            let size = if status == 304 { 0 } else if status == 404 { 153 } else { size };
            let proto = if r.chance(0.75) { "HTTP/2.0" } else { "HTTP/1.1" };
            let referer = *r.pick(&REFERERS[..]);
            let ua = *r.pick(&USER_AGENTS[..]);
            start_line(&mut msg, 30, local(now));
            msg.extend_from_slice(b" website-frontend nginx: ");
            let _ = write!(msg, "{ip} - - [");
            put_nginx_time(&mut msg, local(now));
            let _ = write!(msg, "] \"GET {path} {proto}\" {status} {size} \"{referer}\" \"{ua}\"");
            emit(&msg, out);
        } else if u < 0.985 || budget < 3 {
            // A uWSGI request line, logged when the request ends.
            let req = self.request();
            let r = &mut self.rng;
            let w = r.below(8) as usize;
            self.worker_req[w] += 1;
            self.global_req += r.range(1, 12); // other hosts' workers share the counter space
            // The load balancer's health check comes from one address and always succeeds.
            let health = req.path == "/healthz";
            let ip = if health { "10.0.0.2".to_string() } else { self.ips[r.skewed(self.ips.len() as u64) as usize].clone() };
            let (status, bytes) = if health { (200, 2) } else { (req.status, req.bytes) };
            let user = if r.chance(0.005) { "manager" } else { "" };
            let vars = r.range(40, 56);
            let vars_bytes = vars * 21 + r.range(0, 160);
            let msecs = if health {
                r.range(0, 2)
            } else {
                (r.lognormal(28.0, 1.0) as u64).clamp(1, 30_001)
            };
            let start = (self.clock_us - msecs as i64 * 1000) / 1_000_000;
            let proto = if r.chance(0.7) { "HTTP/2.0" } else { "HTTP/1.1" };
            let headers = match status {
                201 | 400 | 429 => 8,
                304 | 301 => 6,
                _ => 7,
            } + if r.chance(0.1) { 1 } else { 0 };
            let header_bytes = headers * 34 + r.range(10, 40);
            let switches = if r.chance(0.01) { 0 } else { 1 };
            let core = if r.chance(0.8) { 0 } else { r.range(1, 3) };
            start_line(&mut msg, 30, local(now));
            let _ = write!(
                msg,
                " {} website-backend: [pid: {}|app: 0|req: {}/{}] {} ({}) {{{} vars in {} bytes}} [",
                self.name, self.pids[w], self.worker_req[w], self.global_req, ip, user, vars, vars_bytes
            );
            put_ctime(&mut msg, local(start));
            let _ = write!(
                msg,
                "] {} {} => generated {} bytes in {} msecs ({} {}) {} headers in {} bytes ({} switches on core {})",
                req.method, req.path, bytes, msecs, proto, status, headers, header_bytes, switches, core
            );
            emit(&msg, out);
        } else if u < 0.992 {
            // A client that went away mid-response: uWSGI's three error lines.
            let r = &mut self.rng;
            let ip = self.ips[r.skewed(self.ips.len() as u64) as usize].clone();
            let path = if r.chance(0.3) { "/api/v1/orders/".to_string() } else { format!("/api/v1/products/{}/", r.skewed(25_000) + 1) };
            let method = if path == "/api/v1/orders/" { "POST" } else { "GET" };
            start_line(&mut msg, 27, local(now));
            let _ = write!(msg, " {} website-backend: ", self.name);
            put_ctime(&mut msg, local(now));
            let _ = write!(
                msg,
                " - uwsgi_response_write_body_do(): Broken pipe [core/writer.c line 341] during {method} {path} ({ip})"
            );
            emit(&msg, out);
            start_line(&mut msg, 27, local(now));
            let _ = write!(msg, " {} website-backend: ", self.name);
            put_ctime(&mut msg, local(now));
            let _ = write!(
                msg,
                " - SIGPIPE: writing to a closed pipe/socket/fd (probably the client disconnected) on request {path} (ip {ip}) !!!"
            );
            emit(&msg, out);
            start_line(&mut msg, 27, local(now));
            let _ = write!(msg, " {} website-backend: OSError: write error", self.name);
            emit(&msg, out);
        } else {
            // The application's own warnings.
            let r = &mut self.rng;
            start_line(&mut msg, 28, local(now));
            let v = r.unit();
            if v < 0.6 {
                let _ = write!(
                    msg,
                    " {} website-backend: WARNING django.request: Not Found: /api/v1/products/{}/",
                    self.name,
                    r.range(25_001, 99_999)
                );
            } else if v < 0.9 {
                let _ = write!(
                    msg,
                    " {} website-backend: WARNING shop.orders: order validation failed: {{\"delivery\": {{\"floor\": [\"Ensure this value is greater than or equal to {}.\"]}}}} cart={}",
                    self.name,
                    r.range(0, 1),
                    r.range(100_000, 999_999)
                );
            } else {
                let _ = write!(
                    msg,
                    " {} website-backend: ERROR shop.payments: payment gateway timeout after {} ms (order {})#012Traceback (most recent call last):#012  File \"/srv/shop/payments/gateway.py\", line {}, in charge#012    resp = self.session.post(url, json=payload, timeout=10)#012requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='pay.example.net', port=443): Read timed out. (read timeout=10)",
                    self.name,
                    r.range(10_000, 10_050),
                    r.range(100_000, 999_999),
                    r.range(80, 140)
                );
            }
            emit(&msg, out);
        }
        self.scratch = msg;
        (raw, n)
    }
}

fn frame(out: &mut Vec<u8>, msg: &[u8], framing: Framing) {
    match framing {
        Framing::Octet => {
            let _ = write!(out, "{} ", msg.len());
            out.extend_from_slice(msg);
        }
        Framing::Lf => {
            out.extend_from_slice(msg);
            out.push(b'\n');
        }
    }
}

// ---------------------------------------------------------------- the fixture stream

/// Parses a month name at the start of `b`.
fn month_at(b: &[u8]) -> Option<usize> {
    MONTHS.iter().position(|m| b.starts_with(m.as_bytes()))
}

fn num_at(b: &[u8], range: std::ops::Range<usize>) -> Option<i64> {
    let s = std::str::from_utf8(b.get(range)?).ok()?.trim_start();
    s.parse().ok()
}

/// Shifts every timestamp of a fixture line by `shift` seconds, in place
/// (each format has a fixed width, so nothing moves). The syslog header has no
/// year: it is read as `year`.
fn shift_line(line: &[u8], shift: i64, year: i64) -> Vec<u8> {
    let mut out = line.to_vec();
    let mut tmp = Vec::with_capacity(32);
    // The RFC 3164 header right after `<PRI>`: "Jun 23 17:17:41".
    if let Some(gt) = out.iter().position(|&b| b == b'>') {
        let p = gt + 1;
        if let (Some(mon), Some(d), Some(h), Some(mi), Some(s)) = (
            out.get(p..).and_then(month_at),
            num_at(&out, p + 4..p + 6),
            num_at(&out, p + 7..p + 9),
            num_at(&out, p + 10..p + 12),
            num_at(&out, p + 13..p + 15),
        ) {
            tmp.clear();
            put_syslog_time(&mut tmp, local(unix_of_local(year, mon, d, h, mi, s) + shift));
            out[p..p + 15].copy_from_slice(&tmp);
        }
    }
    // ctime style "Sat Jun 23 17:17:41 2018" (uWSGI) anywhere after the header.
    let mut i = 0;
    while i + 24 <= out.len() {
        let is_ctime = WDAYS.iter().any(|w| out[i..].starts_with(w.as_bytes()))
            && out[i + 3] == b' '
            && month_at(&out[i + 4..]).is_some()
            && out[i + 13] == b':'
            && out[i + 16] == b':';
        if is_ctime {
            let mon = month_at(&out[i + 4..]).unwrap();
            if let (Some(d), Some(h), Some(mi), Some(s), Some(y)) = (
                num_at(&out, i + 8..i + 10),
                num_at(&out, i + 11..i + 13),
                num_at(&out, i + 14..i + 16),
                num_at(&out, i + 17..i + 19),
                num_at(&out, i + 20..i + 24),
            ) {
                tmp.clear();
                put_ctime(&mut tmp, local(unix_of_local(y, mon, d, h, mi, s) + shift));
                out[i..i + 24].copy_from_slice(&tmp);
                i += 24;
                continue;
            }
        }
        i += 1;
    }
    // nginx "[23/Jun/2018:17:18:02 +0300]".
    let mut i = 0;
    while i + 28 <= out.len() {
        if out[i] == b'['
            && out[i + 3] == b'/'
            && out[i + 7] == b'/'
            && out[i + 12] == b':'
            && out[i + 27] == b']'
            && let (Some(d), Some(mon), Some(y), Some(h), Some(mi), Some(s)) = (
                num_at(&out, i + 1..i + 3),
                month_at(&out[i + 4..]),
                num_at(&out, i + 8..i + 12),
                num_at(&out, i + 13..i + 15),
                num_at(&out, i + 16..i + 18),
                num_at(&out, i + 19..i + 21),
            )
        {
            tmp.clear();
            put_nginx_time(&mut tmp, local(unix_of_local(y, mon, d, h, mi, s) + shift));
            out[i + 1..i + 27].copy_from_slice(&tmp);
            i += 28;
            continue;
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------- generation

struct Rendered {
    buf: Vec<u8>,
    lines: u64,
    raw_bytes: u64,
}

/// Renders the `index`-th connection's share (`first..first+count` of the whole stream).
fn render(opts: &Opts, index: usize, first: u64, count: u64) -> Rendered {
    let mut buf = Vec::with_capacity((count * 290) as usize);
    let mut raw_bytes = 0;
    let mut lines = 0;
    match &opts.stream {
        Stream::Uwsgi => {
            let mut host = Host::new(opts.seed, index, opts.start_unix);
            while lines < count {
                let (r, n) = host.next_lines(&mut buf, opts.framing, count - lines);
                raw_bytes += r;
                lines += n;
            }
        }
        Stream::Fixture(fixture) => {
            let k = fixture.len() as u64;
            for g in first..first + count {
                let round = (g / k) as i64;
                let line = shift_line(&fixture[(g % k) as usize], round * 120, 2018);
                frame(&mut buf, &line, opts.framing);
                raw_bytes += line.len() as u64 + 1;
                lines += 1;
            }
        }
    }
    Rendered { buf, lines, raw_bytes }
}

fn shares(total: u64, k: usize) -> Vec<(u64, u64)> {
    let mut v = Vec::with_capacity(k);
    let mut first = 0;
    for i in 0..k as u64 {
        let n = total / k as u64 + u64::from(i < total % k as u64);
        v.push((first, n));
        first += n;
    }
    v
}

/// Writes the unframed lines of a rendered buffer.
fn unframe(buf: &[u8], framing: Framing, out: &mut impl Write) -> std::io::Result<()> {
    match framing {
        Framing::Lf => out.write_all(buf),
        Framing::Octet => {
            let mut p = 0;
            while p < buf.len() {
                let sp = p + buf[p..].iter().position(|&b| b == b' ').unwrap();
                let len: usize = std::str::from_utf8(&buf[p..sp]).unwrap().parse().unwrap();
                out.write_all(&buf[sp + 1..sp + 1 + len])?;
                out.write_all(b"\n")?;
                p = sp + 1 + len;
            }
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- measuring

/// This process's CPU time so far (user + system), from /proc/self/stat.
fn self_cpu_seconds() -> f64 {
    proc_cpu_seconds("self")
}

/// A process's CPU time so far (user + system, all its threads), from /proc/PID/stat.
fn proc_cpu_seconds(pid: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return f64::NAN };
    let Some(after) = s.rfind(')').map(|i| &s[i + 2..]) else { return f64::NAN };
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let ticks: f64 = f[11].parse::<f64>().unwrap_or(f64::NAN) + f[12].parse::<f64>().unwrap_or(f64::NAN);
    ticks / 100.0 // USER_HZ is 100 on Linux
}

/// The text of a /metrics endpoint.
fn metrics(addr: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    if !body.starts_with("HTTP/1.") || body.split(' ').nth(1).is_none_or(|c| c != "200") {
        return Err(std::io::Error::other(format!("/metrics answered {}", body.lines().next().unwrap_or(""))));
    }
    Ok(body)
}

/// `orderwatch_lines_stored_total{listener="tcp"}` from a /metrics endpoint.
fn stored_tcp(addr: &str) -> std::io::Result<u64> {
    Ok(metrics(addr)?
        .lines()
        .filter(|l| l.starts_with("orderwatch_lines_stored_total{") && l.contains("listener=\"tcp\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum())
}

/// Watches a growing output file (rsyslog's). While the file grows only its
/// size is looked at, which costs next to nothing; once it has stayed the same
/// size for a moment its lines are counted, and if they are all there the
/// receiver was done when the file first reached that size.
struct FileWatcher {
    path: String,
    size: u64,
    changed: Instant,
    counted_size: Option<u64>,
}

impl FileWatcher {
    fn new(path: String) -> FileWatcher {
        FileWatcher { path, size: 0, changed: Instant::now(), counted_size: None }
    }

    fn size_now(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    fn count_lines(&self) -> u64 {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return 0 };
        let mut buf = vec![0u8; 1 << 20];
        let mut lines = 0;
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => return lines,
                Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
            }
        }
    }

    /// The file's lines and when it reached its current size, once it has
    /// been still for 300 ms (each size is counted once).
    fn poll(&mut self) -> Option<(u64, Instant)> {
        let size = self.size_now();
        if size != self.size {
            self.size = size;
            self.changed = Instant::now();
            return None;
        }
        if self.changed.elapsed() < Duration::from_millis(300) || self.counted_size == Some(size) {
            return None;
        }
        self.counted_size = Some(size);
        Some((self.count_lines(), self.changed))
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("alert-latency") => return latency::main(args.collect()),
        Some("sentry") => return sentry::main(args.collect()),
        _ => {}
    }
    let opts = parse_opts();
    let k = opts.conns;

    let t_gen = Instant::now();
    let rendered: Vec<Rendered> = std::thread::scope(|s| {
        let handles: Vec<_> = shares(opts.lines, k)
            .into_iter()
            .enumerate()
            .map(|(i, (first, n))| {
                let opts = &opts;
                s.spawn(move || render(opts, i, first, n))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let gen_seconds = t_gen.elapsed().as_secs_f64();
    let lines: u64 = rendered.iter().map(|r| r.lines).sum();
    let raw_bytes: u64 = rendered.iter().map(|r| r.raw_bytes).sum();
    let wire_bytes: u64 = rendered.iter().map(|r| r.buf.len() as u64).sum();
    // Bytes of the syslog messages themselves (what a receiver counts): raw minus one LF a line.
    let msg_bytes = raw_bytes - lines;

    if let Some(dump) = &opts.dump {
        let result = if dump == "-" {
            let stdout = std::io::stdout();
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            rendered.iter().try_for_each(|r| unframe(&r.buf, opts.framing, &mut w)).and_then(|()| w.flush())
        } else {
            std::fs::File::create(dump).and_then(|f| {
                let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
                rendered.iter().try_for_each(|r| unframe(&r.buf, opts.framing, &mut w))?;
                w.flush()
            })
        };
        if let Err(e) = result {
            die(&format!("cannot write {dump}: {e}"));
        }
        eprintln!("ingest-load: dumped {lines} lines, {raw_bytes} bytes");
        return;
    }

    let addr = opts.addr.clone().unwrap();
    let mut waiter_metrics = opts.wait_metrics.clone();
    let mut watcher = opts.wait_file.clone().map(FileWatcher::new);
    let baseline = match (&mut waiter_metrics, &mut watcher) {
        (Some(m), _) => stored_tcp(m).unwrap_or_else(|e| die(&format!("cannot read {m}/metrics: {e}"))),
        (_, Some(w)) => {
            w.size = w.size_now();
            w.count_lines()
        }
        _ => 0,
    };

    let streams: Vec<TcpStream> = (0..k)
        .map(|_| TcpStream::connect(&addr).unwrap_or_else(|e| die(&format!("cannot connect to {addr}: {e}"))))
        .collect();
    let barrier = Arc::new(Barrier::new(k + 1));
    let cpu0 = self_cpu_seconds();
    let server_cpu = || opts.pid.as_deref().map_or(f64::NAN, proc_cpu_seconds);
    let (mut server_cpu_done, mut server_cpu_sealed) = (f64::NAN, f64::NAN);
    let server_cpu0 = server_cpu();
    let (t0, send_seconds, progress) = std::thread::scope(|s| {
        let senders: Vec<_> = streams
            .iter()
            .zip(&rendered)
            .map(|(stream, r)| {
                let barrier = barrier.clone();
                s.spawn(move || -> std::io::Result<Instant> {
                    let mut stream = stream;
                    barrier.wait();
                    for piece in r.buf.chunks(256 * 1024) {
                        stream.write_all(piece)?;
                    }
                    stream.flush()?;
                    stream.shutdown(Shutdown::Write)?;
                    Ok(Instant::now())
                })
            })
            .collect();
        // The clock starts before anyone may send.
        let t0 = Instant::now();
        barrier.wait();

        let mut last_report = Instant::now();
        let mut done_count = 0;
        let mut done_at = None;
        loop {
            done_count = match (&waiter_metrics, &mut watcher) {
                (Some(m), _) => stored_tcp(m).unwrap_or(0).saturating_sub(baseline),
                (_, Some(w)) => match w.poll() {
                    Some((n, at)) => {
                        let n = n.saturating_sub(baseline);
                        if n >= lines {
                            done_at = Some(at);
                        }
                        n
                    }
                    None => done_count,
                },
                _ => {
                    if senders.iter().all(|h| h.is_finished()) {
                        lines
                    } else {
                        0
                    }
                }
            };
            if done_count >= lines {
                break;
            }
            if t0.elapsed() > opts.timeout {
                break;
            }
            if last_report.elapsed() > Duration::from_secs(5) {
                match &watcher {
                    Some(w) => eprintln!("ingest-load: {:.0}s: {} MB written", t0.elapsed().as_secs_f64(), w.size / 1_000_000),
                    None => eprintln!("ingest-load: {:.0}s: {done_count}/{lines} done", t0.elapsed().as_secs_f64()),
                }
                last_report = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let done_at = done_at.unwrap_or_else(Instant::now);
        server_cpu_done = server_cpu();
        // Then, if asked, until orderwatch has sealed all of it into chunks (no head events left).
        let mut sealed_at = None;
        if let (Some(m), true, true) = (&waiter_metrics, opts.wait_sealed, done_count >= lines) {
            while t0.elapsed() < opts.timeout {
                let head = metrics(m).ok().and_then(|body| {
                    body.lines()
                        .find(|l| l.starts_with("orderwatch_store_head_events "))
                        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                });
                if head == Some(0.0) {
                    sealed_at = Some(Instant::now());
                    server_cpu_sealed = server_cpu();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let mut last_sent = t0;
        for h in senders {
            match h.join().unwrap() {
                Ok(t) => last_sent = last_sent.max(t),
                Err(e) => die(&format!("sending failed: {e}")),
            }
        }
        ((t0, done_at, sealed_at), (last_sent - t0).as_secs_f64(), done_count)
    });
    let cpu1 = self_cpu_seconds();
    let (t0, done_at, sealed_at) = t0;
    let seconds = (done_at - t0).as_secs_f64();

    println!("lines={lines}");
    println!("conns={k}");
    println!("framing={}", if opts.framing == Framing::Octet { "octet" } else { "lf" });
    println!("raw_bytes={raw_bytes}");
    println!("msg_bytes={msg_bytes}");
    println!("wire_bytes={wire_bytes}");
    println!("gen_seconds={gen_seconds:.3}");
    println!("send_seconds={send_seconds:.3}");
    println!("done_lines={progress}");
    println!("seconds={seconds:.3}");
    println!("lines_per_sec={:.0}", lines as f64 / seconds);
    println!("msg_mb_per_sec={:.2}", msg_bytes as f64 / seconds / 1e6);
    println!("client_cpu_seconds={:.2}", cpu1 - cpu0);
    if opts.pid.is_some() {
        println!("server_cpu_seconds={:.2}", server_cpu_done - server_cpu0);
        println!("server_cpu_us_per_line={:.2}", (server_cpu_done - server_cpu0) / lines as f64 * 1e6);
    }
    if let Some(at) = sealed_at {
        let sealed = (at - t0).as_secs_f64();
        println!("sealed_seconds={sealed:.3}");
        println!("sealed_lines_per_sec={:.0}", lines as f64 / sealed);
        if opts.pid.is_some() {
            println!("server_cpu_seconds_sealed={:.2}", server_cpu_sealed - server_cpu0);
            println!("server_cpu_us_per_line_sealed={:.2}", (server_cpu_sealed - server_cpu0) / lines as f64 * 1e6);
        }
    } else if opts.wait_sealed {
        eprintln!("ingest-load: the head was not sealed within the timeout");
        std::process::exit(3);
    }
    if progress < lines {
        eprintln!("ingest-load: timed out after {seconds:.0}s with {progress}/{lines} lines done");
        std::process::exit(3);
    }
    // The connections stayed open until the receiver was done; close them now.
    drop(streams);
}
