//! Byte encodings of `LogEvent`: one row per WAL record, and a column-wise body
//! for sealed chunks (each field of all events together, so zstd sees long runs
//! of similar bytes: ids and times become small deltas, hostnames and programs
//! repeat).
//!
//! The message is usually the tail of the raw line (the syslog header removed),
//! so it is stored as an offset into `raw` when that is exact, and spelled out
//! only otherwise. Decoding is total: any byte string either decodes or gives a
//! `CodecError`, never a panic, because chunk and WAL bytes come from a disk that
//! may have been damaged.

use bytes::Bytes;

use crate::event::LogEvent;

#[derive(Debug, thiserror::Error)]
#[error("corrupt event encoding: {0}")]
pub struct CodecError(pub &'static str);

// ---- primitives ----

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn opt_u8(v: Option<u8>) -> u8 {
    v.unwrap_or(u8::MAX)
}

fn from_opt_u8(v: u8) -> Option<u8> {
    (v != u8::MAX).then_some(v)
}

/// A cursor over encoded bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn uvarint(&mut self) -> Result<u64, CodecError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(CodecError("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(CodecError("varint longer than 64 bits"))
    }

    pub fn ivarint(&mut self) -> Result<i64, CodecError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub fn u8(&mut self) -> Result<u8, CodecError> {
        let b = *self.buf.get(self.pos).ok_or(CodecError("truncated byte"))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let len = self.uvarint()?;
        let len = usize::try_from(len).map_err(|_| CodecError("length overflow"))?;
        let end = self.pos.checked_add(len).ok_or(CodecError("length overflow"))?;
        let s = self.buf.get(self.pos..end).ok_or(CodecError("truncated field"))?;
        self.pos = end;
        Ok(s)
    }

    pub fn string(&mut self) -> Result<String, CodecError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| CodecError("string is not UTF-8"))
    }
}

// ---- the message, relative to the raw line ----

/// How the message is stored: `0` + offset when `message == raw[offset..]`,
/// else `1` + the message itself.
fn put_message(out: &mut Vec<u8>, ev: &LogEvent) {
    let (raw, msg) = (&ev.raw[..], ev.message.as_bytes());
    if raw.ends_with(msg) {
        out.push(0);
        put_uvarint(out, (raw.len() - msg.len()) as u64);
    } else {
        out.push(1);
        put_bytes(out, msg);
    }
}

fn get_message(r: &mut Reader<'_>, raw: &Bytes) -> Result<String, CodecError> {
    match r.u8()? {
        0 => {
            let off = r.uvarint()? as usize;
            let tail = raw.get(off..).ok_or(CodecError("message offset past raw"))?;
            String::from_utf8(tail.to_vec()).map_err(|_| CodecError("message is not UTF-8"))
        }
        1 => r.string(),
        _ => Err(CodecError("unknown message tag")),
    }
}

// ---- rows (WAL) ----

pub fn encode_row(ev: &LogEvent, out: &mut Vec<u8>) {
    put_uvarint(out, ev.id);
    put_ivarint(out, ev.received_at);
    put_ivarint(out, ev.generated_at.wrapping_sub(ev.received_at));
    out.push(ev.flags);
    out.push(opt_u8(ev.severity));
    out.push(opt_u8(ev.facility));
    put_bytes(out, ev.source_name.as_bytes());
    put_bytes(out, ev.source_ip.as_bytes());
    put_bytes(out, ev.program.as_bytes());
    put_bytes(out, &ev.raw);
    put_message(out, ev);
}

pub fn decode_row(buf: &[u8]) -> Result<LogEvent, CodecError> {
    let mut r = Reader::new(buf);
    let id = r.uvarint()?;
    let received_at = r.ivarint()?;
    let generated_at = received_at.wrapping_add(r.ivarint()?);
    let flags = r.u8()?;
    let severity = from_opt_u8(r.u8()?);
    let facility = from_opt_u8(r.u8()?);
    let source_name = r.string()?;
    let source_ip = r.string()?;
    let program = r.string()?;
    let raw = Bytes::copy_from_slice(r.bytes()?);
    let message = get_message(&mut r, &raw)?;
    if !r.is_empty() {
        return Err(CodecError("trailing bytes after row"));
    }
    Ok(LogEvent {
        id,
        received_at,
        generated_at,
        source_name,
        source_ip,
        program,
        severity,
        facility,
        message,
        raw,
        flags,
    })
}

// ---- columns (chunks) ----

/// Encodes events (sorted by id) column by column.
pub fn encode_columns(events: &[impl AsRef<LogEvent>]) -> Vec<u8> {
    let total_raw: usize = events.iter().map(|e| e.as_ref().raw.len()).sum();
    let mut out = Vec::with_capacity(total_raw + events.len() * 24 + 16);
    put_uvarint(&mut out, events.len() as u64);
    let (mut prev_id, mut prev_t) = (0u64, 0i64);
    for e in events {
        let e = e.as_ref();
        put_uvarint(&mut out, e.id.wrapping_sub(prev_id));
        prev_id = e.id;
    }
    for e in events {
        let e = e.as_ref();
        put_ivarint(&mut out, e.received_at.wrapping_sub(prev_t));
        prev_t = e.received_at;
    }
    for e in events {
        let e = e.as_ref();
        put_ivarint(&mut out, e.generated_at.wrapping_sub(e.received_at));
    }
    for e in events {
        let e = e.as_ref();
        out.extend_from_slice(&[e.flags, opt_u8(e.severity), opt_u8(e.facility)]);
    }
    for e in events {
        put_bytes(&mut out, e.as_ref().source_name.as_bytes());
    }
    for e in events {
        put_bytes(&mut out, e.as_ref().source_ip.as_bytes());
    }
    for e in events {
        put_bytes(&mut out, e.as_ref().program.as_bytes());
    }
    for e in events {
        put_bytes(&mut out, &e.as_ref().raw);
    }
    for e in events {
        put_message(&mut out, e.as_ref());
    }
    out
}

