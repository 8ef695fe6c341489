//! The notifier: a durable outbox in the database and the senders that empty it.
//!
//! Whatever raises a notification (an alert, later an error group or a lost
//! order) writes a [`NewNotification`] into the `notifications` table, in the
//! same transaction as its own state when it has any
//! ([`crate::db::insert_notifications`]), or through [`Notifier::enqueue`].
//! Nothing is sent before the row is committed, so a crash never loses one.
//! The worker started by [`Notifier::start`] then:
//!
//! 1. picks due rows (`pending`, `next_attempt_at` reached, not claimed), at
//!    most `max_concurrency` at once and at most `per_destination_concurrency`
//!    per destination (an SMTP relay, a webhook host), so a slow or unreachable
//!    destination holds up only its own messages;
//! 2. claims them (a lease in the row), sends each with a connect timeout and a
//!    total timeout per attempt, and records the attempt;
//! 3. on success marks the row `sent`; on a transient failure (network,
//!    timeout, HTTP 408/429/5xx, SMTP 4xx) keeps it `pending` and due again
//!    after an exponential backoff with jitter (`retry_base` doubling up to
//!    `retry_max`); on a permanent failure (HTTP 4xx, SMTP 5xx, a message that
//!    cannot be built) or once it has failed for `give_up_after`, marks it
//!    `failed`. A failed row stays visible and `POST
//!    /api/v1/notifications/{id}/retry` makes it due again.
//!
//! Sending is at least once: a crash between a delivery and its record sends
//! it again at the next start (claims left by a stopped process are released
//! when the next one starts). Emails keep one `Message-ID` across attempts and
//! webhooks carry `X-Orderwatch-Notification-Id`, so receivers can drop repeats.
//!
//! Channels: `smtp.rs` (email), `http.rs` (Papertrail-style form webhooks,
//! signed JSON webhooks, Slack, Telegram). Adding one means a [`Message`]
//! variant, its sender, and its arms in [`Message::target`] and
//! [`Message::destination`].
//!
//! Secrets (webhook secrets, bot tokens, webhook URLs' paths, the SMTP
//! password) are in the stored message and nowhere else: the API, the logs,
//! `Debug` and error messages show [`Message::target`], which masks them.

pub mod http;
pub mod smtp;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::db::{AttemptOutcome, Db, DbError, DueNotification};
use crate::event::now_micros;

pub use smtp::{SmtpSettings, SmtpTls};

/// Every channel's name, as [`Message::channel`] gives it.
pub const CHANNELS: [&str; 5] = ["email", "webhook", "webhook_json", "slack", "telegram"];

/// What to send, and where. Stored as JSON in the outbox row, tagged by `channel`.
#[derive(Serialize, Deserialize, Clone, PartialEq)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum Message {
    /// An email through the configured SMTP server, from `smtp_from`. With
    /// `html`, a multipart/alternative of the text and the HTML.
    Email {
        to: Vec<String>,
        #[serde(default)]
        cc: Vec<String>,
        subject: String,
        text: String,
        #[serde(default)]
        html: Option<String>,
    },
    /// The hosted log service's webhook: `POST url` with the form field `payload`
    /// (`application/x-www-form-urlencoded`), whose value is JSON text.
    Webhook { url: String, payload: String },
    /// `POST url` with `body` as `application/json`, signed with `secret`
    /// (see [`http`] for the signature and how to verify it).
    WebhookJson {
        url: String,
        body: String,
        secret: String,
    },
    /// A Slack incoming webhook: `POST url` with `{"text": text}`.
    Slack { url: String, text: String },
    /// The Telegram Bot API's `sendMessage` to `chat_id`.
    Telegram {
        bot_token: String,
        chat_id: String,
        text: String,
    },
}

/// Debug shows the masked target, never a secret, a bot token or a full webhook URL.
impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("channel", &self.channel())
            .field("target", &self.target())
            .field("summary", &self.summary())
            .finish_non_exhaustive()
    }
}

