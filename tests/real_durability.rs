//! "Nothing acknowledged is lost", against the real process:
//! - a full disk (a 4 MiB tmpfs in a private mount namespace): ingest is
//!   refused with 507 and a clear error, everything answered 200 stays
//!   searchable, across restarts, and ingest works again once there is room;
//! - `kill -9` in the middle of acknowledged HTTP ingest, several times: every
//!   acknowledged line is there after a restart, once, with its id, and new
//!   ids keep increasing;
//! - graceful shutdown (SIGTERM, SIGINT): exit code 0 and every line the
//!   server had read over TCP/UDP is there after a restart.
//!
//! Regression tests named after what broke (they fail until those bugs are fixed):
//! `sigterm_right_after_a_tcp_burst_keeps_every_line_sent`,
//! `syslog_tcp_lines_refused_by_a_full_disk_are_stored_once_there_is_room`,
//! `restart_on_a_full_disk_with_an_uncatalogued_chunk_comes_up`.

mod common;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// What one acknowledged POST got back.
#[derive(Debug, Clone)]
struct Ack {
    marker: String,
    lines: usize,
    first_id: u64,
    last_id: u64,
}

fn id_of(v: &Value) -> u64 {
    v.as_str()
        .unwrap_or_else(|| panic!("id is not a string: {v}"))
        .parse()
        .unwrap()
}

/// A batch of `n` lines, each `"{marker} line {j:03} {filler}"`; the filler is
/// pseudo-random text, so the store cannot compress it away.
fn batch(marker: &str, n: usize, filler_len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let mut out = String::new();
    for j in 0..n {
        out.push_str(&format!("{marker} line {j:03} "));
        for _ in 0..filler_len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push(ALPHABET[(x >> 58) as usize] as char);
        }
        out.push('\n');
    }
    out
}

