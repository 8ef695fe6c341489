//! cargo-fuzz target for `orderwatch::query` (`cargo +nightly fuzz run query`).
//!
//! Queries come from anyone with a search box, and messages from anyone who can
//! make a server log a line, so neither may panic the engine. The input's first
//! line is the query, the rest (if any) a message. A query that compiles must
//! compile again from its canonical text to the same thing, and a set of the
//! two must report both or neither, as each alone says; a query that does not
//! compile must point inside it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use orderwatch::event::LogEvent;
use orderwatch::query::{Matcher, QuerySet, compile};

const UWSGI: &str = "[pid: 20593|app: 0|req: 154/4946604] 176.114.214.14 () {48 vars in 1018 bytes} [Sat Jun 23 17:17:48 2018] POST /api/v1/orders/ => generated 99 bytes in 2 msecs (HTTP/2.0 429) 8 headers in 295 bytes (1 switches on core 0)";

fn event(host: &str, program: &str, message: &str) -> LogEvent {
    LogEvent {
        id: 1,
        received_at: 0,
        generated_at: 0,
        source_name: host.into(),
        source_ip: "127.0.0.1".into(),
        program: program.into(),
        severity: Some(3),
        facility: Some(16),
        message: message.into(),
        raw: bytes::Bytes::new(),
        flags: 0,
    }
}

fn check(text: &str) {
    let (query, message) = text.split_once('\n').unwrap_or((text, UWSGI));
    let compiled = match compile(query) {
        Ok(q) => q,
        Err(e) => {
            assert!(e.position <= query.chars().count(), "{query:?}: {e}");
            assert!(!e.message.is_empty());
            return;
        }
    };
    let canonical = compiled.canonical();
    let again = compile(&canonical)
        .unwrap_or_else(|e| panic!("{query:?} -> {canonical:?} does not compile: {e}"));
    assert_eq!(again.expr(), compiled.expr(), "{query:?} -> {canonical:?}");
    let set = QuerySet::new(&[compiled.clone(), again]);
    for ev in [
        event("web-1", "website-backend", message),
        event(message, message, message),
        event("Σ", "İ", &message.to_uppercase()),
    ] {
        let want = compiled.matches(&ev);
        let mut got = Vec::new();
        set.matching(&ev, &mut got);
        let expected: &[usize] = if want { &[0, 1] } else { &[] };
        assert_eq!(got, expected, "{query:?} on {ev:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
});
