//! How fast saved searches are matched against ingested lines:
//! `cargo bench --bench query_match` (release build).
//!
//! Builds 1, 100 and 1000 saved searches from a realistic mix (words, phrases,
//! negations, `program:`, `status:>=500`, `path:` globs, IP blocks, durations,
//! the seed search), compiles each mix into one `QuerySet`, and matches it
//! against 200,000 generated lines: uWSGI request lines, nginx lines, Django
//! and Celery log lines, uWSGI disconnect lines. Most lines match no search.
//! Prints the build time of each set and lines/s and ns/line of matching on one
//! thread (the fastest of three passes), with the message's access-log fields
//! read inside (`matching`) and by the caller (`matching_parsed`, as ingest
//! does once for the lost-order detector anyway). For scale also: touching
//! every line once, reading the access-log fields alone, and 100 searches
//! matched one by one (a scan each) instead of as a set.
//! Plain `std::time::Instant`, no harness: the numbers are for a person to read.

use std::hint::black_box;
use std::time::{Duration, Instant};

use orderwatch::event::LogEvent;
use orderwatch::parse::access;
use orderwatch::query::{Matcher, Query, QuerySet, compile};

/// Lines to match; `LINES=20000 cargo bench --bench query_match` for a quick look
/// (`SIZES=100` for one set size, `ONE_BY_ONE=0` to skip the last comparison).
///
/// Run by `cargo test --all-targets` (no `--bench` argument), it is a smoke
/// test: 2000 lines, so the suite checks it works without paying for a benchmark.
fn line_count() -> usize {
    let default = if benchmarking() { 200_000 } else { 2_000 };
    std::env::var("LINES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// `cargo bench` passes `--bench`; `cargo test` does not.
fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// SplitMix64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn event(host: &str, program: &str, severity: u8, message: String) -> LogEvent {
    LogEvent {
        id: 0,
        received_at: 0,
        generated_at: 0,
        source_name: host.into(),
        source_ip: "10.0.0.5".into(),
        program: program.into(),
        severity: Some(severity),
        facility: Some(3),
        message: message.into(),
        raw: bytes::Bytes::new(),
        flags: 0,
    }
}

fn ip(r: &mut Rng) -> String {
    // A few thousand clients, some of them regulars.
    let n = if r.chance(40) {
        r.below(50)
    } else {
        r.below(4000)
    };
    format!(
        "{}.{}.{}.{}",
        5 + n % 180,
        (n * 7) % 256,
        (n * 13) % 256,
        1 + n % 250
    )
}

fn uwsgi(r: &mut Rng, req: u64) -> LogEvent {
    let (method, path) = match r.below(100) {
        0..=29 => ("GET", format!("/api/v1/catalog/?page={}", 1 + r.below(40))),
        30..=54 => ("GET", format!("/api/v1/products/{}/", 1000 + r.below(9000))),
        55..=64 => (
            "GET",
            format!(
                "/api/v1/search/?q={}",
                r.pick(&["sofa", "lamp", "chair", "table+oak", "rug"])
            ),
        ),
        65..=74 => (*r.pick(&["GET", "POST", "PUT"]), "/api/v1/cart/".to_owned()),
        75..=81 => ("POST", "/api/v1/orders/".to_owned()),
        82..=85 => (
            "POST",
            format!("/api/v1/orders/{}/items/", 1000 + r.below(900)),
        ),
        86..=89 => ("POST", "/api/v1/login/".to_owned()),
        _ => ("GET", "/health/".to_owned()),
    };
    let status = match r.below(1000) {
        0..=779 => {
            if method == "POST" && path.ends_with("/orders/") {
                201
            } else {
                200
            }
        }
        780..=839 => 304,
        840..=869 => 301,
        870..=919 => 404,
        920..=949 => 400,
        950..=964 => 403,
        965..=979 => 429,
        980..=994 => 500,
        _ => 502,
    };
    let proto = if r.chance(60) { "HTTP/2.0" } else { "HTTP/1.1" };
    let ms = 1 + r.below(60) + if r.chance(3) { r.below(5000) } else { 0 };
    let message = format!(
        "[pid: {}|app: 0|req: {}/{}] {} () {{{} vars in {} bytes}} [Sat Jun 23 17:{:02}:{:02} 2018] {method} {path} => generated {} bytes in {ms} msecs ({proto} {status}) {} headers in {} bytes (1 switches on core {})",
        20590 + r.below(8),
        req % 400,
        4_946_598 + req,
        ip(r),
        44 + r.below(12),
        950 + r.below(400),
        r.below(60),
        r.below(60),
        r.below(40_000),
        6 + r.below(3),
        200 + r.below(120),
        r.below(2),
    );
    let host = format!("web-{}", 1 + r.below(4));
    event(&host, "website-backend", 6, message)
}

fn nginx(r: &mut Rng) -> LogEvent {
    let path = match r.below(4) {
        0 => format!("/static/js/app.{:08x}.js", r.next() as u32),
        1 => format!(
            "/media/products/{}/{}.jpg",
            1000 + r.below(9000),
            r.below(6)
        ),
        2 => format!(
            "/catalog/{}/",
            r.pick(&["sofas", "lamps", "chairs", "tables", "rugs"])
        ),
        _ => "/".to_owned(),
    };
    let agent = r.pick(&[
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/67.0.3396.87 Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 11_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/11.0 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    ]);
    let status = *r.pick(&[200, 200, 200, 200, 304, 304, 404]);
    let message = format!(
        "{} - - [23/Jun/2018:17:18:{:02} +0300] \"GET {path} HTTP/2.0\" {status} {} \"https://example-shop.ru/\" \"{agent}\"",
        ip(r),
        r.below(60),
        r.below(200_000),
    );
    event("website-frontend", "nginx", 6, message)
}

fn app(r: &mut Rng) -> LogEvent {
    let (program, severity, message) = match r.below(6) {
        0 => (
            "website-backend",
            4,
            format!(
                "WARNING django.request: Not Found: /api/v1/products/{}/",
                r.below(20_000)
            ),
        ),
        1 => (
            "website-backend",
            6,
            format!(
                "INFO orders.views: order {} created for customer {} total={}.00 RUB",
                10_000 + r.below(90_000),
                r.below(40_000),
                500 + r.below(90_000)
            ),
        ),
        2 => (
            "celery",
            3,
            format!(
                "ERROR celery.worker: Task orders.tasks.notify_manager[{:016x}] raised unexpected: ConnectionError('timed out')",
                r.next()
            ),
        ),
        3 => (
            "celery",
            6,
            format!(
                "INFO celery.worker: Task orders.tasks.send_receipt[{:016x}] succeeded in {}.{:03}s: None",
                r.next(),
                r.below(3),
                r.below(1000)
            ),
        ),
        4 => (
            "website-backend",
            3,
            format!(
                "ERROR django.request: Internal Server Error: /api/v1/orders/#012Traceback (most recent call last):#012  File \"/srv/shop/orders/views.py\", line {}, in create#012    order = serializer.save()#012django.db.utils.OperationalError: could not serialize access",
                40 + r.below(200)
            ),
        ),
        _ => (
            "postgres",
            6,
            format!(
                "LOG:  checkpoint complete: wrote {} buffers ({}.{}%)",
                r.below(5000),
                r.below(10),
                r.below(10)
            ),
        ),
    };
    let host = if program == "postgres" {
        "db-1".to_owned()
    } else {
        format!("web-{}", 1 + r.below(4))
    };
    event(&host, program, severity, message)
}

fn disconnect(r: &mut Rng, step: u64) -> LogEvent {
    let who = ip(r);
    let message = match step % 3 {
        0 => format!(
            "Sat Jun 23 17:18:21 2018 - uwsgi_response_write_body_do(): Broken pipe [core/writer.c line 341] during POST /api/v1/orders/ ({who})"
        ),
        1 => format!(
            "Sat Jun 23 17:18:21 2018 - SIGPIPE: writing to a closed pipe/socket/fd (probably the client disconnected) on request /api/v1/orders/ (ip {who}) !!!"
        ),
        _ => "OSError: write error".to_owned(),
    };
    event("web-2", "website-backend", 3, message)
}

fn lines(n: usize) -> Vec<LogEvent> {
    let mut r = Rng(7);
    (0..n as u64)
        .map(|i| match r.below(100) {
            0..=69 => uwsgi(&mut r, i),
            70..=84 => nginx(&mut r),
            85..=94 => app(&mut r),
            _ => disconnect(&mut r, i),
        })
        .collect()
}

const SEED: &str = r#"POST /api/v1/orders/ - "HTTP/2.0 201" - "HTTP/1.1 201" - "Broken pipe" program:website-backend"#;

/// The `i`-th saved search of the mix; search 0 is the seed search.
fn saved_search(i: usize) -> String {
    if i == 0 {
        return SEED.to_owned();
    }
    match i % 12 {
        0 => format!("\"order {} failed\"", 100_000 + i),
        1 => format!("program:celery (\"Task orders.tasks.job_{i}\" OR timeout{i})"),
        2 => format!("status:>=500 path:/api/v{}/*", (i / 12) % 5 + 1),
        3 => format!("severity:error -program:celery sku-{i}"),
        4 => format!("status:429 ip:10.{}.0.0/16", i % 256),
        5 => format!("method:POST path:/api/v1/cart/{i}/* status:4xx"),
        6 => format!("duration:>{} path:/api/v1/reports/*", 1000 + i),
        7 => format!("sender:web-{} \"Internal Server Error\"", (i / 12) % 8 + 1),
        8 => format!("\"customer {}\" -test", 50_000 + i),
        9 => format!("ERR-{i:05} OR E{i:04}X"),
        10 => format!("-(GET OR HEAD) \"/api/v1/payments/{i}/\""),
        _ => format!("program:(worker-{i} OR cron-{i}) -noise"),
    }
}

/// The fastest of three runs of `f` (the machine is shared: slower runs are
/// other work), and what it returned.
fn best_of(mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut result = 0;
    for _ in 0..3 {
        let started = Instant::now();
        result = black_box(f());
        best = best.min(started.elapsed());
    }
    (best, result)
}

fn per_line(d: Duration, n: usize) -> (f64, f64) {
    let ns = d.as_secs_f64() * 1e9 / n as f64;
    (ns, 1e9 / ns)
}

fn main() {
    let events = lines(line_count());
    let bytes: usize = events
        .iter()
        .map(|e| e.message.len() + e.program.len() + e.source_name.len())
        .sum();
    println!(
        "{} generated lines, {:.0} bytes a line on average (message + program + sender)",
        events.len(),
        bytes as f64 / events.len() as f64
    );

    // For scale: reading every line's bytes once (the memory floor of a pass
    // over lines that are not in the cache), and reading its access-log fields.
    let (took, ascii) = best_of(|| {
        events
            .iter()
            .filter(|e| e.message.is_ascii() && e.program.is_ascii() && e.source_name.is_ascii())
            .count()
    });
    let (ns, _) = per_line(took, events.len());
    println!("touching every line's bytes: {ns:.0} ns/line ({ascii} ASCII lines)");
    let (took, parsed) = best_of(|| {
        events
            .iter()
            .filter(|e| black_box(access::parse(&e.message)).is_some())
            .count()
    });
    let (ns, _) = per_line(took, events.len());
    println!("access::parse alone: {ns:.0} ns/line ({parsed} access lines)");
    println!();
    let fields: Vec<_> = events.iter().map(|e| access::parse(&e.message)).collect();
    println!(
        "| searches | build | ns/line | lines/s | ns/line, fields read by the caller | matches |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let sizes: Vec<usize> = std::env::var("SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 100, 1000]);
    for &n in &sizes {
        let queries: Vec<Query> = (0..n)
            .map(|i| {
                compile(&saved_search(i)).unwrap_or_else(|e| panic!("{}: {e}", saved_search(i)))
            })
            .collect();
        let started = Instant::now();
        let set = QuerySet::new(&queries);
        let build = started.elapsed();
        if n == *sizes.last().unwrap_or(&0) {
            eprintln!("{set:?}");
        }
        let mut out = Vec::new();
        let (took, matches) = best_of(|| {
            let mut matches = 0;
            for e in &events {
                set.matching(e, &mut out);
                matches += out.len();
                out.clear();
            }
            matches
        });
        let (ns, per_s) = per_line(took, events.len());
        let (took, again) = best_of(|| {
            let mut matches = 0;
            for (e, f) in events.iter().zip(&fields) {
                set.matching_parsed(e, f.as_ref(), &mut out);
                matches += out.len();
                out.clear();
            }
            matches
        });
        let (ns_given, _) = per_line(took, events.len());
        assert_eq!(again, matches);
        println!(
            "| {n} | {:.2} ms | {ns:.0} | {:.0}k | {ns_given:.0} | {matches} |",
            build.as_secs_f64() * 1e3,
            per_s / 1e3
        );
    }

    // The same 100 searches one by one: what a QuerySet saves.
    if std::env::var("ONE_BY_ONE").as_deref() == Ok("0") {
        return;
    }
    let queries: Vec<Query> = (0..100)
        .map(|i| compile(&saved_search(i)).unwrap())
        .collect();
    let started = Instant::now();
    let mut matches = 0;
    for e in &events {
        matches += queries.iter().filter(|q| q.matches(e)).count();
    }
    let (ns, per_s) = per_line(started.elapsed(), events.len());
    println!();
    println!(
        "100 searches one by one (Query::matches each): {ns:.0} ns/line, {:.0}k lines/s, {matches} matches",
        per_s / 1e3
    );
}
