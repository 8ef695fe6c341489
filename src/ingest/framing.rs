//! Syslog framing for stream transports (TCP and TLS).
//!
//! Syslog over a byte stream has two framings, and senders in the wild use
//! both, sometimes on the same connection:
//!
//! * **Octet counting** — [RFC 6587 §3.4.1] (and the only framing allowed by
//!   [RFC 5425 §4.3], syslog over TLS):
//!
//!   ```text
//!   +---------+----+--------------------------------------+
//!   | MSG-LEN | SP | SYSLOG-MSG (exactly MSG-LEN octets)  |
//!   +---------+----+--------------------------------------+
//!     "30"     " "  "<34>1 - host app - - - hello world"
//!
//!   MSG-LEN = NONZERO-DIGIT 0*8DIGIT      (1..=9 ASCII digits, no leading '0')
//!   ```
//!
//! * **Non-transparent framing** — [RFC 6587 §3.4.2]:
//!
//!   ```text
//!   +---------------------------------+---------+
//!   | SYSLOG-MSG (no TRAILER inside)  | TRAILER |   TRAILER = LF | CR LF | NUL
//!   +---------------------------------+---------+
//!     "<34>Oct 11 22:14:15 host app: hello"  "\n"
//!   ```
//!
//! Each frame is classified on its own, at the frame boundary: it is octet
//! counted only if it starts with `MSG-LEN SP <` (every syslog message starts
//! with its PRI, `<`). Anything else — including bare lines such as `200 OK`,
//! `0 <…`, `007 <…`, ten or more digits, or digits not followed by `SP <` —
//! is a line ending at the next LF (a CR right before the LF is dropped) or
//! NUL. Empty lines are skipped.
//!
//! Over-long messages are *truncated*, never dropped and never fatal: the first
//! `max_frame` bytes are emitted with [`Frame::truncated`] set, and the rest of
//! the message is discarded as it arrives, without being buffered. The decoder
//! therefore never holds more than about `max_frame` bytes of a message
//! (plus whatever the reader put in the buffer), whatever the peer sends.
//!
//! The decoder is an explicit state machine (see `State`), in the style of
//! Vector's `OctetCountingDecoder`, and its output does not depend on how the
//! input is split into reads.
//!
//! [RFC 6587 §3.4.1]: https://www.rfc-editor.org/rfc/rfc6587#section-3.4.1
//! [RFC 6587 §3.4.2]: https://www.rfc-editor.org/rfc/rfc6587#section-3.4.2
//! [RFC 5425 §4.3]: https://www.rfc-editor.org/rfc/rfc5425#section-4.3

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// Most digits accepted in an octet-counting `MSG-LEN` (RFC 6587 allows any
/// number; nine keeps the value below 10^9 and fits a 32-bit `usize`).
const MAX_LEN_DIGITS: usize = 9;

/// Upper bound on how much buffer space is reserved ahead of data that has
/// not arrived yet, so a peer cannot make us allocate a large `max_frame`
/// just by announcing a large `MSG-LEN`.
const MAX_RESERVE_AHEAD: usize = 64 * 1024;

/// One syslog message taken off the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message without framing (no `MSG-LEN SP`, no trailer); at most
    /// `max_frame` bytes.
    pub bytes: Bytes,
    /// The sender's message was longer than `max_frame` and was cut, or an
    /// octet-counted message was cut short by the end of the stream.
    pub truncated: bool,
    /// The message used octet-counting framing (otherwise LF/NUL framing).
    pub octet_counted: bool,
}

/// Errors from [`SyslogFramer`]. Framing itself never fails: malformed input
/// is read as a line, and over-long input is truncated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// Reading the underlying stream failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where the decoder is within the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a frame boundary; the framing of the next frame is not known yet.
    Start,
    /// Inside a non-transparent (LF/NUL-terminated) frame. The first
    /// `scanned` bytes of the buffer are known to hold no terminator.
    Line { scanned: usize },
    /// Inside an octet-counted frame, after its `MSG-LEN SP` header: `keep`
    /// body bytes are to be emitted, then `skip` more bytes discarded.
    Octet { keep: usize, skip: usize },
    /// Discarding the tail of an over-long line, up to and including its
    /// terminator.
    DiscardLine,
    /// Discarding the last `remaining` bytes of an over-long octet-counted
    /// message.
    DiscardOctets { remaining: usize },
}

