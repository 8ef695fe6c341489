//! The alert engine: every stored line against every saved search, once.
//!
//! Two pieces with one job each:
//! - the **scanner** thread runs the compiled `QuerySet` of all saved searches
//!   over each durable batch the log store publishes (its own thread, so
//!   matching never holds up the runtime's workers). At start, and whenever it
//!   falls behind the store's broadcast, it reads the missed range back from
//!   the store, so no line is ever skipped. It sends `Scanned` (the hits and
//!   the id it has scanned up to) to the engine;
//! - the **engine** task keeps each alert's pending lines and clock, decides
//!   when an alert fires, and stores the notification and the alert's new
//!   cursor in one transaction (`Db::commit_alert`) before waking the notifier.
//!
//! After a restart the scanner starts from the lowest cursor; an alert ignores
//! the lines at or below its own cursor, so what it had already reported is
//! not reported again, and what it had not is.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::render::{self, Firing, What};
use super::{Alert, Period, Rule, SearchDef};
use crate::db::{AlertProgress, Db, Origin, StoredSearch};
use crate::event::{LogEvent, now_micros, zoned};
use crate::logstore::LogStore;
use crate::logstore::follow::{Step, follow};
use crate::notify::Notifier;
use crate::query::{self, Matcher, QuerySet};
use crate::telemetry;

/// Lines kept in memory per alert for its next notification; beyond this the
/// notification says how many more matched (`reached_record_limit`).
pub const MAX_LINES_PER_NOTIFICATION: usize = 1000;
/// How often the engine looks at its clocks.
const TICK: Duration = Duration::from_millis(50);
/// How often cursors of alerts with nothing pending are saved (a restart rescans at most this much).
const SAVE_EVERY: Duration = Duration::from_secs(10);
/// A periodic window closes this long after its boundary, for lines still being fsynced.
const PERIOD_GRACE_US: i64 = 1_000_000;

/// What the engine needs besides the database, the store and the notifier.
#[derive(Clone)]
pub struct EngineOptions {
    /// The base of links in notifications, e.g. "http://127.0.0.1:8080".
    pub public_url: String,
    /// The zone of alerts that name none.
    pub default_zone: jiff::tz::TimeZone,
}

/// The compiled saved searches the scanner runs, with the engine's version.
struct Compiled {
    version: u64,
    set: QuerySet,
    /// The saved search id of each query in `set`.
    search_ids: Vec<i64>,
}

struct Scanned {
    version: u64,
    /// The highest id scanned so far.
    upto: u64,
    hits: Vec<(i64, LogEvent)>,
    /// From the live stream (the scanner has caught up with the store).
    live: bool,
}

enum Command {
    Reload(oneshot::Sender<anyhow::Result<()>>),
    Shutdown(oneshot::Sender<()>),
}

/// What the API holds to tell the engine the saved searches changed.
#[derive(Clone)]
pub struct AlertsHandle {
    tx: mpsc::Sender<Command>,
}

impl AlertsHandle {
    /// Re-reads the saved searches (after the API changed them); returns once they apply.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Reload(tx)).await.map_err(|_| anyhow::anyhow!("the alert engine has stopped"))?;
        rx.await.map_err(|_| anyhow::anyhow!("the alert engine has stopped"))?
    }
}

pub struct AlertEngine {
    tx: mpsc::Sender<Command>,
    task: tokio::task::JoinHandle<()>,
    scanner: Option<std::thread::JoinHandle<()>>,
    stop: CancellationToken,
}

impl AlertEngine {
    /// Loads the saved searches and starts scanning after the lowest alert cursor.
    pub async fn start(
        db: Db,
        store: LogStore,
        notifier: Notifier,
        opts: EngineOptions,
    ) -> anyhow::Result<AlertEngine> {
        // Subscribe before reading the store's newest id, so no batch falls between the two.
        let stored = store.subscribe();
        let searches = db.searches().await?;
        let newest = store.newest_id();
        let mut engine = Engine::new(db, notifier, opts);
        let compiled = Arc::new(RwLock::new(Arc::new(engine.load(searches, newest)?)));
        let start_after = engine.alerts.iter().map(|a| a.cursor).min().unwrap_or(newest).min(newest);
        // Small: a page read back from the store can pin its chunk's decoded buffer.
        let (scanned_tx, scanned_rx) = mpsc::channel(16);
        let stop = CancellationToken::new();
        engine.scanned_to = start_after;
        engine.compiled = compiled.clone();
        let scanner = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("orderwatch-alerts".into())
                .spawn(move || scan(store, stored, compiled, start_after, scanned_tx, stop))?
        };
        let (tx, rx) = mpsc::channel(16);
        let task = tokio::spawn(engine.run(rx, scanned_rx));
        Ok(AlertEngine { tx, task, scanner: Some(scanner), stop })
    }

    pub fn handle(&self) -> AlertsHandle {
        AlertsHandle { tx: self.tx.clone() }
    }

    /// Saves every alert's progress and stops.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let _ = (&mut self.task).await;
        if let Some(t) = self.scanner.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// Brings the saved searches of the config file into the database: new ones
