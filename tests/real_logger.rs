//! Real syslog senders: util-linux `logger` (Debian `bsdutils`) over UDP, TCP
//! with LF framing and TCP with octet counting, in RFC 3164 and RFC 5424, each
//! line checked field by field as the search API shows it. Also the CLI
//! (`orderwatch search`, `orderwatch tail`) against those lines.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[derive(Clone, Copy, Debug)]
enum Transport {
    Udp,
    Tcp,
    TcpOctetCount,
}

#[derive(Clone, Copy, Debug)]
enum Format {
    Rfc3164,
    Rfc5424,
}

struct Case {
    transport: Transport,
    format: Format,
    priority: &'static str,
    severity: &'static str,
    facility: &'static str,
}

/// Sends one message with `logger` and checks every field of what arrives.
fn check(server: &mut Server, c: &Case) {
    let tag = format!("shop-{}", nonce());
    let message = format!(
        "order {} reached the kitchen: {:?} {:?}",
        nonce(),
        c.transport,
        c.format
    );
    let (transport, port): (&[&str], u16) = match c.transport {
        Transport::Udp => (&["--udp"], server.udp.port()),
        Transport::Tcp => (&["--tcp"], server.tcp.port()),
        Transport::TcpOctetCount => (&["--tcp", "--octet-count"], server.tcp.port()),
    };
    let format = match c.format {
        Format::Rfc3164 => "--rfc3164",
        Format::Rfc5424 => "--rfc5424",
    };
    logger(
        &[transport, &[format]].concat(),
        port,
        &["-t", &tag, "-p", c.priority, "--", &message],
    );

    let ev = server.wait_one(&tag);
    let host = hostname();
    // logger sends the short host name in RFC 3164 and gethostname() as it is in RFC 5424.
    let expected_host = match c.format {
        Format::Rfc3164 => host.split('.').next().unwrap().to_owned(),
        Format::Rfc5424 => host.clone(),
    };
    let what = format!("{:?} {:?} -p {}: {ev:#}", c.transport, c.format, c.priority);
    assert_eq!(ev["message"], message.as_str(), "{what}");
    assert_eq!(ev["program"], tag.as_str(), "{what}");
    assert_eq!(ev["source_name"], expected_host.as_str(), "{what}");
    assert_eq!(ev["source_ip"], "127.0.0.1", "{what}");
    assert_eq!(ev["severity"], c.severity, "{what}");
    assert_eq!(ev["facility"], c.facility, "{what}");
    assert!(ev.get("truncated").is_none(), "{what}");
    assert!(
        ev["id"].as_str().unwrap().parse::<u64>().unwrap() > 0,
        "{what}"
    );
    // logger stamps the time it sent: generated_at is within a minute of received_at.
    let received = ev["received_at"].as_str().unwrap();
    let generated = ev["generated_at"].as_str().unwrap();
    assert_eq!(
        &received[..13],
        &generated[..13],
        "generated_at far from received_at: {what}"
    );
}

fn cases(transport: Transport) -> Vec<Case> {
    vec![
        Case {
            transport,
            format: Format::Rfc3164,
            priority: "local3.warning",
            severity: "Warning",
            facility: "Local3",
        },
        Case {
            transport,
            format: Format::Rfc5424,
            priority: "daemon.err",
            severity: "Error",
            facility: "Daemon",
        },
        Case {
            transport,
            format: Format::Rfc3164,
            priority: "user.info",
            severity: "Info",
            facility: "User",
        },
        Case {
            transport,
            format: Format::Rfc5424,
            priority: "local7.debug",
            severity: "Debug",
            facility: "Local7",
        },
        Case {
            transport,
            format: Format::Rfc5424,
            priority: "auth.crit",
            severity: "Critical",
            facility: "Auth",
        },
    ]
}

