//! The lost-order detector: the I/O around `evidence`, `join` and `summary`.
//!
//! - a **follower** thread reads every durable log line once (from its cursor,
//!   `logstore::follow`), keeps the order-endpoint lines as evidence, and
//!   hands them over with the id it has read up to;
//! - the **detector** task stores that evidence and the cursor in one
//!   transaction, joins every piece not yet joined (the Sentry processor
//!   stores event evidence in the transaction that records the event, then
//!   wakes it), and queues a notification for each new lost order once its
//!   evidence had `alert_delay` to arrive.
//!
//! Storing and joining are idempotent (evidence is unique per line/event; a
//! join recomputes attempts from what is stored), so a crash between any two
//! steps is repaired by doing the step again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::evidence::{self, Kind, Piece};
use super::join::{assess, partition};
use super::summary::{Summary, summarize, test_reason};
use super::{OrdersSettings, render};
use crate::db::{AttemptWrite, Db, EvidenceRow, LostOrderFields, NewEvidence};
use crate::event::{LogEvent, now_micros};
use crate::logstore::LogStore;
use crate::logstore::follow::{Step, follow};
use crate::notify::Notifier;
use crate::parse::access;
use crate::query::Matcher;

/// The hour before a rate-limited attempt, whose attempts it shows.
const HOUR_US: i64 = 3600 * 1_000_000;
/// The cursor is saved at least this often while lines arrive (a restart re-reads at most this much).
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// What the API and the notifications need to write links.
#[derive(Clone)]
pub struct DetectorOptions {
    pub settings: Arc<OrdersSettings>,
    pub public_url: String,
    pub zone: jiff::tz::TimeZone,
    /// Told the id of every lost order created or changed (the dashboard's live list).
    pub changed: Option<tokio::sync::broadcast::Sender<i64>>,
}

/// Log lines read as evidence, and how far the follower has read.
struct Found {
    evidence: Vec<(Piece, String, i64)>,
    upto: u64,
}

pub struct Detector {
    wake: Arc<Notify>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    follower: Option<std::thread::JoinHandle<()>>,
}

/// Wakes the detector after the Sentry processor stored evidence.
#[derive(Clone)]
pub struct DetectorHandle {
    wake: Arc<Notify>,
}

impl DetectorHandle {
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Detector {
    pub async fn start(db: Db, store: LogStore, notifier: Notifier, opts: DetectorOptions) -> anyhow::Result<Detector> {
        let stored = store.subscribe();
        let start_after = db.orders_cursor("log").await?.unwrap_or(0).max(0) as u64;
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::channel(16);
        let follower = {
            let (stop, settings) = (stop.clone(), opts.settings.clone());
            std::thread::Builder::new()
                .name("orderwatch-orders".into())
                .spawn(move || follow_store(store, stored, start_after, settings, tx, stop))?
        };
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run(db, notifier, opts, rx, wake.clone(), stop.clone(), start_after));
        Ok(Detector { wake, stop, task, follower: Some(follower) })
    }

    pub fn handle(&self) -> DetectorHandle {
        DetectorHandle { wake: self.wake.clone() }
    }

    pub async fn shutdown(mut self) {
        self.stop.cancel();
        let _ = (&mut self.task).await;
        if let Some(f) = self.follower.take() {
            let _ = tokio::task::spawn_blocking(move || f.join()).await;
        }
    }
}

/// The lines worth reading back: order-endpoint access lines.
struct OrderLines(Arc<OrdersSettings>);

impl Matcher for OrderLines {
    fn matches(&self, ev: &LogEvent) -> bool {
        piece_of(&self.0, ev).is_some()
    }
}

fn piece_of(settings: &OrdersSettings, ev: &LogEvent) -> Option<Piece> {
    let a = access::parse(&ev.message)?;
    evidence::from_log(ev, &a, &settings.endpoints)
}

