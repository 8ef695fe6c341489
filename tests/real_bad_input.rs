//! Bad input over real sockets against the real binary: over-long lines,
//! invalid UTF-8, peers that hang mid-frame or send garbage, a UDP flood, and
//! HTTP ingest with wrong tokens, gzip and a gzip bomb. Each must be refused or
//! kept with a flag, and the server must keep serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::*;

/// A small deterministic generator for junk bytes.
fn junk(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn is_truncated(ev: &serde_json::Value) -> bool {
    ev.get("truncated") == Some(&serde_json::Value::Bool(true))
}

#[test]
fn overlong_lines_are_truncated_and_flagged_and_the_connection_stays_up() {
    let mut server = Server::start("[syslog]\nmax_line_bytes = 1024\n");
    let tag = format!("long{}", nonce());
    let long_body = "x".repeat(5000);

    // LF framing, then octet counting, on one TCP connection; a normal line after each.
    let mut s = TcpStream::connect(server.tcp).unwrap();
    s.write_all(format!("<13>Nov 26 12:00:00 web-1 {tag}: lf-long {long_body}\n").as_bytes())
        .unwrap();
    s.write_all(format!("<13>Nov 26 12:00:01 web-1 {tag}: after lf-long\n").as_bytes())
        .unwrap();
    s.write_all(&octet(
        format!("<13>Nov 26 12:00:02 web-1 {tag}: oc-long {long_body}").as_bytes(),
    ))
    .unwrap();
    s.write_all(&octet(
        format!("<13>Nov 26 12:00:03 web-1 {tag}: after oc-long").as_bytes(),
    ))
    .unwrap();
    let events = server.wait_for(&tag, 4, Duration::from_secs(15));
    assert_eq!(events.len(), 4);
    for (e, prefix) in [(&events[0], "lf-long x"), (&events[2], "oc-long x")] {
        let m = e["message"].as_str().unwrap();
        assert!(is_truncated(e), "not flagged: {e:#}");
        assert!(
            m.starts_with(prefix) && m.len() < 1024 && m.len() > 900,
            "len {}: {e:#}",
            m.len()
        );
        assert!(m[8..].bytes().all(|b| b == b'x'), "{e:#}");
        assert_eq!(e["program"], tag.as_str());
    }
    for (e, msg) in [(&events[1], "after lf-long"), (&events[3], "after oc-long")] {
        assert_eq!(e["message"], msg, "{e:#}");
        assert!(!is_truncated(e), "{e:#}");
    }
    // The same connection still works.
    s.write_all(format!("<13>Nov 26 12:00:04 web-1 {tag}: still connected\n").as_bytes())
        .unwrap();
    server.wait_for(&tag, 5, Duration::from_secs(10));
    drop(s);

    // UDP: one datagram, cut at the cap.
    send_udp(
        server.udp,
        format!("<13>Nov 26 12:00:05 web-1 {tag}: udp-long {long_body}").as_bytes(),
    );
    let e = server.wait_one("udp-long");
    assert!(is_truncated(&e), "{e:#}");
    assert!(e["message"].as_str().unwrap().len() < 1024);

    // HTTP bulk ingest: the answer counts the cut line.
    let r = server.post_logs(format!("{tag} http-long {long_body}\n{tag} http-short\n").as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["accepted"], 2, "{v}");
    assert_eq!(v["truncated"], 1, "{v}");
    let e = server.wait_one("http-long");
    assert!(is_truncated(&e), "{e:#}");
    assert!(!is_truncated(&server.wait_one("http-short")));

    let m = server.metrics();
    assert_eq!(
        metric(
            &m,
            "orderwatch_lines_truncated_total",
            &[("listener", "tcp")]
        ),
        2.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "orderwatch_lines_truncated_total",
            &[("listener", "udp")]
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "orderwatch_lines_truncated_total",
            &[("listener", "http")]
        ),
        1.0,
        "{m}"
    );
    server.stop();
}

