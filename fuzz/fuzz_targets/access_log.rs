//! cargo-fuzz target for `orderwatch::parse::access` (`cargo +nightly fuzz run access_log`).
//!
//! The parser reads messages that strangers can make a server log, so it must not panic on
//! any input, and every record it returns must keep the promises the rest of orderwatch
//! relies on. Every returned record must also survive `format` and `parse` unchanged,
//! because a parsed record is by construction one that its dialect can express.

#![no_main]

use libfuzzer_sys::fuzz_target;
use orderwatch::parse::access::{self, AccessLog, Dialect, Kind};

fn check(message: &str) {
    let Some(log) = access::parse(message) else {
        return;
    };
    if let Some(status) = log.status {
        assert!(
            (100..=999).contains(&status),
            "status {status} from {message:?}"
        );
    }
    if let Some(path) = &log.path {
        assert!(path.starts_with('/'), "path {path:?} from {message:?}");
        assert!(
            !path.contains('?'),
            "path {path:?} holds the query, from {message:?}"
        );
    }
    if let Some(query) = &log.query {
        assert!(!query.is_empty(), "empty query from {message:?}");
    }
    if let Some(method) = &log.method {
        assert!(
            !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()),
            "method {method:?} from {message:?}"
        );
    }
    // Only uWSGI's disconnect lines report a client that went away, and they report nothing else.
    assert_eq!(
        log.kind == Kind::ClientGone,
        log.dialect == Dialect::UwsgiError,
        "{log:?}"
    );
    // Every string field is a piece of the message (JSON may unescape, so skip it there).
    if log.dialect != Dialect::Json {
        for field in [
            &log.method,
            &log.path,
            &log.query,
            &log.protocol,
            &log.client_ip,
            &log.remote_user,
            &log.request_id,
        ]
        .into_iter()
        .flatten()
        {
            assert!(
                message.contains(field.as_str()),
                "{field:?} is not in {message:?}"
            );
        }
    }
    let line = access::format(&log);
    let again: Option<AccessLog> = access::parse(&line);
    assert_eq!(
        again.as_ref(),
        Some(&log),
        "{message:?} was written back as {line:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = std::str::from_utf8(data) {
        check(message);
    }
    // Syslog receivers replace invalid UTF-8, so lossy strings are real input too.
    check(&String::from_utf8_lossy(data));
});
