//! The worker that turns stored envelopes into error events and groups (the
//! one part of `sentry` that does I/O). It runs after the SDK was answered, so
//! a bug here can delay a report but never lose it: an envelope stays
//! unprocessed, and is read again, until its events are recorded.
//!
//! The first event of a new group, and one received after its group was
//! resolved, raise the `[[sentry.alerts]]` notifications, stored in the
//! transaction that records the event; the notifier is woken after it commits.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::envelope::{self, ItemType};
use super::group;
use crate::alerts::groups::GroupAlerts;
use crate::db::{Db, NewErrorEvent, RawEnvelope};
use crate::event::now_micros;
use crate::notify::Notifier;
use crate::orders::detector::DetectorHandle;
use crate::orders::{OrdersSettings, Piece};

/// The lost-order detector's part: the order endpoints events are read
/// against, and the detector to wake when evidence was stored.
#[derive(Clone, Default)]
pub struct OrdersHook {
    pub settings: Arc<OrdersSettings>,
    pub detector: Option<DetectorHandle>,
}

/// Wakes the worker (after an envelope is stored) and stops it.
#[derive(Clone)]
pub struct Processor {
    wake: Arc<Notify>,
    stop: CancellationToken,
    writer: tokio::sync::mpsc::Sender<WriteJob>,
}

/// Who hears of new groups and regressions, and the notifier to wake.
#[derive(Clone)]
pub struct Alerting {
    pub alerts: GroupAlerts,
    pub notifier: Notifier,
}

impl Processor {
    /// A worker that raises no group alerts and reads no lost orders.
    pub fn start(db: Db) -> Processor {
        Processor::start_with(db, None, OrdersHook::default())
    }

    pub fn start_with(db: Db, alerting: Option<Alerting>, orders: OrdersHook) -> Processor {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let p = Processor { wake: Arc::new(Notify::new()), stop: CancellationToken::new(), writer: tx };
        tokio::spawn(write(db.clone(), rx, p.clone()));
        tokio::spawn(run(db, p.clone(), alerting, orders));
        p
    }

    /// Stores a received envelope durably (committed, fsynced) and returns
    /// its id; only then may the SDK be answered. Envelopes arriving together
    /// share one transaction, so one fsync serves them all.
    pub async fn store(&self, e: StoredEnvelope) -> Result<i64, anyhow::Error> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.writer.send((e, done)).await.map_err(|_| anyhow::anyhow!("the Sentry envelope writer has stopped"))?;
        answer.await.map_err(|_| anyhow::anyhow!("the Sentry envelope writer has stopped"))?.map_err(anyhow::Error::msg)
    }

    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// A received envelope, owned, on its way to the database.
pub struct StoredEnvelope {
    pub project_id: i64,
    pub received_at: i64,
    pub event_id: Option<String>,
    pub client_ip: String,
    pub body: Vec<u8>,
}

type WriteJob = (StoredEnvelope, tokio::sync::oneshot::Sender<Result<i64, String>>);

/// Envelopes waiting together are stored together.
const WRITE_BATCH: usize = 256;

async fn write(db: Db, mut rx: tokio::sync::mpsc::Receiver<WriteJob>, p: Processor) {
    let mut jobs: Vec<WriteJob> = Vec::with_capacity(WRITE_BATCH);
    while rx.recv_many(&mut jobs, WRITE_BATCH).await > 0 {
        let raws: Vec<RawEnvelope> = jobs
            .iter()
            .map(|(e, _)| RawEnvelope {
                project_id: e.project_id,
                received_at: e.received_at,
                event_id: e.event_id.as_deref(),
                client_ip: &e.client_ip,
                body: &e.body,
            })
            .collect();
        let result = db.store_envelopes(&raws).await;
        drop(raws);
        match result {
            Ok(ids) => {
                for ((_, done), id) in jobs.drain(..).zip(ids) {
                    let _ = done.send(Ok(id));
                }
                p.wake();
            }
            Err(e) => {
                tracing::error!(error = %e, envelopes = jobs.len(), "could not store Sentry envelopes; the SDKs are told to retry");
                for (_, done) in jobs.drain(..) {
                    let _ = done.send(Err(format!("could not store the envelope: {e}")));
                }
            }
        }
    }
}