#[test]
fn invalid_utf8_is_stored_and_shown_lossily() {
    let mut server = Server::start("");
    let tag = format!("utf{}", nonce());
    let line = |via: &str| {
        let mut v = b"<13>Nov 26 12:00:00 web-\xff1 ".to_vec();
        v.extend_from_slice(format!("{tag}: {via} caf").as_bytes());
        // "\xe9" is Latin-1 é, "\xff\xfe" never occurs in UTF-8, "\xe2\x82" is a cut-off €.
        v.extend_from_slice(b"\xe9 \xff\xfe end \xe2\x82");
        v
    };
    let mut tcp = line("tcp");
    tcp.push(b'\n');
    send_tcp(server.tcp, &tcp);
    send_udp(server.udp, &line("udp"));
    let mut http_body = line("http");
    http_body.push(b'\n');
    let r = server.post_logs(&http_body);
    assert_eq!(r.status, 200, "{}", r.text());

    let events = server.wait_for(&tag, 3, Duration::from_secs(15));
    assert_eq!(events.len(), 3);
    for via in ["tcp", "udp", "http"] {
        let e = find_msg(&events, &format!("{via} caf"));
        let m = e["message"].as_str().unwrap();
        assert!(m.starts_with(&format!("{via} caf\u{FFFD} ")), "{e:#}");
        assert!(m.contains(" end"), "{e:#}");
        assert!(m.matches('\u{FFFD}').count() >= 3, "{e:#}");
        assert_eq!(e["program"], tag.as_str(), "{e:#}");
        assert!(
            e["source_name"].as_str().unwrap().starts_with("web-"),
            "{e:#}"
        );
    }
    // The listeners are fine afterwards.
    send_tcp(
        server.tcp,
        format!("<13>Nov 26 12:00:01 web-1 {tag}: clean line\n").as_bytes(),
    );
    server.wait_one("clean line");
    server.stop();
}

/// A peer that sends half a frame and then nothing is closed after
/// `idle_timeout`; another connection that keeps talking is not affected.
#[test]
fn tcp_peer_hanging_mid_frame_is_closed_after_idle_timeout_alone() {
    let mut server = Server::start("[syslog]\nidle_timeout = \"1s\"\n");
    let tag = format!("idle{}", nonce());

    // A well-behaved sender: one line every 100 ms for 5 s, on one connection.
    let tcp = server.tcp;
    let tag2 = tag.clone();
    let talker = std::thread::spawn(move || {
        let mut s = TcpStream::connect(tcp).unwrap();
        for i in 0..50 {
            s.write_all(format!("<13>Nov 26 12:00:00 web-1 {tag2}: talker {i:02}\n").as_bytes())
                .unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    });

    let started = Instant::now();
    let mut half_octet = TcpStream::connect(server.tcp).unwrap();
    half_octet
        .write_all(b"200 <13>Nov 26 12:00:00 web-2 hang: only half of the announced")
        .unwrap();
    let mut half_line = TcpStream::connect(server.tcp).unwrap();
    half_line
        .write_all(b"<13>Nov 26 12:00:00 web-3 hang: a line without its LF")
        .unwrap();
    for (name, s) in [
        ("half octet-counted frame", &mut half_octet),
        ("half LF line", &mut half_line),
    ] {
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut buf = [0u8; 16];
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("{name}: the server sent {n} bytes"),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => {
                panic!("{name}: not closed within 8 s of silence with idle_timeout = 1s: {e}")
            }
        }
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed too early: {elapsed:?}"
    );

    // The talker was never idle: all of its lines arrive and its connection is still open.
    let mut talker_conn = talker.join().unwrap();
    talker_conn
        .write_all(format!("<13>Nov 26 12:00:00 web-1 {tag}: talker last\n").as_bytes())
        .unwrap();
    let events = server.wait_for(&tag, 51, Duration::from_secs(10));
    assert_eq!(events.len(), 51);
    assert_eq!(events[50]["message"], "talker last");
    let m = server.metrics();
    assert!(
        metric(
            &m,
            "orderwatch_connections_closed_total",
            &[("listener", "tcp"), ("reason", "idle_timeout")]
        ) >= 2.0,
        "{m}"
    );
    server.stop();
}

