//! Syslog over TLS (RFC 5425) with a test CA and server certificate made by the
//! test (rcgen), received from real TLS senders: rsyslog's `omfwd` with the
//! GnuTLS driver (Debian `rsyslog-gnutls`), verifying the certificate against
//! the test CA and the name `localhost`, and `openssl s_client`. A plain-TCP
//! peer speaking garbage (or nothing) to the TLS port must not hurt it.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 signed by it, as PEM files in `dir`.
fn make_pki(dir: &Path) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "orderwatch test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();

    let pki = Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server-cert.pem"),
        key: dir.join("server-key.pem"),
    };
    std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}

/// A server with a TLS listener using a fresh test PKI; idle/handshake timeout `idle`.
fn tls_server(idle: &str) -> (Server, Pki) {
    let tmp = tempfile::Builder::new()
        .prefix("orderwatch-tls-")
        .tempdir()
        .unwrap();
    let pki = make_pki(tmp.path());
    let config = format!(
        "[syslog]\ntls_cert = {:?}\ntls_key = {:?}\nidle_timeout = {idle:?}\n",
        pki.cert.display().to_string(),
        pki.key.display().to_string()
    );
    let server = Server::with_dir(
        Opts {
            config,
            tls: true,
            ..Opts::default()
        },
        tmp,
    );
    (server, pki)
}

/// Sends octet-counted messages with `openssl s_client`, verifying the server
/// certificate against the test CA; returns s_client's output.
fn s_client_send(tls: SocketAddr, ca: &Path, payload: &[u8]) -> String {
    let openssl = require("openssl");
    let mut child = Command::new(openssl)
        .args([
            "s_client",
            "-connect",
            &tls.to_string(),
            "-servername",
            "localhost",
            "-verify_return_error",
        ])
        .args([
            "-verify_hostname",
            "localhost",
            "-quiet",
            "-no_ign_eof",
            "-CAfile",
        ])
        .arg(ca)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "openssl s_client failed ({}):\n{text}",
        out.status
    );
    text
}

#[test]
fn tls_openssl_s_client_octet_counted_messages_arrive() {
    let (mut server, pki) = tls_server("30s");
    let tls = server.tls.unwrap();
    let tag = format!("tlsclient{}", nonce());
    let m1 = format!(
        "<134>1 2026-11-26T12:00:00.123+03:00 web-1.shop.example {tag} 77 ORDER - order 1001 over TLS"
    );
    let m2 =
        format!("<27>Nov 26 12:00:01 web-2 {tag}[8]: second message on the same TLS connection");
    let mut payload = octet(m1.as_bytes());
    payload.extend(octet(m2.as_bytes()));
    let out = s_client_send(tls, &pki.ca, &payload);
    assert!(
        out.contains("verify return:1") || !out.contains("verify error"),
        "{out}"
    );

    let events = server.wait_for(&tag, 2, Duration::from_secs(15));
    assert_eq!(events.len(), 2, "{events:#?}");
    let e1 = find_msg(&events, "order 1001 over TLS");
    assert_eq!(e1["message"], "order 1001 over TLS", "{e1:#}");
    assert_eq!(e1["source_name"], "web-1.shop.example", "{e1:#}");
    assert_eq!(e1["program"], tag.as_str(), "{e1:#}");
    assert_eq!(e1["severity"], "Info", "{e1:#}");
    assert_eq!(e1["facility"], "Local0", "{e1:#}");
    assert_eq!(e1["source_ip"], "127.0.0.1", "{e1:#}");
    // RFC 5424 carries its zone: 12:00:00.123+03:00 is 09:00:00 UTC, whatever zone the server shows.
    let generated: jiff::Timestamp = e1["generated_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        generated,
        "2026-11-26T09:00:00Z".parse::<jiff::Timestamp>().unwrap(),
        "{e1:#}"
    );
    let e2 = find_msg(&events, "second message on the same TLS connection");
    assert_eq!(e2["source_name"], "web-2", "{e2:#}");
    assert_eq!(e2["severity"], "Error", "{e2:#}");
    assert_eq!(e2["facility"], "Daemon", "{e2:#}");
    let m = server.metrics();
    assert!(received(&m, "tls") >= 2.0, "{m}");
    server.stop();
}

