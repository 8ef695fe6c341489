//! cargo-fuzz target for `orderwatch::ingest::framing::SyslogFramer` (`cargo +nightly fuzz run framing`).
//!
//! Input layout: `data[0]` picks `max_frame` (0..=63, small so truncation is
//! exercised), `data[1]` seeds the split points, the rest is the stream.
//! Checks: no panic, every frame ≤ max_frame bytes, the buffer stays bounded
//! between calls, the decoder always makes progress, and decoding the stream
//! as one buffer, byte by byte, and in pseudo-random chunks gives the same
//! frames.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use orderwatch::ingest::framing::{Frame, SyslogFramer};
use tokio_util::codec::Decoder;

/// Decodes `stream` fed in pieces of the given sizes (the last piece takes
/// whatever is left), then flushes at EOF.
fn decode(max_frame: usize, stream: &[u8], mut next_size: impl FnMut() -> usize) -> Vec<Frame> {
    let mut dec = SyslogFramer::new(max_frame);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    // Each frame consumes at least one input byte.
    let frame_limit = stream.len();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = next_size().clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(frame) = dec.decode(&mut buf).expect("decode never fails") {
            frames.push(frame);
            assert!(frames.len() <= frame_limit, "frames without progress");
        }
        // Between calls only a partial header (≤ 10 bytes) or a line not yet
        // known to be too long (≤ max_frame + 1 bytes) may stay buffered.
        assert!(
            buf.len() <= (max_frame + 1).max(10),
            "{} bytes buffered with max_frame {max_frame}",
            buf.len()
        );
    }
    while let Some(frame) = dec.decode_eof(&mut buf).expect("decode_eof never fails") {
        frames.push(frame);
        assert!(
            frames.len() <= frame_limit,
            "frames without progress at EOF"
        );
    }
    assert!(buf.is_empty(), "bytes left over after EOF");
    assert!(
        dec.decode_eof(&mut buf)
            .expect("decode_eof never fails")
            .is_none()
    );
    for frame in &frames {
        assert!(
            frame.bytes.len() <= max_frame,
            "frame of {} bytes, max_frame {max_frame}",
            frame.bytes.len()
        );
    }
    frames
}

fuzz_target!(|data: &[u8]| {
    let [max_byte, seed, stream @ ..] = data else {
        return;
    };
    let max_frame = usize::from(*max_byte % 64);

    let whole = decode(max_frame, stream, || usize::MAX);

    let byte_by_byte = decode(max_frame, stream, || 1);
    assert_eq!(whole, byte_by_byte, "whole vs byte-by-byte");

    // xorshift over the seed: chunk sizes 1..=32.
    let mut state = u32::from(*seed) | 0x9e37_7900;
    let chunked = decode(max_frame, stream, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 32) as usize + 1
    });
    assert_eq!(whole, chunked, "whole vs chunked");

    let bytes_out: usize = whole.iter().map(|f| f.bytes.len()).sum();
    assert!(bytes_out <= stream.len());
});