/// Random bytes with NULs, a huge announced MSG-LEN followed by megabytes, a
/// ten-digit length: the server reads it all as lines or drops it, never
/// holds it in memory, and keeps serving.
#[test]
fn garbage_tcp_peers_do_not_hurt_the_server() {
    let mut server = Server::start("");
    let tcp = server.tcp;
    let senders: Vec<_> = (0..4u64)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(tcp).unwrap();
                let mut payload = match i {
                    0 => junk(i + 1, 2 << 20),
                    1 => {
                        let mut p = b"999999999 <13>".to_vec();
                        p.extend(std::iter::repeat_n(b'A', 8 << 20));
                        p
                    }
                    2 => {
                        let mut p = b"12345678901234 <13>ten digits\n\0\0\0".to_vec();
                        p.extend(junk(i, 1 << 20));
                        p
                    }
                    _ => {
                        let mut p = Vec::new();
                        for _ in 0..20_000 {
                            p.extend_from_slice(b"\0\0\n\r\n 0 <1> 00 <\n<999>\n");
                        }
                        p
                    }
                };
                payload.extend_from_slice(b"\n");
                // The server may close on its own; that is fine.
                let _ = s.write_all(&payload);
                let _ = s.shutdown(std::net::Shutdown::Write);
            })
        })
        .collect();
    for t in senders {
        t.join().unwrap();
    }
    server.assert_running();
    assert_eq!(server.healthz(), 200);
    let rss_mb = server.rss_kb() / 1024;
    assert!(
        rss_mb < 400,
        "the server holds {rss_mb} MB after the garbage"
    );
    let tag = format!("after{}", nonce());
    send_tcp(
        server.tcp,
        format!("<13>Nov 26 12:00:00 web-1 {tag}: a good line after the garbage\n").as_bytes(),
    );
    send_tcp(
        server.tcp,
        &octet(format!("<13>Nov 26 12:00:00 web-1 {tag}: and an octet-counted one").as_bytes()),
    );
    server.wait_for(&tag, 2, Duration::from_secs(15));
    server.stop();
}

/// Far more datagrams than the server can take at once: every datagram is
/// either read (and then stored or counted as dropped for a full queue) or
/// counted by the kernel as dropped; the server never dies.
#[test]
fn udp_flood_is_accounted_for_and_the_server_survives() {
    let mut server = Server::start("");
    let tag = format!("flood{}", nonce());
    let udp = server.udp;
    let target = 200_000u64;
    let tag2 = tag.clone();
    let sent = std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let started = Instant::now();
        let mut sent = 0u64;
        while sent < target && started.elapsed() < Duration::from_secs(15) {
            let d = format!("<13>Nov 26 12:00:00 flooder {tag2}: datagram {sent:06}");
            if s.send_to(d.as_bytes(), udp).is_ok() {
                sent += 1;
            }
        }
        sent
    })
    .join()
    .unwrap();
    assert!(sent >= 50_000, "only {sent} datagrams sent in 15 s");

    let received = |m: &str| received(m, "udp");
    let stored = |m: &str| metric(m, "orderwatch_lines_stored_total", &[("listener", "udp")]);
    let queue_full = |m: &str| {
        metric(
            m,
            "orderwatch_lines_rejected_total",
            &[("listener", "udp"), ("reason", "queue_full")],
        )
    };
    let kernel = |m: &str| metric(m, "orderwatch_udp_kernel_drops_total", &[]);
    // Wait until the server has worked through its socket buffer and queue:
    // the counters stop moving, and every datagram read is stored or counted
    // as rejected.
    let snapshot = |m: &str| (received(m), stored(m), queue_full(m), kernel(m));
    let mut last = None;
    let m = server.wait_metrics(
        "the UDP counters to settle, with stored + queue_full == received",
        Duration::from_secs(60),
        |m| {
            let now = snapshot(m);
            let settled = last == Some(now) && now.1 + now.2 == now.0;
            last = Some(now);
            if !settled {
                std::thread::sleep(Duration::from_millis(250));
            }
            settled
        },
    );
    assert!(
        m.contains("orderwatch_udp_kernel_drops_total"),
        "no kernel drop counter on /metrics:\n{m}"
    );
    // Read + dropped by the kernel = sent (on the loopback nothing else drops
    // datagrams as a rule; 1 % of slack for the host's own backlog drops).
    assert!(
        received(&m) <= sent as f64,
        "more received than sent ({sent}):\n{m}"
    );
    assert!(
        received(&m) + kernel(&m) >= sent as f64 * 0.99,
        "datagrams unaccounted for (sent {sent}):\n{m}"
    );
    eprintln!(
        "UDP flood: sent {sent}, read {}, stored {}, queue_full {}, kernel drops {}",
        received(&m),
        stored(&m),
        queue_full(&m),
        kernel(&m)
    );

    // The stored ones are really there (the newest 10 000 of them, in order).
    let newest = server.search(&tag);
    assert_eq!(newest.len() as f64, stored(&m).min(10_000.0));
    // And the server still takes UDP.
    assert_eq!(server.healthz(), 200);
    send_udp(
        server.udp,
        format!("<13>Nov 26 12:00:00 web-1 {tag}x: after the flood").as_bytes(),
    );
    server.wait_one("after the flood");
    server.stop();
}

