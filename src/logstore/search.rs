//! Scan search over the head and the sealed chunks, with the semantics of the
//! hosted log service's search API:
//!
//! - by default the *newest* `limit` matching events in the range are found
//!   (newest first), and returned in chronological order;
//! - with `oldest_first` (`tail=false` with a `min_id`), the oldest `limit`
//!   matches after `min_id`, so a client can page forward without gaps;
//! - `min_id`/`max_id` bounds are exclusive (a client passes the previous
//!   answer's `max_id` as its next `min_id`); `min_time`/`max_time` are inclusive
//!   and compare with `received_at`;
//! - the answer's `min_id`/`max_id` say which ids were examined, so a search
//!   stopped by its limit or its time budget can be continued.
//!
//! Chunks whose id or time bounds miss the range are never opened; the others
//! are decompressed and matched in parallel, a wave of one chunk per core.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::LogEvent;
use crate::logstore::chunk::{self, ChunkMeta};
use crate::query::Matcher;

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub min_id: Option<u64>,
    pub max_id: Option<u64>,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    pub limit: usize,
    pub oldest_first: bool,
    pub time_budget: Duration,
}

impl Default for SearchRequest {
    fn default() -> Self {
        SearchRequest {
            min_id: None,
            max_id: None,
            min_time: None,
            max_time: None,
            limit: 1000,
            oldest_first: false,
            time_budget: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Default)]
pub struct SearchResult {
    /// Chronological (oldest first).
    pub events: Vec<LogEvent>,
    /// Lowest and highest id examined (0 when nothing was).
    pub min_id: u64,
    pub max_id: u64,
    pub reached_beginning: bool,
    pub reached_record_limit: bool,
    pub reached_time_limit: bool,
    /// Chunks that failed their checksums and were skipped (never served).
    pub corrupt_chunks: usize,
}

impl SearchRequest {
    fn in_range(&self, e: &LogEvent) -> bool {
        self.min_id.is_none_or(|m| e.id > m)
            && self.max_id.is_none_or(|m| e.id < m)
            && self.min_time.is_none_or(|t| e.received_at >= t)
            && self.max_time.is_none_or(|t| e.received_at <= t)
    }

    fn chunk_overlaps(&self, c: &ChunkMeta) -> bool {
        self.min_id.is_none_or(|m| c.max_id > m)
            && self.max_id.is_none_or(|m| c.min_id < m)
            && self.min_time.is_none_or(|t| c.max_time >= t)
            && self.max_time.is_none_or(|t| c.min_time <= t)
    }
}

struct Collector<'a> {
    req: &'a SearchRequest,
    matcher: &'a dyn Matcher,
    found: Vec<LogEvent>,
    min_seen: u64,
    max_seen: u64,
}

impl Collector<'_> {
    fn full(&self) -> bool {
        self.found.len() >= self.req.limit
    }

    /// Offers events in scan order; returns false once the limit is reached.
    fn offer<'e>(&mut self, events: impl Iterator<Item = &'e LogEvent>) -> bool {
        for e in events {
            if self.full() {
                return false;
            }
            if !self.req.in_range(e) {
                continue;
            }
            self.min_seen = self.min_seen.min(e.id);
            self.max_seen = self.max_seen.max(e.id);
            if self.matcher.matches(e) {
                self.found.push(e.clone());
            }
        }
        !self.full()
    }

    /// Takes a chunk's matches (ascending ids) in scan order; returns false once the limit is reached.
    fn take_hits(&mut self, hits: ChunkHits, newest_first: bool) -> bool {
        let Some((lo, hi)) = hits.examined else { return true };
        let room = self.req.limit - self.found.len();
        if hits.matched.len() < room {
            self.min_seen = self.min_seen.min(lo);
            self.max_seen = self.max_seen.max(hi);
            if newest_first {
                self.found.extend(hits.matched.into_iter().rev());
            } else {
                self.found.extend(hits.matched);
            }
            return true;
        }
        // The limit falls inside this chunk: what was examined ends at the last event taken.
        let taken: Vec<LogEvent> = if newest_first {
            hits.matched.into_iter().rev().take(room).collect()
        } else {
            hits.matched.into_iter().take(room).collect()
        };
        let edge = taken.last().map_or(lo, |e| e.id);
        if newest_first {
            self.min_seen = self.min_seen.min(edge);
            self.max_seen = self.max_seen.max(hi);
        } else {
            self.min_seen = self.min_seen.min(lo);
            self.max_seen = self.max_seen.max(edge);
        }
        self.found.extend(taken);
        false
    }
}

