//! The durable log store: every `LogEvent` is appended to a write-ahead log
//! (`wal`), made durable with one grouped `fdatasync` per batch of writers, kept
//! in memory as the searchable *head*, and later sealed into immutable,
//! compressed, checksummed chunk files (`chunk`) recorded in the database.
//!
//! ```text
//! append() ──► writer thread ──► WAL segment ──fdatasync──► ack ──► head (memory)
//!                    │ (segment full or old)                         │
//!                    └──────► sealer thread ──► chunk file ──► db row ┘ head batches dropped, WAL deleted
//! ```
//!
//! Invariants:
//! - an append is acknowledged only after its records are fsynced;
//! - ids are strictly increasing, also across restarts (see `LogEvent::id`);
//! - a search sees every acknowledged event exactly once: moving events from the
//!   head to a chunk happens under one lock;
//! - on start, chunk files are reconciled with the database and WAL segments are
//!   replayed (a torn tail is cut), so a crash at any point loses nothing that
//!   was acknowledged and never serves corrupt bytes.

pub mod chunk;
pub mod codec;
pub mod follow;
pub mod wal;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot};

use crate::db::Db;
use crate::event::{LogEvent, now_micros};
use crate::query::Matcher;
use crate::telemetry::{self, Listener};
use chunk::ChunkMeta;

/// Durable batches the broadcast to subscribers (the alert scanner) holds.
const STORED_BROADCAST_BATCHES: usize = 16;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub dir: PathBuf,
    /// Seal the WAL segment into a chunk once it holds this many bytes…
    pub seal_bytes: u64,
    /// …or once it is this old (and not empty).
    pub seal_interval: Duration,
    /// Drop chunks whose newest event is older than this.
    pub retention_age: Option<Duration>,
    /// Drop the oldest chunks while all chunks together are larger than this.
    pub retention_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error, Clone)]
pub enum StoreError {
    #[error(
        "the log store could not write to disk ({0}); nothing from this request was stored, retry later"
    )]
    Write(String),
    #[error("the log store is shutting down; nothing from this request was stored, retry later")]
    Closed,
    #[error("the log store is busy; this batch was dropped")]
    Busy,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot use data directory {path}: {source}")]
    Dir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
}

/// An append the store could not take, with its events handed back so a
/// caller that can wait (a TCP connection) retries them instead of losing them.
#[derive(Debug)]
pub struct Rejected {
    pub error: StoreError,
    pub events: Vec<LogEvent>,
}

/// An append queued to the writer; `wait` answers once it is durable or refused.
#[must_use = "an append is durable only when `wait` says so"]
pub struct Pending(oneshot::Receiver<Result<Appended, Rejected>>);

impl Pending {
    /// A pending append that is already settled (the caller durably stored it another way).
    pub fn done() -> Pending {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(Ok(Appended { first_id: 0, last_id: 0 }));
        Pending(rx)
    }

    pub async fn wait(self) -> Result<Appended, Rejected> {
        self.await
    }
}

/// Polling a `Pending` by reference lets a caller wait for it inside `select!`
/// while doing other work, without giving it up.
impl std::future::Future for Pending {
    type Output = Result<Appended, Rejected>;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(Rejected { error: StoreError::Closed, events: Vec::new() })))
    }
}

/// What an acknowledged append got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub first_id: u64,
    pub last_id: u64,
}

/// Where the writer answers an append.
type Ack = oneshot::Sender<Result<Appended, Rejected>>;

impl Job {
    fn into_events(self) -> Vec<LogEvent> {
        match self {
            Job::Append { events, .. } => events,
            _ => Vec::new(),
        }
    }
}