impl Message {
    /// The channel's name, as stored and shown: `email`, `webhook`,
    /// `webhook_json`, `slack`, `telegram`.
    pub fn channel(&self) -> &'static str {
        match self {
            Message::Email { .. } => "email",
            Message::Webhook { .. } => "webhook",
            Message::WebhookJson { .. } => "webhook_json",
            Message::Slack { .. } => "slack",
            Message::Telegram { .. } => "telegram",
        }
    }

    /// The destination for people, secrets masked: the recipients of an
    /// email, a webhook URL's scheme, host and first path segment, a Telegram
    /// bot's public id and the chat.
    pub fn target(&self) -> String {
        match self {
            Message::Email { to, cc, .. } => {
                let mut t = to.join(", ");
                if !cc.is_empty() {
                    if !t.is_empty() {
                        t.push_str("; ");
                    }
                    t.push_str("cc ");
                    t.push_str(&cc.join(", "));
                }
                t
            }
            Message::Webhook { url, .. }
            | Message::WebhookJson { url, .. }
            | Message::Slack { url, .. } => mask_url(url),
            Message::Telegram {
                bot_token, chat_id, ..
            } => {
                // A token is "<bot id>:<secret>"; the id is public.
                let bot = bot_token.split_once(':').map_or("?", |(id, _)| id);
                format!("telegram bot {bot}, chat {chat_id}")
            }
        }
    }

    /// What may be slow or unreachable, for the per-destination limit: the
    /// SMTP server, a webhook's host and port, the Telegram API.
    pub fn destination(&self) -> String {
        match self {
            Message::Email { .. } => "smtp".into(),
            Message::Webhook { url, .. }
            | Message::WebhookJson { url, .. }
            | Message::Slack { url, .. } => match url::Url::parse(url) {
                Ok(u) => format!(
                    "{}://{}:{}",
                    u.scheme(),
                    u.host_str().unwrap_or(""),
                    u.port_or_known_default().unwrap_or(0)
                ),
                Err(_) => "invalid-url".into(),
            },
            Message::Telegram { .. } => "telegram".into(),
        }
    }

    /// One line about the content, for lists: an email's subject, the start of
    /// a chat message, a webhook body's size.
    pub fn summary(&self) -> String {
        fn first_line(s: &str) -> String {
            let line = s
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            truncate_chars(line, 200)
        }
        match self {
            Message::Email { subject, .. } => truncate_chars(subject, 200),
            Message::Webhook { payload, .. } => format!("payload of {} bytes", payload.len()),
            Message::WebhookJson { body, .. } => format!("JSON body of {} bytes", body.len()),
            Message::Slack { text, .. } | Message::Telegram { text, .. } => first_line(text),
        }
    }
}

/// `s` cut to at most `max` characters, with "…" when cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((i, _)) => {
            let mut t = s[..i].to_owned();
            t.pop();
            t.push('…');
            t
        }
    }
}

/// A URL for people: scheme, host, port, and the first path segment when it
/// is short; the rest of the path, the query and any user info become "…"
/// (webhook URLs carry their secret there: Slack's `/services/T…/B…/<secret>`).
pub fn mask_url(url: &str) -> String {
    let Ok(u) = url::Url::parse(url) else {
        return "(not a valid URL)".into();
    };
    let mut out = format!("{}://{}", u.scheme(), u.host_str().unwrap_or(""));
    if let Some(p) = u.port() {
        out.push_str(&format!(":{p}"));
    }
    let mut segments = u
        .path_segments()
        .map(|s| s.filter(|x| !x.is_empty()).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(first) = segments.first() {
        if first.len() < 16 {
            out.push('/');
            out.push_str(first);
            segments.remove(0);
        }
        if !segments.is_empty() {
            out.push_str("/…");
        }
    }
    if u.query().is_some() {
        out.push_str("?…");
    }
    out
}

/// A notification to store: what raised it, an optional key that makes a
/// second enqueue of the same thing a no-op, and the message.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotification {
    /// What raised it, e.g. `alert:12`, `error_group:3`.
    pub source: String,
    /// The same key enqueued twice is stored once.
    pub dedup_key: Option<String>,
    pub message: Message,
}

