//! Fuzzes the syslog header parser: any bytes a socket can deliver must give
//! an answer without a panic, and the answer must keep the frame's content.
//! Run with
//! `cargo +nightly fuzz run syslog`.
#![no_main]

use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;
use orderwatch::parse::syslog::parse;

/// A zone with DST, so year choice and gap/fold handling are exercised; built
/// once because a real caller passes a zone it keeps.
static ZONE: LazyLock<TimeZone> =
    LazyLock::new(|| TimeZone::get("Europe/Berlin").expect("the bundled tzdb has Europe/Berlin"));

fuzz_target!(|data: &[u8]| {
    // 2018-06-23T17:17:41+03:00, the time of the reference uWSGI log.
    let received_at = Timestamp::from_second(1_529_763_461).unwrap();
    let got = parse(data, received_at, &ZONE);

    // The frame terminators go, and nothing else: the message is always the
    // end of the (lossily decoded) line.
    let end = data
        .iter()
        .rposition(|&b| !matches!(b, b'\n' | b'\r' | b'\0'))
        .map_or(0, |i| i + 1);
    let line = String::from_utf8_lossy(&data[..end]);
    assert!(
        line.ends_with(got.message.as_str()),
        "message {:?} is not the end of {line:?}",
        got.message
    );
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(text.as_bytes()[..end].ends_with(got.message.as_bytes()));
    }

    // PRI gives both numbers or neither, in range.
    assert_eq!(got.severity.is_some(), got.facility.is_some());
    assert!(
        got.severity.is_none_or(|s| s <= 7),
        "severity {:?}",
        got.severity
    );
    assert!(
        got.facility.is_none_or(|f| f <= 23),
        "facility {:?}",
        got.facility
    );

    // Without PRI the line is not syslog: all of it is the message.
    if got.severity.is_none() {
        assert_eq!(got.message, line);
        assert_eq!(got.generated_at, None);
        assert_eq!(got.hostname, None);
        assert_eq!(got.program, "");
    }

    // Header words hold no whitespace, and NILVALUE is never a value.
    if let Some(hostname) = &got.hostname {
        assert!(
            !hostname.is_empty() && hostname != "-",
            "hostname {hostname:?}"
        );
        assert!(
            !hostname.bytes().any(|b| b.is_ascii_whitespace()),
            "hostname {hostname:?}"
        );
    }
    assert!(got.program != "-");
    assert!(
        !got.program.bytes().any(|b| b.is_ascii_whitespace()),
        "program {:?}",
        got.program
    );

    // A timestamp only comes from a header, and a header starts with PRI.
    assert!(got.generated_at.is_none() || got.severity.is_some());

    // The same input gives the same answer.
    assert_eq!(parse(data, received_at, &ZONE), got);
});