/// Result of looking at the bytes at a frame boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    /// Cannot decide yet (empty, or only `DIGITS` / `DIGITS SP` so far).
    NeedMore,
    /// Not octet counting: the frame is a line.
    Line,
    /// `MSG-LEN SP` of `header_len` bytes announcing `msg_len` bytes, and the
    /// message's first byte (`<`) has been seen.
    Octet { header_len: usize, msg_len: usize },
}

fn parse_header(buf: &[u8]) -> Header {
    match buf.first() {
        None => return Header::NeedMore,
        Some(b'1'..=b'9') => {}
        Some(_) => return Header::Line,
    }
    let mut msg_len = 0usize;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b'0'..=b'9' if i < MAX_LEN_DIGITS => {
                msg_len = msg_len * 10 + usize::from(b - b'0');
            }
            // `i >= 1` here: the first byte is a digit.
            b' ' => {
                return match buf.get(i + 1) {
                    None => Header::NeedMore,
                    Some(b'<') => Header::Octet {
                        header_len: i + 1,
                        msg_len,
                    },
                    Some(_) => Header::Line,
                };
            }
            // A tenth digit, or anything else after the digits.
            _ => return Header::Line,
        }
    }
    Header::NeedMore
}

/// Decoder for syslog over TCP/TLS, auto-detecting octet counting versus
/// LF/NUL framing for every frame (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct SyslogFramer {
    max_frame: usize,
    state: State,
}

impl SyslogFramer {
    /// Creates a decoder that emits at most `max_frame` bytes per frame;
    /// longer messages are truncated to that and flagged.
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame,
            state: State::Start,
        }
    }

    /// The largest frame this decoder emits.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Bytes of a line that must be seen without a terminator before the
    /// line is known to exceed `max_frame`: `max_frame` content bytes, plus a
    /// possible CR, plus one more.
    fn line_window(&self) -> usize {
        self.max_frame.saturating_add(2)
    }
}

fn line_frame(bytes: Bytes, truncated: bool) -> Frame {
    Frame {
        bytes,
        truncated,
        octet_counted: false,
    }
}