/// How the notifier sends: the SMTP server, timeouts, limits and the retry policy.
#[derive(Clone, Debug)]
pub struct NotifySettings {
    /// None: email notifications wait (pending, with an error saying so).
    pub smtp: Option<SmtpSettings>,
    /// The `From` of every email.
    pub smtp_from: Option<lettre::message::Mailbox>,
    /// Where the Telegram Bot API is (tests point it at a local server).
    pub telegram_api_base: String,
    /// Connecting to an HTTP destination (TCP and TLS).
    pub connect_timeout: Duration,
    /// One whole attempt: connect, send, answer. For SMTP it also bounds
    /// the connect and each command (a server may take its time after DATA).
    pub timeout: Duration,
    /// Attempts in flight at once.
    pub max_concurrency: usize,
    /// Attempts in flight at once against one destination.
    pub per_destination_concurrency: usize,
    /// The wait after the first failure; it doubles with each failure…
    pub retry_base: Duration,
    /// …up to this.
    pub retry_max: Duration,
    /// A notification failing for this long (since it was enqueued or retried) is marked failed.
    pub give_up_after: Duration,
    /// How often the worker looks for due rows even when nobody woke it
    /// (rows inserted by another process, claims whose lease ran out).
    pub poll_interval: Duration,
    /// How long `shutdown` lets attempts in flight finish before leaving them pending.
    pub shutdown_grace: Duration,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            smtp: None,
            smtp_from: None,
            telegram_api_base: "https://api.telegram.org".into(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_concurrency: 16,
            per_destination_concurrency: 4,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            give_up_after: Duration::from_secs(3 * 24 * 3600),
            poll_interval: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct SendError {
    /// Retrying cannot help (HTTP 4xx, SMTP 5xx, an invalid address).
    pub permanent: bool,
    pub message: String,
    /// The destination asked for this wait (HTTP `Retry-After`, Telegram's `retry_after`).
    pub retry_after: Option<Duration>,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError {
            permanent: false,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            permanent: true,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The wait before attempt `failures + 1`: `base · 2^(failures-1)`, at most
/// `cap`, times a factor from 0.5 to 1 (`jitter` in 0..1), so that messages
/// that failed together do not all come back at the same instant.
pub fn backoff(failures: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exp).min(cap);
    full.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// The senders of every channel, built once from the settings.
struct Senders {
    http: Result<http::HttpSender, String>,
    smtp: Option<Result<smtp::SmtpSender, String>>,
}

impl Senders {
    fn new(s: &NotifySettings) -> Senders {
        let smtp = s.smtp.as_ref().map(|cfg| match &s.smtp_from {
            Some(from) => smtp::SmtpSender::new(cfg, from.clone(), s.timeout),
            None => Err("SMTP has no From address: start orderwatch with --smtp-from ADDR (or ORDERWATCH_SMTP_FROM, or notify.smtp_from)".into()),
        });
        Senders {
            http: http::HttpSender::new(s),
            smtp,
        }
    }

    async fn send(&self, n: &DueNotification, msg: &Message) -> Result<(), SendError> {
        let http = || {
            self.http
                .as_ref()
                .map_err(|e| SendError::transient(e.clone()))
        };
        match msg {
            Message::Email {
                to,
                cc,
                subject,
                text,
                html,
            } => match &self.smtp {
                None => Err(SendError::transient(
                    "SMTP is not configured: start orderwatch with --smtp URL (or ORDERWATCH_SMTP_URL, or notify.smtp_url in the config) and --smtp-from ADDR",
                )),
                Some(Err(e)) => Err(SendError::transient(e.clone())),
                Some(Ok(s)) => {
                    let email = smtp::Email {
                        to,
                        cc,
                        subject,
                        text,
                        html: html.as_deref(),
                    };
                    s.send(n.id, n.created_at, &email).await
                }
            },
            Message::Webhook { url, payload } => http()?.webhook(n.id, url, payload).await,
            Message::WebhookJson { url, body, secret } => {
                http()?.webhook_json(n.id, url, body, secret).await
            }
            Message::Slack { url, text } => http()?.slack(url, text).await,
            Message::Telegram {
                bot_token,
                chat_id,
                text,
            } => http()?.telegram(bot_token, chat_id, text).await,
        }
    }
}

/// The handle on the outbox and its worker; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    wake: Notify,
    stop: CancellationToken,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// An SMTP server and a From address are configured.
    can_email: bool,
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Notifier")
    }
}

impl Notifier {
    /// Starts the worker (on the current tokio runtime). Rows a previous
    /// process left pending, or claimed and never finished, are due at once.
    pub fn start(db: Db, settings: NotifySettings) -> Notifier {
        if let Some(s) = &settings.smtp
            && s.tls == SmtpTls::None
            && s.username.is_some()
            && !s.is_loopback()
        {
            tracing::warn!(smtp = %s, "the SMTP password goes over the network unencrypted (tls=none)");
        }
        crate::telemetry::register_notifications();
        let inner = Arc::new(Inner {
            db,
            wake: Notify::new(),
            stop: CancellationToken::new(),
            worker: Mutex::new(None),
            can_email: settings.smtp.is_some() && settings.smtp_from.is_some(),
        });
        let handle = tokio::spawn(run(inner.clone(), Arc::new(settings)));
        *inner.worker.lock().unwrap() = Some(handle);
        Notifier { inner }
    }

    /// Stores the notifications (durably, before anything is sent) and wakes
    /// the worker. Returns the ids of the rows inserted; an item whose
    /// `dedup_key` is already stored is skipped.
    pub async fn enqueue(&self, items: &[NewNotification]) -> Result<Vec<i64>, DbError> {
        let ids = self.inner.db.enqueue(items).await?;
        if !ids.is_empty() {
            self.wake();
        }
        Ok(ids)
    }

    /// Tells the worker to look for due rows now: for callers that inserted
    /// through their own transaction (after the commit).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Whether emails can be sent (SMTP and a From address are configured).
    pub fn can_email(&self) -> bool {
        self.inner.can_email
    }

    /// The database the outbox lives in (for the API).
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Stops the worker: no new attempts; attempts in flight get
    /// `shutdown_grace` to finish and are otherwise left pending (sent again
    /// at the next start). Later calls return at once.
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        let handle = self.inner.worker.lock().unwrap().take();
        if let Some(h) = handle
            && let Err(e) = h.await
        {
            tracing::error!(error = %e, "the notifier's worker failed");
        }
    }
}

/// How long a claim holds: longer than any attempt can take, so a row is
/// only taken over when its process is gone.
fn lease(s: &NotifySettings) -> Duration {
    s.timeout * 2 + Duration::from_secs(60)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

async fn run(inner: Arc<Inner>, settings: Arc<NotifySettings>) {
    let senders = Arc::new(Senders::new(&settings));
    // One notifier per database: claims still held are a stopped process's.
    match inner.db.release_notification_claims().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            notifications = n,
            "notifications a previous run left in flight are due again"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot release old notification claims; they are taken over when their lease ends")
        }
    }
    let mut inflight: JoinSet<()> = JoinSet::new();
    // The destination of each attempt in flight, and how many each has.
    let mut task_dest: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut per_dest: HashMap<String, usize> = HashMap::new();
    let finished = |id: tokio::task::Id,
                    task_dest: &mut HashMap<tokio::task::Id, String>,
                    per_dest: &mut HashMap<String, usize>| {
        if let Some(d) = task_dest.remove(&id)
            && let Some(n) = per_dest.get_mut(&d)
        {
            *n -= 1;
            if *n == 0 {
                per_dest.remove(&d);
            }
        }
    };
    loop {
        let mut next = tokio::time::Instant::now() + settings.poll_interval;
        match fill(
            &inner.db,
            &settings,
            &senders,
            &mut inflight,
            &mut task_dest,
            &mut per_dest,
        )
        .await
        {
            Ok(Some(due_at)) => {
                let wait = Duration::from_micros(due_at.saturating_sub(now_micros()).max(0) as u64);
                next = next.min(tokio::time::Instant::now() + wait);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the notifier cannot read the outbox; trying again in 1 s");
                next = next.min(tokio::time::Instant::now() + Duration::from_secs(1));
            }
        }
        tokio::select! {
            _ = inner.stop.cancelled() => break,
            _ = inner.wake.notified() => {}
            Some(r) = inflight.join_next_with_id(), if !inflight.is_empty() => {
                let id = match r {
                    Ok((id, ())) => id,
                    Err(e) => {
                        tracing::error!(error = %e, "a notification attempt panicked; it is retried after its lease");
                        e.id()
                    }
                };
                finished(id, &mut task_dest, &mut per_dest);
            }
            _ = tokio::time::sleep_until(next) => {}
        }
    }
    if inflight.is_empty() {
        return;
    }
    let drain = async { while inflight.join_next().await.is_some() {} };
    if tokio::time::timeout(settings.shutdown_grace, drain)
        .await
        .is_err()
    {
        tracing::warn!(
            attempts = inflight.len(),
            "notification attempts still in flight at shutdown are left pending; they are sent at the next start"
        );
        inflight.abort_all();
        while inflight.join_next().await.is_some() {}
    }
}