/// are created, changed ones updated (unchanged alerts keep their cursors),
/// and config searches no longer in the file removed. A config search may not
/// take the name of one made through the API.
pub async fn sync_config(db: &Db, defs: &[SearchDef], newest_id: u64) -> anyhow::Result<()> {
    let now = now_micros();
    for def in defs {
        match db.search_id_by_name(def.name.trim()).await? {
            None => {
                db.create_search(def, Origin::Config, now, newest_id).await?;
            }
            Some((id, Origin::Config)) => {
                let stored = db.search_by_id(id).await?;
                let same = stored.as_ref().is_some_and(|s| {
                    s.query == def.query && s.alerts.iter().map(|a| &a.definition).eq(def.alerts.iter())
                });
                if !same {
                    db.update_search(id, def, now, newest_id).await?;
                }
            }
            Some((id, Origin::Api)) => anyhow::bail!(
                "config: the saved search {:?} is also one made through the API (id {id}); rename the one in the config \
                 file, or start without it and DELETE /api/v1/searches/{id}",
                def.name
            ),
        }
    }
    for s in db.searches().await? {
        if s.origin == Origin::Config && !defs.iter().any(|d| d.name.trim() == s.name) {
            db.delete_search(s.id).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- scanner

fn scan(
    store: LogStore,
    stored: broadcast::Receiver<Arc<[LogEvent]>>,
    compiled: Arc<RwLock<Arc<Compiled>>>,
    start_after: u64,
    out: mpsc::Sender<Scanned>,
    stop: CancellationToken,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "the alert scanner could not start; alerts are not evaluated");
            return;
        }
    };
    rt.block_on(async move {
        let mut found = Vec::new();
        let wanted = || AnyOf(compiled.read().unwrap().clone());
        follow(&store, stored, start_after, &stop, wanted, async |step: Step<'_, AnyOf>| {
            // Lines read back are matched by the set that chose them.
            let c = match step.read_back_with {
                Some(AnyOf(c)) => c.clone(),
                None => compiled.read().unwrap().clone(),
            };
            let mut hits = Vec::new();
            for ev in step.events {
                hit_list(&c, ev, &mut found, &mut hits);
            }
            if step.live {
                telemetry::alert_lines_scanned(step.events.len() as u64);
            }
            out.send(Scanned { version: c.version, upto: step.upto, hits, live: step.live }).await.is_ok()
        })
        .await;
    });
}

fn hit_list(c: &Compiled, ev: &LogEvent, found: &mut Vec<usize>, hits: &mut Vec<(i64, LogEvent)>) {
    found.clear();
    c.set.matching(ev, found);
    for &i in found.iter() {
        hits.push((c.search_ids[i], ev.clone()));
    }
}

/// Matches when any saved search does: the store returns the lines worth re-matching.
struct AnyOf(Arc<Compiled>);

impl Matcher for AnyOf {
    fn matches(&self, ev: &LogEvent) -> bool {
        self.0.set.any(ev)
    }
}

// ---------------------------------------------------------------- engine

/// What an inactivity alert remembers across restarts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct InactivityState {
    /// µs since when it has been watching (a full window must pass before it can fire).
    #[serde(default)]
    since: i64,
    /// Receive times of the latest matches (at most `threshold` of them).
    #[serde(default)]
    recent: VecDeque<i64>,
    /// When it fired, while the search stays quiet.
    #[serde(default)]
    firing_since: Option<i64>,
}

struct LiveAlert {
    id: i64,
    search_id: i64,
    kind: super::AlertKind,
    search_name: String,
    query: String,
    alert: Alert,
    /// Lines at or below this id are accounted for (as stored).
    cursor: u64,
    /// µs of the last evaluation (a periodic window starts here).
    evaluated_at: i64,
    /// Hits scanned with an older set of searches than this are not its own.
    since_version: u64,
    pending: Vec<LogEvent>,
    pending_count: u64,
    last_sent: Option<Instant>,
    next_due: i64,
    inactivity: InactivityState,
    /// A failed commit is retried after this.
    retry_at: Option<Instant>,
}

