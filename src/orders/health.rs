//! Order-flow health (`[orders.health]`): how many orders are placed and how
//! many attempts fail, and two alerts a shop owner understands — "no orders
//! for 2h (within business hours)" and "the share of failed attempts jumped" —
//! each fired once and followed by a recovery.
//!
//! **Counting.** Every order-endpoint request line is order evidence
//! (`order_evidence`, kind `request`, with its `success` flag), one row per
//! line. One attempt may be logged twice, by nginx and by uWSGI (two sources,
//! `log:nginx` and `log:website-backend`), so lines are not simply added up:
//! for each endpoint and span of time, the source that logged the most
//! request lines stands for the flow (ties: the one with more successes, as
//! the application's own line says whether the order was placed; then the
//! name). nginx usually wins, as it also logs what never reached the
//! application (502, 504); a shop that ships only one of the two is counted
//! from that one. A success is a line with one of the endpoint's success
//! statuses; every other status is a failed attempt (4xx, 429, 5xx alike).
//! Disconnect lines (`client_gone`) and Sentry events are not attempts.
//!
//! **No orders** (`no_orders_for`): fires when no order has been placed for
//! that long, counted — as the saved-search inactivity alerts count — within
//! the current stretch of `active_hours` in `time_zone` (so with 09:00-21:00
//! and 2h, a shop whose last order came yesterday evening hears of it at
//! 11:00), and never before it has watched that long since orderwatch
//! started (what happened while it was down is unknown). It recovers as soon
//! as a newer order is seen, at any hour.
//!
//! **Failure share** (`failure_share`, `failure_window`, `min_attempts`,
//! `baseline_window`): in the last `failure_window`, with at least
//! `min_attempts` attempts, the share of failed ones is at least
//! `failure_share` *and* at least [`BASELINE_FACTOR`] times the share in the
//! `baseline_window` before that window (when the baseline holds
//! `min_attempts` attempts; otherwise the threshold alone decides). That is
//! the "jump": a shop whose normal is 20% failures (spam refused with 429) is
//! not told every half hour that 30% failed, but is told when 45% do. It
//! recovers when the window's share falls below `failure_share` (with
//! `min_attempts` attempts), or when the window holds successes and no
//! failure at all (a quiet night does not keep it firing).
//!
//! Both wait until the detector has stored the evidence of every line that
//! was in the store when orderwatch started, so a window is never judged on
//! half its lines. Each alert's state (`order_health`) changes only in the
//! transaction that stores its notifications for `[[orders.alerts]]`, and
//! only from the state it was read in: exactly once, across restarts too.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::OrdersSettings;
use super::render::{message, time};
use crate::alerts::engine::active_since;
use crate::alerts::render::span;
use crate::alerts::{ActiveHours, Destination, parse_active_hours};
use crate::db::{Db, FlowCount, HealthState};
use crate::event::{now_micros, zoned};
use crate::logstore::LogStore;
use crate::notify::{NewNotification, Notifier};

/// A failure share counts as a jump when it is at least this many times the baseline's.
pub const BASELINE_FACTOR: f64 = 2.0;
/// The state names in `order_health`.
pub const NO_ORDERS: &str = "no_orders";
pub const FAILURE_SHARE: &str = "failure_share";
/// Checked at most this far apart (shorter windows are checked more often).
const MAX_TICK: Duration = Duration::from_secs(10);

/// `[orders.health]` as written in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// "2h"; absent or "off": no such alert.
    pub no_orders_for: Option<String>,
    /// "09:00-21:00"; default all day.
    pub active_hours: Option<String>,
    /// IANA zone of `active_hours` and of the times in the messages; default the server's.
    pub time_zone: Option<String>,
    /// 0.3 = 30%; absent: no such alert.
    pub failure_share: Option<f64>,
    /// Default "30m".
    pub failure_window: Option<String>,
    /// Default 5.
    pub min_attempts: Option<u64>,
    /// Default "24h".
    pub baseline_window: Option<String>,
}

/// `[orders.health]`, checked.
#[derive(Debug, Clone)]
pub struct HealthSettings {
    pub no_orders_for: Option<Duration>,
    pub active_hours: Option<ActiveHours>,
    /// `None`: the server's zone.
    pub zone: Option<(jiff::tz::TimeZone, String)>,
    pub failure_share: Option<f64>,
    pub failure_window: Duration,
    pub min_attempts: u64,
    pub baseline_window: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            no_orders_for: None,
            active_hours: None,
            zone: None,
            failure_share: None,
            failure_window: Duration::from_secs(30 * 60),
            min_attempts: 5,
            baseline_window: Duration::from_secs(24 * 3600),
        }
    }
}