/// Starts attempts for due rows while there is room; returns when the next
/// row not yet due will be.
async fn fill(
    db: &Db,
    settings: &Arc<NotifySettings>,
    senders: &Arc<Senders>,
    inflight: &mut JoinSet<()>,
    task_dest: &mut HashMap<tokio::task::Id, String>,
    per_dest: &mut HashMap<String, usize>,
) -> Result<Option<i64>, DbError> {
    let now = now_micros();
    let room = settings.max_concurrency.saturating_sub(inflight.len());
    if room > 0 {
        let rows = db
            .due_notifications(now, settings.per_destination_concurrency, 500)
            .await?;
        let mut chosen = Vec::new();
        let mut planned: HashMap<&str, usize> = HashMap::new();
        for row in &rows {
            if chosen.len() >= room {
                break;
            }
            let busy = per_dest.get(&row.destination).copied().unwrap_or(0);
            let p = planned.entry(row.destination.as_str()).or_default();
            if busy + *p >= settings.per_destination_concurrency {
                continue;
            }
            *p += 1;
            chosen.push(row.id);
        }
        if !chosen.is_empty() {
            let claimed = db
                .claim_notifications(&chosen, now, now + micros(lease(settings)))
                .await?;
            for row in rows.into_iter().filter(|r| claimed.contains(&r.id)) {
                let dest = row.destination.clone();
                let h = inflight.spawn(attempt(db.clone(), senders.clone(), settings.clone(), row));
                task_dest.insert(h.id(), dest.clone());
                *per_dest.entry(dest).or_default() += 1;
            }
        }
    }
    db.next_notification_due_after(now).await
}

