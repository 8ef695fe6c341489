//! The log store's promises, tested through its public API: acknowledged
//! events survive a crash at any point (simulated by copying the data
//! directory while the store runs: exactly what a power cut would leave after
//! fsync), recovery cuts torn tails and never serves corrupt or duplicate data,
//! ids keep increasing across restarts, retention drops the oldest chunks, and
//! search pages through head and chunks without gaps or repeats.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use orderwatch::db::Db;
use orderwatch::event::LogEvent;
use orderwatch::logstore::{LogStore, SearchRequest, StoreOptions};
use orderwatch::query;
use orderwatch::telemetry::Listener;

fn opts(dir: &Path) -> StoreOptions {
    StoreOptions {
        dir: dir.join("logs"),
        seal_bytes: 32 << 20,
        seal_interval: Duration::from_secs(3600),
        retention_age: None,
        retention_bytes: None,
    }
}

async fn open(dir: &Path, o: StoreOptions) -> LogStore {
    let db = Db::open_sqlite(&dir.join("orderwatch.db")).await.unwrap();
    LogStore::open(o, db).await.unwrap()
}

fn line(i: usize) -> LogEvent {
    let msg = format!("[pid: 1|app: 0|req: {i}/{i}] 10.0.0.{} () {{46 vars in 981 bytes}} [Sat Jun 23 17:17:41 2018] POST /api/v1/orders/ => generated 99 bytes in 2 msecs (HTTP/2.0 {}) 8 headers in 295 bytes (1 switches on core 0)", i % 250, if i.is_multiple_of(7) { 429 } else { 201 });
    let raw = format!("<30>Jun 23 17:17:41 web website-backend: {msg}");
    LogEvent {
        id: 0,
        received_at: orderwatch::event::now_micros(),
        generated_at: 1_529_763_461_000_000,
        source_name: "web".into(),
        source_ip: "10.0.0.1".into(),
        program: "website-backend".into(),
        severity: Some(6),
        facility: Some(3),
        message: format!("{msg} #{i}").into(),
        raw: Bytes::from(format!("{raw} #{i}")),
        flags: 0,
    }
}

