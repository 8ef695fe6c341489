//! A real rsyslogd (Debian `rsyslog`) relaying to orderwatch, as a shop's
//! machines do: lines go into rsyslog's own `imtcp` input (from `logger` and
//! from a raw sender with its own host name) and rsyslog forwards them with
//! `omfwd` over TCP, with LF framing and with octet counting, in the
//! traditional (RFC 3164) and the RFC 5424 forwarding formats.

mod common;

use std::time::Duration;

use common::*;

/// Sends through rsyslog: two lines with `logger` (RFC 3164 and RFC 5424, with
/// a pid) and one raw line from a host called `web-7`, then checks every field
/// of what arrives in orderwatch.
///
/// With rsyslog's RFC 5424 template (`rfc5424_template`), a line rsyslog itself
/// received as RFC 3164 keeps the space that followed its tag: rsyslog's `%msg%`
/// starts with it, and RFC 5424 makes MSG everything after the SP that ends the
/// header, so that one space is the sender's message as sent.
fn relay_and_check(server: &mut Server, rsyslog: &Rsyslog, rfc5424_template: bool) {
    let lead = if rfc5424_template { " " } else { "" };
    let tag = format!("checkout{}", nonce());
    let port = rsyslog.input.port();
    let m1 = format!("{tag} order 1001 placed");
    let m2 = format!("{tag} order 1002 refused: floor -1");
    logger(
        &["--tcp", "--rfc3164"],
        port,
        &["-t", &tag, "-p", "local3.warning", &m1],
    );
    logger(
        &["--tcp", "--rfc5424"],
        port,
        &["-t", &tag, "--id=4242", "-p", "user.err", &m2],
    );
    let m3 = format!("{tag} raw line from the web tier");
    send_tcp(
        rsyslog.input,
        format!("<134>Nov 26 12:00:00 web-7 {tag}[42]: {m3}\n").as_bytes(),
    );

    let events = server.wait_for(&tag, 3, Duration::from_secs(20));
    assert_eq!(events.len(), 3, "{events:#?}");
    let host = hostname();
    let short = host.split('.').next().unwrap();

    let e1 = find_msg(&events, &m1);
    assert_eq!(e1["message"], format!("{lead}{m1}").as_str(), "{e1:#}");
    assert_eq!(e1["program"], tag.as_str(), "{e1:#}");
    assert_eq!(e1["source_name"], short, "{e1:#}");
    assert_eq!(e1["severity"], "Warning", "{e1:#}");
    assert_eq!(e1["facility"], "Local3", "{e1:#}");
    assert_eq!(e1["source_ip"], "127.0.0.1", "{e1:#}");

    let e2 = find_msg(&events, &m2);
    // rsyslog received this one as RFC 5424: its message has no leading space.
    assert_eq!(e2["message"], m2.as_str(), "{e2:#}");
    assert_eq!(e2["program"], tag.as_str(), "{e2:#}");
    assert_eq!(e2["source_name"], short, "{e2:#}");
    assert_eq!(e2["severity"], "Error", "{e2:#}");
    assert_eq!(e2["facility"], "User", "{e2:#}");

    let e3 = find_msg(&events, &m3);
    assert_eq!(e3["message"], format!("{lead}{m3}").as_str(), "{e3:#}");
    assert_eq!(e3["program"], tag.as_str(), "{e3:#}");
    assert_eq!(
        e3["source_name"], "web-7",
        "the original sender's host name must survive the relay: {e3:#}"
    );
    assert_eq!(e3["severity"], "Info", "{e3:#}");
    assert_eq!(e3["facility"], "Local0", "{e3:#}");
    if rfc5424_template {
        // RFC 5424 carries the year and zone: the sender's "Nov 26 12:00:00" is kept as rsyslog read it.
        assert!(
            e3["generated_at"].as_str().unwrap().contains("T12:00:00"),
            "{e3:#}"
        );
    }
}

#[test]
fn rsyslog_omfwd_tcp_lf_framing() {
    let mut server = Server::start("");
    let rs = Rsyslog::start(&server.dir, "", &omfwd_tcp(&server, ""), false);
    relay_and_check(&mut server, &rs, false);
    rs.stop();
    server.stop();
}

#[test]
fn rsyslog_omfwd_tcp_octet_counted() {
    let mut server = Server::start("");
    let rs = Rsyslog::start(
        &server.dir,
        "",
        &omfwd_tcp(&server, "TCP_Framing=\"octet-counted\""),
        false,
    );
    relay_and_check(&mut server, &rs, false);
    rs.stop();
    server.stop();
}

#[test]
fn rsyslog_omfwd_rfc5424_template_octet_counted() {
    let mut server = Server::start("");
    let rs = Rsyslog::start(
        &server.dir,
        "",
        &omfwd_tcp(
            &server,
            "TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\"",
        ),
        false,
    );
    relay_and_check(&mut server, &rs, true);
    rs.stop();
    server.stop();
}

/// A multi-line burst through rsyslog over one forwarding connection arrives
/// complete and in order (LF framing: the framer must split at every LF).
#[test]
fn rsyslog_burst_of_lines_arrives_complete_and_in_order() {
    let mut server = Server::start("");
    let rs = Rsyslog::start(&server.dir, "", &omfwd_tcp(&server, ""), false);
    let tag = format!("burst{}", nonce());
    let n = 2000;
    let mut payload = Vec::new();
    for i in 0..n {
        payload.extend_from_slice(
            format!("<30>Nov 26 12:00:00 web-3 {tag}: request {i:05} done\n").as_bytes(),
        );
    }
    send_tcp(rs.input, &payload);
    let events = server.wait_for(&tag, n, Duration::from_secs(30));
    assert_eq!(events.len(), n);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["message"], format!("request {i:05} done").as_str());
        assert_eq!(e["source_name"], "web-3");
    }
    rs.stop();
    server.stop();
}

/// orderwatch closes a TCP connection that stays silent for `idle_timeout`.
/// rsyslog keeps its forwarding connection open between messages, so the line
/// it sends after such a close must still arrive (rsyslog notices the close and
/// reconnects; a server that half-closed or RST in a bad way would lose it).
#[test]
fn rsyslog_line_after_idle_disconnect_is_not_lost() {
    let mut server = Server::start("[syslog]\nidle_timeout = \"1s\"\n");
    let rs = Rsyslog::start(
        &server.dir,
        "",
        &omfwd_tcp(&server, "TCP_Framing=\"octet-counted\""),
        false,
    );
    let tag = format!("idle{}", nonce());
    let port = rs.input.port();
    logger(&["--tcp"], port, &["-t", &tag, "before the pause"]);
    server.wait_for(&tag, 1, Duration::from_secs(10));
    // Wait until orderwatch has closed rsyslog's idle connection.
    server.wait_metrics("an idle_timeout close", Duration::from_secs(10), |m| {
        metric(
            m,
            "orderwatch_connections_closed_total",
            &[("listener", "tcp"), ("reason", "idle_timeout")],
        ) >= 1.0
    });
    for i in 0..3 {
        let msg = format!("after the pause {i}");
        logger(&["--tcp"], port, &["-t", &tag, &msg]);
    }
    let events = server.wait_for(&tag, 4, Duration::from_secs(20));
    let msgs: Vec<&str> = events
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        msgs,
        [
            "before the pause",
            "after the pause 0",
            "after the pause 1",
            "after the pause 2"
        ]
    );
    rs.stop();
    server.stop();
}