/// One attempt at one notification, recorded whatever happens.
async fn attempt(
    db: Db,
    senders: Arc<Senders>,
    settings: Arc<NotifySettings>,
    row: DueNotification,
) {
    let at = now_micros();
    let started = std::time::Instant::now();
    let result = match serde_json::from_str::<Message>(&row.message) {
        Err(e) => Err(SendError::permanent(format!(
            "the stored message cannot be read ({e}); was it written by a newer orderwatch?"
        ))),
        Ok(msg) => match tokio::time::timeout(settings.timeout, senders.send(&row, &msg)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::transient(format!(
                "no answer within {} (notify.timeout)",
                humantime::format_duration(settings.timeout)
            ))),
        },
    };
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let now = now_micros();
    let outcome = match result {
        Ok(()) => {
            tracing::info!(id = row.id, channel = %row.channel, target = %row.target, "notification sent");
            AttemptOutcome::Sent
        }
        Err(e) => {
            let gave_up = now.saturating_sub(row.due_since) >= micros(settings.give_up_after);
            if e.permanent || gave_up {
                let error = if e.permanent {
                    e.message
                } else {
                    format!(
                        "gave up after failing for {} (notify.give_up_after): {}",
                        humantime::format_duration(settings.give_up_after),
                        e.message
                    )
                };
                tracing::warn!(id = row.id, channel = %row.channel, target = %row.target, error = %error, "notification failed; retry it with POST /api/v1/notifications/{}/retry", row.id);
                AttemptOutcome::Failed { error }
            } else {
                let failures = u32::try_from(row.failures + 1).unwrap_or(u32::MAX);
                let mut wait = backoff(
                    failures,
                    settings.retry_base,
                    settings.retry_max,
                    rand::random::<f64>(),
                );
                if let Some(asked) = e.retry_after {
                    wait = wait.max(asked.min(Duration::from_secs(3600)));
                }
                tracing::warn!(id = row.id, channel = %row.channel, target = %row.target, error = %e.message, retry_in = %humantime::format_duration(Duration::from_millis(wait.as_millis() as u64)), "notification attempt failed");
                AttemptOutcome::Retry {
                    error: e.message,
                    next_attempt_at: now + micros(wait),
                }
            }
        }
    };
    crate::telemetry::notification_attempt(&row.channel, outcome.name());
    // A busy database must not turn a delivered notification into a resend.
    let mut wait = Duration::from_millis(100);
    for _ in 0..8 {
        match db
            .record_notification_attempt(row.id, at, duration_ms, &outcome)
            .await
        {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(id = row.id, error = %e, "cannot record a notification attempt; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
        }
    }
    tracing::error!(
        id = row.id,
        "gave up recording a notification attempt; the notification is attempted again after its lease"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_base_to_cap_with_jitter() {
        let (b, c) = (Duration::from_secs(1), Duration::from_secs(300));
        let full: Vec<u64> = (1..=12).map(|n| backoff(n, b, c, 1.0).as_secs()).collect();
        assert_eq!(full, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(1, b, c, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(10_000, b, c, 0.0), Duration::from_secs(150));
    }

    #[test]
    fn targets_mask_secrets() {
        let cases = [
            (
                Message::Slack {
                    url: "https://hooks.slack.com/services/T000/B000/XXXXSECRET".into(),
                    text: "hi".into(),
                },
                "https://hooks.slack.com/services/…",
            ),
            (
                Message::Webhook {
                    url: "http://user:pw@127.0.0.1:8081/hook?token=SECRET".into(),
                    payload: "{}".into(),
                },
                "http://127.0.0.1:8081/hook?…",
            ),
            (
                Message::WebhookJson {
                    url: "https://shop.example/0123456789abcdef0123SECRET".into(),
                    body: "{}".into(),
                    secret: "SECRET".into(),
                },
                "https://shop.example/…",
            ),
            (
                Message::Telegram {
                    bot_token: "123456:SECRET".into(),
                    chat_id: "-1001".into(),
                    text: "x".into(),
                },
                "telegram bot 123456, chat -1001",
            ),
            (
                Message::Email {
                    to: vec!["a@shop.example".into(), "b@shop.example".into()],
                    cc: vec!["dev@shop.example".into()],
                    subject: "s".into(),
                    text: "t".into(),
                    html: None,
                },
                "a@shop.example, b@shop.example; cc dev@shop.example",
            ),
        ];
        for (m, want) in cases {
            assert_eq!(m.target(), want);
            let debug = format!("{m:?}");
            assert!(!debug.contains("SECRET"), "{debug}");
        }
    }

    #[test]
    fn message_json_is_tagged_by_channel() {
        let m = Message::WebhookJson {
            url: "http://h/".into(),
            body: "{}".into(),
            secret: "s".into(),
        };
        let v: serde_json::Value = serde_json::to_value(&m).unwrap();
        assert_eq!(v["channel"], "webhook_json");
        // cc and html may be left out.
        let e: Message =
            serde_json::from_str(r#"{"channel":"email","to":["a@b.c"],"subject":"s","text":"t"}"#)
                .unwrap();
        assert_eq!(e.channel(), "email");
        assert_eq!(serde_json::from_value::<Message>(v).unwrap(), m);
    }

    #[test]
    fn destinations_group_by_host() {
        let a = Message::Webhook {
            url: "https://h.example/a".into(),
            payload: String::new(),
        };
        let b = Message::Slack {
            url: "https://h.example/b/c".into(),
            text: String::new(),
        };
        assert_eq!(a.destination(), b.destination());
        assert_eq!(a.destination(), "https://h.example:443");
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("привет", 10), "привет");
        assert_eq!(truncate_chars("привет", 4), "при…");
    }
}