struct Engine {
    db: Db,
    notifier: Notifier,
    opts: EngineOptions,
    alerts: Vec<LiveAlert>,
    /// Alert indices by saved search id.
    by_search: HashMap<i64, Vec<usize>>,
    scanned_to: u64,
    /// Whether the scanner has read everything stored up to its start: until
    /// then periodic and inactivity alerts wait, as their windows are incomplete.
    caught_up: bool,
    version: u64,
    compiled: Arc<RwLock<Arc<Compiled>>>,
}

impl Engine {
    fn new(db: Db, notifier: Notifier, opts: EngineOptions) -> Engine {
        Engine {
            db,
            notifier,
            opts,
            alerts: Vec::new(),
            by_search: HashMap::new(),
            scanned_to: 0,
            caught_up: false,
            version: 0,
            compiled: Arc::new(RwLock::new(Arc::new(Compiled {
                version: 0,
                set: QuerySet::new(&[]),
                search_ids: Vec::new(),
            }))),
        }
    }

    /// Builds the live alerts and the compiled set from the stored searches,
    /// keeping the in-memory state of alerts that already run.
    fn load(&mut self, searches: Vec<StoredSearch>, newest: u64) -> anyhow::Result<Compiled> {
        self.version += 1;
        let mut old: HashMap<i64, LiveAlert> = self.alerts.drain(..).map(|a| (a.id, a)).collect();
        // Alerts that keep their row keep their state; only the others can be replaced.
        let staying: std::collections::HashSet<i64> =
            searches.iter().flat_map(|s| s.alerts.iter().map(|a| a.id)).collect();
        let mut queries = Vec::new();
        let mut search_ids = Vec::new();
        let now = now_micros();
        for s in searches {
            let q = match query::compile(&s.query) {
                Ok(q) => q,
                Err(e) => {
                    // Checked when saved; only a language change could make it fail now.
                    tracing::error!(search = s.id, error = %e, "a saved search no longer compiles; its alerts are off");
                    continue;
                }
            };
            for a in &s.alerts {
                let alert = match a.definition.check(&self.opts.default_zone) {
                    Ok(alert) => alert,
                    Err(e) => {
                        tracing::error!(alert = a.id, error = %e, "an alert is no longer valid; it is off");
                        continue;
                    }
                };
                if let Some(mut live) = old.remove(&a.id) {
                    live.search_name = s.name.clone();
                    live.query = s.query.clone();
                    live.alert = alert;
                    self.alerts.push(live);
                    continue;
                }
                // An alert whose definition changed took over the row of the old
                // one (same search, same kind: `Db::update_search`); it takes
                // over its pending lines too, so a change never drops them.
                let replaced = replaced_by_kind(&mut old, &staying, s.id, &a.definition);
                if let Some(mut live) = replaced {
                    live.id = a.id;
                    live.search_name = s.name.clone();
                    live.query = s.query.clone();
                    if let Rule::Periodic { period, .. } = alert.rule {
                        live.next_due = next_boundary(period, live.evaluated_at, &alert.zone) + PERIOD_GRACE_US;
                    }
                    live.alert = alert;
                    self.alerts.push(live);
                    continue;
                }
                let mut inactivity: InactivityState = serde_json::from_str(&a.state).unwrap_or_default();
                let first_load = self.version == 1;
                // A full window must be watched before it can fire: after a
                // restart too (what happened while orderwatch was down is unknown).
                inactivity.since = inactivity.since.max(a.evaluated_at).max(if first_load { now } else { 0 });
                let next_due = match alert.rule {
                    Rule::Periodic { period, .. } => {
                        next_boundary(period, a.evaluated_at, &alert.zone) + PERIOD_GRACE_US
                    }
                    _ => 0,
                };
                self.alerts.push(LiveAlert {
                    id: a.id,
                    search_id: s.id,
                    kind: a.definition.kind,
                    search_name: s.name.clone(),
                    query: s.query.clone(),
                    alert,
                    // A new alert made while running starts after what is scanned (see `since_version`).
                    cursor: if first_load { a.cursor_id } else { a.cursor_id.max(newest) },
                    evaluated_at: a.evaluated_at.min(now),
                    since_version: self.version,
                    pending: Vec::new(),
                    pending_count: 0,
                    last_sent: None,
                    next_due,
                    inactivity,
                    retry_at: None,
                });
            }
            queries.push(q);
            search_ids.push(s.id);
        }
        if self.version == 1 {
            // At start every alert takes the lines after its own cursor, whatever the set's version.
            for a in &mut self.alerts {
                a.since_version = 0;
            }
        }
        self.by_search.clear();
        for (i, a) in self.alerts.iter().enumerate() {
            self.by_search.entry(a.search_id).or_default().push(i);
        }
        Ok(Compiled { version: self.version, set: QuerySet::new(&queries), search_ids })
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut scanned: mpsc::Receiver<Scanned>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_save = Instant::now();
        let mut scanner_alive = true;
        loop {
            tokio::select! {
                s = scanned.recv(), if scanner_alive => match s {
                    Some(s) => self.take(s).await,
                    None => scanner_alive = false,
                },
                c = commands.recv() => match c {
                    Some(Command::Reload(done)) => {
                        let r = self.reload().await;
                        let _ = done.send(r);
                    }
                    Some(Command::Shutdown(done)) => {
                        self.save_idle().await;
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                _ = tick.tick() => {
                    self.on_tick().await;
                    if last_save.elapsed() >= SAVE_EVERY {
                        self.save_idle().await;
                        last_save = Instant::now();
                    }
                }
            }
        }
    }

    async fn reload(&mut self) -> anyhow::Result<()> {
        let searches = self.db.searches().await?;
        let compiled = self.load(searches, self.scanned_to)?;
        *self.compiled.write().unwrap() = Arc::new(compiled);
        Ok(())
    }

    /// Takes a scanned range: its hits go to the alerts of their searches.
    async fn take(&mut self, s: Scanned) {
        for (search_id, ev) in s.hits {
            let Some(idx) = self.by_search.get(&search_id) else {
                continue;
            };
            for &i in idx {
                let a = &mut self.alerts[i];
                if ev.id <= a.cursor || s.version < a.since_version {
                    continue;
                }
                match a.alert.rule {
                    Rule::Immediate { .. } | Rule::Periodic { .. } => {
                        a.pending_count += 1;
                        if a.pending.len() < MAX_LINES_PER_NOTIFICATION {
                            // Kept until the alert fires: a copy of its own, not
                            // a slice that pins the whole read buffer.
                            a.pending.push(ev.detached());
                        }
                    }
                    Rule::Inactivity { threshold, .. } => {
                        let st = &mut a.inactivity;
                        st.recent.push_back(ev.received_at);
                        while st.recent.len() as u64 > threshold {
                            st.recent.pop_front();
                        }
                        if st.firing_since.is_some() && a.pending.is_empty() {
                            a.pending.push(ev.detached());
                        }
                    }
                }
            }
        }
        // Alerts created after the scanner's set: what was scanned before is not theirs.
        for a in &mut self.alerts {
            if s.version < a.since_version && a.pending.is_empty() {
                a.cursor = a.cursor.max(s.upto);
            }
        }
        self.scanned_to = self.scanned_to.max(s.upto);
        self.caught_up = s.live;
        self.fire_due().await;
    }

    async fn on_tick(&mut self) {
        self.fire_due().await;
    }

    /// Fires every alert that is due.
    async fn fire_due(&mut self) {
        let now = now_micros();
        let instant = Instant::now();
        for i in 0..self.alerts.len() {
            let a = &self.alerts[i];
            if a.retry_at.is_some_and(|t| instant < t) {
                continue;
            }
            let due = match a.alert.rule {
                Rule::Immediate { batch } => {
                    !a.pending.is_empty() && a.last_sent.is_none_or(|t| instant.duration_since(t) >= batch)
                }
                Rule::Periodic { .. } => self.caught_up && now >= a.next_due,
                Rule::Inactivity { window, threshold, active_hours } => {
                    let st = &a.inactivity;
                    if st.firing_since.is_some() {
                        // Recovered once enough lines arrived within a window.
                        let from = now - window.as_micros() as i64;
                        !a.pending.is_empty() && st.recent.iter().filter(|t| **t > from).count() as u64 >= threshold
                    } else {
                        let w = window.as_micros() as i64;
                        let watched = now - st.since.max(active_since(active_hours, now, &a.alert.zone)) >= w;
                        let count = st.recent.iter().filter(|t| **t > now - w).count() as u64;
                        self.caught_up && watched && count < threshold
                    }
                }
            };
            if due {
                self.fire(i, now, instant).await;
            }
        }
    }

    async fn fire(&mut self, i: usize, now: i64, instant: Instant) {
        let a = &self.alerts[i];
        // Never behind the alert's own start (the engine may lag the store when an alert is made).
        let scanned_to = self.scanned_to.max(a.cursor);
        let mut next_inactivity = a.inactivity.clone();
        let (what, evaluated_at, cursor) = match a.alert.rule {
            Rule::Immediate { .. } => (
                Some(What::Matches {
                    total: a.pending_count,
                    events: &a.pending,
                    past: render::past(now - a.evaluated_at),
                }),
                now,
                scanned_to,
            ),
            Rule::Periodic { period, threshold } => {
                let what = (a.pending_count >= threshold).then(|| What::Matches {
                    total: a.pending_count,
                    events: &a.pending,
                    past: period.past().to_owned(),
                });
                (what, a.next_due - PERIOD_GRACE_US, scanned_to)
            }
            Rule::Inactivity { window, threshold, .. } => {
                let w = window.as_micros() as i64;
                match a.inactivity.firing_since {
                    Some(since) => {
                        next_inactivity.firing_since = None;
                        (Some(What::Recovered { quiet_since: since, first: &a.pending[0], window }), now, scanned_to)
                    }
                    None => {
                        next_inactivity.firing_since = Some(now);
                        let count = a.inactivity.recent.iter().filter(|t| **t > now - w).count() as u64;
                        let last = a.inactivity.recent.back().copied();
                        (Some(What::Inactive { count, threshold, window, last_match: last }), now, scanned_to)
                    }
                }
            }
        };
        let notifications = match &what {
            Some(what) => {
                let firing = Firing {
                    alert_id: a.id,
                    search_id: a.search_id,
                    search_name: &a.search_name,
                    query: &a.query,
                    alert: &a.alert,
                    what: what.clone(),
                    at: now,
                    from_id: a.cursor,
                    to_id: cursor,
                    public_url: &self.opts.public_url,
                };
                vec![render::notification(&firing)]
            }
            None => Vec::new(),
        };
        let fired = what.as_ref().map(render::tag);
        let progress = AlertProgress {
            alert_id: a.id,
            cursor_id: cursor,
            evaluated_at,
            state: serde_json::to_string(&next_inactivity).expect("state serialises"),
        };
        match self.db.commit_alert(&progress, &notifications, now).await {
            Ok(stored) => {
                let a = &mut self.alerts[i];
                a.cursor = cursor;
                a.evaluated_at = evaluated_at;
                a.pending.clear();
                a.pending_count = 0;
                a.inactivity = next_inactivity;
                a.retry_at = None;
                if let Some(tag) = fired.filter(|_| stored) {
                    telemetry::alert_fired(tag);
                    a.last_sent = Some(instant);
                    self.notifier.wake();
                }
                if let Rule::Periodic { period, .. } = a.alert.rule {
                    a.next_due = next_boundary(period, now.max(evaluated_at), &a.alert.zone) + PERIOD_GRACE_US;
                }
            }
            Err(e) => {
                telemetry::alert_commit_failed();
                tracing::error!(alert = self.alerts[i].id, error = %e, "could not store an alert's notification; retrying in 1 s");
                self.alerts[i].retry_at = Some(instant + Duration::from_secs(1));
            }
        }
    }

    /// Moves the cursors of alerts with nothing pending to what is scanned, so
    /// a restart does not rescan far back.
    async fn save_idle(&mut self) {
        let scanned_to = self.scanned_to;
        let mut all = Vec::new();
        for a in &mut self.alerts {
            // An inactivity alert's pending line is only the first after it
            // fired, for the recovery message; its state is in `inactivity`.
            let holds = !a.pending.is_empty() && !matches!(a.alert.rule, Rule::Inactivity { .. });
            if !holds && a.cursor < scanned_to {
                all.push(AlertProgress {
                    alert_id: a.id,
                    cursor_id: scanned_to,
                    evaluated_at: a.evaluated_at,
                    state: serde_json::to_string(&a.inactivity).expect("state serialises"),
                });
            }
        }
        match self.db.save_alert_progress(&all).await {
            Ok(()) => {
                for a in &mut self.alerts {
                    if all.iter().any(|p| p.alert_id == a.id) {
                        a.cursor = scanned_to;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not save alert cursors; a restart rescans a little more")
            }
        }
    }
}

/// Takes out of `old` the running alert a changed definition replaced: the
/// first (by id) of the same search and kind, as `Db::update_search` chose.
fn replaced_by_kind(
    old: &mut HashMap<i64, LiveAlert>,
    staying: &std::collections::HashSet<i64>,
    search_id: i64,
    def: &super::AlertDef,
) -> Option<LiveAlert> {
    let id = old
        .values()
        .filter(|o| o.search_id == search_id && o.kind == def.kind && !staying.contains(&o.id))
        .map(|o| o.id)
        .min()?;
    old.remove(&id)
}

/// The first clock boundary of `period` strictly after `after` (µs), in `zone`:
/// whole minutes, tens of minutes and hours of local time, local midnight for days.
pub fn next_boundary(period: Period, after: i64, zone: &jiff::tz::TimeZone) -> i64 {
    let z = zoned(after, zone);
    if period == Period::Day {
        return z
            .tomorrow()
            .and_then(|t| t.start_of_day())
            .map(|t| t.timestamp().as_microsecond())
            .unwrap_or(after + period.micros());
    }
    let offset = i64::from(z.offset().seconds()) * 1_000_000;
    let step = period.micros();
    let local = after + offset;
    (local.div_euclid(step) + 1) * step - offset
}

/// µs since when the current stretch of active hours has lasted (`i64::MIN`
/// when always active, `i64::MAX` when outside them).
pub(crate) fn active_since(hours: Option<super::ActiveHours>, now: i64, zone: &jiff::tz::TimeZone) -> i64 {
    let Some(h) = hours else { return i64::MIN };
    let z = zoned(now, zone);
    let minute = (z.hour() as u16) * 60 + z.minute() as u16;
    if !h.contains(minute) {
        return i64::MAX;
    }
    // Today's (or, past midnight, yesterday's) start in local time: right on DST days too.
    let day = if minute >= h.start { Ok(z.clone()) } else { z.yesterday() };
    day.and_then(|d| {
        d.with().hour((h.start / 60) as i8).minute((h.start % 60) as i8).second(0).subsec_nanosecond(0).build()
    })
    .map(|t| t.timestamp().as_microsecond())
    .unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_microsecond()
    }

    #[test]
    fn boundaries_follow_the_local_clock() {
        let vg = jiff::tz::TimeZone::get("Europe/Volgograd").unwrap();
        let t = at("2026-06-23T14:17:48Z"); // 17:17:48 in Volgograd (+03)
        assert_eq!(next_boundary(Period::Minute, t, &vg), at("2026-06-23T14:18:00Z"));
        assert_eq!(next_boundary(Period::TenMinutes, t, &vg), at("2026-06-23T14:20:00Z"));
        assert_eq!(next_boundary(Period::Hour, t, &vg), at("2026-06-23T15:00:00Z"));
        assert_eq!(next_boundary(Period::Day, t, &vg), at("2026-06-23T21:00:00Z"));
        // On a boundary, the next one.
        assert_eq!(next_boundary(Period::Hour, at("2026-06-23T15:00:00Z"), &vg), at("2026-06-23T16:00:00Z"));
        let kolkata = jiff::tz::TimeZone::get("Asia/Kolkata").unwrap();
        assert_eq!(next_boundary(Period::Hour, at("2026-06-23T14:17:48Z"), &kolkata), at("2026-06-23T14:30:00Z"));
    }

    #[test]
    fn active_hours_stretch() {
        let vg = jiff::tz::TimeZone::get("Europe/Volgograd").unwrap();
        let h = Some(super::super::parse_active_hours("09:00-21:00").unwrap());
        assert_eq!(active_since(h, at("2026-06-23T07:00:00Z"), &vg), at("2026-06-23T06:00:00Z"));
        assert_eq!(active_since(h, at("2026-06-23T19:00:00Z"), &vg), i64::MAX);
        let night = Some(super::super::parse_active_hours("22:00-06:00").unwrap());
        // 02:00 local on the 24th: the stretch began at 22:00 on the 23rd.
        assert_eq!(active_since(night, at("2026-06-23T23:00:00Z"), &vg), at("2026-06-23T19:00:00Z"));
        assert_eq!(active_since(None, 0, &vg), i64::MIN);
        // The day clocks go forward (Berlin, 2026-03-29, 02:00 → 03:00): 09:00 is 07:00Z, not 08:00Z.
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(active_since(h, at("2026-03-29T10:00:00Z"), &berlin), at("2026-03-29T07:00:00Z"));
    }
}