async fn run(db: Db, p: Processor, alerting: Option<Alerting>, orders: OrdersHook) {
    loop {
        match process_some(&db, alerting.as_ref(), &orders).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "could not process stored Sentry envelopes; retrying in 5 s"),
        }
        tokio::select! {
            _ = p.stop.cancelled() => return,
            _ = p.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// Processes a batch; true when there may be more.
async fn process_some(db: &Db, alerting: Option<&Alerting>, orders: &OrdersHook) -> anyhow::Result<bool> {
    let batch = db.unprocessed_envelopes(100).await?;
    let more = batch.len() == 100;
    if batch.is_empty() {
        return Ok(false);
    }
    // Project names, for what the alerts say.
    let projects = match alerting {
        Some(a) if !a.alerts.defs.is_empty() => db.projects().await?,
        _ => Vec::new(),
    };
    let project_name =
        |id: i64| projects.iter().find(|p| p.id == id).map_or_else(|| format!("project {id}"), |p| p.name.clone());
    let mut evidence = false;
    let reads: Vec<Vec<Read>> = batch
        .iter()
        .map(|env| events_of(&env.body, &env.client_ip, env.id, env.received_at, &orders.settings))
        .collect();
    let rows: Vec<(i64, Vec<NewErrorEvent>)> = batch
        .iter()
        .zip(&reads)
        .map(|(env, rows)| {
            evidence |= rows.iter().any(|r| r.piece.is_some());
            let new = rows
                .iter()
                .map(|Read { id: event_id, body, grouping: g, piece }| NewErrorEvent {
                    project_id: env.project_id,
                    event_id,
                    envelope_id: env.id,
                    received_at: env.received_at,
                    body,
                    fingerprint: &g.fingerprint,
                    title: &g.title,
                    culprit: g.culprit.as_deref(),
                    evidence: piece.as_ref(),
                })
                .collect();
            (env.id, new)
        })
        .collect();
    let alerts = |ev: &crate::db::GroupAlertEvent<'_>| match alerting {
        Some(a) => a.alerts.notifications(ev, &project_name(ev.group.project_id)),
        None => Vec::new(),
    };
    let mut done = Vec::new();
    // The whole batch in one transaction; if that fails, one by one, so that
    // one envelope that cannot be recorded does not hold back the others.
    match db.record_envelopes(&rows, now_micros(), alerts).await {
        Ok(d) => done.push(d),
        Err(e) => {
            tracing::warn!(error = %e, envelopes = rows.len(), "could not record a batch of Sentry envelopes; one by one");
            let mut failures = Vec::new();
            for one in rows.chunks(1) {
                match db.record_envelopes(one, now_micros(), alerts).await {
                    Ok(d) => done.push(d),
                    Err(e) => failures.push((one[0].0, e)),
                }
            }
            // Only when others of the batch were recorded is a failure the
            // envelope's own; when all fail, the database is (a lock held too
            // long, a full disk): nothing is counted against them, all are
            // tried again later.
            if done.is_empty() && failures.len() > 1 {
                anyhow::bail!("could not record any of {} Sentry envelopes: {}", failures.len(), failures[0].1);
            }
            for (id, e) in failures {
                tracing::error!(envelope = id, error = %e, "could not record a Sentry envelope's events; it is retried");
                db.envelope_failed(id, &e.to_string()).await?;
            }
        }
    }
    let mut stored = 0;
    for d in done {
        for (kind, n) in d.alerts {
            crate::telemetry::error_group_alert(kind.as_str(), n as u64);
            stored += n;
        }
    }
    if stored > 0
        && let Some(a) = alerting
    {
        a.notifier.wake();
    }
    if evidence && let Some(d) = &orders.detector {
        d.wake();
    }
    Ok(more)
}

/// One error event read from an envelope.
pub struct Read {
    pub id: String,
    /// The full JSON, with the client's IP filled in.
    pub body: String,
    pub grouping: group::Grouping,
    /// What it says about a lost order, if anything.
    pub piece: Option<Piece>,
}

/// The error events of an envelope body. Items that are not events, and
/// events that are not JSON objects, are skipped (the envelope keeps them).
pub fn events_of(
    body: &[u8],
    client_ip: &str,
    envelope_id: i64,
    received_at: i64,
    orders: &OrdersSettings,
) -> Vec<Read> {
    let bytes = bytes::Bytes::copy_from_slice(body);
    let env = match envelope::parse(&bytes) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "a stored Sentry envelope no longer parses; it is kept as it is");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    let mut header_id = env.header.event_id.clone();
    // The SDK's clock against ours, as Relay corrects it: received − sent_at.
    let clock_offset = env
        .header
        .sent_at
        .as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map_or(0, |sent| received_at - sent.as_microsecond());
    for (n, item) in env.items.iter().enumerate().filter(|(_, i)| i.header.ty == ItemType::Event) {
        let Ok(Value::Object(mut ev)) = serde_json::from_slice::<Value>(&item.payload) else { continue };
        let id = ev
            .get("event_id")
            .and_then(Value::as_str)
            .and_then(envelope::normalise_event_id)
            // The envelope's id names its (first) event, not every one.
            .or_else(|| header_id.take())
            // No id anywhere: one made from where it is stored, the same at every re-processing.
            .unwrap_or_else(|| format!("{:024x}{:08x}", envelope_id, n));
        ev.insert("event_id".into(), Value::String(id.clone()));
        fill_ip(&mut ev, client_ip);
        let ev = Value::Object(ev);
        let grouping = group::group(&ev);
        let piece = crate::orders::evidence::from_event(&ev, &orders.endpoints, received_at, clock_offset);
        out.push(Read { id, body: ev.to_string(), grouping, piece });
    }
    out
}