fn all(store: &LogStore) -> Vec<LogEvent> {
    let req = SearchRequest { limit: usize::MAX, ..SearchRequest::default() };
    store.search(&req, &query::compile("").unwrap()).events
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_events_survive_a_crash_and_stay_in_order() {
    let live = tempfile::tempdir().unwrap();
    let store = open(live.path(), opts(live.path())).await;
    let mut acked = Vec::new();
    for batch in 0..20 {
        let events: Vec<_> = (0..50).map(|i| line(batch * 50 + i)).collect();
        let a = store.append(events, Listener::Http).await.unwrap();
        assert_eq!(a.last_id - a.first_id, 49);
        acked.push(a);
    }
    // The "crash": what is on disk right now, with the store still running.
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(live.path(), crashed.path());
    let recovered = open(crashed.path(), opts(crashed.path())).await;
    let got = all(&recovered);
    assert_eq!(got.len(), 1000);
    assert!(got.windows(2).all(|w| w[0].id < w[1].id), "ids strictly increasing");
    assert_eq!(got[0].id, acked[0].first_id);
    assert_eq!(got.last().unwrap().id, acked.last().unwrap().last_id);
    assert_eq!(got[999].message, line(999).message);
    // New events after the restart get larger ids.
    let a = recovered.append(vec![line(5000)], Listener::Http).await.unwrap();
    assert!(a.first_id > acked.last().unwrap().last_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn torn_wal_tail_is_cut_and_the_rest_served() {
    let live = tempfile::tempdir().unwrap();
    let store = open(live.path(), opts(live.path())).await;
    store.append((0..10).map(line).collect(), Listener::Http).await.unwrap();
    store.shutdown().await;
    // Half a record at the end, as a crash in the middle of a write leaves it.
    let wal = files(&live.path().join("logs/wal"), ".wal");
    let seg = wal.iter().find(|p| std::fs::metadata(p).unwrap().len() > 0).unwrap();
    let mut bytes = std::fs::read(seg).unwrap();
    let whole = bytes.len();
    bytes.extend_from_slice(&[200, 0, 0, 0, 1, 2, 3, 4, b'x', b'y']);
    std::fs::write(seg, &bytes).unwrap();
    drop(store);
    let reopened = open(live.path(), opts(live.path())).await;
    assert_eq!(all(&reopened).len(), 10);
    assert_eq!(std::fs::metadata(seg).map(|m| m.len() as usize).unwrap_or(whole), whole);
    assert_eq!(files(&live.path().join("logs/wal"), "").iter().filter(|p| p.to_string_lossy().contains(".corrupt-")).count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sealing_moves_events_to_chunks_without_loss_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), opts(dir.path())).await;
    store.append((0..300).map(line).collect(), Listener::Tcp).await.unwrap();
    let before: Vec<u64> = all(&store).iter().map(|e| e.id).collect();
    store.seal_now().await;
    assert_eq!(store.head_len(), 0);
    let (chunks, events, raw, stored) = store.chunk_totals();
    assert_eq!((chunks, events), (1, 300));
    assert!(stored < raw / 4, "zstd should shrink repetitive access logs well: {stored} of {raw}");
    store.append((300..310).map(line).collect(), Listener::Tcp).await.unwrap();
    let after: Vec<u64> = all(&store).iter().map(|e| e.id).collect();
    assert_eq!(&after[..300], &before[..]);
    assert_eq!(after.len(), 310);
    // And the same after a restart: chunk + WAL.
    store.shutdown().await;
    drop(store);
    let reopened = open(dir.path(), opts(dir.path())).await;
    assert_eq!(all(&reopened).iter().map(|e| e.id).collect::<Vec<_>>(), after);
}

/// A crash after a chunk was written but before its WAL segment was removed
/// must not serve the events twice.
#[tokio::test(flavor = "multi_thread")]
async fn crash_between_seal_and_wal_delete_does_not_duplicate() {
    let live = tempfile::tempdir().unwrap();
    let store = open(live.path(), opts(live.path())).await;
    store.append((0..40).map(line).collect(), Listener::Tcp).await.unwrap();
    let wal_dir = live.path().join("logs/wal");
    let saved: Vec<(PathBuf, Vec<u8>)> = files(&wal_dir, ".wal").into_iter().map(|p| {
        let b = std::fs::read(&p).unwrap();
        (p, b)
    }).collect();
    store.seal_now().await;
    store.shutdown().await;
    drop(store);
    for (p, b) in &saved {
        std::fs::write(p, b).unwrap(); // the segment "was not deleted yet"
    }
    let reopened = open(live.path(), opts(live.path())).await;
    let got = all(&reopened);
    assert_eq!(got.len(), 40);
    assert!(got.windows(2).all(|w| w[0].id < w[1].id));
}

/// The chunk files are the data; the catalog is rebuilt around them.
#[tokio::test(flavor = "multi_thread")]
async fn catalog_is_reconciled_with_chunk_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), opts(dir.path())).await;
    store.append((0..20).map(line).collect(), Listener::Tcp).await.unwrap();
    store.seal_now().await;
    store.append((20..30).map(line).collect(), Listener::Tcp).await.unwrap();
    store.seal_now().await;
    store.shutdown().await;
    drop(store);
    let chunk_dir = dir.path().join("logs/chunks");
    let chunks = files(&chunk_dir, ".owc");
    assert_eq!(chunks.len(), 2);
    // Lose the catalog rows (a crash before the insert): the files are found again.
    {
        let db = Db::open_sqlite(&dir.path().join("orderwatch.db")).await.unwrap();
        for c in db.chunks().await.unwrap() {
            db.delete_chunk(&c.file_name).await.unwrap();
        }
        db.close().await;
    }
    let store = open(dir.path(), opts(dir.path())).await;
    assert_eq!(all(&store).len(), 30);
    store.shutdown().await;
    drop(store);
    // Lose a chunk file: its catalog row goes, the rest is served, nothing panics.
    std::fs::remove_file(&chunks[0]).unwrap();
    // And a half-written chunk from a crash is cleaned up.
    std::fs::write(chunk_dir.join("ffff-ffff.owc.tmp"), b"partial").unwrap();
    let store = open(dir.path(), opts(dir.path())).await;
    assert_eq!(all(&store).len(), 10);
    assert!(files(&chunk_dir, ".tmp").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_chunk_is_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), opts(dir.path())).await;
    store.append((0..20).map(line).collect(), Listener::Tcp).await.unwrap();
    store.seal_now().await;
    store.append((20..25).map(line).collect(), Listener::Tcp).await.unwrap();
    let chunk = files(&dir.path().join("logs/chunks"), ".owc").remove(0);
    let mut b = std::fs::read(&chunk).unwrap();
    let n = b.len();
    b[n - 5] ^= 0xff;
    std::fs::write(&chunk, b).unwrap();
    let got = all(&store);
    assert_eq!(got.len(), 5, "only the head is served; the damaged chunk is skipped");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_drops_oldest_chunks_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.retention_bytes = Some(1); // keep nothing sealed
    let store = open(dir.path(), o.clone()).await;
    store.append((0..20).map(line).collect(), Listener::Tcp).await.unwrap();
    store.seal_now().await;
    store.shutdown().await;
    drop(store);
    // Retention runs shortly after start.
    let store = open(dir.path(), o).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.chunk_totals().0 > 0 {
        assert!(std::time::Instant::now() < deadline, "retention did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(files(&dir.path().join("logs/chunks"), ".owc").is_empty());
    assert!(all(&store).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_drops_chunks_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(dir.path());
    o.retention_age = Some(Duration::from_millis(1));
    let store = open(dir.path(), o.clone()).await;
    store.append((0..5).map(line).collect(), Listener::Tcp).await.unwrap();
    store.seal_now().await;
    store.shutdown().await;
    drop(store);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let store = open(dir.path(), o).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while store.chunk_totals().0 > 0 {
        assert!(std::time::Instant::now() < deadline, "retention did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn search_pages_without_gaps_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), opts(dir.path())).await;
    // Three chunks and a head.
    for part in 0..4 {
        store.append((part * 100..part * 100 + 100).map(line).collect(), Listener::Tcp).await.unwrap();
        if part < 3 {
            store.seal_now().await;
        }
    }
    let everything: Vec<u64> = all(&store).iter().map(|e| e.id).collect();
    assert_eq!(everything.len(), 400);
    let m = query::compile("").unwrap();

    // Backwards from the newest, as a client pages with max_id = previous min_id.
    let mut seen = Vec::new();
    let mut max_id = None;
    loop {
        let r = store.search(&SearchRequest { max_id, limit: 37, ..SearchRequest::default() }, &m);
        let mut ids: Vec<u64> = r.events.iter().map(|e| e.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "chronological within a page");
        ids.extend(seen);
        seen = ids;
        if r.reached_beginning {
            break;
        }
        assert!(r.reached_record_limit);
        max_id = Some(r.min_id);
    }
    assert_eq!(seen, everything);

    // Forwards from the start, as `tail=false` with min_id.
    let mut seen = Vec::new();
    let mut min_id = Some(0);
    loop {
        let r = store.search(&SearchRequest { min_id, limit: 41, oldest_first: true, ..SearchRequest::default() }, &m);
        seen.extend(r.events.iter().map(|e| e.id));
        if r.reached_beginning {
            break;
        }
        min_id = Some(r.max_id);
    }
    assert_eq!(seen, everything);

    // Newest first with a filter: the newest 429s.
    let m429 = query::compile("\"HTTP/2.0 429\"").unwrap();
    let r = store.search(&SearchRequest { limit: 5, ..SearchRequest::default() }, &m429);
    let all429: Vec<u64> = all(&store).iter().filter(|e| e.message.contains("429")).map(|e| e.id).collect();
    let want = all429[all429.len() - 5..].to_vec();
    assert_eq!(r.events.iter().map(|e| e.id).collect::<Vec<_>>(), want);

    // Time bounds are inclusive and skip what is outside.
    let mid = all(&store)[200].received_at;
    let r = store.search(&SearchRequest { min_time: Some(mid), limit: usize::MAX, ..SearchRequest::default() }, &m);
    assert!(r.events.iter().all(|e| e.received_at >= mid));
    assert!(r.events.len() >= 200);
}