fn duration(key: &'static str, v: &str, min: Duration, max: Duration) -> Result<Duration, (&'static str, String)> {
    let d = humantime::parse_duration(v.trim())
        .map_err(|_| (key, format!("{v:?} is not a duration; write e.g. \"30s\", \"30m\", \"2h\"")))?;
    if d < min || d > max {
        return Err((
            key,
            format!(
                "{v:?} is out of range: from {} to {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(d)
}

impl HealthConfig {
    /// Checks every key; the error names the key (`orders.health.…`) and says what is expected.
    pub fn check(&self) -> Result<HealthSettings, (&'static str, String)> {
        let d = HealthSettings::default();
        let no_orders_for = match self.no_orders_for.as_deref().map(str::trim) {
            None | Some("" | "off" | "none") => None,
            Some(v) => Some(duration(
                "orders.health.no_orders_for",
                v,
                Duration::from_secs(1),
                Duration::from_secs(7 * 86_400),
            )?),
        };
        let active_hours = match &self.active_hours {
            None => None,
            Some(_) if no_orders_for.is_none() => {
                return Err((
                    "orders.health.active_hours",
                    "only the no-orders alert uses it: set orders.health.no_orders_for too (e.g. \"2h\")".into(),
                ));
            }
            Some(v) => Some(
                parse_active_hours(v)
                    .map_err(|e| ("orders.health.active_hours", e.trim_start_matches("active_hours: ").to_owned()))?,
            ),
        };
        let zone = match &self.time_zone {
            None => None,
            Some(name) => Some((
                jiff::tz::TimeZone::get(name.trim()).map_err(|_| {
                    (
                        "orders.health.time_zone",
                        format!("{name:?} is not an IANA time zone name; write e.g. \"Europe/Volgograd\" or \"UTC\""),
                    )
                })?,
                name.trim().to_owned(),
            )),
        };
        let failure_share = match self.failure_share {
            None => None,
            Some(x) if x.is_finite() && x > 0.0 && x <= 1.0 => Some(x),
            Some(x) => {
                return Err((
                    "orders.health.failure_share",
                    format!("{x} is not a share: write a number above 0 and at most 1 (0.3 means 30%)"),
                ));
            }
        };
        if failure_share.is_none() {
            for (key, given) in [
                ("orders.health.failure_window", self.failure_window.is_some()),
                ("orders.health.min_attempts", self.min_attempts.is_some()),
                ("orders.health.baseline_window", self.baseline_window.is_some()),
            ] {
                if given {
                    return Err((
                        key,
                        "only the failure-share alert uses it: set orders.health.failure_share too (e.g. 0.3)".into(),
                    ));
                }
            }
        }
        let failure_window = match &self.failure_window {
            None => d.failure_window,
            Some(v) => {
                duration("orders.health.failure_window", v, Duration::from_secs(1), Duration::from_secs(86_400))?
            }
        };
        let min_attempts = match self.min_attempts {
            None => d.min_attempts,
            Some(n) if (1..=1_000_000).contains(&n) => n,
            Some(n) => return Err(("orders.health.min_attempts", format!("{n} is out of range: from 1 to 1000000"))),
        };
        let baseline_window = match &self.baseline_window {
            None => d.baseline_window,
            Some(v) => {
                duration("orders.health.baseline_window", v, Duration::from_secs(1), Duration::from_secs(30 * 86_400))?
            }
        };
        if failure_share.is_some() && baseline_window < failure_window {
            return Err((
                "orders.health.baseline_window",
                format!(
                    "must be at least orders.health.failure_window ({}): it is what a window is compared with",
                    humantime::format_duration(failure_window)
                ),
            ));
        }
        Ok(HealthSettings {
            no_orders_for,
            active_hours,
            zone,
            failure_share,
            failure_window,
            min_attempts,
            baseline_window,
        })
    }
}

// ---------------------------------------------------------------- counting

/// Order attempts in a span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub successes: u64,
    pub failures: u64,
}

impl Counts {
    pub fn attempts(self) -> u64 {
        self.successes + self.failures
    }

    /// The share of failed attempts; `None` without attempts.
    pub fn share(self) -> Option<f64> {
        (self.attempts() > 0).then(|| self.failures as f64 / self.attempts() as f64)
    }
}

/// The attempts request lines stand for: per endpoint, the lines of the
/// source that logged the most of them (see the module's documentation).
pub fn flow(rows: &[FlowCount]) -> Counts {
    let mut best: BTreeMap<&str, &FlowCount> = BTreeMap::new();
    let key = |r: &FlowCount| (r.successes + r.failures, r.successes, std::cmp::Reverse(r.source.clone()));
    for r in rows {
        let b = best.entry(&r.endpoint).or_insert(r);
        if key(r) > key(b) {
            *b = r;
        }
    }
    best.values().fold(Counts::default(), |c, r| Counts {
        successes: c.successes + r.successes.max(0) as u64,
        failures: c.failures + r.failures.max(0) as u64,
    })
}

// ---------------------------------------------------------------- decisions (pure)

/// What a check decided for one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Nothing,
    Fire,
    Recover,
}

/// Since when the shop counts as without orders: the latest of the last
/// order, the start of watching, and the start of the current stretch of
/// active hours; `None` outside active hours.
pub fn quiet_since(
    hours: Option<ActiveHours>,
    zone: &jiff::tz::TimeZone,
    now: i64,
    last_order: Option<i64>,
    watching_since: i64,
) -> Option<i64> {
    let active = active_since(hours, now, zone);
    (active != i64::MAX).then(|| last_order.unwrap_or(i64::MIN).max(watching_since).max(active))
}

/// The no-orders alert. `last_order`: when the last order was placed;
/// `watching_since`: when orderwatch started; `caught_up`: the evidence
/// of every line stored at start has been read.
#[allow(clippy::too_many_arguments)]
pub fn decide_no_orders(
    window: Duration,
    hours: Option<ActiveHours>,
    zone: &jiff::tz::TimeZone,
    now: i64,
    last_order: Option<i64>,
    watching_since: i64,
    caught_up: bool,
    state: HealthState,
) -> Decision {
    if state.firing_since.is_some() {
        // Any order newer than the last one known when it fired (None < Some).
        return if last_order > state.reference { Decision::Recover } else { Decision::Nothing };
    }
    if !caught_up {
        return Decision::Nothing;
    }
    match quiet_since(hours, zone, now, last_order, watching_since) {
        Some(quiet) if now.saturating_sub(quiet) >= window.as_micros() as i64 => Decision::Fire,
        _ => Decision::Nothing,
    }
}

/// The failure-share alert: `window` is the last `failure_window`, `baseline`
/// the `baseline_window` before it.
pub fn decide_failure_share(
    threshold: f64,
    min_attempts: u64,
    window: Counts,
    baseline: Counts,
    firing: bool,
    caught_up: bool,
) -> Decision {
    if !caught_up {
        return Decision::Nothing;
    }
    let share = window.share().unwrap_or(0.0);
    if firing {
        let below = window.attempts() >= min_attempts && share < threshold;
        let clean = window.failures == 0 && window.successes > 0;
        return if below || clean { Decision::Recover } else { Decision::Nothing };
    }
    if window.attempts() < min_attempts || share < threshold {
        return Decision::Nothing;
    }
    let jumped = match baseline.share().filter(|_| baseline.attempts() >= min_attempts) {
        Some(b) => share >= BASELINE_FACTOR * b,
        None => true,
    };
    if jumped { Decision::Fire } else { Decision::Nothing }
}

// ---------------------------------------------------------------- what the alerts say (pure)

/// Everything the texts need.
pub struct Watch {
    pub settings: HealthSettings,
    pub zone: jiff::tz::TimeZone,
    pub zone_name: String,
    pub alerts: Vec<Destination>,
    pub public_url: String,
}

impl Watch {
    pub fn new(orders: &OrdersSettings, public_url: &str, default_zone: &jiff::tz::TimeZone) -> Watch {
        let settings = orders.health.clone();
        let (zone, zone_name) = settings.zone.clone().unwrap_or_else(|| {
            (default_zone.clone(), default_zone.iana_name().unwrap_or("the server's zone").to_owned())
        });
        Watch { settings, zone, zone_name, alerts: orders.alerts.clone(), public_url: public_url.to_owned() }
    }

    fn local(&self, micros: i64) -> String {
        zoned(micros, &self.zone).strftime("%Y-%m-%d %H:%M:%S").to_string()
    }

    fn hours(&self) -> String {
        match self.settings.active_hours {
            Some(h) => format!(
                "{:02}:{:02}-{:02}:{:02}",
                h.start / 60,
                h.start % 60,
                if h.end == 0 { 24 } else { h.end / 60 },
                h.end % 60
            ),
            None => "all day".into(),
        }
    }

    fn notifications(
        &self,
        alert: &str,
        event: &str,
        episode: i64,
        subject: &str,
        text: &str,
        json: Value,
    ) -> Vec<NewNotification> {
        self.alerts
            .iter()
            .enumerate()
            .map(|(i, dest)| NewNotification {
                source: format!("order_health:{alert}"),
                dedup_key: Some(format!("order_health:{alert}:{episode}:{event}:{i}")),
                message: message(dest, subject, text, || json.clone()),
            })
            .collect()
    }
}

/// "2 hours 5 minutes", "40 seconds": a stretch of time, to the minute past an hour.
pub fn about(micros: i64) -> String {
    let s = (micros.max(0) / 1_000_000) as u64;
    let plural = |n: u64, unit: &str| if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") };
    match s {
        0..120 => plural(s, "second"),
        120..3600 => plural(s / 60, "minute"),
        3600..172_800 => {
            let (h, m) = (s / 3600, s % 3600 / 60);
            if m == 0 { plural(h, "hour") } else { format!("{} {}", plural(h, "hour"), plural(m, "minute")) }
        }
        _ => plural(s / 86_400, "day"),
    }
}

fn pct(share: f64) -> String {
    let p = share * 100.0;
    if (p - p.round()).abs() < 0.05 { format!("{}%", p.round()) } else { format!("{p:.1}%") }
}

/// The no-orders alert's notifications: `quiet` is since when it counts,
/// `failed` the attempts that failed since then.
pub fn no_orders_fired(
    w: &Watch,
    now: i64,
    last_order: Option<i64>,
    quiet: i64,
    failed: Counts,
) -> Vec<NewNotification> {
    let window = w.settings.no_orders_for.unwrap_or_default();
    let subject = match last_order {
        Some(at) => format!("No orders since {}", zoned(at, &w.zone).strftime("%Y-%m-%d %H:%M")),
        None => format!("No orders for {}", about(now - quiet)),
    };
    let mut t = String::new();
    match last_order {
        Some(at) => writeln!(t, "No order has been placed since {} ({} ago).", w.local(at), about(now - at)).unwrap(),
        None => writeln!(t, "No order has been placed since orderwatch started watching.").unwrap(),
    }
    writeln!(
        t,
        "The alert goes off after {} without orders within the active hours ({}, {}).",
        span(window),
        w.hours(),
        w.zone_name
    )
    .unwrap();
    if failed.failures > 0 {
        writeln!(
            t,
            "Meanwhile {} order attempts failed: look at the lost orders first ({}/lost-orders).",
            failed.failures, w.public_url
        )
        .unwrap();
    } else {
        writeln!(t, "No order attempt reached the server either: check that the site and the checkout work (place a test order), and that the server's logs still arrive.").unwrap();
    }
    writeln!(t, "\nNow: {} ({}).", w.local(now), w.zone_name).unwrap();
    let json = json!({"order_health": {
        "alert": NO_ORDERS,
        "state": "firing",
        "at": time(now, &w.zone),
        "last_order_at": last_order.map(|t| time(t, &w.zone)),
        "quiet_since": time(quiet, &w.zone),
        "no_orders_for_seconds": window.as_secs(),
        "failed_attempts": failed.failures,
        "text": t,
    }});
    w.notifications(NO_ORDERS, "fired", now, &subject, &t, json)
}

pub fn no_orders_recovered(w: &Watch, now: i64, state: HealthState, last_order: i64) -> Vec<NewNotification> {
    let since = state.firing_since.unwrap_or(now);
    let subject = "Orders are coming in again".to_owned();
    let mut t = String::new();
    writeln!(t, "An order was placed at {} ({}).", w.local(last_order), w.zone_name).unwrap();
    match state.reference {
        Some(prev) => {
            writeln!(t, "The one before was placed at {}, {} earlier.", w.local(prev), about(last_order - prev))
                .unwrap()
        }
        None => writeln!(t, "It is the first order orderwatch has seen.").unwrap(),
    }
    writeln!(t, "The no-orders alert went off at {}.", w.local(since)).unwrap();
    let json = json!({"order_health": {
        "alert": NO_ORDERS,
        "state": "recovered",
        "at": time(now, &w.zone),
        "last_order_at": time(last_order, &w.zone),
        "fired_at": time(since, &w.zone),
        "text": t,
    }});
    w.notifications(NO_ORDERS, "recovered", since, &subject, &t, json)
}

fn share_json(w: &Watch, state: &str, now: i64, window: Counts, baseline: Counts, fired_at: i64, text: &str) -> Value {
    json!({"order_health": {
        "alert": FAILURE_SHARE,
        "state": state,
        "at": time(now, &w.zone),
        "fired_at": time(fired_at, &w.zone),
        "window_seconds": w.settings.failure_window.as_secs(),
        "successes": window.successes,
        "failures": window.failures,
        "failure_share": window.share(),
        "threshold": w.settings.failure_share,
        "baseline": {
            "window_seconds": w.settings.baseline_window.as_secs(),
            "successes": baseline.successes,
            "failures": baseline.failures,
            "failure_share": baseline.share(),
        },
        "text": text,
    }})
}

fn counts_line(w: &Watch, now: i64, c: Counts) -> String {
    let from = now - w.settings.failure_window.as_micros() as i64;
    format!(
        "{} of {} order attempts failed ({}) between {} and {} ({}); {} orders were placed.",
        c.failures,
        c.attempts(),
        pct(c.share().unwrap_or(0.0)),
        w.local(from),
        w.local(now),
        w.zone_name,
        c.successes
    )
}

pub fn failure_share_fired(w: &Watch, now: i64, window: Counts, baseline: Counts) -> Vec<NewNotification> {
    let subject = format!(
        "Failed orders: {} of attempts in the last {}",
        pct(window.share().unwrap_or(0.0)),
        span(w.settings.failure_window)
    );
    let mut t = String::new();
    writeln!(t, "{}", counts_line(w, now, window)).unwrap();
    match baseline.share().filter(|_| baseline.attempts() >= w.settings.min_attempts) {
        Some(b) => writeln!(
            t,
            "In the {} before, {} of {} failed ({}): the share has jumped.",
            span(w.settings.baseline_window),
            baseline.failures,
            baseline.attempts(),
            pct(b)
        )
        .unwrap(),
        None => writeln!(
            t,
            "There were too few attempts in the {} before to compare with.",
            span(w.settings.baseline_window)
        )
        .unwrap(),
    }
    writeln!(
        t,
        "The alert goes off at {} failed or more (and twice the usual share).",
        pct(w.settings.failure_share.unwrap_or(1.0))
    )
    .unwrap();
    writeln!(t, "Each failed attempt may be a lost order: see {}/lost-orders.", w.public_url).unwrap();
    let json = share_json(w, "firing", now, window, baseline, now, &t);
    w.notifications(FAILURE_SHARE, "fired", now, &subject, &t, json)
}

pub fn failure_share_recovered(
    w: &Watch,
    now: i64,
    fired_at: i64,
    window: Counts,
    baseline: Counts,
) -> Vec<NewNotification> {
    let subject = format!(
        "Failed orders back to normal: {} in the last {}",
        pct(window.share().unwrap_or(0.0)),
        span(w.settings.failure_window)
    );
    let mut t = String::new();
    writeln!(t, "{}", counts_line(w, now, window)).unwrap();
    writeln!(t, "The failure-share alert went off at {}, {} ago.", w.local(fired_at), about(now - fired_at)).unwrap();
    let json = share_json(w, "recovered", now, window, baseline, fired_at, &t);
    w.notifications(FAILURE_SHARE, "recovered", fired_at, &subject, &t, json)
}

// ---------------------------------------------------------------- buckets (pure)

/// The most buckets one request may ask for.
pub const MAX_BUCKETS: usize = 1000;

/// An API interval: a duration from 1s to 1d that divides a day.
pub fn parse_interval(v: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(v.trim())
        .map_err(|_| format!("interval: {v:?} is not a duration; write e.g. \"10m\", \"1h\", \"1d\""))?;
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 || s > 86_400 || !86_400u64.is_multiple_of(s) {
        return Err(format!(
            "interval: {v:?} does not divide a day into whole buckets; write e.g. \"1m\", \"15m\", \"1h\", \"6h\", \"1d\""
        ));
    }
    Ok(d)
}

/// The buckets `[start, end)` that cover `[from, to)`: aligned to local
/// midnight in `zone` and stepped by `interval` from there, so a day of a
/// DST change has 23 or 25 hourly buckets (and one daily bucket of 23 or 25
/// hours); the first may begin before `from`.
pub fn buckets(from: i64, to: i64, interval: Duration, zone: &jiff::tz::TimeZone) -> Result<Vec<(i64, i64)>, String> {
    let step = interval.as_micros() as i64;
    let mut out = Vec::new();
    let mut day = zoned(from, zone).start_of_day().map_err(|e| format!("from: {e}"))?;
    loop {
        let start = day.timestamp().as_microsecond();
        if start >= to {
            break;
        }
        let next = day.tomorrow().and_then(|d| d.start_of_day()).map_err(|e| format!("to: {e}"))?;
        let end_of_day = next.timestamp().as_microsecond();
        let mut t = start;
        while t < end_of_day && t < to {
            let end = (t + step).min(end_of_day);
            if end > from {
                if out.len() == MAX_BUCKETS {
                    return Err(format!(
                        "from and to span more than {MAX_BUCKETS} buckets of this interval; choose a longer interval or a shorter span"
                    ));
                }
                out.push((t, end));
            }
            t = end;
        }
        day = next;
    }
    Ok(out)
}

// ---------------------------------------------------------------- the checker (I/O)

/// The periodic check, a task of its own beside the lost-order detector.
pub struct HealthChecker {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl HealthChecker {
    /// Starts checking; `store` tells which lines the detector must have read
    /// before a window can be judged.
    pub fn start(db: Db, store: &LogStore, notifier: Notifier, watch: Watch) -> HealthChecker {
        let stop = CancellationToken::new();
        let target = store.newest_id();
        if (watch.settings.no_orders_for.is_some() || watch.settings.failure_share.is_some()) && watch.alerts.is_empty()
        {
            tracing::warn!(
                "[orders.health] is set but [[orders.alerts]] names no destination: its alerts are decided and kept, but nobody is told"
            );
        }
        let task = tokio::spawn(run(db, notifier, watch, target, stop.clone()));
        HealthChecker { stop, task }
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// How often to check: a tenth of the shortest window, from 200 ms to 10 s.
fn tick(s: &HealthSettings) -> Duration {
    let shortest = [s.no_orders_for, s.failure_share.map(|_| s.failure_window)].into_iter().flatten().min();
    shortest.map_or(MAX_TICK, |d| (d / 10).clamp(Duration::from_millis(200), MAX_TICK))
}

async fn run(db: Db, notifier: Notifier, watch: Watch, target: u64, stop: CancellationToken) {
    let started = now_micros();
    let mut caught_up = false;
    let mut tick = tokio::time::interval(tick(&watch.settings));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                if !caught_up {
                    caught_up = db.orders_cursor("log").await.ok().flatten().unwrap_or(0) >= target as i64;
                }
                match check(&db, &watch, now_micros(), started, caught_up).await {
                    Ok(true) => notifier.wake(),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "could not check the order flow's health; retrying"),
                }
            }
        }
    }
}

/// One check of both alerts (and the gauges); true when notifications were stored.
async fn check(db: &Db, w: &Watch, now: i64, started: i64, caught_up: bool) -> anyhow::Result<bool> {
    let s = &w.settings;
    let mut queued = false;
    let fw = s.failure_window.as_micros() as i64;
    let window = flow(&db.order_flow_counts(now - fw, now + 1).await?);
    crate::telemetry::order_attempts(window.successes, window.failures);

    if let Some(no_orders_for) = s.no_orders_for {
        let state = db.order_health_state(NO_ORDERS).await?;
        let last = db.last_order_placed().await?;
        match decide_no_orders(no_orders_for, s.active_hours, &w.zone, now, last, started, caught_up, state) {
            Decision::Nothing => {}
            Decision::Fire => {
                let quiet = quiet_since(s.active_hours, &w.zone, now, last, started).unwrap_or(now);
                let failed = flow(&db.order_flow_counts(quiet, now + 1).await?);
                let n = no_orders_fired(w, now, last, quiet, failed);
                let next = HealthState { firing_since: Some(now), reference: last };
                if db.commit_order_health(NO_ORDERS, state, next, &n, now).await? {
                    tracing::warn!(last_order = ?last.map(|t| time(t, &w.zone)), "no orders: the alert went off");
                    crate::telemetry::order_health_alert(NO_ORDERS, "fired");
                    queued |= !n.is_empty();
                }
            }
            Decision::Recover => {
                let at = last.unwrap_or(now);
                let n = no_orders_recovered(w, now, state, at);
                if db.commit_order_health(NO_ORDERS, state, HealthState::default(), &n, now).await? {
                    tracing::info!("orders are coming in again: the no-orders alert recovered");
                    crate::telemetry::order_health_alert(NO_ORDERS, "recovered");
                    queued |= !n.is_empty();
                }
            }
        }
    }

    if let Some(threshold) = s.failure_share {
        let state = db.order_health_state(FAILURE_SHARE).await?;
        let bw = s.baseline_window.as_micros() as i64;
        let baseline = flow(&db.order_flow_counts(now - fw - bw, now - fw).await?);
        let firing = state.firing_since.is_some();
        match decide_failure_share(threshold, s.min_attempts, window, baseline, firing, caught_up) {
            Decision::Nothing => {}
            Decision::Fire => {
                let n = failure_share_fired(w, now, window, baseline);
                let next = HealthState { firing_since: Some(now), reference: None };
                if db.commit_order_health(FAILURE_SHARE, state, next, &n, now).await? {
                    tracing::warn!(
                        failures = window.failures,
                        attempts = window.attempts(),
                        "failure share: the alert went off"
                    );
                    crate::telemetry::order_health_alert(FAILURE_SHARE, "fired");
                    queued |= !n.is_empty();
                }
            }
            Decision::Recover => {
                let n = failure_share_recovered(w, now, state.firing_since.unwrap_or(now), window, baseline);
                if db.commit_order_health(FAILURE_SHARE, state, HealthState::default(), &n, now).await? {
                    tracing::info!(
                        failures = window.failures,
                        attempts = window.attempts(),
                        "failure share: recovered"
                    );
                    crate::telemetry::order_health_alert(FAILURE_SHARE, "recovered");
                    queued |= !n.is_empty();
                }
            }
        }
    }
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_microsecond()
    }

    fn fc(endpoint: &str, source: &str, successes: i64, failures: i64) -> FlowCount {
        FlowCount { endpoint: endpoint.into(), source: source.into(), successes, failures }
    }

    const H: i64 = 3_600_000_000;

    #[test]
    fn one_attempt_logged_by_nginx_and_uwsgi_counts_once() {
        // The same 10 attempts in both logs, plus two 502s only nginx saw.
        let rows = [fc("orders", "log:nginx", 8, 4), fc("orders", "log:website-backend", 8, 2)];
        assert_eq!(flow(&rows), Counts { successes: 8, failures: 4 });
        // A tie goes to the source with more successes (the application knows the order was placed).
        let rows = [fc("orders", "log:nginx", 4, 1), fc("orders", "log:website-backend", 5, 0)];
        assert_eq!(flow(&rows), Counts { successes: 5, failures: 0 });
        // Endpoints add up, each from its own best source.
        let rows = [fc("a", "log:nginx", 1, 1), fc("b", "log:uwsgi", 3, 0), fc("b", "log:nginx", 1, 0)];
        assert_eq!(flow(&rows), Counts { successes: 4, failures: 1 });
        assert_eq!(flow(&[]), Counts::default());
        assert_eq!(Counts::default().share(), None);
    }

    #[test]
    fn no_orders_fires_once_within_active_hours_and_recovers_on_an_order() {
        let vg = jiff::tz::TimeZone::get("Europe/Volgograd").unwrap(); // +03, no DST
        let hours = Some(parse_active_hours("09:00-21:00").unwrap());
        let two_h = Duration::from_secs(7200);
        let started = at("2026-06-01T00:00:00Z");
        let idle = HealthState::default();
        let last = Some(at("2026-06-22T17:00:00Z")); // 20:00 local, the evening before
        let decide = |now: &str, last, state| decide_no_orders(two_h, hours, &vg, at(now), last, started, true, state);
        // 10:59 local: the stretch began at 09:00, not yet 2 h.
        assert_eq!(decide("2026-06-23T07:59:59Z", last, idle), Decision::Nothing);
        // 11:00 local: 2 h within active hours.
        assert_eq!(decide("2026-06-23T08:00:00Z", last, idle), Decision::Fire);
        // Outside the hours (22:00 local) it never fires.
        assert_eq!(decide("2026-06-22T19:00:00Z", Some(at("2026-06-22T08:00:00Z")), idle), Decision::Nothing);
        // Firing: nothing more until a newer order, then a recovery.
        let firing = HealthState { firing_since: Some(at("2026-06-23T08:00:00Z")), reference: last };
        assert_eq!(decide("2026-06-23T12:00:00Z", last, firing), Decision::Nothing);
        assert_eq!(decide("2026-06-23T12:00:00Z", Some(at("2026-06-23T11:30:00Z")), firing), Decision::Recover);
        // A recovery may come at night.
        assert_eq!(decide("2026-06-23T20:00:00Z", Some(at("2026-06-23T19:30:00Z")), firing), Decision::Recover);
        // Without any order ever: fires after the window since watching began, recovers on the first.
        let fresh = at("2026-06-23T06:30:00Z"); // started at 09:30 local
        assert_eq!(decide_no_orders(two_h, hours, &vg, fresh + 2 * H - 1, None, fresh, true, idle), Decision::Nothing);
        assert_eq!(decide_no_orders(two_h, hours, &vg, fresh + 2 * H, None, fresh, true, idle), Decision::Fire);
        let never = HealthState { firing_since: Some(fresh + 2 * H), reference: None };
        assert_eq!(decide_no_orders(two_h, hours, &vg, fresh + 3 * H, None, fresh, true, never), Decision::Nothing);
        assert_eq!(
            decide_no_orders(two_h, hours, &vg, fresh + 3 * H, Some(fresh), fresh, true, never),
            Decision::Recover
        );
        // Not before the detector has caught up.
        assert_eq!(
            decide_no_orders(two_h, hours, &vg, at("2026-06-23T08:00:00Z"), last, started, false, idle),
            Decision::Nothing
        );
    }

    #[test]
    fn active_hours_boundaries() {
        let utc = jiff::tz::TimeZone::UTC;
        let hours = Some(parse_active_hours("09:00-21:00").unwrap());
        let w = Duration::from_secs(60);
        let started = 0;
        let old = Some(at("2026-06-22T12:00:00Z"));
        let d = |now: &str| decide_no_orders(w, hours, &utc, at(now), old, started, true, HealthState::default());
        // The start is inclusive: at 09:00 the stretch has just begun, at 09:01 a minute has passed.
        assert_eq!(d("2026-06-23T09:00:00Z"), Decision::Nothing);
        assert_eq!(d("2026-06-23T09:00:59Z"), Decision::Nothing);
        assert_eq!(d("2026-06-23T09:01:00Z"), Decision::Fire);
        // The end is exclusive: 20:59:59 is in, 21:00 is out.
        assert_eq!(d("2026-06-23T20:59:59Z"), Decision::Fire);
        assert_eq!(d("2026-06-23T21:00:00Z"), Decision::Nothing);
        assert_eq!(d("2026-06-23T08:59:59Z"), Decision::Nothing);
        // All day when no hours are given.
        assert_eq!(
            decide_no_orders(w, None, &utc, at("2026-06-23T03:00:00Z"), old, started, true, HealthState::default()),
            Decision::Fire
        );
        // Hours past midnight: 22:00-06:00, at 02:00 the stretch began at 22:00 the day before.
        let night = Some(parse_active_hours("22:00-06:00").unwrap());
        let q = quiet_since(night, &utc, at("2026-06-23T02:00:00Z"), old, started);
        assert_eq!(q, Some(at("2026-06-22T22:00:00Z")));
    }

    #[test]
    fn active_hours_on_dst_days_follow_the_local_clock() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let hours = Some(parse_active_hours("09:00-21:00").unwrap());
        let old = Some(at("2026-03-27T12:00:00Z"));
        // 2026-03-29: clocks go 02:00 → 03:00; 09:00 local is 07:00Z, so with 2 h it fires at 09:00Z (11:00 local).
        let d = |now: &str| {
            decide_no_orders(Duration::from_secs(7200), hours, &berlin, at(now), old, 0, true, HealthState::default())
        };
        assert_eq!(d("2026-03-29T08:59:59Z"), Decision::Nothing);
        assert_eq!(d("2026-03-29T09:00:00Z"), Decision::Fire);
        // 2026-10-25: clocks go 03:00 → 02:00; 09:00 local is 08:00Z.
        assert_eq!(quiet_since(hours, &berlin, at("2026-10-25T09:00:00Z"), old, 0), Some(at("2026-10-25T08:00:00Z")));
        // 20:30 local (19:30Z) is in, 21:00 local (20:00Z) is out.
        assert!(quiet_since(hours, &berlin, at("2026-10-25T19:30:00Z"), old, 0).is_some());
        assert!(quiet_since(hours, &berlin, at("2026-10-25T20:00:00Z"), old, 0).is_none());
    }

    #[test]
    fn failure_share_fires_on_a_jump_and_recovers_when_it_falls_back() {
        let c = |successes, failures| Counts { successes, failures };
        let d = |w, b, firing| decide_failure_share(0.3, 5, w, b, firing, true);
        // Too few attempts: nothing, whatever the share.
        assert_eq!(d(c(0, 4), c(100, 0), false), Decision::Nothing);
        // 40% against a 5% baseline: a jump.
        assert_eq!(d(c(6, 4), c(95, 5), false), Decision::Fire);
        // Exactly the threshold counts.
        assert_eq!(d(c(7, 3), c(95, 5), false), Decision::Fire);
        assert_eq!(d(c(8, 2), c(95, 5), false), Decision::Nothing);
        // 40% when 25% is usual: over the threshold but not twice the usual share.
        assert_eq!(d(c(6, 4), c(75, 25), false), Decision::Nothing);
        // 50% when 25% is usual: twice.
        assert_eq!(d(c(5, 5), c(75, 25), false), Decision::Fire);
        // A baseline too thin to compare with: the threshold alone decides.
        assert_eq!(d(c(6, 4), c(2, 2), false), Decision::Fire);
        // Firing: stays while the share is high or the window thin with failures…
        assert_eq!(d(c(6, 4), c(95, 5), true), Decision::Nothing);
        assert_eq!(d(c(1, 1), c(95, 5), true), Decision::Nothing);
        assert_eq!(d(c(0, 0), c(95, 5), true), Decision::Nothing);
        // …recovers below the threshold, or with successes and no failure at all.
        assert_eq!(d(c(8, 2), c(95, 5), true), Decision::Recover);
        assert_eq!(d(c(2, 0), c(95, 5), true), Decision::Recover);
        // Nothing before the detector has caught up.
        assert_eq!(decide_failure_share(0.3, 5, c(0, 10), c(0, 0), false, false), Decision::Nothing);
        assert_eq!(decide_failure_share(0.3, 5, c(10, 0), c(0, 0), true, false), Decision::Nothing);
    }

    #[test]
    fn buckets_follow_the_local_clock_across_dst() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let hour = Duration::from_secs(3600);
        // The spring-forward day has 23 hourly buckets, the fall-back day 25.
        let b = buckets(at("2026-03-28T23:00:00Z"), at("2026-03-29T22:00:00Z"), hour, &berlin).unwrap();
        assert_eq!(b.len(), 23);
        assert_eq!(b[2].0, at("2026-03-29T01:00:00Z")); // 03:00 CEST
        let b = buckets(at("2026-10-24T22:00:00Z"), at("2026-10-25T23:00:00Z"), hour, &berlin).unwrap();
        assert_eq!(b.len(), 25);
        // Daily buckets are local days: 23 h and 25 h long.
        let day = Duration::from_secs(86_400);
        let b = buckets(at("2026-03-28T23:00:00Z"), at("2026-03-29T22:00:00Z"), day, &berlin).unwrap();
        assert_eq!(b, vec![(at("2026-03-28T23:00:00Z"), at("2026-03-29T22:00:00Z"))]);
        // The first bucket begins at or before `from`; the last holds `to`.
        let utc = jiff::tz::TimeZone::UTC;
        let b = buckets(at("2026-06-23T10:20:00Z"), at("2026-06-23T12:05:00Z"), hour, &utc).unwrap();
        assert_eq!(
            b.iter().map(|x| x.0).collect::<Vec<_>>(),
            [at("2026-06-23T10:00:00Z"), at("2026-06-23T11:00:00Z"), at("2026-06-23T12:00:00Z")]
        );
        // Half-hour zones align to their own clock.
        let kolkata = jiff::tz::TimeZone::get("Asia/Kolkata").unwrap();
        let b = buckets(at("2026-06-23T10:20:00Z"), at("2026-06-23T10:40:00Z"), hour, &kolkata).unwrap();
        assert_eq!(
            b,
            vec![
                (at("2026-06-23T09:30:00Z"), at("2026-06-23T10:30:00Z")),
                (at("2026-06-23T10:30:00Z"), at("2026-06-23T11:30:00Z"))
            ]
        );
        assert!(buckets(0, 2000 * H, hour, &utc).unwrap_err().contains("more than 1000"));
    }

    #[test]
    fn intervals_divide_a_day() {
        assert_eq!(parse_interval("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_interval("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_interval("1d").unwrap(), Duration::from_secs(86_400));
        assert!(parse_interval("7m").unwrap_err().contains("divide a day"));
        assert!(parse_interval("2d").unwrap_err().contains("divide a day"));
        assert!(parse_interval("soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn config_is_checked_and_names_the_key() {
        let ok: HealthConfig = toml::from_str(
            "no_orders_for = \"2h\"\nactive_hours = \"09:00-21:00\"\ntime_zone = \"Europe/Volgograd\"\nfailure_share = 0.3",
        )
        .unwrap();
        let s = ok.check().unwrap();
        assert_eq!(s.no_orders_for, Some(Duration::from_secs(7200)));
        assert_eq!(s.active_hours, Some(ActiveHours { start: 540, end: 1260 }));
        assert_eq!(
            (s.failure_window, s.min_attempts, s.baseline_window),
            (Duration::from_secs(1800), 5, Duration::from_secs(86_400))
        );
        let off: HealthConfig = toml::from_str("no_orders_for = \"off\"").unwrap();
        assert!(off.check().unwrap().no_orders_for.is_none());
        for (text, key, says) in [
            ("no_orders_for = \"soon\"", "no_orders_for", "not a duration"),
            ("no_orders_for = \"30d\"", "no_orders_for", "out of range"),
            ("active_hours = \"09:00-21:00\"", "active_hours", "no_orders_for too"),
            ("no_orders_for = \"1h\"\nactive_hours = \"9-21\"", "active_hours", "09:00-21:00"),
            ("time_zone = \"Mars/Base\"", "time_zone", "IANA"),
            ("failure_share = 30.0", "failure_share", "0.3 means 30%"),
            ("failure_share = 0.0", "failure_share", "above 0"),
            ("failure_window = \"5m\"", "failure_window", "failure_share too"),
            ("failure_share = 0.3\nmin_attempts = 0", "min_attempts", "from 1"),
            ("failure_share = 0.3\nfailure_window = \"2h\"\nbaseline_window = \"1h\"", "baseline_window", "at least"),
        ] {
            let (k, m) = toml::from_str::<HealthConfig>(text).unwrap().check().unwrap_err();
            assert!(k.ends_with(key) && m.contains(says), "{text}: {k}: {m}");
        }
        assert!(toml::from_str::<HealthConfig>("no_order_for = \"2h\"").is_err());
    }

    #[test]
    fn the_texts_say_counts_windows_and_local_times() {
        let orders = OrdersSettings {
            alerts: vec![Destination::Webhook { url: "http://127.0.0.1:9/h".into() }],
            health: HealthConfig {
                no_orders_for: Some("2h".into()),
                active_hours: Some("09:00-21:00".into()),
                time_zone: Some("Europe/Volgograd".into()),
                failure_share: Some(0.3),
                ..HealthConfig::default()
            }
            .check()
            .unwrap(),
            ..OrdersSettings::default()
        };
        let w = Watch::new(&orders, "https://ow.shop.example", &jiff::tz::TimeZone::UTC);
        let now = at("2026-06-23T08:00:00Z");
        let n =
            failure_share_fired(&w, now, Counts { successes: 6, failures: 4 }, Counts { successes: 95, failures: 5 });
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].dedup_key.as_deref(), Some(format!("order_health:failure_share:{now}:fired:0").as_str()));
        let crate::notify::Message::Webhook { payload, .. } = &n[0].message else { panic!() };
        let v: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(v["order_health"]["failures"], 4);
        assert_eq!(v["order_health"]["at"], "2026-06-23T11:00:00.000+03:00");
        let text = v["order_health"]["failure_share"].as_f64().unwrap();
        assert!((text - 0.4).abs() < 1e-9);
        let n =
            no_orders_fired(&w, now, Some(at("2026-06-22T17:00:00Z")), at("2026-06-23T06:00:00Z"), Counts::default());
        let crate::notify::Message::Webhook { payload, .. } = &n[0].message else { panic!() };
        let v: Value = serde_json::from_str(payload).unwrap();
        let t = v["order_health"]["text"].as_str().unwrap();
        assert!(t.contains("since 2026-06-22 20:00:00 (15 hours ago)"), "{t}");
        assert!(t.contains("2 hours without orders within the active hours (09:00-21:00, Europe/Volgograd)"), "{t}");
        assert_eq!(about(90 * 60 * 1_000_000), "1 hour 30 minutes");
        assert_eq!(pct(0.4), "40%");
        assert_eq!(pct(0.125), "12.5%");
    }
}