fn follow_store(
    store: LogStore,
    stored: tokio::sync::broadcast::Receiver<Arc<[LogEvent]>>,
    start_after: u64,
    settings: Arc<OrdersSettings>,
    out: mpsc::Sender<Found>,
    stop: CancellationToken,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "the lost-order detector could not start; access logs are not read for lost orders");
            return;
        }
    };
    rt.block_on(async {
        let wanted = || OrderLines(settings.clone());
        follow(&store, stored, start_after, &stop, wanted, async |step: Step<'_, OrderLines>| {
            let evidence: Vec<(Piece, String, i64)> = step
                .events
                .iter()
                .filter_map(|ev| {
                    let p = piece_of(&settings, ev)?;
                    Some((p, String::from_utf8_lossy(&ev.raw).into_owned(), ev.received_at))
                })
                .collect();
            out.send(Found { evidence, upto: step.upto }).await.is_ok()
        })
        .await;
    });
}

async fn run(
    db: Db,
    notifier: Notifier,
    opts: DetectorOptions,
    mut found: mpsc::Receiver<Found>,
    wake: Arc<Notify>,
    stop: CancellationToken,
    mut saved: u64,
) {
    let mut unsaved: Option<u64> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_save = std::time::Instant::now();
    let mut d = Joiner { db: db.clone(), opts: opts.clone() };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            f = found.recv() => {
                let Some(f) = f else { break };
                if f.evidence.is_empty() {
                    // Nothing to keep: the cursor is saved now and then, not per batch.
                    if f.upto > saved {
                        unsaved = Some(f.upto);
                    }
                    if last_save.elapsed() < SAVE_EVERY {
                        continue;
                    }
                }
                let rows: Vec<NewEvidence> = f
                    .evidence
                    .iter()
                    .map(|(p, raw, received_at)| NewEvidence { piece: p, raw: Some(raw), project_id: None, received_at: *received_at })
                    .collect();
                // Retried until stored: the follower waits (the channel is small), nothing is skipped.
                loop {
                    match db.add_log_evidence(&rows, f.upto).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::error!(error = %e, "could not store order evidence; retrying in 1 s");
                            tokio::select! {
                                _ = stop.cancelled() => return,
                                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                            }
                        }
                    }
                }
                saved = f.upto;
                unsaved = None;
                last_save = std::time::Instant::now();
                d.join_pending().await;
            }
            _ = wake.notified() => d.join_pending().await,
            _ = tick.tick() => {
                if let Some(upto) = unsaved.filter(|_| last_save.elapsed() >= SAVE_EVERY)
                    && db.add_log_evidence(&[], upto).await.is_ok()
                {
                    {
                        saved = upto;
                        unsaved = None;
                        last_save = std::time::Instant::now();
                    }
                }
                d.join_pending().await;
                announce(&db, &notifier, &opts).await;
            }
        }
    }
    if let Some(upto) = unsaved {
        let _ = db.add_log_evidence(&[], upto).await;
    }
}

struct Joiner {
    db: Db,
    opts: DetectorOptions,
}

