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

use crate::event::{LogEvent, Text};

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

    pub fn string(&mut self) -> Result<Text, CodecError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map(Text::from).map_err(|_| CodecError("string is not UTF-8"))
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

fn get_message(r: &mut Reader<'_>, raw: &Bytes) -> Result<Text, CodecError> {
    match r.u8()? {
        0 => {
            let off = usize::try_from(r.uvarint()?).map_err(|_| CodecError("message offset overflow"))?;
            if off > raw.len() {
                return Err(CodecError("message offset past raw"));
            }
            // A slice of the raw line, not a copy.
            Text::try_from(raw.slice(off..)).map_err(|_| CodecError("message is not UTF-8"))
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
    // Sized for everything up front: growing a buffer of tens of MiB by doubling
    // costs copies and page faults on the sealer's hot path.
    let total: usize = events
        .iter()
        .map(|e| {
            let e = e.as_ref();
            e.raw.len() + e.source_name.len() + e.source_ip.len() + e.program.len() + 48
        })
        .sum();
    let mut out = Vec::with_capacity(total + 16);
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
    // The sender's own times, against the previous line's: consecutive lines of
    // one sender mostly share their second, so this is mostly zeros.
    let mut prev_g = 0i64;
    for e in events {
        let e = e.as_ref();
        put_ivarint(&mut out, e.generated_at.wrapping_sub(prev_g));
        prev_g = e.generated_at;
    }
    for e in events {
        let e = e.as_ref();
        out.extend_from_slice(&[e.flags, opt_u8(e.severity), opt_u8(e.facility)]);
    }
    put_dictionary(&mut out, events, |e| &e.source_name);
    put_dictionary(&mut out, events, |e| &e.source_ip);
    put_dictionary(&mut out, events, |e| &e.program);
    // The raw lines: joined by LF when none contains one (the usual case), so
    // zstd sees plain log text as it would in a file, without a length in front
    // of every line; otherwise each with its length.
    if events.iter().all(|e| memchr::memchr(b'\n', &e.as_ref().raw).is_none()) {
        out.push(RAW_JOINED);
        let len: usize = events.iter().map(|e| e.as_ref().raw.len() + 1).sum();
        put_uvarint(&mut out, len as u64);
        for e in events {
            out.extend_from_slice(&e.as_ref().raw);
            out.push(b'\n');
        }
    } else {
        out.push(RAW_PREFIXED);
        for e in events {
            put_bytes(&mut out, &e.as_ref().raw);
        }
    }
    for e in events {
        put_message(&mut out, e.as_ref());
    }
    out
}

const RAW_PREFIXED: u8 = 0;
const RAW_JOINED: u8 = 1;

/// A column of few distinct values (hostnames, IPs, programs): the distinct
/// values once, then one small index per event. zstd would find the repeats
/// itself, but pays a match (two or three bytes) for each; an index costs bits.
fn put_dictionary(out: &mut Vec<u8>, events: &[impl AsRef<LogEvent>], field: impl Fn(&LogEvent) -> &Text) {
    let mut index: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    let mut values: Vec<&str> = Vec::new();
    let mut ids = Vec::with_capacity(events.len());
    // Consecutive lines nearly always repeat the previous value: compare with it
    // before hashing.
    let mut last: Option<(&str, u64)> = None;
    for e in events {
        let v: &str = field(e.as_ref());
        let id = match last {
            Some((lv, id)) if lv == v => id,
            _ => {
                let next = values.len() as u64;
                let id = *index.entry(v).or_insert_with(|| {
                    values.push(v);
                    next
                });
                last = Some((v, id));
                id
            }
        };
        ids.push(id);
    }
    put_uvarint(out, values.len() as u64);
    for v in values {
        put_bytes(out, v.as_bytes());
    }
    for id in ids {
        put_uvarint(out, id);
    }
}

fn get_dictionary(r: &mut Reader<'_>, n: usize) -> Result<Vec<Text>, CodecError> {
    let distinct = r.uvarint()?;
    if distinct > n as u64 {
        return Err(CodecError("dictionary larger than the chunk"));
    }
    let mut values = Vec::with_capacity(distinct as usize);
    for _ in 0..distinct {
        values.push(r.string()?);
    }
    let mut column = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.uvarint()?;
        // Cloning a Text shares its bytes: one allocation per distinct value, not per event.
        column.push(values.get(id as usize).ok_or(CodecError("dictionary index out of range"))?.clone());
    }
    Ok(column)
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
    let mut prev_g = 0i64;
    for _ in 0..n {
        prev_g = prev_g.wrapping_add(r.ivarint()?);
        generated.push(prev_g);
    }
    let mut small = Vec::with_capacity(n);
    for _ in 0..n {
        small.push((r.u8()?, r.u8()?, r.u8()?));
    }
    let mut names = get_dictionary(&mut r, n)?;
    let mut ips = get_dictionary(&mut r, n)?;
    let mut programs = get_dictionary(&mut r, n)?;
    // One allocation for all raw lines; each event's `raw` is a cheap slice of it.
    let mut spans = Vec::with_capacity(n);
    let arena = match r.u8()? {
        RAW_JOINED => {
            let joined = r.bytes()?;
            let mut start = 0;
            for _ in 0..n {
                let end = start + memchr::memchr(b'\n', &joined[start..]).ok_or(CodecError("fewer raw lines than events"))?;
                spans.push((start, end));
                start = end + 1;
            }
            if start != joined.len() {
                return Err(CodecError("more raw lines than events"));
            }
            Bytes::copy_from_slice(joined)
        }
        RAW_PREFIXED => {
            let mut raws = Vec::with_capacity(n);
            let mut start = 0;
            for _ in 0..n {
                let raw = r.bytes()?;
                spans.push((start, start + raw.len()));
                start += raw.len();
                raws.push(raw);
            }
            Bytes::from(raws.concat())
        }
        _ => return Err(CodecError("unknown raw column layout")),
    };
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        let raw = arena.slice(spans[i].0..spans[i].1);
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
                        source_name: name.into(),
                        source_ip: ip.into(),
                        program: prog.into(),
                        severity,
                        facility,
                        message: msg.into(),
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