enum Job {
    Append {
        events: Vec<LogEvent>,
        listener: Listener,
        ack: Option<Ack>,
    },
    /// Seal the active segment if it is old enough.
    Tick,
    /// Seal the active segment now and answer once every segment before it is sealed.
    SealNow(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

struct SealJob {
    /// The closed segment to seal; None for a marker that only answers `done`.
    wal_path: Option<PathBuf>,
    /// The highest id written to that segment (0 when none was).
    upto_id: u64,
    done: Option<oneshot::Sender<()>>,
}

/// What a search reads: sealed chunks (oldest first) and the head batches (oldest first).
#[derive(Default)]
struct State {
    chunks: Vec<Arc<ChunkMeta>>,
    head: Vec<Arc<[LogEvent]>>,
}

struct Inner {
    opts: StoreOptions,
    chunk_dir: PathBuf,
    db: Db,
    state: RwLock<State>,
    tx: mpsc::Sender<Job>,
    stored: broadcast::Sender<Arc<[LogEvent]>>,
    newest_id: std::sync::atomic::AtomicU64,
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

/// Closed segments that may wait for the sealer before the writer waits too
/// (0: the writer hands a segment over only when the sealer is free).
const SEAL_BACKLOG: usize = 1;

/// How many appended events one grouped write takes at most.
const MAX_GROUP_EVENTS: usize = 16_384;

impl LogStore {
    /// Opens the store in `opts.dir`, recovering from whatever a crash left, and starts its threads.
    pub async fn open(opts: StoreOptions, db: Db) -> Result<LogStore, OpenError> {
        let wal_dir = opts.dir.join("wal");
        let chunk_dir = opts.dir.join("chunks");
        for d in [&opts.dir, &wal_dir, &chunk_dir] {
            std::fs::create_dir_all(d).map_err(|source| OpenError::Dir { path: d.clone(), source })?;
        }
        let dir_err = |path: &Path| {
            let path = path.to_owned();
            move |source| OpenError::Dir { path, source }
        };

        let (chunks, uncatalogued) = reconcile_chunks(&chunk_dir, &db).await?;
        if !uncatalogued.is_empty() {
            spawn_catalog_retry(&tokio::runtime::Handle::current(), db.clone(), uncatalogued);
        }
        let max_sealed = chunks.iter().map(|c| c.max_id).max().unwrap_or(0);

        // Replay the WAL: every segment not yet sealed goes back into the head and is sealed again.
        let mut head = Vec::new();
        let mut seal_jobs = Vec::new();
        let mut newest = max_sealed;
        for path in list(&wal_dir, ".wal").map_err(dir_err(&wal_dir))? {
            let replay = wal::replay(&path).map_err(dir_err(&path))?;
            if replay.cut_bytes > 0 {
                tracing::warn!(segment = %path.display(), cut_bytes = replay.cut_bytes,
                    "cut a torn tail from a WAL segment (written by a crash, never acknowledged); kept it aside as .corrupt-*");
            }
            let events: Vec<LogEvent> = replay.events.into_iter().filter(|e| e.id > max_sealed).collect();
            if let Some(last) = events.last() {
                newest = newest.max(last.id);
                seal_jobs.push(SealJob { wal_path: Some(path), upto_id: last.id, done: None });
                head.push(Arc::from(events));
            } else {
                seal_jobs.push(SealJob { wal_path: Some(path), upto_id: 0, done: None });
            }
        }
        let replayed: usize = head.iter().map(|b: &Arc<[LogEvent]>| b.len()).sum();
        tracing::info!(chunks = chunks.len(), replayed, "log store opened");

        let first_id = newest.max(now_micros().max(0) as u64) + 1;
        let segment = wal::Segment::create(&wal_dir, first_id).map_err(dir_err(&wal_dir))?;

        let (tx, rx) = mpsc::channel(1024);
        // A broadcast slot keeps its batch until it is overwritten, so the
        // capacity is memory held after the head has sealed those lines: keep it
        // small. A subscriber that falls behind is told so (`Lagged`) and reads
        // the gap back from the store.
        let (stored, _) = broadcast::channel(STORED_BROADCAST_BATCHES);
        let inner = Arc::new(Inner {
            opts,
            chunk_dir,
            db,
            state: RwLock::new(State { chunks: chunks.into_iter().map(Arc::new).collect(), head }),
            tx,
            stored,
            newest_id: newest.into(),
        });

        // A bounded queue: when the sealer falls behind, the writer waits for it
        // (and the bounded append queue then slows the senders), so the unsealed
        // head, which lives in memory, stays within a few segments.
        let (seal_tx, seal_rx) = std::sync::mpsc::sync_channel(seal_jobs.len() + SEAL_BACKLOG);
        for job in seal_jobs {
            let _ = seal_tx.send(job);
        }
        let rt = tokio::runtime::Handle::current();
        {
            let inner = inner.clone();
            let rt = rt.clone();
            std::thread::Builder::new()
                .name("logstore-sealer".into())
                .spawn(move || sealer(inner, seal_rx, rt))
                .expect("spawn sealer thread");
        }
        {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("logstore-writer".into())
                .spawn(move || writer(inner, rx, segment, newest, seal_tx, wal_dir))
                .expect("spawn writer thread");
        }
        let store = LogStore { inner };
        store.spawn_background();
        Ok(store)
    }

    fn spawn_background(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut last_retention = Instant::now() - Duration::from_secs(3600);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.tx.send(Job::Tick).await.is_err() {
                    return;
                }
                if last_retention.elapsed() >= Duration::from_secs(60) {
                    last_retention = Instant::now();
                    LogStore { inner }.enforce_retention().await;
                }
            }
        });
    }