impl Joiner {
    async fn join_pending(&mut self) {
        loop {
            let rows = match self.db.unjoined_evidence(200).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "could not read order evidence to join; retrying");
                    return;
                }
            };
            if rows.is_empty() {
                return;
            }
            let mut failed = 0;
            let n = rows.len();
            for row in rows {
                if let Err(e) = self.join(&row).await {
                    // Left unjoined and tried again; one that keeps failing is set
                    // aside (with its error), so it cannot hold the others back.
                    tracing::error!(evidence = row.id, error = %e, "could not join order evidence; retrying");
                    if let Err(e) = self.db.join_failed(row.id, &e.to_string()).await {
                        tracing::error!(error = %e, "could not note a failed join");
                    }
                    failed += 1;
                }
            }
            if failed == n {
                return;
            }
        }
    }

    /// Recomputes the attempts around one new piece and writes what changed.
    async fn join(&mut self, row: &EvidenceRow) -> anyhow::Result<()> {
        let settings = self.opts.settings.clone();
        let p = row.piece()?;
        let window = settings.join_window.as_micros() as i64;
        // What can join a piece lies within the window of it; attempts around
        // those are read too. Then the whole of every lost order met, and what
        // shares a request or trace id with what was read (a closure, bounded):
        // a lost order is always rewritten from all of its evidence.
        let near_us = (window * 6).max(60_000_000);
        let mut all: Vec<EvidenceRow> =
            self.db.evidence_near(&p, p.at.saturating_sub(near_us), p.at.saturating_add(near_us)).await?;
        if !all.iter().any(|r| r.id == row.id) {
            all.push(row.clone());
        }
        let mut seen: BTreeSet<i64> = all.iter().map(|r| r.id).collect();
        let (mut lost_done, mut ids_done) = (BTreeSet::new(), BTreeSet::new());
        for _ in 0..3 {
            let mut more = Vec::new();
            for r in &all {
                if let Some(l) = r.lost_order_id.filter(|l| lost_done.insert(*l)) {
                    more.extend(self.db.lost_order_evidence(l).await?);
                }
                let rp = r.piece()?;
                if (rp.request_id.is_some() || rp.trace_id.is_some()) && ids_done.insert(r.id) {
                    more.extend(self.db.evidence_linked(&rp).await?);
                }
            }
            more.retain(|r| seen.insert(r.id));
            if more.is_empty() || all.len() > 2000 {
                break;
            }
            all.extend(more);
        }
        let rows: Vec<&EvidenceRow> = all.iter().collect();
        let pieces: Vec<Piece> = rows.iter().map(|r| r.piece()).collect::<Result<_, _>>()?;
        let parts = partition(&pieces, window);
        let now = now_micros();

        // Parts at the edge of what was read may be cut there: only the parts
        // that hold the new piece, or lie close around it, are written.
        let interior = |part: &[usize]| part.iter().all(|&i| (pieces[i].at - p.at).abs() <= 3 * window);
        let verdicts: Vec<_> =
            parts.iter().map(|part| assess(&part.iter().map(|&i| &pieces[i]).collect::<Vec<_>>())).collect();
        let write: Vec<bool> = parts
            .iter()
            .zip(&verdicts)
            .map(|(part, verdict)| {
                let current: BTreeSet<Option<i64>> = part.iter().map(|&i| rows[i].lost_order_id).collect();
                let settled = current.len() == 1 && current.first().is_some_and(|c| c.is_some() == verdict.is_some());
                part.iter().any(|&i| rows[i].id == row.id) || (interior(part) && !settled)
            })
            .collect();
        // Lost orders kept as they are, then the stored one each written part continues (the oldest among its pieces').
        let mut taken: BTreeSet<i64> = BTreeSet::new();
        for (k, part) in parts.iter().enumerate() {
            if !write[k] {
                taken.extend(part.iter().filter_map(|&i| rows[i].lost_order_id));
            }
        }
        let mut writes = Vec::new();
        for (k, part) in parts.iter().enumerate() {
            if !write[k] {
                continue;
            }
            let ps: Vec<&Piece> = part.iter().map(|&i| &pieces[i]).collect();
            let ids: Vec<i64> = part.iter().map(|&i| rows[i].id).collect();
            let current: BTreeSet<i64> = part.iter().filter_map(|&i| rows[i].lost_order_id).collect();
            let keep_id = verdicts[k].and_then(|_| current.iter().copied().find(|id| !taken.contains(id)));
            taken.extend(keep_id);
            let lost = match verdicts[k] {
                None => None,
                Some((cause, status_code)) => Some(self.fields(&ps, cause, status_code).await?),
            };
            writes.push(AttemptWrite { evidence_ids: ids, lost, keep_id });
        }
        // Lost orders no part continues: each goes to the lost order that now
        // holds most of its evidence (with what people recorded on it), if any.
        let mut emptied = Vec::new();
        let before: BTreeSet<i64> = rows.iter().filter_map(|r| r.lost_order_id).collect();
        for old in before.into_iter().filter(|id| !taken.contains(id)) {
            let mut heirs: std::collections::BTreeMap<i64, usize> = Default::default();
            for part in &parts {
                let n = part.iter().filter(|&&i| rows[i].lost_order_id == Some(old)).count();
                if n > 0
                    && let Some(w) = writes.iter().find(|w| w.evidence_ids.contains(&rows[part[0]].id))
                    && let Some(heir) = w.keep_id
                {
                    *heirs.entry(heir).or_default() += n;
                }
            }
            let heir = heirs.into_iter().max_by_key(|(id, n)| (*n, -id)).map(|(id, _)| id);
            emptied.push((old, heir));
        }
        tracing::debug!(
            evidence = row.id,
            read = ?rows.iter().map(|r| (r.id, r.lost_order_id)).collect::<Vec<_>>(),
            parts = ?parts.iter().map(|p| p.iter().map(|&i| rows[i].id).collect::<Vec<_>>()).collect::<Vec<_>>(),
            writes = ?writes.iter().map(|w| (&w.evidence_ids, w.keep_id, w.lost.is_some())).collect::<Vec<_>>(),
            "joined"
        );
        let created = self.db.apply_join(&writes, &emptied, &[row.id], now).await?;
        if let Some(tx) = &self.opts.changed {
            // No receiver (no page open) is not an error.
            for id in created.iter().chain(writes.iter().filter(|w| w.lost.is_some()).filter_map(|w| w.keep_id.as_ref())) {
                let _ = tx.send(*id);
            }
        }
        Ok(())
    }

    async fn fields(
        &self,
        ps: &[&Piece],
        cause: super::Cause,
        status_code: Option<u16>,
    ) -> anyhow::Result<LostOrderFields> {
        let settings = &self.opts.settings;
        let mut events = Vec::new();
        for p in ps {
            if matches!(p.kind, Kind::Frontend | Kind::Backend)
                && let Some(ev) = self.db.error_event(&p.reference).await?
            {
                events.push((p.reference.clone(), serde_json::from_str::<Value>(&ev.body).unwrap_or(Value::Null)));
            }
        }
        let failed: Vec<&&Piece> = ps.iter().filter(|p| p.kind != Kind::ClientGone).collect();
        let at = failed.iter().map(|p| p.at).min().unwrap_or(ps[0].at);
        let client_ip = ps.iter().find_map(|p| p.client_ip.clone());
        let attempts = match (cause, ps.iter().find(|p| p.kind == Kind::Request), &client_ip) {
            (super::Cause::RateLimited, Some(req), Some(ip)) => {
                Some(self.db.count_requests(&req.endpoint, &req.source, ip, at - HOUR_US, at).await?)
            }
            _ => None,
        };
        let summary: Summary = summarize(cause, ps, &events, settings, attempts);
        Ok(LostOrderFields {
            at,
            endpoint: ps[0].endpoint.clone(),
            status_code,
            cause: cause.as_str(),
            test_reason: test_reason(settings, client_ip.as_deref(), &summary),
            client_ip,
            summary: serde_json::to_string(&summary)?,
        })
    }
}

/// Queues the alert of each lost order whose evidence had time to arrive.
async fn announce(db: &Db, notifier: &Notifier, opts: &DetectorOptions) {
    let due = now_micros() - opts.settings.alert_delay.as_micros() as i64;
    let rows = match db.unnotified_lost_orders(due).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "could not read new lost orders to announce; retrying");
            return;
        }
    };
    let mut queued = false;
    for row in rows {
        // A developer's own test order is not announced, nor one found in logs
        // an hour old or more (read back from the store at a first start).
        let old = row.at < now_micros() - HOUR_US;
        let messages = if row.status == "test" || old { Vec::new() } else { render::notifications(&row, opts) };
        queued |= !messages.is_empty();
        if let Err(e) = db.announce_lost_order(row.id, &messages, now_micros()).await {
            tracing::error!(lost_order = row.id, error = %e, "could not queue a lost order's alert; retrying");
            return;
        }
        tracing::info!(lost_order = row.id, cause = %row.cause, "lost order");
    }
    if queued {
        notifier.wake();
    }
}