#[test]
fn http_ingest_tokens_are_checked_and_nothing_is_stored_without_one() {
    let mut server = Server::start("[http]\ningest_tokens = [\"ingest-only-token\"]\n");
    let tag = format!("tok{}", nonce());
    let body = format!("{tag} should not be stored\n");
    for headers in [
        vec![],
        vec![("Authorization", "Bearer wrong-token")],
        vec![("Authorization", "Bearer ")],
        vec![("Authorization", "Basic b3JkZXI6d2F0Y2g=")],
    ] {
        let r = server.post_logs_with(&headers, body.as_bytes()).unwrap();
        assert_eq!(r.status, 401, "{headers:?}: {}", r.text());
        assert!(r.json()["error"].is_string(), "{headers:?}: {}", r.text());
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{headers:?}");
    }
    // An ingest token may post but not search.
    let r = server
        .post_logs_with(
            &[("Authorization", "Bearer ingest-only-token")],
            format!("{tag} from the ingest token\n").as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let s = http(
        server.http,
        "GET",
        "/api/v1/events/search.json?q=x",
        &[("Authorization", "Bearer ingest-only-token")],
        b"",
    )
    .unwrap();
    assert_eq!(s.status, 403, "{}", s.text());
    // Hosted-log-service clients send X-Papertrail-Token.
    let r = server
        .post_logs_with(
            &[("X-Papertrail-Token", TOKEN)],
            format!("{tag} via papertrail header\n").as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());

    let found = server.search(&tag);
    let msgs: Vec<&str> = found
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        [
            format!("{tag} from the ingest token"),
            format!("{tag} via papertrail header")
        ],
        "{found:#?}"
    );
    // Searching without a token is refused as well.
    let s = http(
        server.http,
        "GET",
        "/api/v1/events/search.json?q=x",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(s.status, 401);
    server.stop();
}

#[test]
fn http_ingest_gzip_body_and_acknowledged_ids() {
    let mut server = Server::start("");
    let tag = format!("gz{}", nonce());
    let lines: String = (0..500)
        .map(|i| format!("<30>Nov 26 12:00:00 web-4 {tag}: gzip line {i:03}\r\n"))
        .collect();
    let auth = format!("Bearer {TOKEN}");
    let r = server
        .post_logs_with(
            &[("Authorization", &auth), ("Content-Encoding", "gzip")],
            &gzip(lines.as_bytes()),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["accepted"], 500, "{v}");
    assert_eq!(v["truncated"], 0, "{v}");
    let first: u64 = v["first_id"].as_str().unwrap().parse().unwrap();
    let last: u64 = v["last_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(last - first, 499, "{v}");
    // Acknowledged means searchable at once, with exactly the acknowledged ids.
    let events = server.search(&tag);
    assert_eq!(events.len(), 500);
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, (first..=last).collect::<Vec<_>>());
    assert_eq!(events[7]["message"], "gzip line 007");
    assert_eq!(events[7]["source_name"], "web-4");

    // Not gzip although it says so: 400, nothing stored.
    let r = server
        .post_logs_with(
            &[("Authorization", &auth), ("Content-Encoding", "gzip")],
            format!("{tag} plain\n").as_bytes(),
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    // An encoding it does not speak: 400 with a message that says what to do.
    let r = server
        .post_logs_with(
            &[("Authorization", &auth), ("Content-Encoding", "compress")],
            b"xx",
        )
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"].as_str().unwrap().contains("gzip, deflate, br or zstd"),
        "{}",
        r.text()
    );
    assert_eq!(server.search(&tag).len(), 500);
    server.stop();
}

/// A gzip bomb (512 MiB of zeros in about half a megabyte) against a 1 MiB
/// body limit is refused with 413, costs no memory, and stores nothing; so is
/// a plain body over the limit.
#[test]
fn http_ingest_gzip_bomb_and_oversized_body_are_refused_with_413() {
    let mut server = Server::start("[http]\nmax_body_bytes = \"1MiB\"\n");
    let tag = format!("bomb{}", nonce());
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(format!("{tag} first line of the bomb\n").as_bytes())
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..512 {
        enc.write_all(&zeros).unwrap();
    }
    let bomb = enc.finish().unwrap();
    assert!(
        bomb.len() < 1 << 20,
        "the bomb itself ({} bytes) must fit the limit on the wire",
        bomb.len()
    );
    let auth = format!("Bearer {TOKEN}");
    let rss_before = server.rss_kb();
    let r = server
        .post_logs_with(
            &[("Authorization", &auth), ("Content-Encoding", "gzip")],
            &bomb,
        )
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.json()["error"].as_str().unwrap().contains("bytes"),
        "{}",
        r.text()
    );
    let grown_mb = server.rss_kb().saturating_sub(rss_before) / 1024;
    assert!(
        grown_mb < 64,
        "the bomb made the server grow by {grown_mb} MB"
    );

    let big = format!("{tag} {}\n", "y".repeat(2 << 20));
    let r = server
        .post_logs_with(&[("Authorization", &auth)], big.as_bytes())
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.text());

    assert!(
        server.search(&tag).is_empty(),
        "a refused body left lines behind"
    );
    // Under the limit is fine.
    let r = server.post_logs(format!("{tag} small enough\n").as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(server.search(&tag).len(), 1);
    server.stop();
}