    /// Appends events and waits until they are durable. Ids are assigned here.
    pub async fn append(&self, events: Vec<LogEvent>, listener: Listener) -> Result<Appended, Rejected> {
        self.submit(events, listener).await?.wait().await
    }

    /// Queues events for the writer, waiting for room in the queue (so a fast
    /// sender is slowed down rather than dropped); `Pending::wait` then says
    /// when they are durable. Lets a connection keep a few batches in flight.
    pub async fn submit(&self, events: Vec<LogEvent>, listener: Listener) -> Result<Pending, Rejected> {
        let (ack, rx) = oneshot::channel();
        match self.inner.tx.send(Job::Append { events, listener, ack: Some(ack) }).await {
            Ok(()) => Ok(Pending(rx)),
            Err(mpsc::error::SendError(job)) => Err(Rejected { error: StoreError::Closed, events: job.into_events() }),
        }
    }

    /// Appends only if the queue has room right now (UDP: better to count a drop than to block the socket).
    pub fn try_append(&self, events: Vec<LogEvent>, listener: Listener) -> Result<(), StoreError> {
        self.inner.tx.try_send(Job::Append { events, listener, ack: None }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StoreError::Busy,
            mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
        })
    }

    /// Every batch of events as it becomes durable (for live tail and alerts).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<[LogEvent]>> {
        self.inner.stored.subscribe()
    }

    /// The newest durable id (0 when the store is empty).
    pub fn newest_id(&self) -> u64 {
        self.inner.newest_id.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Writes and fsyncs everything queued before this call, then stops the writer.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Job::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Totals of the sealed chunks: (chunks, events, raw bytes, stored bytes).
    pub fn chunk_totals(&self) -> (usize, u64, u64, u64) {
        let st = self.inner.state.read().unwrap();
        let mut t = (st.chunks.len(), 0, 0, 0);
        for c in &st.chunks {
            t.1 += u64::from(c.count);
            t.2 += c.raw_len;
            t.3 += c.stored_bytes();
        }
        t
    }

    /// Number of events in the unsealed head.
    pub fn head_len(&self) -> usize {
        self.inner.state.read().unwrap().head.iter().map(|b| b.len()).sum()
    }

    /// Waits until everything appended so far has been sealed into chunks (tests, benchmarks).
    pub async fn seal_now(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Job::SealNow(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn enforce_retention(&self) {
        let opts = &self.inner.opts;
        let doomed: Vec<Arc<ChunkMeta>> = {
            let mut st = self.inner.state.write().unwrap();
            let cutoff = opts.retention_age.map(|age| now_micros() - age.as_micros() as i64);
            let mut total: u64 = st.chunks.iter().map(|c| c.stored_bytes()).sum();
            let mut drop_n = 0;
            for c in &st.chunks {
                let too_old = cutoff.is_some_and(|cut| c.max_time < cut);
                let too_big = opts.retention_bytes.is_some_and(|max| total > max);
                if !(too_old || too_big) {
                    break;
                }
                total -= c.stored_bytes();
                drop_n += 1;
            }
            st.chunks.drain(..drop_n).collect()
        };
        for c in doomed {
            if let Err(e) = self.inner.db.delete_chunk(&c.file_name).await {
                tracing::error!(error = %e, chunk = %c.file_name, "retention: could not remove chunk from catalog");
                continue;
            }
            let _ = std::fs::remove_file(self.inner.chunk_dir.join(&c.file_name));
            tracing::info!(chunk = %c.file_name, events = c.count, "retention: dropped chunk");
        }
    }

    /// Runs a search (blocking: call it from `spawn_blocking`).
    pub fn search(&self, req: &SearchRequest, matcher: &dyn Matcher) -> SearchResult {
        let (chunks, head) = {
            let st = self.inner.state.read().unwrap();
            (st.chunks.clone(), st.head.clone())
        };
        search::run(&self.inner.chunk_dir, &chunks, &head, req, matcher)
    }
}

pub mod search;
pub use search::{SearchRequest, SearchResult};

/// Records chunks the catalog missed once the database can be written again
/// (a full disk at start-up must not keep the store from serving them).
fn spawn_catalog_retry(rt: &tokio::runtime::Handle, db: Db, mut pending: Vec<ChunkMeta>) {
    rt.spawn(async move {
        while !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let mut still = Vec::new();
            for meta in pending {
                if db.insert_chunk(&meta, now_micros()).await.is_err() {
                    still.push(meta);
                }
            }
            pending = still;
        }
        tracing::info!("the chunk catalog is complete again");
    });
}

/// Brings the chunk catalog in the database in line with the chunk files on disk.
/// Returns the chunks to serve, and those of them the catalog could not record yet.
async fn reconcile_chunks(dir: &Path, db: &Db) -> Result<(Vec<ChunkMeta>, Vec<ChunkMeta>), OpenError> {
    let dir_err = |source| OpenError::Dir { path: dir.to_owned(), source };
    for tmp in list(dir, ".tmp").map_err(dir_err)? {
        // A chunk half-written when the process died; its WAL segment is still there.
        let _ = std::fs::remove_file(tmp);
    }
    let mut rows = db.chunks().await?;
    let mut uncatalogued = Vec::new();
    let files = list(dir, ".owc").map_err(dir_err)?;
    let known: std::collections::HashSet<String> = rows.iter().map(|r| r.file_name.clone()).collect();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if known.contains(&name) {
            continue;
        }
        // Written and renamed, but the process died before the catalog row.
        match chunk::read_meta(path) {
            Ok(meta) => {
                match db.insert_chunk(&meta, now_micros()).await {
                    Ok(()) => tracing::info!(chunk = %name, "recovered a sealed chunk missing from the catalog"),
                    Err(e) => {
                        // Its own header is enough to serve it; the row follows when the disk has room.
                        tracing::warn!(chunk = %name, error = %e,
                            "cannot record a recovered chunk in the catalog (is the data disk full?); serving it anyway, retrying");
                        uncatalogued.push(meta.clone());
                    }
                }
                rows.push(meta);
            }
            Err(e) => {
                let mut aside = path.as_os_str().to_owned();
                aside.push(".corrupt");
                let _ = std::fs::rename(path, PathBuf::from(aside));
                tracing::error!(chunk = %name, error = %e, "set aside an unreadable chunk file");
            }
        }
    }
    let on_disk: std::collections::HashSet<String> =
        files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let mut kept = Vec::new();
    for r in rows {
        if on_disk.contains(&r.file_name) {
            kept.push(r);
        } else {
            tracing::error!(chunk = %r.file_name, "a catalogued chunk file is missing; removing it from the catalog");
            if let Err(e) = db.delete_chunk(&r.file_name).await {
                // Harmless to leave: the next start tries again.
                tracing::warn!(chunk = %r.file_name, error = %e, "could not remove the catalog row yet");
            }
        }
    }
    kept.sort_by_key(|c| c.min_id);
    Ok((kept, uncatalogued))
}

