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

/// Evidence this far around a new piece is read to join it.
const NEAR_US: i64 = 3600 * 1_000_000;
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
            for row in rows {
                if let Err(e) = self.join(&row).await {
                    // Left unjoined: the next pass tries again.
                    tracing::error!(evidence = row.id, error = %e, "could not join order evidence; retrying");
                    return;
                }
            }
        }
    }

    /// Recomputes the attempts around one new piece and writes what changed.
    async fn join(&mut self, row: &EvidenceRow) -> anyhow::Result<()> {
        let settings = self.opts.settings.clone();
        let p = row.piece()?;
        let near = self.db.evidence_near(&p, p.at - NEAR_US, p.at + NEAR_US).await?;
        let mut rows: Vec<&EvidenceRow> = near.iter().collect();
        if !rows.iter().any(|r| r.id == row.id) {
            rows.push(row);
        }
        let pieces: Vec<Piece> = rows.iter().map(|r| r.piece()).collect::<Result<_, _>>()?;
        let window = settings.join_window.as_micros() as i64;
        let parts = partition(&pieces, window);
        let now = now_micros();
        // Which stored lost order each attempt continues: the oldest one among its pieces', each used once.
        let mut taken = std::collections::BTreeSet::new();
        let mut writes = Vec::new();
        let mut before: std::collections::BTreeSet<i64> = rows.iter().filter_map(|r| r.lost_order_id).collect();
        for part in &parts {
            let ps: Vec<&Piece> = part.iter().map(|&i| &pieces[i]).collect();
            let ids: Vec<i64> = part.iter().map(|&i| rows[i].id).collect();
            let current: std::collections::BTreeSet<i64> = part.iter().filter_map(|&i| rows[i].lost_order_id).collect();
            let keep_id = current.iter().copied().find(|id| !taken.contains(id));
            let verdict = assess(&ps);
            let touches_new = ids.contains(&row.id);
            let unchanged = !touches_new
                && verdict.is_some() == keep_id.is_some()
                && part.iter().all(|&i| rows[i].lost_order_id == keep_id);
            if let Some(id) = keep_id.filter(|_| verdict.is_some()) {
                taken.insert(id);
            }
            if unchanged {
                continue;
            }
            let lost = match verdict {
                None => None,
                Some((cause, status_code)) => Some(self.fields(&ps, part, &rows, cause, status_code).await?),
            };
            writes.push(AttemptWrite { evidence_ids: ids, lost, keep_id: keep_id.filter(|_| verdict.is_some()) });
        }
        before.retain(|id| !taken.contains(id));
        let emptied: Vec<i64> = before.into_iter().collect();
        let created = self.db.apply_join(&writes, &emptied, &[row.id], now).await?;
        if let Some(tx) = &self.opts.changed {
            // No receiver (no page open) is not an error.
            for id in
                created.iter().chain(writes.iter().filter(|w| w.lost.is_some()).filter_map(|w| w.keep_id.as_ref()))
            {
                let _ = tx.send(*id);
            }
        }
        Ok(())
    }

    async fn fields(
        &self,
        ps: &[&Piece],
        part: &[usize],
        rows: &[&EvidenceRow],
        cause: super::Cause,
        status_code: Option<u16>,
    ) -> anyhow::Result<LostOrderFields> {
        let settings = &self.opts.settings;
        let mut events = Vec::new();
        for (&i, p) in part.iter().zip(ps) {
            if matches!(p.kind, Kind::Frontend | Kind::Backend) {
                let _ = rows[i];
                if let Some(ev) = self.db.error_event(&p.reference).await? {
                    events.push((p.reference.clone(), serde_json::from_str::<Value>(&ev.body).unwrap_or(Value::Null)));
                }
            }
        }
        let failed: Vec<&&Piece> = ps.iter().filter(|p| p.kind != Kind::ClientGone).collect();
        let at = failed.iter().map(|p| p.at).min().unwrap_or(ps[0].at);
        let client_ip = ps.iter().find_map(|p| p.client_ip.clone());
        let attempts = match (cause, ps.iter().find(|p| p.kind == Kind::Request), &client_ip) {
            (super::Cause::RateLimited, Some(req), Some(ip)) => {
                Some(self.db.count_requests(&req.endpoint, &req.source, ip, at - NEAR_US, at).await?)
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
        // A developer's own test order is not announced.
        let messages = if row.status == "test" { Vec::new() } else { render::notifications(&row, opts) };
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