pub fn decode_columns(buf: &[u8]) -> Result<Vec<LogEvent>, CodecError> {
    let mut r = Reader::new(buf);
    let n = r.uvarint()?;
    // Every event takes at least a few bytes, so a count larger than the buffer is corrupt;
    // checking first keeps a damaged count from allocating gigabytes.
    if n > buf.len() as u64 {
        return Err(CodecError("event count larger than the chunk"));
    }
    let n = n as usize;
    let mut ids = Vec::with_capacity(n);
    let mut prev = 0u64;
    for _ in 0..n {
        prev = prev.wrapping_add(r.uvarint()?);
        ids.push(prev);
    }
    let mut received = Vec::with_capacity(n);
    let mut prev_t = 0i64;
    for _ in 0..n {
        prev_t = prev_t.wrapping_add(r.ivarint()?);
        received.push(prev_t);
    }
    let mut generated = Vec::with_capacity(n);
    for t in &received {
        generated.push(t.wrapping_add(r.ivarint()?));
    }
    let mut small = Vec::with_capacity(n);
    for _ in 0..n {
        small.push((r.u8()?, r.u8()?, r.u8()?));
    }
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(r.string()?);
    }
    let mut ips = Vec::with_capacity(n);
    for _ in 0..n {
        ips.push(r.string()?);
    }
    let mut programs = Vec::with_capacity(n);
    for _ in 0..n {
        programs.push(r.string()?);
    }
    // One allocation for all raw lines; each event's `raw` is a cheap slice of it.
    let mut raws = Vec::with_capacity(n);
    for _ in 0..n {
        raws.push(r.bytes()?);
    }
    let arena = Bytes::from(raws.concat());
    let mut off = 0;
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        let raw = arena.slice(off..off + raws[i].len());
        off += raws[i].len();
        let message = get_message(&mut r, &raw)?;
        let (flags, sev, fac) = small[i];
        events.push(LogEvent {
            id: ids[i],
            received_at: received[i],
            generated_at: generated[i],
            source_name: std::mem::take(&mut names[i]),
            source_ip: std::mem::take(&mut ips[i]),
            program: std::mem::take(&mut programs[i]),
            severity: from_opt_u8(sev),
            facility: from_opt_u8(fac),
            message,
            raw,
            flags,
        });
    }
    if !r.is_empty() {
        return Err(CodecError("trailing bytes after columns"));
    }
    Ok(events)
}

impl AsRef<LogEvent> for LogEvent {
    fn as_ref(&self) -> &LogEvent {
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub fn arb_event() -> impl Strategy<Value = LogEvent> {
        (
            any::<u64>(),
            any::<i64>(),
            any::<i64>(),
            any::<u8>(),
            proptest::option::of(0u8..8),
            proptest::option::of(0u8..24),
            ".{0,12}",
            "[0-9.:a-f]{0,15}",
            ".{0,12}",
            proptest::collection::vec(any::<u8>(), 0..80),
            ".{0,40}",
            any::<bool>(),
        )
            .prop_map(
                |(id, r, g, flags, severity, facility, name, ip, prog, raw, msg, suffix)| {
                    // Half the time the message is the raw line's tail, as after a syslog header.
                    let mut raw = raw;
                    if suffix {
                        raw.extend_from_slice(msg.as_bytes());
                    }
                    LogEvent {
                        id,
                        received_at: r,
                        generated_at: g,
                        source_name: name,
                        source_ip: ip,
                        program: prog,
                        severity,
                        facility,
                        message: msg,
                        raw: Bytes::from(raw),
                        flags,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn row_roundtrip(ev in arb_event()) {
            let mut buf = Vec::new();
            encode_row(&ev, &mut buf);
            prop_assert_eq!(decode_row(&buf).unwrap(), ev);
        }

        #[test]
        fn columns_roundtrip(evs in proptest::collection::vec(arb_event(), 0..20)) {
            let buf = encode_columns(&evs);
            prop_assert_eq!(decode_columns(&buf).unwrap(), evs);
        }

        #[test]
        fn decoding_garbage_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_row(&buf);
            let _ = decode_columns(&buf);
        }
    }

    #[test]
    fn message_stored_as_offset_when_it_is_the_raw_tail() {
        let ev = LogEvent {
            id: 1,
            received_at: 10,
            generated_at: 10,
            source_name: "h".into(),
            source_ip: "1.2.3.4".into(),
            program: "p".into(),
            severity: Some(6),
            facility: Some(3),
            message: "a rather long message body".into(),
            raw: Bytes::from_static(b"<30>Jun 23 17:17:41 h p: a rather long message body"),
            flags: 0,
        };
        let mut buf = Vec::new();
        encode_row(&ev, &mut buf);
        // The message text appears once (inside raw), not twice.
        let hits = buf.windows(ev.message.len()).filter(|w| *w == ev.message.as_bytes()).count();
        assert_eq!(hits, 1);
    }
}
