//! cargo-fuzz target for the log store's decoders (`cargo +nightly fuzz run store_codec`):
//! WAL rows and chunk columns are read back from a disk that may be damaged, so
//! any bytes must decode or give an error, never panic or allocate without bound;
//! and whatever decodes must encode back to an equal event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orderwatch::logstore::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = codec::decode_row(data) {
        let mut again = Vec::new();
        codec::encode_row(&ev, &mut again);
        assert_eq!(codec::decode_row(&again).unwrap(), ev);
    }
    if let Ok(events) = codec::decode_columns(data) {
        let again = codec::encode_columns(&events);
        assert_eq!(codec::decode_columns(&again).unwrap(), events);
    }
});