impl Decoder for SyslogFramer {
    type Item = Frame;
    type Error = FramingError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        // Every iteration either returns or consumes bytes / moves to a
        // state that will, so this loop always terminates.
        loop {
            match self.state {
                State::Start => match parse_header(buf) {
                    Header::NeedMore => return Ok(None),
                    Header::Line => self.state = State::Line { scanned: 0 },
                    Header::Octet {
                        header_len,
                        msg_len,
                    } => {
                        buf.advance(header_len);
                        let keep = msg_len.min(self.max_frame);
                        self.state = State::Octet {
                            keep,
                            skip: msg_len - keep,
                        };
                    }
                },

                State::Line { scanned } => {
                    let window = self.line_window();
                    let end = buf.len().min(window);
                    let scanned = scanned.min(end);
                    let Some(off) = memchr::memchr2(b'\n', b'\0', &buf[scanned..end]) else {
                        if end < window {
                            self.state = State::Line { scanned: end };
                            return Ok(None);
                        }
                        // No terminator within max_frame + 2 bytes: the line
                        // is too long whatever follows. Emit its head now and
                        // drop the rest as it comes.
                        let bytes = buf.split_to(self.max_frame).freeze();
                        self.state = State::DiscardLine;
                        return Ok(Some(line_frame(bytes, true)));
                    };
                    let term = scanned + off;
                    let content = if buf[term] == b'\n' && term > 0 && buf[term - 1] == b'\r' {
                        term - 1
                    } else {
                        term
                    };
                    self.state = State::Start;
                    if content == 0 {
                        buf.advance(term + 1); // empty line
                        continue;
                    }
                    let kept = content.min(self.max_frame);
                    let bytes = buf.split_to(kept).freeze();
                    buf.advance(term + 1 - kept);
                    return Ok(Some(line_frame(bytes, content > kept)));
                }

                State::Octet { keep, skip } => {
                    if buf.len() < keep {
                        buf.reserve((keep - buf.len()).min(MAX_RESERVE_AHEAD));
                        return Ok(None);
                    }
                    let bytes = buf.split_to(keep).freeze();
                    self.state = if skip > 0 {
                        State::DiscardOctets { remaining: skip }
                    } else {
                        State::Start
                    };
                    return Ok(Some(Frame {
                        bytes,
                        truncated: skip > 0,
                        octet_counted: true,
                    }));
                }

                State::DiscardLine => match memchr::memchr2(b'\n', b'\0', buf) {
                    Some(i) => {
                        buf.advance(i + 1);
                        self.state = State::Start;
                    }
                    None => {
                        buf.clear();
                        return Ok(None);
                    }
                },

                State::DiscardOctets { remaining } => {
                    let n = remaining.min(buf.len());
                    buf.advance(n);
                    if n < remaining {
                        self.state = State::DiscardOctets {
                            remaining: remaining - n,
                        };
                        return Ok(None);
                    }
                    self.state = State::Start;
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FramingError> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        // `decode` wants more data that will never come: flush what is left.
        let state = std::mem::replace(&mut self.state, State::Start);
        if buf.is_empty() {
            return Ok(None);
        }
        match state {
            // A final line without terminator (or digits that never became
            // an octet-counting header): emit it as a line.
            State::Start | State::Line { .. } => {
                let content = buf.len();
                let kept = content.min(self.max_frame);
                let bytes = buf.split_to(kept).freeze();
                buf.clear();
                Ok(Some(line_frame(bytes, content > kept)))
            }
            // An octet-counted message cut short by the end of the stream.
            State::Octet { keep, .. } => {
                let bytes = buf.split_to(buf.len().min(keep)).freeze();
                buf.clear();
                Ok(Some(Frame {
                    bytes,
                    truncated: true,
                    octet_counted: true,
                }))
            }
            // `decode` consumes everything in these states; clear defensively.
            State::DiscardLine | State::DiscardOctets { .. } => {
                buf.clear();
                Ok(None)
            }
        }
    }
}

/// Appends `msg` with octet-counting framing: `"<len> <msg>"`.
///
/// The decoder recognises it only if `msg` starts with `<` and is shorter
/// than 10^9 bytes, as every real syslog message is.
pub fn encode_octet_counted(msg: &[u8], out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut n = msg.len();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.reserve(digits.len() - i + 1 + msg.len());
    out.extend_from_slice(&digits[i..]);
    out.push(b' ');
    out.extend_from_slice(msg);
}

/// Appends `msg` with non-transparent framing: `msg` followed by LF.
///
/// `msg` must not contain LF or NUL, must not end with CR, and must not be
/// empty, or it will not decode back to itself.
pub fn encode_lf(msg: &[u8], out: &mut Vec<u8>) {
    debug_assert!(!msg.contains(&b'\n'), "LF-framed message contains LF");
    out.reserve(msg.len() + 1);
    out.extend_from_slice(msg);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lf(b: &[u8]) -> Frame {
        Frame {
            bytes: Bytes::copy_from_slice(b),
            truncated: false,
            octet_counted: false,
        }
    }
    fn lf_cut(b: &[u8]) -> Frame {
        Frame {
            truncated: true,
            ..lf(b)
        }
    }
    fn oc(b: &[u8]) -> Frame {
        Frame {
            octet_counted: true,
            ..lf(b)
        }
    }
    fn oc_cut(b: &[u8]) -> Frame {
        Frame {
            truncated: true,
            ..oc(b)
        }
    }

    /// Most bytes the buffer may hold after `decode` returned `None`
    /// (a partial header, or a line not yet known to be too long).
    fn buffered_bound(max_frame: usize) -> usize {
        (max_frame + 1).max(MAX_LEN_DIGITS + 1)
    }

    /// Feeds `input` in chunks cycling through `chunks` (0 = whole input),
    /// then signals EOF; checks the per-call invariants on the way.
    fn decode_chunked(max_frame: usize, input: &[u8], chunks: &[usize]) -> Vec<Frame> {
        let mut dec = SyslogFramer::new(max_frame);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < input.len() {
            let size = match chunks.get(i % chunks.len().max(1)) {
                Some(&n) if n > 0 => n,
                _ => input.len(),
            };
            let n = size.min(input.len() - pos);
            buf.extend_from_slice(&input[pos..pos + n]);
            pos += n;
            i += 1;
            while let Some(frame) = dec.decode(&mut buf).unwrap() {
                out.push(frame);
                assert!(out.len() <= input.len(), "more frames than input bytes");
            }
            assert!(
                buf.len() <= buffered_bound(max_frame),
                "buffer holds {} bytes after decode returned None",
                buf.len()
            );
        }
        while let Some(frame) = dec.decode_eof(&mut buf).unwrap() {
            out.push(frame);
            assert!(out.len() <= input.len(), "more frames than input bytes");
        }
        assert!(buf.is_empty(), "bytes left after decode_eof returned None");
        assert_eq!(dec.decode_eof(&mut buf).unwrap(), None);
        for f in &out {
            assert!(f.bytes.len() <= max_frame, "frame longer than max_frame");
        }
        out
    }

    struct Case {
        name: &'static str,
        max: usize,
        input: &'static [u8],
        want: Vec<Frame>,
    }

    fn cases() -> Vec<Case> {
        let c = |name, max, input, want| Case {
            name,
            max,
            input,
            want,
        };
        vec![
            c("empty stream", 64, b"", vec![]),
            c(
                "plain LF lines",
                64,
                b"<13>one\n<14>two\n",
                vec![lf(b"<13>one"), lf(b"<14>two")],
            ),
            c(
                "CRLF",
                64,
                b"<13>one\r\n<14>t\rwo\r\n",
                vec![lf(b"<13>one"), lf(b"<14>t\rwo")],
            ),
            c(
                "only the CR right before LF is removed",
                64,
                b"<1>a\r\r\n<2>b\r\0",
                vec![lf(b"<1>a\r"), lf(b"<2>b\r")],
            ),
            c(
                "NUL terminator",
                64,
                b"<13>one\0<14>two\0",
                vec![lf(b"<13>one"), lf(b"<14>two")],
            ),
            c(
                "mixed: octet, LF, octet, NUL, octet",
                64,
                b"5 <1>ab<2>line\n6 <3>x\nz<4>nul\x0010 <5>a\nb\0c d",
                vec![
                    oc(b"<1>ab"),
                    lf(b"<2>line"),
                    oc(b"<3>x\nz"),
                    lf(b"<4>nul"),
                    oc(b"<5>a\nb\0c d"),
                ],
            ),
            c(
                "octet frame may contain LF, NUL and digits",
                64,
                b"9 <1>\n\x0012 3<2>x\n",
                vec![oc(b"<1>\n\x0012 3"), lf(b"<2>x")],
            ),
            c(
                "digit-leading bare lines",
                64,
                b"200 OK\n12 apples\n7\n42 \n",
                vec![lf(b"200 OK"), lf(b"12 apples"), lf(b"7"), lf(b"42 ")],
            ),
            c(
                "zero and leading-zero lengths are lines",
                64,
                b"0 <1>x\n05 <1>xy\n",
                vec![lf(b"0 <1>x"), lf(b"05 <1>xy")],
            ),
            c(
                "digits not followed by SP '<'",
                64,
                b"3<1>x\n3  <1>\n3 x<1>\n3\t<1>\n",
                vec![lf(b"3<1>x"), lf(b"3  <1>"), lf(b"3 x<1>"), lf(b"3\t<1>")],
            ),
            c(
                "nine digits is a length, ten is a line",
                8,
                b"1234567890 <1>x\n000000001 <x\n",
                vec![lf_cut(b"12345678"), lf_cut(b"00000000")],
            ),
            c(
                "octet MSG-LEN over max_frame: truncated, rest skipped",
                8,
                b"20 <1>abcdefghijklmnopq<2>next\n4 <3>z",
                vec![oc_cut(b"<1>abcde"), lf(b"<2>next"), oc(b"<3>z")],
            ),
            c(
                "octet MSG-LEN exactly max_frame",
                8,
                b"8 <1>abcde9 <1>abcdef",
                vec![oc(b"<1>abcde"), oc_cut(b"<1>abcde")],
            ),
            c(
                "over-long LF line: truncated, next line fine",
                4,
                b"<1>abcdefgh\n<2>x\n<3>yyyyyyyyyyyyyyyyyyy\0<4>w\r\n",
                vec![lf_cut(b"<1>a"), lf(b"<2>x"), lf_cut(b"<3>y"), lf(b"<4>w")],
            ),
            c(
                "LF line length boundaries",
                4,
                b"<1>a\n<1>b\r\n<1>cd\n<1>e\r\r\n",
                vec![lf(b"<1>a"), lf(b"<1>b"), lf_cut(b"<1>c"), lf_cut(b"<1>e")],
            ),
            c(
                "over-long line at max_frame 0",
                0,
                b"ab\n\nc\n",
                vec![lf_cut(b""), lf_cut(b"")],
            ),
            c(
                "empty lines skipped",
                64,
                b"\n\r\n\0\n<1>a\n\n\r\n\x005 <2>b\n\n",
                vec![lf(b"<1>a"), oc(b"<2>b\n")],
            ),
            c(
                "EOF: unterminated final line is emitted",
                64,
                b"<1>a\n<2>last",
                vec![lf(b"<1>a"), lf(b"<2>last")],
            ),
            c(
                "EOF: unterminated over-long final line",
                4,
                b"<2>last",
                vec![lf_cut(b"<2>l")],
            ),
            c(
                "EOF: unterminated final line of max_frame + 1",
                4,
                b"<2>ab",
                vec![lf_cut(b"<2>a")],
            ),
            c(
                "EOF: octet frame cut short",
                64,
                b"<1>a\n10 <2>abc",
                vec![lf(b"<1>a"), oc_cut(b"<2>abc")],
            ),
            c(
                "EOF: octet frame cut right after '<'",
                64,
                b"10 <",
                vec![oc_cut(b"<")],
            ),
            c(
                "EOF: partial octet header is a line",
                64,
                b"<1>a\n12",
                vec![lf(b"<1>a"), lf(b"12")],
            ),
            c(
                "EOF: digits and space is a line",
                64,
                b"12 ",
                vec![lf(b"12 ")],
            ),
            c(
                "EOF: while skipping an over-long octet frame",
                4,
                b"20 <1>abcdef",
                vec![oc_cut(b"<1>a")],
            ),
            c(
                "EOF: while discarding an over-long line",
                4,
                b"<1>abcdef",
                vec![lf_cut(b"<1>a")],
            ),
            c("EOF: only empty lines", 64, b"\n\r\n\0", vec![]),
        ]
    }

    #[test]
    fn table() {
        for case in cases() {
            for chunks in [&[0][..], &[1], &[2], &[3, 1, 7]] {
                let got = decode_chunked(case.max, case.input, chunks);
                assert_eq!(got, case.want, "case {:?}, chunks {chunks:?}", case.name);
            }
        }
    }

    #[test]
    fn frames_share_the_read_buffer() {
        let mut buf = BytesMut::from(&b"<1>hello\n"[..]);
        let base = buf.as_ptr();
        let frame = SyslogFramer::new(64).decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.bytes.as_ptr(), base, "frame was copied");
    }

    #[test]
    fn encoders() {
        let mut out = Vec::new();
        encode_octet_counted(b"<1>hi", &mut out);
        encode_lf(b"<2>there", &mut out);
        encode_octet_counted(&[b'<'; 1234], &mut out);
        assert!(out.starts_with(b"5 <1>hi<2>there\n1234 <<<"));
        assert_eq!(out.len(), 7 + 9 + 5 + 1234);
        let frames = decode_chunked(2000, &out, &[0]);
        assert_eq!(
            frames,
            vec![oc(b"<1>hi"), lf(b"<2>there"), oc(&[b'<'; 1234])]
        );
    }

    /// A 999999999-byte octet-counted message is truncated and skipped as it
    /// streams past, without being buffered, and the next frames decode.
    #[test]
    fn huge_msg_len_is_skipped_without_buffering() {
        const MAX: usize = 16;
        const LEN: usize = 999_999_999;
        let mut dec = SyslogFramer::new(MAX);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let first = b"999999999 <1>start of a huge message";
        buf.extend_from_slice(first);
        let mut body_sent = first.len() - 10;
        let chunk = vec![b'x'; 1 << 20];
        loop {
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            assert!(buf.capacity() <= 2 * chunk.len(), "buffer grew");
            let n = (LEN - body_sent).min(chunk.len());
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            body_sent += n;
        }
        buf.extend_from_slice(b"6 <2>abc<3>next\n");
        while let Some(f) = dec.decode_eof(&mut buf).unwrap() {
            frames.push(f);
        }
        assert_eq!(
            frames,
            vec![oc_cut(b"<1>start of a hu"), oc(b"<2>abc"), lf(b"<3>next")]
        );
    }

    /// A peer sending a huge line without LF costs bounded memory; the
    /// connection stays usable afterwards.
    #[test]
    fn endless_line_is_discarded_without_buffering() {
        const MAX: usize = 100;
        let mut dec = SyslogFramer::new(MAX);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let chunk = vec![b'y'; 64 * 1024];
        buf.extend_from_slice(b"<1>");
        for _ in 0..(256 << 20) / chunk.len() {
            buf.extend_from_slice(&chunk);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            assert!(buf.len() <= MAX + 1);
            assert!(buf.capacity() <= 2 * chunk.len(), "buffer grew");
        }
        buf.extend_from_slice(b"\n<2>ok\n");
        while let Some(f) = dec.decode_eof(&mut buf).unwrap() {
            frames.push(f);
        }
        assert_eq!(frames.len(), 2);
        assert!(frames[0].truncated && frames[0].bytes.len() == MAX);
        assert!(frames[0].bytes.starts_with(b"<1>yyy"));
        assert_eq!(frames[1], lf(b"<2>ok"));
    }

    const TRAILERS: &[&[u8]] = &[b"\n", b"\r\n", b"\0"];

    #[derive(Debug, Clone)]
    enum Msg {
        Lf {
            body: Vec<u8>,
            trailer: &'static [u8],
        },
        Octet(Vec<u8>),
    }

    /// A non-empty LF message that decodes back to itself: no LF/NUL, no
    /// trailing CR, and not starting like an octet-counting header.
    fn lf_body() -> impl Strategy<Value = Vec<u8>> {
        let interesting = prop_oneof![any::<u8>(), prop::sample::select(&b"0123456789 <\r"[..]),];
        prop_oneof![
            prop::collection::vec(interesting, 1..120),
            (
                1u64..100_000_000_000,
                prop::collection::vec(any::<u8>(), 0..20)
            )
                .prop_map(|(n, tail)| {
                    let mut v = n.to_string().into_bytes();
                    v.push(b' ');
                    v.extend(tail);
                    v
                }),
        ]
        .prop_map(|mut v| {
            for b in &mut v {
                if *b == b'\n' || *b == 0 {
                    *b = b'.';
                }
            }
            if v.last() == Some(&b'\r') {
                v.pop();
                v.push(b'.');
            }
            if matches!(parse_header(&v), Header::Octet { .. }) {
                v.insert(0, b'<');
            }
            v
        })
    }

    fn msg() -> impl Strategy<Value = Msg> {
        prop_oneof![
            (lf_body(), prop::sample::select(TRAILERS))
                .prop_map(|(body, trailer)| Msg::Lf { body, trailer }),
            prop::collection::vec(any::<u8>(), 0..150).prop_map(|tail| {
                let mut v = vec![b'<'];
                v.extend(tail);
                Msg::Octet(v)
            }),
        ]
    }

    fn expected(body: &[u8], max: usize, octet: bool, cut_by_eof: bool) -> Frame {
        let kept = body.len().min(max);
        Frame {
            bytes: Bytes::copy_from_slice(&body[..kept]),
            truncated: body.len() > max || cut_by_eof,
            octet_counted: octet,
        }
    }

    proptest! {
        #[test]
        fn roundtrip(
            msgs in prop::collection::vec(
                (msg(), prop::option::of(prop::sample::select(TRAILERS))),
                0..24,
            ),
            max in 1usize..80,
            chunks in prop::collection::vec(0usize..40, 1..8),
            cut_last in any::<bool>(),
            cut_at in any::<prop::sample::Index>(),
        ) {
            let mut stream = Vec::new();
            let mut want = Vec::new();
            let last = msgs.len().wrapping_sub(1);
            for (i, (m, empty_line)) in msgs.iter().enumerate() {
                if let Some(e) = empty_line {
                    stream.extend_from_slice(e);
                }
                let cut = cut_last && i == last;
                match m {
                    Msg::Lf { body, trailer } => {
                        stream.extend_from_slice(body);
                        if !cut {
                            stream.extend_from_slice(trailer);
                        }
                        want.push(expected(body, max, false, false));
                    }
                    Msg::Octet(body) if cut && body.len() >= 2 => {
                        let arrived = 1 + cut_at.index(body.len() - 1);
                        stream.extend_from_slice(format!("{} ", body.len()).as_bytes());
                        stream.extend_from_slice(&body[..arrived]);
                        want.push(expected(&body[..arrived], max, true, true));
                    }
                    Msg::Octet(body) => {
                        encode_octet_counted(body, &mut stream);
                        want.push(expected(body, max, true, false));
                    }
                }
            }
            let got = decode_chunked(max, &stream, &chunks);
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(&decode_chunked(max, &stream, &[0]), &want);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            input in prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    prop::sample::select(&b"0123456789 <\r\n\0"[..]),
                ],
                0..600,
            ),
            max in 0usize..40,
            chunks in prop::collection::vec(0usize..40, 1..8),
        ) {
            // decode_chunked checks the frame-size and buffer bounds.
            let whole = decode_chunked(max, &input, &[0]);
            let split = decode_chunked(max, &input, &chunks);
            prop_assert_eq!(&whole, &split);
            let bytes_out: usize = whole.iter().map(|f| f.bytes.len()).sum();
            prop_assert!(bytes_out <= input.len());
        }
    }

    mod framed_read {
        use super::*;
        use futures_util::StreamExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_util::codec::FramedRead;

        #[tokio::test]
        async fn in_memory_reader() {
            let mut input = Vec::new();
            encode_octet_counted(b"<34>1 - host app - - - first", &mut input);
            encode_lf(b"<13>Oct 11 22:14:15 host app: second", &mut input);
            input.extend_from_slice(b"\r\n200 OK\r\n");
            encode_octet_counted(b"<34>1 - host app - - - fourth\nwith LF", &mut input);
            input.extend_from_slice(b"<13>no trailing LF");

            let frames: Vec<Frame> = FramedRead::new(&input[..], SyslogFramer::new(1024))
                .map(Result::unwrap)
                .collect()
                .await;
            assert_eq!(
                frames,
                vec![
                    oc(b"<34>1 - host app - - - first"),
                    lf(b"<13>Oct 11 22:14:15 host app: second"),
                    lf(b"200 OK"),
                    oc(b"<34>1 - host app - - - fourth\nwith LF"),
                    lf(b"<13>no trailing LF"),
                ]
            );
        }

        /// Same stream, written in tiny pieces through a pipe.
        #[tokio::test]
        async fn trickled_through_a_pipe() {
            let mut input = Vec::new();
            for i in 0..50 {
                let msg = format!("<{i}>message number {i}");
                if i % 2 == 0 {
                    encode_octet_counted(msg.as_bytes(), &mut input);
                } else {
                    encode_lf(msg.as_bytes(), &mut input);
                }
            }
            let (mut tx, rx) = tokio::io::duplex(7);
            let writer = tokio::spawn(async move {
                for piece in input.chunks(3) {
                    tx.write_all(piece).await.unwrap();
                }
            });
            let mut framed = FramedRead::new(rx, SyslogFramer::new(1024));
            for i in 0..50 {
                let frame = framed.next().await.unwrap().unwrap();
                assert_eq!(frame.bytes, format!("<{i}>message number {i}").as_bytes());
                assert_eq!(frame.octet_counted, i % 2 == 0);
                assert!(!frame.truncated);
            }
            writer.await.unwrap();
            assert!(framed.next().await.is_none());
        }

        /// 64 MiB without LF: one truncated frame, bounded read buffer, and
        /// the connection keeps working.
        #[tokio::test]
        async fn endless_line_keeps_buffer_small() {
            let reader = tokio::io::repeat(b'A')
                .take(64 << 20)
                .chain(&b"\n<1>after\n"[..]);
            let mut framed = FramedRead::new(reader, SyslogFramer::new(4096));
            let first = framed.next().await.unwrap().unwrap();
            assert!(first.truncated);
            assert_eq!(first.bytes.len(), 4096);
            let second = framed.next().await.unwrap().unwrap();
            assert_eq!(second, lf(b"<1>after"));
            assert!(framed.read_buffer().capacity() <= 64 * 1024);
            assert!(framed.next().await.is_none());
        }
    }
}