/// `user.ip_address` `{{auto}}`, and a browser event's missing one, become the
/// connection's address (as Sentry does).
fn fill_ip(ev: &mut serde_json::Map<String, Value>, client_ip: &str) {
    let browser = ev.get("platform").and_then(Value::as_str) == Some("javascript");
    let user = ev.entry("user").or_insert_with(|| Value::Object(Default::default()));
    let Value::Object(user) = user else { return };
    match user.get("ip_address").and_then(Value::as_str) {
        Some("{{auto}}") => {
            user.insert("ip_address".into(), Value::String(client_ip.to_owned()));
        }
        None if browser => {
            user.insert("ip_address".into(), Value::String(client_ip.to_owned()));
        }
        _ => {}
    }
    if user.is_empty() {
        ev.remove("user");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_browser_fixture_gives_one_event_with_the_clients_ip() {
        let body =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sentry-browser-order-400.envelope")).unwrap();
        let evs = events_of(&body, "188.32.201.9", 1, 0, &OrdersSettings::default());
        assert_eq!(evs.len(), 1, "session, client_report and replay_event are not error events");
        let Read { id, body: json, grouping: g, piece } = &evs[0];
        assert_eq!(
            piece.as_ref().and_then(|p| p.client_ip.as_deref()),
            Some("188.32.201.9"),
            "a lost order's evidence"
        );
        assert_eq!(id, "9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f");
        let v: Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["user"]["ip_address"], "188.32.201.9");
        assert!(g.title.starts_with("OrderSubmitError: POST /api/v1/orders/ failed with 400"), "{}", g.title);
    }

    #[test]
    fn an_event_without_an_id_gets_a_stable_one() {
        let body = b"{}\n{\"type\":\"event\"}\n{\"message\":\"no id\"}\n";
        let o = OrdersSettings::default();
        let a = events_of(body, "10.0.0.1", 7, 0, &o);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].id, "00000000000000000000000700000000");
        assert_eq!(events_of(body, "10.0.0.1", 7, 0, &o)[0].id, a[0].id);
        assert!(a[0].body.contains("00000000000000000000000700000000"));
        assert!(a[0].piece.is_none(), "not about an order");
    }

    #[test]
    fn the_envelopes_id_names_only_its_first_event() {
        let body = b"{\"event_id\":\"9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f\"}\n{\"type\":\"event\"}\n{\"message\":\"a\"}\n{\"type\":\"event\"}\n{\"message\":\"b\"}\n";
        let ids: Vec<String> =
            events_of(body, "10.0.0.1", 3, 0, &OrdersSettings::default()).into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["9b2d5c1e7f0a4c3d8e6b1a2f3c4d5e6f", "00000000000000000000000300000001"]);
    }

    fn envelope(event_id: &str, message: &str) -> Vec<u8> {
        format!("{{}}\n{{\"type\":\"event\"}}\n{{\"event_id\":\"{event_id}\",\"message\":\"{message}\"}}\n")
            .into_bytes()
    }

    /// Stores an envelope received at `at` and processes it.
    async fn arrive(db: &Db, alerting: &Alerting, body: &[u8], at: i64) {
        db.store_envelope(&crate::db::RawEnvelope {
            project_id: 1,
            received_at: at,
            event_id: None,
            client_ip: "10.0.0.1",
            body,
        })
        .await
        .unwrap();
        process_some(db, Some(alerting), &OrdersHook::default()).await.unwrap();
    }

    async fn keys(db: &Db) -> Vec<String> {
        let all = crate::db::NotificationFilter { status: None, source: None, before_id: None, limit: 100 };
        let rows = db.list_notifications(&all, 0).await.unwrap();
        let mut k: Vec<String> = rows.into_iter().filter_map(|n| n.dedup_key).collect();
        k.sort();
        k
    }

    #[tokio::test]
    async fn new_groups_and_regressions_alert_once_ignored_ones_never() {
        use crate::db::GroupStatus;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        db.ensure_default_project(|| "k".into(), 0).await.unwrap();
        let notifier = Notifier::start(db.clone(), crate::notify::NotifySettings::default());
        notifier.shutdown().await; // stored, not sent: the test reads the outbox
        let alerting = Alerting {
            alerts: GroupAlerts {
                defs: vec![
                    serde_json::from_str(r#"{"destination":{"webhook":"http://127.0.0.1:9/a"}}"#).unwrap(),
                    serde_json::from_str(r#"{"project":2,"destination":{"webhook":"http://127.0.0.1:9/b"}}"#).unwrap(),
                ],
                public_url: None,
                zone: jiff::tz::TimeZone::UTC,
            },
            notifier,
        };
        let id = |n: u32| format!("{n:032x}");
        // Two events of one new group in one envelope: one first_seen.
        let mut two = envelope(&id(1), "boom");
        two.extend_from_slice(&envelope(&id(2), "boom")[3..]);
        arrive(&db, &alerting, &two, 10).await;
        let g = db.error_groups(10).await.unwrap();
        assert_eq!((g.len(), g[0].count, g[0].status), (1, 2, GroupStatus::Unresolved));
        let gid = g[0].id;
        assert_eq!(keys(&db).await, [format!("group:{gid}:first_seen:0")]);
        // Another event of the group: nothing.
        arrive(&db, &alerting, &envelope(&id(3), "boom"), 20).await;
        assert_eq!(keys(&db).await.len(), 1);
        // Resolved at 30: an event received before (read only now) does not reopen it…
        let r = db.set_group_status(gid, GroupStatus::Resolved, 30).await.unwrap().unwrap();
        assert_eq!((r.status, r.resolved_at), (GroupStatus::Resolved, Some(30)));
        assert_eq!(db.set_group_status(gid, GroupStatus::Resolved, 35).await.unwrap().unwrap().resolved_at, Some(30));
        arrive(&db, &alerting, &envelope(&id(4), "boom"), 25).await;
        assert_eq!(db.error_group(gid).await.unwrap().unwrap().status, GroupStatus::Resolved);
        // …one received after does, once.
        let mut two = envelope(&id(5), "boom");
        two.extend_from_slice(&envelope(&id(6), "boom")[3..]);
        arrive(&db, &alerting, &two, 40).await;
        let g = db.error_group(gid).await.unwrap().unwrap();
        assert_eq!((g.status, g.resolved_at, g.count), (GroupStatus::Unresolved, None, 6));
        assert_eq!(
            keys(&db).await,
            [format!("group:{gid}:first_seen:0"), format!("group:{gid}:regression:{}:0", id(5))]
        );
        // An SDK's retry of the regressing event is not another regression.
        db.set_group_status(gid, GroupStatus::Resolved, 50).await.unwrap();
        arrive(&db, &alerting, &envelope(&id(5), "boom"), 60).await;
        assert_eq!(db.error_group(gid).await.unwrap().unwrap().status, GroupStatus::Resolved);
        // Ignored: counted, never alerted on, stays ignored.
        db.set_group_status(gid, GroupStatus::Ignored, 70).await.unwrap();
        arrive(&db, &alerting, &envelope(&id(7), "boom"), 80).await;
        let g = db.error_group(gid).await.unwrap().unwrap();
        assert_eq!((g.status, g.resolved_at, g.count), (GroupStatus::Ignored, None, 7));
        assert_eq!(keys(&db).await.len(), 2);
        assert!(db.set_group_status(999, GroupStatus::Resolved, 1).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_envelope_that_keeps_failing_is_left_aside_not_in_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let raw = |body: &'static [u8]| crate::db::RawEnvelope {
            project_id: 1,
            received_at: 0,
            event_id: None,
            client_ip: "10.0.0.1",
            body,
        };
        let bad = db.store_envelope(&raw(b"{}\n")).await.unwrap();
        let good = db.store_envelope(&raw(b"{}\n")).await.unwrap();
        for _ in 0..crate::db::MAX_PROCESSING_ATTEMPTS {
            db.envelope_failed(bad, "boom").await.unwrap();
        }
        let ids: Vec<i64> = db.unprocessed_envelopes(100).await.unwrap().iter().map(|e| e.id).collect();
        assert_eq!(ids, [good]);
    }

    #[test]
    fn ip_rules() {
        let mut ev = serde_json::json!({"platform": "python", "user": {"ip_address": "{{auto}}"}});
        fill_ip(ev.as_object_mut().unwrap(), "10.0.0.1");
        assert_eq!(ev["user"]["ip_address"], "10.0.0.1");
        let mut ev = serde_json::json!({"platform": "python"});
        fill_ip(ev.as_object_mut().unwrap(), "10.0.0.1");
        assert!(ev.get("user").is_none(), "a server event without an IP keeps none");
        let mut ev = serde_json::json!({"platform": "javascript", "user": {"ip_address": "1.2.3.4"}});
        fill_ip(ev.as_object_mut().unwrap(), "10.0.0.1");
        assert_eq!(ev["user"]["ip_address"], "1.2.3.4");
    }
}