/// Every case of `cases` over one transport arrives as sent, and is counted on its listener.
fn logger_cases_arrive(transport: Transport, listener: &str) {
    let mut server = Server::start("");
    for c in cases(transport) {
        check(&mut server, &c);
    }
    let m = server.metrics();
    assert!(received(&m, listener) >= 5.0, "{m}");
    server.stop();
}

#[test]
fn logger_udp_rfc3164_and_rfc5424() {
    logger_cases_arrive(Transport::Udp, "udp");
}

#[test]
fn logger_tcp_lf_framing_rfc3164_and_rfc5424() {
    logger_cases_arrive(Transport::Tcp, "tcp");
}

#[test]
fn logger_tcp_octet_counting_rfc3164_and_rfc5424() {
    logger_cases_arrive(Transport::TcpOctetCount, "tcp");
}

/// `logger` reads lines from stdin and sends each as its own message on one
/// connection: all arrive, in order, with ids increasing.
#[test]
fn logger_many_lines_on_one_connection_arrive_in_order() {
    let logger = require("logger");
    let mut server = Server::start("");
    for (i, flags) in [vec!["--tcp"], vec!["--tcp", "--octet-count"], vec!["--udp"]]
        .into_iter()
        .enumerate()
    {
        let tag = format!("batch{i}-{}", nonce());
        let n = 300;
        let input: String = (0..n).map(|j| format!("line {j:04} of {tag}\n")).collect();
        let mut child = Command::new(&logger)
            .args(&flags)
            .args(["--rfc5424", "-n", "127.0.0.1", "-t", &tag])
            .args([
                "-P",
                &if flags[0] == "--udp" {
                    server.udp.port()
                } else {
                    server.tcp.port()
                }
                .to_string(),
            ])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        let events = server.wait_for(&tag, n, Duration::from_secs(20));
        assert_eq!(events.len(), n, "{flags:?}");
        // UDP may reorder only across sockets; one logger process on loopback keeps order.
        let msgs: Vec<&str> = events
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        let expected: Vec<String> = (0..n).map(|j| format!("line {j:04} of {tag}")).collect();
        assert_eq!(msgs, expected, "{flags:?}");
        let ids: Vec<u64> = events
            .iter()
            .map(|e| e["id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ids not increasing: {ids:?}"
        );
    }
    server.stop();
}

/// `orderwatch search` prints `Mon DD HH:MM:SS source program: message`, newest first.
#[test]
fn cli_search_prints_logger_lines_newest_first() {
    let mut server = Server::start("");
    let tag = format!("cli-{}", nonce());
    let port = server.tcp.port();
    for i in 0..3 {
        let msg = format!("cli line {i}");
        logger(&["--tcp", "--rfc3164"], port, &["-t", &tag, &msg]);
        // One at a time, so the order of arrival is the order of sending.
        server.wait_for(&tag, i + 1, Duration::from_secs(10));
    }
    let out = run(Command::new(bin()).args([
        "search",
        "--server",
        &format!("http://{}", server.http),
        "--token",
        TOKEN,
        &tag,
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let host = hostname();
    let host = host.split('.').next().unwrap();
    for (line, i) in lines.iter().zip([2, 1, 0]) {
        let suffix = format!(" {host} {tag}: cli line {i}");
        assert!(
            line.ends_with(&suffix),
            "{line:?} should end with {suffix:?}\n{out}"
        );
        // "Nov 26 11:53:13"
        let stamp = &line[..line.len() - suffix.len()];
        assert_eq!(stamp.len(), 15, "{line:?}");
        assert!(
            stamp.as_bytes()[3] == b' ' && stamp.as_bytes()[6] == b' ' && &stamp[9..10] == ":",
            "{line:?}"
        );
    }
    // A query that is not valid gives a clear error and a non-zero exit.
    let bad = Command::new(bin())
        .args([
            "search",
            "--server",
            &format!("http://{}", server.http),
            "--token",
            TOKEN,
            "\"unclosed",
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("closing"), "{err}");
    // A wrong token is refused.
    let denied = Command::new(bin())
        .args([
            "search",
            "--server",
            &format!("http://{}", server.http),
            "--token",
            "wrong",
            &tag,
        ])
        .output()
        .unwrap();
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    server.stop();
}

/// `orderwatch tail` follows new lines live.
#[test]
fn cli_tail_follows_new_logger_lines() {
    let server = Server::start("");
    let tag = format!("tail-{}", nonce());
    let mut child = ChildGuard(
        Command::new(bin())
            .args([
                "tail",
                "--server",
                &format!("http://{}", server.http),
                "--token",
                TOKEN,
                &tag,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    for i in 0..3 {
        let msg = format!("live line {i}");
        logger(&["--udp"], server.udp.port(), &["-t", &tag, &msg]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    seen.push(line.clone());
                    if line.ends_with(&format!("{tag}: {msg}")) {
                        break;
                    }
                }
                Err(_) if Instant::now() < deadline => {}
                Err(_) => {
                    panic!(
                        "`orderwatch tail` did not print {msg:?} within 10 s; it printed {seen:#?}"
                    );
                }
            }
        }
    }
    drop(child);
    assert_eq!(
        seen.len(),
        3,
        "tail printed a line twice or an unrelated line: {seen:#?}"
    );
}

fn timestamp(v: &serde_json::Value) -> jiff::Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("{v}: {e}"))
}

fn assert_about_now(ev: &serde_json::Value) {
    let generated = timestamp(&ev["generated_at"]);
    let received = timestamp(&ev["received_at"]);
    let off = (received.as_second() - generated.as_second()).abs();
    assert!(
        off <= 5,
        "generated_at is {off} s away from received_at, so the zone was misread: {ev:#}"
    );
}

/// RFC 3164 times carry no zone: orderwatch reads them in the zone configured
/// for the sender (`[syslog.time_zones]`, by host name), else in
/// `syslog.time_zone`. A sender 12 hours east and one in New York both stamp
/// "now" in their local time, and both must come out as now.
#[test]
fn rfc3164_times_are_read_in_the_senders_configured_zone() {
    let host = hostname();
    let short = host.split('.').next().unwrap().to_owned();
    let config = format!(
        "[syslog]\ntime_zone = \"America/New_York\"\n[syslog.time_zones]\n{short:?} = \"Asia/Kamchatka\"\n"
    );
    let mut server = Server::start(&config);
    let tag = format!("tz{}", nonce());
    // logger stamps its local time; a POSIX TZ string needs no tzdata: UTC+12, as Kamchatka.
    let extra = ["-t", &tag, "stamped in Kamchatka"];
    run(logger_cmd(&["--tcp", "--rfc3164"], server.tcp.port(), &extra).env("TZ", "<+12>-12"));
    assert_about_now(&server.wait_one("stamped in Kamchatka"));

    let ny = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::get("America/New_York").unwrap());
    let stamp = ny.strftime("%b %e %H:%M:%S").to_string();
    send_tcp(
        server.tcp,
        format!("<13>{stamp} ny-web-1 {tag}: stamped in New York\n").as_bytes(),
    );
    let ev = server.wait_one("stamped in New York");
    assert_eq!(ev["source_name"], "ny-web-1");
    assert_about_now(&ev);
    server.stop();
}

/// Without `--token`, `orderwatch search --data DIR` finds the admin token the
/// server generated in its data directory, while the server is running.
#[test]
fn cli_search_finds_the_token_in_the_data_directory() {
    let mut server = Server::start("");
    let tag = format!("clidata{}", nonce());
    logger(&["--udp"], server.udp.port(), &["-t", &tag, "found"]);
    server.wait_one(&tag);
    let out = run(Command::new(bin())
        .env_remove("ORDERWATCH_API_TOKEN")
        .args([
            "search",
            "--server",
            &format!("http://{}", server.http),
            "--data",
        ])
        .arg(&server.data)
        .arg(&tag));
    assert!(out.trim_end().ends_with(&format!("{tag}: found")), "{out}");
    server.stop();
}