/// rsyslog forwarding with `omfwd` over TLS (gtls driver), checking the server
/// certificate against the test CA and the peer name `localhost`.
#[test]
fn tls_rsyslog_gtls_forwarding_arrives() {
    require_file("lmnsd_gtls.so", "rsyslog");
    require("logger");
    let (mut server, pki) = tls_server("30s");
    let tls = server.tls.unwrap();
    // The CA is global in rsyslog; the TLS driver is chosen for this action only,
    // so the plain imtcp input keeps its default driver.
    let rs = Rsyslog::start(
        &server.dir.clone(),
        &format!("DefaultNetstreamDriverCAFile=\"{}\"", pki.ca.display()),
        &format!(
            "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{}\" protocol=\"tcp\" \
             StreamDriver=\"gtls\" StreamDriverMode=\"1\" StreamDriverAuthMode=\"x509/name\" \
             StreamDriverPermittedPeers=\"localhost\")",
            tls.port()
        ),
        false,
    );
    let input = rs.input;

    let tag = format!("tlsrelay{}", nonce());
    for i in 0..5 {
        let msg = format!("order {i} relayed over TLS");
        logger(
            &["--tcp", "--rfc3164"],
            input.port(),
            &["-t", &tag, "-p", "local3.warning", &msg],
        );
    }
    let events = server.wait_for(&tag, 5, Duration::from_secs(20));
    let host = hostname();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            e["message"],
            format!("order {i} relayed over TLS").as_str(),
            "{e:#}"
        );
        assert_eq!(e["program"], tag.as_str(), "{e:#}");
        assert_eq!(e["source_name"], host.split('.').next().unwrap(), "{e:#}");
        assert_eq!(e["severity"], "Warning", "{e:#}");
        assert_eq!(e["facility"], "Local3", "{e:#}");
    }
    let m = server.metrics();
    assert!(received(&m, "tls") >= 5.0, "{m}");
    assert_eq!(received(&m, "tcp"), 0.0, "{m}");
    rs.stop();
    server.stop();
}

/// Reads until EOF or error; true when the server closed the connection within `within`.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {} // a TLS alert, say
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true, // reset
        }
        if Instant::now() > deadline {
            return false;
        }
    }
}

/// Plain syslog, binary garbage and a silent peer on the TLS port: each is
/// closed on its own (handshake failure / handshake timeout), none is stored,
/// and a real TLS sender right after works.
#[test]
fn tls_port_survives_plaintext_garbage_and_silent_peers() {
    let (mut server, pki) = tls_server("2s");
    let tls = server.tls.unwrap();
    let tag = format!("tlsgarbage{}", nonce());

    // A silent peer, connected first: it must not block the others.
    let mut silent = TcpStream::connect(tls).unwrap();

    let mut plain = TcpStream::connect(tls).unwrap();
    plain
        .write_all(format!("<13>Nov 26 12:00:00 host {tag}: plain text to a TLS port\n").as_bytes())
        .unwrap();
    assert!(
        closed_by_server(&mut plain, Duration::from_secs(10)),
        "plain text on the TLS port was not refused"
    );

    let mut garbage = TcpStream::connect(tls).unwrap();
    let mut junk: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    junk[..5].copy_from_slice(&[0x16, 0x03, 0x01, 0xff, 0xff]); // a TLS record header announcing a huge record
    let _ = garbage.write_all(&junk);
    assert!(
        closed_by_server(&mut garbage, Duration::from_secs(10)),
        "garbage on the TLS port was not refused"
    );

    // A real TLS sender while the silent peer is still connected.
    let msg = format!("<14>Nov 26 12:00:02 web-9 {tag}: real TLS after the garbage");
    s_client_send(tls, &pki.ca, &octet(msg.as_bytes()));
    let ev = server.wait_one("real TLS after the garbage");
    assert_eq!(ev["source_name"], "web-9");

    // The silent peer is closed by the handshake timeout (2 s here).
    assert!(
        closed_by_server(&mut silent, Duration::from_secs(10)),
        "a silent peer on the TLS port was never closed"
    );
    let m = server.wait_metrics(
        "2 handshake failures and 1 handshake timeout",
        Duration::from_secs(10),
        |m| {
            metric(
                m,
                "orderwatch_connections_closed_total",
                &[("listener", "tls"), ("reason", "tls_handshake")],
            ) >= 2.0
                && metric(
                    m,
                    "orderwatch_connections_closed_total",
                    &[("listener", "tls"), ("reason", "tls_handshake_timeout")],
                ) >= 1.0
        },
    );
    assert_eq!(
        server.search(&tag).len(),
        1,
        "only the TLS message may be stored\n{m}"
    );
    assert_eq!(server.healthz(), 200);
    server.stop();
}
