//! The write-ahead log: append-only segment files of checksummed records, one
//! event per record. A batch of records is written and then `fdatasync`ed once
//! for every waiting writer (grouped fsync); only then is anything acknowledged.
//!
//! ```text
//! record := len u32 LE | crc32(payload) u32 LE | payload (codec::encode_row)
//! ```
//!
//! Replay reads records until the first one that is short, has an absurd length,
//! fails its checksum or does not decode: that is a torn tail from a crash
//! (written, never acknowledged). The file is cut there, and the cut bytes are
//! kept beside it as `<segment>.corrupt-<offset>` for a human to look at.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::event::LogEvent;
use crate::logstore::chunk::sync_dir;
use crate::logstore::codec;

/// No single record may be larger (a line is capped far below this); a bigger
/// length field can only be damage.
const MAX_RECORD: usize = 64 << 20;
const RECORD_HEADER: usize = 8;

pub fn segment_name(first_id: u64) -> String {
    format!("{first_id:016x}.wal")
}

/// Appends one event as a record to `out`.
pub fn encode_record(ev: &LogEvent, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER]);
    codec::encode_row(ev, out);
    let payload_len = (out.len() - start - RECORD_HEADER) as u32;
    let crc = crc32fast::hash(&out[start + RECORD_HEADER..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The segment being appended to.
pub struct Segment {
    pub path: PathBuf,
    file: File,
    /// Length of the valid, fully written prefix.
    pub len: u64,
    pub events: u64,
    pub created: std::time::Instant,
}

impl Segment {
    /// Creates a new, empty segment named after `first_id`, or the next free
    /// name after it (a leftover empty segment may hold that name when the clock
    /// went back between two runs): segment names only order the files.
    pub fn create(dir: &Path, first_id: u64) -> std::io::Result<Segment> {
        let mut id = first_id;
        loop {
            let path = dir.join(segment_name(id));
            match OpenOptions::new().create_new(true).write(true).open(&path) {
                Ok(file) => {
                    sync_dir(dir)?;
                    return Ok(Segment { path, file, len: 0, events: 0, created: std::time::Instant::now() });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && id < first_id + 1000 => id += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Writes encoded records. On failure (a full disk, say) the file is cut back
    /// to its last good length, so no half-written record sits before later ones.
    pub fn append(&mut self, records: &[u8], count: u64) -> std::io::Result<()> {
        match self.file.write_all(records) {
            Ok(()) => {
                self.len += records.len() as u64;
                self.events += count;
                Ok(())
            }
            Err(e) => {
                self.cut_back(self.len);
                Err(e)
            }
        }
    }

    /// Makes everything appended so far durable. On failure the unsynced bytes
    /// cannot be trusted, so the segment is cut back to `durable_len`.
    pub fn sync(&mut self, durable_len: u64) -> std::io::Result<()> {
        if let Err(e) = self.file.sync_data() {
            self.cut_back(durable_len);
            self.len = durable_len;
            return Err(e);
        }
        Ok(())
    }

    /// Cuts the file back to `len` after a refused write, and makes the cut
    /// durable: records that were refused must not come back after a crash
    /// (the client retries them, and they would be stored twice).
    fn cut_back(&mut self, len: u64) {
        let cut = self
            .file
            .set_len(len)
            .and_then(|()| self.file.seek(SeekFrom::Start(len)).map(|_| ()))
            .and_then(|()| self.file.sync_all());
        if let Err(e) = cut {
            tracing::error!(segment = %self.path.display(), error = %e,
                "could not cut a refused write from the WAL; it may reappear after a crash");
        }
    }
}

pub struct Replay {
    pub events: Vec<LogEvent>,
    /// Bytes cut from a torn or damaged tail (0 for a clean segment).
    pub cut_bytes: u64,
}

/// Reads a segment back, cutting a torn tail (see the module docs).
pub fn replay(path: &Path) -> std::io::Result<Replay> {
    let mut buf = Vec::new();
    File::open(path)?.read_to_end(&mut buf)?;
    let mut events = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        match read_record(&buf[pos..]) {
            Some((ev, used)) => {
                events.push(ev);
                pos += used;
            }
            None => break,
        }
    }
    let cut_bytes = (buf.len() - pos) as u64;
    if cut_bytes > 0 {
        // Best effort: a replayed segment is never appended to again, so
        // neither the copy nor the cut is needed to serve it correctly, and a
        // full disk must not keep the store from starting.
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".corrupt-{pos}"));
        let kept = std::fs::write(PathBuf::from(aside), &buf[pos..]).and_then(|()| {
            let f = OpenOptions::new().write(true).open(path)?;
            f.set_len(pos as u64)?;
            f.sync_all()
        });
        if let Err(e) = kept {
            tracing::warn!(segment = %path.display(), error = %e, "could not set a torn WAL tail aside; it is ignored");
        }
    }
    Ok(Replay { events, cut_bytes })
}

fn read_record(buf: &[u8]) -> Option<(LogEvent, usize)> {
    let header = buf.get(..RECORD_HEADER)?;
    let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
    if len > MAX_RECORD {
        return None;
    }
    let payload = buf.get(RECORD_HEADER..RECORD_HEADER + len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let ev = codec::decode_row(payload).ok()?;
    Some((ev, RECORD_HEADER + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn ev(id: u64) -> LogEvent {
        LogEvent {
            id,
            received_at: 1_000 + id as i64,
            generated_at: 1_000 + id as i64,
            source_name: "web".into(),
            source_ip: "127.0.0.1".into(),
            program: "app".into(),
            severity: None,
            facility: None,
            message: format!("message {id}").into(),
            raw: Bytes::from(format!("message {id}")),
            flags: 0,
        }
    }

    fn write_segment(dir: &Path, n: u64) -> (PathBuf, Vec<u8>) {
        let mut seg = Segment::create(dir, 1).unwrap();
        let mut buf = Vec::new();
        for i in 1..=n {
            encode_record(&ev(i), &mut buf);
        }
        seg.append(&buf, n).unwrap();
        seg.sync(0).unwrap();
        (seg.path.clone(), buf)
    }

    #[test]
    fn a_taken_segment_name_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let a = Segment::create(dir.path(), 7).unwrap();
        let b = Segment::create(dir.path(), 7).unwrap();
        assert_ne!(a.path, b.path);
        assert!(b.path.ends_with(segment_name(8)));
    }

    #[test]
    fn clean_segment_replays_everything() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_segment(dir.path(), 50);
        let r = replay(&path).unwrap();
        assert_eq!(r.cut_bytes, 0);
        assert_eq!(r.events, (1..=50).map(ev).collect::<Vec<_>>());
    }

    /// A crash can stop a write at any byte: every prefix must replay to whole
    /// records only, and the file must be cut to exactly those.
    #[test]
    fn torn_tail_at_every_byte_is_cut_to_whole_records() {
        let dir = tempfile::tempdir().unwrap();
        let (path, full) = write_segment(dir.path(), 5);
        let mut boundaries = vec![0usize];
        let mut pos = 0;
        while pos < full.len() {
            let (_, used) = read_record(&full[pos..]).unwrap();
            pos += used;
            boundaries.push(pos);
        }
        for cut in 0..=full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let r = replay(&path).unwrap();
            let whole = boundaries.iter().filter(|b| **b <= cut).count() - 1;
            assert_eq!(r.events.len(), whole, "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, boundaries[whole]);
        }
    }

    #[test]
    fn damaged_record_stops_replay_and_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut full) = write_segment(dir.path(), 10);
        let mid = full.len() / 2;
        full[mid] ^= 0xff;
        std::fs::write(&path, &full).unwrap();
        let r = replay(&path).unwrap();
        assert!(r.events.len() < 10);
        assert!(r.cut_bytes > 0);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
        // Replaying again is stable: nothing more is cut.
        assert_eq!(replay(&path).unwrap().cut_bytes, 0);
    }
}