/// What one chunk gave: its in-range matches (ascending) and the in-range ids it examined.
struct ChunkHits {
    matched: Vec<LogEvent>,
    examined: Option<(u64, u64)>,
}

pub fn run(
    chunk_dir: &Path,
    chunks: &[Arc<ChunkMeta>],
    head: &[Arc<[LogEvent]>],
    req: &SearchRequest,
    matcher: &dyn Matcher,
) -> SearchResult {
    let deadline = Instant::now() + req.time_budget;
    let mut c = Collector { req, matcher, found: Vec::new(), min_seen: u64::MAX, max_seen: 0 };
    let mut corrupt = 0;
    let mut timed_out = false;
    let candidates: Vec<&Arc<ChunkMeta>> = chunks.iter().filter(|m| req.chunk_overlaps(m)).collect();
    let wave = std::thread::available_parallelism().map_or(2, |n| n.get());

    let mut scan_chunks = |c: &mut Collector, list: Vec<&Arc<ChunkMeta>>, newest_first: bool| {
        for group in list.chunks(wave) {
            if c.full() {
                return;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                return;
            }
            for result in read_parallel(chunk_dir, group, req, matcher) {
                match result {
                    Ok(Some(hits)) => {
                        if !c.take_hits(hits, newest_first) {
                            return;
                        }
                    }
                    Ok(None) => {} // removed by retention while we searched
                    Err(()) => corrupt += 1,
                }
            }
        }
    };

    if req.oldest_first {
        scan_chunks(&mut c, candidates.clone(), false);
        if !c.full() && !timed_out {
            for batch in head {
                if !c.offer(batch.iter()) {
                    break;
                }
            }
        }
    } else {
        for batch in head.iter().rev() {
            if !c.offer(batch.iter().rev()) {
                break;
            }
        }
        if !c.full() {
            scan_chunks(&mut c, candidates.iter().rev().copied().collect(), true);
        }
    }

    let reached_record_limit = c.full();
    let mut events = c.found;
    if !req.oldest_first {
        events.reverse();
    }
    let (min_id, max_id) = if c.max_seen == 0 { (0, 0) } else { (c.min_seen, c.max_seen) };
    SearchResult {
        events,
        min_id,
        max_id,
        reached_beginning: !reached_record_limit && !timed_out,
        reached_record_limit,
        reached_time_limit: timed_out,
        corrupt_chunks: corrupt,
    }
}

/// Decodes and matches a wave of chunks, one thread each.
fn read_parallel(
    dir: &Path,
    group: &[&Arc<ChunkMeta>],
    req: &SearchRequest,
    matcher: &dyn Matcher,
) -> Vec<Result<Option<ChunkHits>, ()>> {
    let read_one = |meta: &ChunkMeta| match chunk::read(dir, meta) {
        Ok(events) => {
            let mut examined: Option<(u64, u64)> = None;
            let mut matched = Vec::new();
            for e in events {
                if !req.in_range(&e) {
                    continue;
                }
                examined = Some(examined.map_or((e.id, e.id), |(lo, hi)| (lo.min(e.id), hi.max(e.id))));
                if matcher.matches(&e) {
                    matched.push(e);
                }
            }
            Ok(Some(ChunkHits { matched, examined }))
        }
        Err(chunk::ChunkError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => {
            crate::telemetry::store_error("chunk_read");
            tracing::error!(chunk = %meta.file_name, error = %e, "skipped a chunk that failed its checks");
            Err(())
        }
    };
    if group.len() == 1 {
        return vec![read_one(group[0])];
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = group.iter().map(|m| s.spawn(move || read_one(m))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or(Err(()))).collect()
    })
}