/// Lines that are neither RFC 3164 nor RFC 5424 are kept whole as bare
/// messages (sender = the peer's address), never dropped.
#[test]
fn lines_that_are_not_syslog_are_kept_as_bare_messages() {
    let mut server = Server::start("");
    let tag = format!("bare{}", nonce());
    let tcp_line = format!("{tag} plain words over tcp, no PRI at all");
    let udp_line = format!("{tag} plain words over udp");
    let odd_pri = format!("<999>{tag} a PRI out of range");
    let half_header = format!("<13>Nov 99 25:61:00 {tag} broken date");
    send_tcp(
        server.tcp,
        format!("{tcp_line}\n{odd_pri}\n{half_header}\n").as_bytes(),
    );
    send_udp(server.udp, udp_line.as_bytes());
    let events = server.wait_for(&tag, 4, Duration::from_secs(15));
    assert_eq!(events.len(), 4, "{events:#?}");
    for line in [&tcp_line, &udp_line] {
        let e = find_msg(&events, line);
        assert_eq!(e["message"], line.as_str(), "{e:#}");
        assert_eq!(e["source_name"], "127.0.0.1", "{e:#}");
        assert_eq!(e["source_ip"], "127.0.0.1", "{e:#}");
    }
    // The others are kept with every byte of their text findable.
    assert!(
        find_msg(&events, "a PRI out of range")["message"]
            .as_str()
            .unwrap()
            .contains(&tag)
    );
    assert!(
        find_msg(&events, "broken date")["message"]
            .as_str()
            .unwrap()
            .contains(&tag)
    );
    server.stop();
}