/// Files in `dir` ending in `suffix`, sorted by name.
fn list(dir: &Path, suffix: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(suffix)))
        .collect();
    v.sort();
    Ok(v)
}

/// The jobs one turn of the writer takes from its queue.
#[derive(Default)]
struct Group {
    jobs: Vec<(Vec<LogEvent>, Listener, Option<Ack>)>,
    n: usize,
    tick: bool,
    seal_waiters: Vec<oneshot::Sender<()>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Group {
    fn take(&mut self, job: Job) {
        match job {
            Job::Append { events, listener, ack } => {
                self.n += events.len();
                self.jobs.push((events, listener, ack));
            }
            Job::Tick => self.tick = true,
            Job::SealNow(done) => self.seal_waiters.push(done),
            Job::Shutdown(done) => self.shutdown = Some(done),
        }
    }
}

fn writer(
    inner: Arc<Inner>,
    mut rx: mpsc::Receiver<Job>,
    mut segment: wal::Segment,
    mut last_id: u64,
    seal_tx: std::sync::mpsc::SyncSender<SealJob>,
    wal_dir: PathBuf,
) {
    let mut buf = Vec::with_capacity(1 << 20);
    let mut segment_last_id = 0u64;
    let mut shutdown: Option<oneshot::Sender<()>> = None;
    while shutdown.is_none() {
        let Some(first) = rx.blocking_recv() else { break };
        let mut g = Group::default();
        g.take(first);
        while g.n < MAX_GROUP_EVENTS && g.shutdown.is_none() {
            match rx.try_recv() {
                Ok(job) => g.take(job),
                Err(_) => break,
            }
        }
        let Group { mut jobs, n, tick, seal_waiters, shutdown: stop } = g;
        shutdown = stop;

        if n > 0 {
            // Ids: strictly increasing, and never behind the clock (see LogEvent::id).
            let base = (last_id + 1).max(now_micros().max(0) as u64);
            let mut next = base;
            buf.clear();
            for (events, _, _) in &mut jobs {
                for ev in events.iter_mut() {
                    ev.id = next;
                    next += 1;
                    wal::encode_record(ev, &mut buf);
                }
            }
            let durable_len = segment.len;
            let result = segment.append(&buf, n as u64).and_then(|()| segment.sync(durable_len));
            if buf.capacity() > 64 << 20 {
                // One huge group must not pin its buffer for the life of the process.
                buf = Vec::with_capacity(1 << 20);
            }
            match result {
                Ok(()) => {
                    last_id = next - 1;
                    segment_last_id = last_id;
                    let mut all = Vec::with_capacity(n);
                    let mut acks = Vec::with_capacity(jobs.len());
                    let mut first_id = base;
                    for (events, listener, ack) in jobs {
                        let count = events.len() as u64;
                        telemetry::lines_stored(listener, count);
                        if let Some(ack) = ack {
                            acks.push((ack, Appended { first_id, last_id: first_id + count.saturating_sub(1) }));
                        }
                        first_id += count;
                        all.extend(events);
                    }
                    let batch: Arc<[LogEvent]> = Arc::from(all);
                    inner.state.write().unwrap().head.push(batch.clone());
                    inner.newest_id.store(last_id, std::sync::atomic::Ordering::Release);
                    let _ = inner.stored.send(batch);
                    for (ack, appended) in acks {
                        let _ = ack.send(Ok(appended));
                    }
                }
                Err(e) => {
                    telemetry::store_error("wal_write");
                    tracing::error!(error = %e, events = n, "WAL write failed; the batch was refused");
                    let error = StoreError::Write(e.to_string());
                    for (events, listener, ack) in jobs {
                        match ack {
                            Some(ack) => {
                                let _ = ack.send(Err(Rejected { error: error.clone(), events }));
                            }
                            None => telemetry::lines_rejected(listener, "store_write", events.len() as u64),
                        }
                    }
                }
            }
        }

        let full = segment.len >= inner.opts.seal_bytes;
        let old = tick && segment.events > 0 && segment.created.elapsed() >= inner.opts.seal_interval;
        let forced = !seal_waiters.is_empty() && segment.events > 0;
        if full || old || forced {
            match wal::Segment::create(&wal_dir, last_id + 1) {
                Ok(fresh) => {
                    let sealed = std::mem::replace(&mut segment, fresh);
                    let _ = seal_tx.send(SealJob { wal_path: Some(sealed.path), upto_id: segment_last_id, done: None });
                }
                Err(e) => {
                    telemetry::store_error("wal_rotate");
                    tracing::error!(error = %e, "could not start a new WAL segment; still appending to the old one");
                }
            }
        }
        for done in seal_waiters {
            let _ = seal_tx.send(SealJob { wal_path: None, upto_id: 0, done: Some(done) });
        }
    }
    tracing::debug!("log store writer stopped");
    if let Some(done) = shutdown {
        let _ = done.send(());
    }
}

fn sealer(inner: Arc<Inner>, rx: std::sync::mpsc::Receiver<SealJob>, rt: tokio::runtime::Handle) {
    for mut job in rx {
        if let Some(done) = job.done.take() {
            let _ = done.send(());
            continue;
        }
        let mut delay = Duration::from_secs(1);
        loop {
            match seal_one(&inner, &job, &rt) {
                Ok(()) => break,
                Err(e) => {
                    telemetry::store_error("seal");
                    tracing::error!(error = %e, segment = ?job.wal_path,
                        "sealing a WAL segment failed; its events stay in the WAL and in memory, retrying");
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(60));
                    if Arc::strong_count(&inner) == 1 {
                        return; // the store is gone
                    }
                }
            }
        }
    }
}