/// Checks that every acknowledged batch is searchable: exactly its lines, once
/// each, with the ids the acknowledgement gave.
fn assert_acked_present(server: &Server, run_tag: &str, acks: &[Ack]) {
    let all = server.search_all(run_tag);
    let mut by_id: HashMap<u64, &Value> = HashMap::new();
    let mut seen_msgs: HashSet<&str> = HashSet::new();
    for e in &all {
        let id = id_of(&e["id"]);
        assert!(by_id.insert(id, e).is_none(), "id {id} served twice");
        let m = e["message"].as_str().unwrap();
        assert!(seen_msgs.insert(m), "a line is stored twice: {m:.80}");
    }
    let ids: Vec<u64> = all.iter().map(|e| id_of(&e["id"])).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "search_all is not in id order"
    );
    for a in acks {
        assert_eq!(a.last_id - a.first_id + 1, a.lines as u64, "{a:?}");
        for (j, id) in (a.first_id..=a.last_id).enumerate() {
            let e = by_id.get(&id).unwrap_or_else(|| {
                panic!(
                    "acknowledged line {j} of {} (id {id}) is missing; {} events of this run are stored\nserver stderr:\n{}",
                    a.marker,
                    all.len(),
                    server.stderr_tail(40)
                )
            });
            let m = e["message"].as_str().unwrap();
            assert!(
                m.starts_with(&format!("{} line {j:03} ", a.marker)),
                "id {id} holds {m:.80}, expected line {j} of {}",
                a.marker
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Full disk

/// A private mount namespace, held open by a `sleep` in it, so that a tmpfs
/// mounted there is seen only by processes started with `nsenter` into it and
/// disappears with them.
struct MountNs {
    holder: Child,
}

impl MountNs {
    fn new() -> MountNs {
        let unshare = require("unshare");
        require("nsenter");
        require("mount");
        let holder = Command::new(unshare)
            .args(["--mount", "--propagation", "private", "sleep", "3600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start unshare");
        let mut ns = MountNs { holder };
        let ours = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        let pid = ns.pid();
        wait_until(
            "unshare to enter a new mount namespace",
            Duration::from_secs(10),
            || {
                if let Some(status) = ns.holder.try_wait().unwrap() {
                    let mut err = String::new();
                    let _ =
                        std::io::Read::read_to_string(ns.holder.stderr.as_mut().unwrap(), &mut err);
                    panic!(
                        "`unshare --mount` failed ({status}): {err}\nThe full-disk test needs root (or CAP_SYS_ADMIN) to make a \
                     private mount namespace and mount a small tmpfs; run scripts/test as root."
                    );
                }
                let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()?;
                (theirs != ours
                    && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .ok()?
                        .trim()
                        == "sleep")
                    .then_some(())
            },
        );
        ns
    }

    fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// The command prefix that runs a program inside the namespace.
    fn wrapper(&self) -> Vec<OsString> {
        let nsenter = require("nsenter");
        vec![
            nsenter.into(),
            "-t".into(),
            self.pid().to_string().into(),
            "-m".into(),
            "--".into(),
        ]
    }

    /// Runs a shell command inside the namespace.
    fn sh(&self, script: &str) -> String {
        let w = self.wrapper();
        run(Command::new(&w[0]).args(&w[1..]).args(["sh", "-c", script]))
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn post_batch(server: &Server, body: &str) -> HttpResponse {
    server.post_logs(body.as_bytes())
}

/// A server whose data directory is on a 4 MiB tmpfs, 1 MiB of which is taken
/// by a file `filler` (removed by `free_space`).
struct SmallDisk {
    ns: MountNs,
    mnt: String,
}

impl SmallDisk {
    fn start(config: &str) -> (SmallDisk, Server) {
        let ns = MountNs::new();
        let tmp = tempfile::Builder::new()
            .prefix("orderwatch-fulldisk-")
            .tempdir()
            .unwrap();
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mnt_s = mnt.display().to_string();
        ns.sh(&format!("mount -t tmpfs -o size=4m tmpfs '{mnt_s}' && head -c 1048576 /dev/zero > '{mnt_s}/filler'"));
        // The mount is private to the namespace: here the directory is still empty.
        assert!(
            !mnt.join("filler").exists(),
            "the tmpfs leaked out of its mount namespace"
        );
        let server = Server::with_dir(
            Opts {
                config: config.into(),
                wrapper: ns.wrapper(),
                data: Some(mnt.join("data")),
                ..Opts::default()
            },
            tmp,
        );
        (SmallDisk { ns, mnt: mnt_s }, server)
    }

    fn free_space(&self) {
        self.ns
            .sh(&format!("rm -f '{0}/filler' '{0}/filler2'", self.mnt));
    }

    /// Takes every free byte left with a second filler file.
    fn fill_rest(&self) {
        self.ns.sh(&format!(
            "head -c 64M /dev/zero > '{}/filler2' 2>/dev/null || true",
            self.mnt
        ));
    }

    /// `path` (inside the namespace) as this process can reach it: through the holder's root.
    fn reach(&self, path: &std::path::Path) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/proc/{}/root{}", self.ns.pid(), path.display()))
    }
}

#[test]
fn full_disk_refuses_ingest_with_507_and_loses_nothing_acknowledged() {
    // Small segments: sealing into chunks runs (and fails for room) too.
    let (disk, mut server) = SmallDisk::start("[store]\nseal_bytes = \"256KiB\"\n");
    let run_tag = format!("disk{}", nonce());
    let (mut acks, refused) = fill_disk(&server, &run_tag, 2000);
    let (refused_marker, err) = refused.expect("the disk never filled up: no 507 after 2000 posts");
    let msg = err["error"]
        .as_str()
        .unwrap_or_else(|| panic!("507 without an error message: {err}"));
    assert!(
        msg.contains("No space left on device") && msg.contains("retry"),
        "unclear 507 error: {msg}"
    );
    assert!(acks.len() >= 5, "only {} posts fit on the disk", acks.len());
    eprintln!(
        "full disk: {} posts acknowledged, then 507: {msg}",
        acks.len()
    );

    // Still serving; the refused post left nothing behind; everything acknowledged is there.
    assert_eq!(server.healthz(), 200);
    assert!(
        server.search(&refused_marker).is_empty(),
        "a refused (507) post was stored"
    );
    assert_acked_present(&server, &run_tag, &acks);
    // Syslog over TCP while the disk is full: the listener stays up.
    send_tcp(
        server.tcp,
        b"<13>Nov 26 12:00:00 web-1 app: while the disk is full\n",
    );
    server.assert_running();

    // Room again: ingest works at once.
    disk.free_space();
    let marker = format!("{run_tag}-after");
    let r = post_batch(&server, &batch(&marker, 100, 180, 99_999));
    assert_eq!(r.status, 200, "ingest after freeing space: {}", r.text());
    let v = r.json();
    let after = Ack {
        marker,
        lines: 100,
        first_id: id_of(&v["first_id"]),
        last_id: id_of(&v["last_id"]),
    };
    assert!(
        after.first_id > acks.iter().map(|a| a.last_id).max().unwrap(),
        "ids went backwards"
    );
    acks.push(after);
    server.stop();
    server.restart();
    assert_acked_present(&server, &run_tag, &acks);
    server.stop();
}

/// Syslog has no acknowledgement, but a TCP sender whose lines the disk
/// refused is held (orderwatch stops reading its connection) and the lines are
/// retried: once there is room they must be stored, in order, even though the
/// sender sends nothing more and keeps its connection open (rsyslog does).
#[test]
fn syslog_tcp_lines_refused_by_a_full_disk_are_stored_once_there_is_room() {
    // No sealing during the test, so nothing frees room by itself.
    let (disk, mut server) =
        SmallDisk::start("[store]\nseal_bytes = \"1GiB\"\nseal_interval = \"1h\"\n");
    let run_tag = format!("held{}", nonce());
    let acks = fill_completely(&server, &run_tag);
    let wal_errors = |m: &str| metric(m, "orderwatch_store_errors_total", &[("kind", "wal_write")]);
    let errors_before = wal_errors(&server.metrics());
    let tcp_tag = format!("{run_tag}tcp");
    let mut conn = TcpStream::connect(server.tcp).unwrap();
    for i in 0..3 {
        // 300 bytes each: more than the few bytes a full disk may still have.
        let pad = "p".repeat(300);
        conn.write_all(
            format!("<13>Nov 26 12:00:00 web-1 {tcp_tag}: held line {i} {pad}\n").as_bytes(),
        )
        .unwrap();
    }
    // The full disk refuses them ...
    server.wait_metrics(
        "the store to refuse the TCP lines",
        Duration::from_secs(10),
        |m| {
            received(m, "tcp") >= 3.0
                && wal_errors(m) >= errors_before + 1.0
        },
    );
    assert!(server.search(&tcp_tag).is_empty());
    // ... until there is room.
    disk.free_space();
    let deadline = Instant::now() + Duration::from_secs(15);
    while server.search(&tcp_tag).len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let arrived = server.search(&tcp_tag).len();
    if arrived < 3 {
        // Tell apart "never retried" from "retried only when the connection ends".
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_secs(3));
        panic!(
            "{arrived} of 3 syslog lines refused by the full disk were stored within 15 s after room came back, \
             while their connection stayed open and quiet; {} of 3 were stored 3 s after the sender closed its side\n\
             server stderr:\n{}",
            server.search(&tcp_tag).len(),
            server.stderr_tail(10)
        );
    }
    let held = server.search(&tcp_tag);
    let msgs: Vec<&str> = held
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..3)
        .map(|i| format!("held line {i} {}", "p".repeat(300)))
        .collect();
    assert_eq!(msgs, expected);
    // The connection was held, not closed: it still works.
    conn.write_all(
        format!("<13>Nov 26 12:00:00 web-1 {tcp_tag}: after the room came back\n").as_bytes(),
    )
    .unwrap();
    server.wait_for(&tcp_tag, 4, Duration::from_secs(10));
    assert_acked_present(&server, &run_tag, &acks);
    server.stop();
}

/// Fills the disk to the last bytes: 100-line posts until one is refused
/// with 507, then one-line posts until one is refused too.
fn fill_completely(server: &Server, run_tag: &str) -> Vec<Ack> {
    let (mut acks, refused) = fill_disk(server, run_tag, 2000);
    assert!(refused.is_some(), "the disk never filled up");
    for i in 0..2000 {
        let marker = format!("{run_tag}-single{i:04}");
        let r = post_batch(server, &batch(&marker, 1, 180, 1_000_000 + i));
        if r.status == 507 {
            return acks;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        acks.push(Ack {
            marker,
            lines: 1,
            first_id: id_of(&v["first_id"]),
            last_id: id_of(&v["last_id"]),
        });
    }
    panic!("one-line posts never filled the disk");
}

/// A machine whose data disk is full gets restarted (or orderwatch crashes
/// and is restarted): orderwatch must come up, serve search over everything
/// it acknowledged and refuse ingest with 507, not refuse to start.
#[test]
fn restart_on_a_full_disk_comes_up_and_serves_search() {
    // No sealing, so nothing frees room by itself.
    let (disk, mut server) =
        SmallDisk::start("[store]\nseal_bytes = \"1GiB\"\nseal_interval = \"1h\"\n");
    let run_tag = format!("fullrestart{}", nonce());
    let mut acks = fill_completely(&server, &run_tag);
    server.stop();
    server.restart();
    assert_acked_present(&server, &run_tag, &acks);
    let r = post_batch(&server, &batch(&format!("{run_tag}-refused"), 10, 180, 5));
    assert_eq!(r.status, 507, "{}", r.text());
    disk.free_space();
    let marker = format!("{run_tag}-after");
    let r = post_batch(&server, &batch(&marker, 10, 180, 6));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    acks.push(Ack {
        marker,
        lines: 10,
        first_id: id_of(&v["first_id"]),
        last_id: id_of(&v["last_id"]),
    });
    assert_acked_present(&server, &run_tag, &acks);
    server.stop();
}

/// A crash between writing a sealed chunk file and adding its catalog row
/// leaves a chunk the catalog does not know (the store adds the row at the
/// next start). On a full disk the same state arises without a crash: the
/// chunk file fits, the catalog row does not (SQLITE_FULL), and the server is
/// then stopped. The next start on that still-full disk must come up and
/// serve everything, not exit with "database or disk is full".
#[test]
fn restart_on_a_full_disk_with_an_uncatalogued_chunk_comes_up() {
    let (disk, mut server) = SmallDisk::start("[store]\nseal_bytes = \"64KiB\"\n");
    let run_tag = format!("uncat{}", nonce());
    let mut acks = Vec::new();
    for i in 0..8 {
        let marker = format!("{run_tag}-b{i:04}");
        let r = post_batch(&server, &batch(&marker, 100, 180, i));
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        acks.push(Ack {
            marker,
            lines: 100,
            first_id: id_of(&v["first_id"]),
            last_id: id_of(&v["last_id"]),
        });
    }
    server.wait_metrics("two sealed chunks", Duration::from_secs(20), |m| {
        metric(m, "orderwatch_store_chunks", &[]) >= 2.0
    });
    server.stop();

    // Make the state: drop the newest chunk's catalog row (its file stays), the
    // way a dying process leaves it (python3's sqlite3, inside the namespace,
    // exits without closing, so SQLite's -wal and -shm stay as orderwatch
    // leaves them), then fill the disk.
    let python3 = require("python3");
    let ns_data = disk.reach(&server.data);
    let chunks_before: Vec<String> = std::fs::read_dir(ns_data.join("logs/chunks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".owc"))
        .collect();
    let script = format!(
        "import os, sqlite3\n\
         c = sqlite3.connect({db:?})\n\
         (name,) = c.execute('SELECT file_name FROM chunks ORDER BY max_id DESC LIMIT 1').fetchone()\n\
         c.execute('DELETE FROM chunks WHERE file_name = ?', (name,))\n\
         c.commit()\n\
         print(name, flush=True)\n\
         os._exit(0)\n",
        db = server.data.join("orderwatch.db").display().to_string()
    );
    let w = disk.ns.wrapper();
    let dropped = run(Command::new(&w[0])
        .args(&w[1..])
        .arg(&python3)
        .args(["-c", &script]))
    .trim()
    .to_owned();
    assert!(
        chunks_before.contains(&dropped),
        "{dropped:?} not among {chunks_before:?}"
    );
    disk.fill_rest();

    server.restart();
    assert_acked_present(&server, &run_tag, &acks);
    let r = post_batch(&server, &batch(&format!("{run_tag}-refused"), 10, 180, 9));
    assert_eq!(r.status, 507, "{}", r.text());
    disk.free_space();
    let r = post_batch(&server, &batch(&format!("{run_tag}-after"), 10, 180, 10));
    assert_eq!(r.status, 200, "{}", r.text());
    server.stop();
}

/// Posts 100-line batches until one is refused with 507 (or `max` posts);
/// returns the acknowledgements and the refused batch's marker and answer.
fn fill_disk(server: &Server, run_tag: &str, max: u64) -> (Vec<Ack>, Option<(String, Value)>) {
    let mut acks = Vec::new();
    for i in 0..max {
        let marker = format!("{run_tag}-b{i:04}");
        let r = post_batch(server, &batch(&marker, 100, 180, i));
        match r.status {
            200 => {
                let v = r.json();
                assert_eq!(v["accepted"], 100, "{v}");
                acks.push(Ack {
                    marker,
                    lines: 100,
                    first_id: id_of(&v["first_id"]),
                    last_id: id_of(&v["last_id"]),
                });
            }
            507 => return (acks, Some((marker, r.json()))),
            other => panic!(
                "POST {i} answered {other}: {}\nserver stderr:\n{}",
                r.text(),
                server.stderr_tail(40)
            ),
        }
    }
    (acks, None)
}

// ---------------------------------------------------------------------------
// Crash recovery

/// Posts batches from `threads` threads until a post fails (the server was
/// killed); returns every acknowledgement.
fn ingest_until_failure(
    addr: SocketAddr,
    run_tag: &str,
    round: usize,
    threads: usize,
    stop: Arc<Mutex<bool>>,
) -> Vec<std::thread::JoinHandle<Vec<Ack>>> {
    (0..threads)
        .map(|t| {
            let run_tag = run_tag.to_owned();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let auth = format!("Bearer {TOKEN}");
                let mut acks = Vec::new();
                for b in 0.. {
                    if *stop.lock().unwrap() {
                        break;
                    }
                    let marker = format!("{run_tag}-r{round}-t{t}-b{b:05}");
                    let body = batch(
                        &marker,
                        50,
                        60,
                        (round * 1_000_000 + t * 100_000 + b) as u64,
                    );
                    match http(
                        addr,
                        "POST",
                        "/api/v1/logs",
                        &[("Authorization", &auth)],
                        body.as_bytes(),
                    ) {
                        Ok(r) if r.status == 200 => {
                            let v = r.json();
                            acks.push(Ack {
                                marker,
                                lines: 50,
                                first_id: id_of(&v["first_id"]),
                                last_id: id_of(&v["last_id"]),
                            });
                        }
                        Ok(r) if r.status == 503 => {} // shutting down: not acknowledged
                        Ok(r) => panic!("POST answered {}: {}", r.status, r.text()),
                        Err(_) => break, // killed
                    }
                }
                acks
            })
        })
        .collect()
}

#[test]
fn kill_9_during_acknowledged_ingest_loses_nothing_acknowledged() {
    // Small segments, so that sealing into chunks happens all the time and the
    // kill lands in every phase of it.
    let mut server = Server::start("[store]\nseal_bytes = \"64KiB\"\nseal_interval = \"1s\"\n");
    let run_tag = format!("crash{}", nonce());
    let mut acks: Vec<Ack> = Vec::new();
    for round in 0..4 {
        let stop = Arc::new(Mutex::new(false));
        let threads = ingest_until_failure(server.http, &run_tag, round, 3, stop.clone());
        // Let some batches through, then crash.
        let started = Instant::now();
        wait_until("some acknowledged posts", Duration::from_secs(30), || {
            (server.metric("orderwatch_lines_stored_total", &[("listener", "http")]) >= 1500.0)
                .then_some(())
        });
        std::thread::sleep(Duration::from_millis(150 * round as u64));
        server.kill9();
        *stop.lock().unwrap() = true;
        let mut round_acks = Vec::new();
        for t in threads {
            round_acks.extend(t.join().unwrap());
        }
        eprintln!(
            "round {round}: {} posts acknowledged in {:?} before kill -9",
            round_acks.len(),
            started.elapsed()
        );
        assert!(!round_acks.is_empty());
        acks.extend(round_acks);

        server.restart();
        assert_acked_present(&server, &run_tag, &acks);
    }
    // Ids keep increasing after the crashes.
    let newest = acks.iter().map(|a| a.last_id).max().unwrap();
    let r = server.post_logs(format!("{run_tag} after the crashes\n").as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        id_of(&r.json()["first_id"]) > newest,
        "ids went backwards after a crash: {}",
        r.text()
    );
    // Chunks are written aside and renamed into place, so no crash may leave a
    // damaged one (a torn WAL tail, set aside as *.corrupt-N, is expected).
    let damaged: Vec<String> = std::fs::read_dir(server.data.join("logs/chunks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("corrupt"))
        .collect();
    assert!(
        damaged.is_empty(),
        "kill -9 left damaged chunks: {damaged:?}"
    );
    server.stop();
}

// ---------------------------------------------------------------------------
// Graceful shutdown

fn lf_lines(tag: &str, from: usize, to: usize) -> Vec<u8> {
    (from..to)
        .flat_map(|i| format!("<13>Nov 26 12:00:00 web-1 {tag}: line {i:05}\n").into_bytes())
        .collect()
}

fn octet_lines(tag: &str, from: usize, to: usize) -> Vec<u8> {
    (from..to)
        .flat_map(|i| octet(format!("<13>Nov 26 12:00:00 web-1 {tag}: line {i:05}").as_bytes()))
        .collect()
}

fn assert_lines(server: &Server, tag: &str, n: usize) {
    let all = server.search_all(tag);
    let got: Vec<&str> = all.iter().map(|e| e["message"].as_str().unwrap()).collect();
    let want: Vec<String> = (0..n).map(|i| format!("line {i:05}")).collect();
    if got != want {
        let missing: Vec<&String> = want
            .iter()
            .filter(|w| !got.contains(&w.as_str()))
            .take(10)
            .collect();
        panic!(
            "{tag}: {} of {n} lines after the restart; first missing: {missing:?}\nserver stderr:\n{}",
            got.len(),
            server.stderr_tail(30)
        );
    }
}

/// Lines the server has read (its received counter says so) but not yet made
/// durable when SIGTERM comes are flushed: exit code 0, all there after a restart.
#[test]
fn sigterm_flushes_every_line_read_over_tcp_and_udp() {
    let mut server = Server::start("");
    let tag_lf = format!("gracelf{}", nonce());
    let tag_oc = format!("graceoc{}", nonce());
    let tag_udp = format!("graceudp{}", nonce());
    let mut lf = TcpStream::connect(server.tcp).unwrap();
    let mut oc = TcpStream::connect(server.tcp).unwrap();
    lf.write_all(&lf_lines(&tag_lf, 0, 5000)).unwrap();
    oc.write_all(&octet_lines(&tag_oc, 0, 5000)).unwrap();
    for i in 0..200 {
        send_udp(
            server.udp,
            format!("<13>Nov 26 12:00:00 web-1 {tag_udp}: line {i:05}").as_bytes(),
        );
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(5)); // stay below the kernel buffer
        }
    }
    server.wait_metrics(
        "10 000 TCP and 200 UDP lines read",
        Duration::from_secs(30),
        |m| {
            received(m, "tcp") >= 10_000.0
                && received(m, "udp") >= 200.0
        },
    );
    // Connections still open: shutdown must not wait for the peers to hang up.
    server.stop();
    let log = server.stderr();
    assert!(log.contains("stopped"), "no clean stop in the log:\n{log}");
    server.restart();
    assert_lines(&server, &tag_lf, 5000);
    assert_lines(&server, &tag_oc, 5000);
    assert_lines(&server, &tag_udp, 200);
    drop((lf, oc));
    server.stop();
}

/// SIGTERM while three clients post as fast as they can: exit code 0, and
/// every post answered 200 (before or during the shutdown) is there after a restart.
#[test]
fn sigterm_during_http_ingest_loses_nothing_acknowledged() {
    let mut server = Server::start("[store]\nseal_bytes = \"128KiB\"\n");
    let run_tag = format!("termhttp{}", nonce());
    let stop = Arc::new(Mutex::new(false));
    let threads = ingest_until_failure(server.http, &run_tag, 0, 3, stop.clone());
    wait_until("some acknowledged posts", Duration::from_secs(30), || {
        (server.metric("orderwatch_lines_stored_total", &[("listener", "http")]) >= 3000.0)
            .then_some(())
    });
    server.stop();
    *stop.lock().unwrap() = true;
    let mut acks = Vec::new();
    for t in threads {
        acks.extend(t.join().unwrap());
    }
    assert!(acks.len() >= 60, "{} posts", acks.len());
    server.restart();
    assert_acked_present(&server, &run_tag, &acks);
    server.stop();
}

/// SIGINT (Ctrl-C) shuts down as cleanly as SIGTERM, and HTTP-acknowledged lines survive.
#[test]
fn sigint_exits_0_and_keeps_acknowledged_lines() {
    let mut server = Server::start("");
    let tag = format!("sigint{}", nonce());
    let r = server.post_logs(batch(&tag, 100, 20, 7).as_bytes());
    assert_eq!(r.status, 200);
    let v = r.json();
    let ack = Ack {
        marker: tag.clone(),
        lines: 100,
        first_id: id_of(&v["first_id"]),
        last_id: id_of(&v["last_id"]),
    };
    let status = server.stop_with(libc::SIGINT);
    assert_eq!(
        status.code(),
        Some(0),
        "SIGINT: {status}\n{}",
        server.stderr_tail(20)
    );
    server.restart();
    assert_acked_present(&server, &tag, &[ack]);
    server.stop();
}

/// Lines a TCP sender has written right before SIGTERM (in the server's socket
/// buffer, perhaps not read yet) are syslog's only "acknowledgement": a graceful
/// shutdown should read what is already there before closing.
#[test]
fn sigterm_right_after_a_tcp_burst_keeps_every_line_sent() {
    let mut server = Server::start("");
    let tag = format!("burst{}", nonce());
    let n = 20_000;
    let mut s = TcpStream::connect(server.tcp).unwrap();
    s.write_all(&lf_lines(&tag, 0, n)).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    server.stop();
    server.restart();
    assert_lines(&server, &tag, n);
    server.stop();
}