fn seal_one(inner: &Inner, job: &SealJob, rt: &tokio::runtime::Handle) -> anyhow::Result<()> {
    let batches: Vec<Arc<[LogEvent]>> = {
        let st = inner.state.read().unwrap();
        st.head.iter().take_while(|b| b.last().is_some_and(|e| e.id <= job.upto_id)).cloned().collect()
    };
    if !batches.is_empty() {
        let events: Vec<&LogEvent> = batches.iter().flat_map(|b| b.iter()).collect();
        let meta = chunk::write(&inner.chunk_dir, &events)?;
        // The chunk file is the data and carries its own header; a catalog that
        // cannot be written right now (busy, full) must not hold up sealing and,
        // through it, ingest. The row follows when the database takes it.
        if let Err(e) = rt.block_on(inner.db.insert_chunk(&meta, now_micros())) {
            telemetry::store_error("catalog_insert");
            tracing::warn!(chunk = %meta.file_name, error = %e, "cannot record a sealed chunk in the catalog yet; serving it, retrying");
            spawn_catalog_retry(rt, inner.db.clone(), vec![meta.clone()]);
        }
        telemetry::chunk_sealed(u64::from(meta.count), meta.raw_len, meta.stored_bytes());
        tracing::debug!(chunk = %meta.file_name, events = meta.count, stored = meta.stored_bytes(), "sealed chunk");
        let mut st = inner.state.write().unwrap();
        st.chunks.push(Arc::new(meta));
        st.head.drain(..batches.len());
    }
    if let Some(path) = &job.wal_path {
        std::fs::remove_file(path).or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) }
        })?;
        if let Some(dir) = path.parent() {
            chunk::sync_dir(dir)?;
        }
    }
    Ok(())
}
