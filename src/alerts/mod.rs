//! Saved searches and their alerts: what a search and an alert are (the shape
//! the API and the config file share), how a definition is checked, and the
//! engine (`engine.rs`) that evaluates every stored line against every saved
//! search and raises notifications (`render.rs` writes them).
//!
//! An alert is one of:
//! - **immediate**: every matching line is delivered; the first of a burst at
//!   once, the following ones grouped for `batch` (default 500 ms);
//! - **periodic**: every `interval` (1m, 10m, 1h, 1d, on the clock of the
//!   alert's zone), the lines matched since the previous evaluation, when there
//!   are at least `threshold` (default 1) of them;
//! - **inactivity**: fires when fewer than `threshold` (default 1) lines matched
//!   in the last `interval`, optionally only within `active_hours` ("09:00-21:00"
//!   in the alert's zone), and says when it recovers.
//!
//! Windows are keyed by event id: an alert's cursor is the last id it has
//! accounted for, advanced in the same database transaction that stores its
//! notification, so no line falls between two evaluations and none is reported
//! twice, across restarts too.

pub mod engine;
pub mod groups;
pub mod render;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::query;

/// The largest number of alerts one saved search may have.
pub const MAX_ALERTS: usize = 50;

/// A saved search as written in the config file or posted to the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchDef {
    pub name: String,
    pub query: String,
    #[serde(default)]
    pub alerts: Vec<AlertDef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Immediate,
    Periodic,
    Inactivity,
}

/// One alert of a saved search, as written (validated by [`AlertDef::check`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertDef {
    pub kind: AlertKind,
    /// periodic: "1m", "10m", "1h" or "1d"; inactivity: the window, e.g. "30m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// periodic: the fewest matches that raise it; inactivity: fewer than this raise it. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u64>,
    /// IANA zone every time in the alert is shown in; default: the server's zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// immediate: how long the lines after the first of a burst are gathered. Default 500ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<String>,
    /// inactivity: the hours of the day it watches, e.g. "09:00-21:00"; default all day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_hours: Option<String>,
    pub destination: Destination,
}

/// Where an alert's notifications go. Written as one of
/// `{"webhook": URL}`, `{"webhook_json": URL, "secret": S}`,
/// `{"email": {"to": [...], "cc": [...]}}`, `{"slack": URL}`,
/// `{"telegram": {"bot_token": T, "chat_id": C}}`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DestinationRepr", into = "DestinationRepr")]
pub enum Destination {
    Webhook { url: String },
    WebhookJson { url: String, secret: String },
    Email { to: Vec<String>, cc: Vec<String> },
    Slack { url: String },
    Telegram { bot_token: String, chat_id: String },
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_json: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<EmailRepr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    telegram: Option<TelegramRepr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailRepr {
    to: Vec<String>,
    #[serde(default)]
    cc: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TelegramRepr {
    bot_token: String,
    chat_id: ChatId,
}

/// Telegram chat ids are numbers (or "@channel" names); accept both spellings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum ChatId {
    Number(i64),
    Text(String),
}

impl TryFrom<DestinationRepr> for Destination {
    type Error = String;
    fn try_from(r: DestinationRepr) -> Result<Self, String> {
        let given =
            [r.webhook.is_some(), r.webhook_json.is_some(), r.email.is_some(), r.slack.is_some(), r.telegram.is_some()]
                .iter()
                .filter(|b| **b)
                .count();
        if given != 1 {
            return Err(
                "a destination is exactly one of webhook, webhook_json (with secret), email, slack, telegram".into()
            );
        }
        if r.secret.is_some() && r.webhook_json.is_none() {
            return Err("`secret` belongs to a webhook_json destination".into());
        }
        Ok(if let Some(url) = r.webhook {
            Destination::Webhook { url }
        } else if let Some(url) = r.webhook_json {
            let secret = r.secret.ok_or("a webhook_json destination needs a `secret` to sign with")?;
            Destination::WebhookJson { url, secret }
        } else if let Some(e) = r.email {
            Destination::Email { to: e.to, cc: e.cc }
        } else if let Some(url) = r.slack {
            Destination::Slack { url }
        } else {
            let t = r.telegram.expect("counted above");
            let chat_id = match t.chat_id {
                ChatId::Number(n) => n.to_string(),
                ChatId::Text(s) => s,
            };
            Destination::Telegram { bot_token: t.bot_token, chat_id }
        })
    }
}

impl From<Destination> for DestinationRepr {
    fn from(d: Destination) -> Self {
        let mut r = DestinationRepr::default();
        match d {
            Destination::Webhook { url } => r.webhook = Some(url),
            Destination::WebhookJson { url, secret } => {
                r.webhook_json = Some(url);
                r.secret = Some(secret);
            }
            Destination::Email { to, cc } => r.email = Some(EmailRepr { to, cc }),
            Destination::Slack { url } => r.slack = Some(url),
            Destination::Telegram { bot_token, chat_id } => {
                let chat_id = chat_id.parse::<i64>().map(ChatId::Number).unwrap_or(ChatId::Text(chat_id));
                r.telegram = Some(TelegramRepr { bot_token, chat_id })
            }
        }
        r
    }
}

/// Masked: a `Debug` print (a config dump, a log line) never shows a secret.
impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(&self.masked()).map_err(|_| std::fmt::Error)?)
    }
}

/// What the API shows for a secret it keeps.
pub const MASKED: &str = "***";

/// One notification in every form a destination takes it: an email's
/// subject, text and HTML, the webhooks' JSON, and the chats' text (the
/// subject goes in front of it).
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    pub json: serde_json::Value,
    pub chat: String,
}

/// Telegram refuses messages longer than 4096 characters.
const TELEGRAM_MAX_CHARS: usize = 4000;

impl Destination {
    /// The message for this destination. Slack's text is escaped (`<…>` would
    /// be read as links and mentions), Telegram's cut to its limit.
    pub fn message(&self, r: Rendered) -> crate::notify::Message {
        use crate::notify::Message;
        match self {
            Destination::Email { to, cc } => {
                Message::Email { to: to.clone(), cc: cc.clone(), subject: r.subject, text: r.text, html: Some(r.html) }
            }
            Destination::Webhook { url } => Message::Webhook { url: url.clone(), payload: r.json.to_string() },
            Destination::WebhookJson { url, secret } => {
                Message::WebhookJson { url: url.clone(), body: r.json.to_string(), secret: secret.clone() }
            }
            Destination::Slack { url } => Message::Slack {
                url: url.clone(),
                text: format!("*{}*\n{}", r.subject, r.chat).replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
            },
            Destination::Telegram { bot_token, chat_id } => Message::Telegram {
                bot_token: bot_token.clone(),
                chat_id: chat_id.clone(),
                text: format!("{}\n{}", r.subject, r.chat).chars().take(TELEGRAM_MAX_CHARS).collect(),
            },
        }
    }

    /// The destination as people may see it: the signing secret and the
    /// Telegram token hidden, URLs cut to scheme, host and first path segment
    /// (webhook URLs carry their secret in the path or the query).
    pub fn masked(&self) -> Destination {
        let url = |u: &str| crate::notify::mask_url(u);
        match self {
            Destination::Webhook { url: u } => Destination::Webhook { url: url(u) },
            Destination::WebhookJson { url: u, .. } => Destination::WebhookJson { url: url(u), secret: MASKED.into() },
            Destination::Email { .. } => self.clone(),
            Destination::Slack { url: u } => Destination::Slack { url: url(u) },
            Destination::Telegram { bot_token, chat_id } => Destination::Telegram {
                bot_token: format!("{}:{MASKED}", bot_token.split(':').next().unwrap_or("")),
                chat_id: chat_id.clone(),
            },
        }
    }

    /// A destination sent back as it was shown (masked) means the stored one:
    /// so a client may GET a search, change something else, and PUT it back.
    pub fn unmask_from<'a>(&mut self, stored: impl IntoIterator<Item = &'a Destination>) {
        if let Some(d) = stored.into_iter().find(|d| d.masked() == *self && **d != *self) {
            *self = d.clone();
        }
    }
}

/// A periodic alert's cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Minute,
    TenMinutes,
    Hour,
    Day,
}

impl Period {
    pub fn micros(self) -> i64 {
        match self {
            Period::Minute => 60_000_000,
            Period::TenMinutes => 600_000_000,
            Period::Hour => 3_600_000_000,
            Period::Day => 86_400_000_000,
        }
    }

    /// As the hosted service writes it in its webhook payload ("1 hour").
    pub fn frequency(self) -> &'static str {
        match self {
            Period::Minute => "1 minute",
            Period::TenMinutes => "10 minutes",
            Period::Hour => "1 hour",
            Period::Day => "1 day",
        }
    }

    /// "in the past hour".
    pub fn past(self) -> &'static str {
        match self {
            Period::Minute => "in the past minute",
            Period::TenMinutes => "in the past 10 minutes",
            Period::Hour => "in the past hour",
            Period::Day => "in the past day",
        }
    }
}

/// Minutes after local midnight, start inclusive, end exclusive; end < start wraps past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveHours {
    pub start: u16,
    pub end: u16,
}

impl ActiveHours {
    pub fn contains(self, minute_of_day: u16) -> bool {
        if self.start <= self.end {
            (self.start..self.end).contains(&minute_of_day)
        } else {
            minute_of_day >= self.start || minute_of_day < self.end
        }
    }
}

/// What an alert does, checked and in the types the engine runs on.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    Immediate { batch: Duration },
    Periodic { period: Period, threshold: u64 },
    Inactivity { window: Duration, threshold: u64, active_hours: Option<ActiveHours> },
}

/// A checked alert.
#[derive(Debug, Clone)]
pub struct Alert {
    pub rule: Rule,
    pub zone: jiff::tz::TimeZone,
    pub zone_name: String,
    pub destination: Destination,
}

impl AlertDef {
    /// Checks the definition; `default_zone` is used when it names none.
    /// Errors name the field and say what is expected.
    pub fn check(&self, default_zone: &jiff::tz::TimeZone) -> Result<Alert, String> {
        let (zone, zone_name) = match &self.time_zone {
            Some(name) => (
                jiff::tz::TimeZone::get(name).map_err(|_| {
                    format!("time_zone: {name:?} is not an IANA zone name; write e.g. \"Europe/Volgograd\"")
                })?,
                name.clone(),
            ),
            None => (default_zone.clone(), default_zone.iana_name().unwrap_or("UTC").to_owned()),
        };
        let threshold = self.threshold.unwrap_or(1);
        let only = |field: &str, value: bool, kinds: &str| {
            if value { Err(format!("{field}: only {kinds} alerts take it")) } else { Ok(()) }
        };
        let rule = match self.kind {
            AlertKind::Immediate => {
                only("interval", self.interval.is_some(), "periodic and inactivity")?;
                only("threshold", self.threshold.is_some(), "periodic and inactivity")?;
                only("active_hours", self.active_hours.is_some(), "inactivity")?;
                let batch = match &self.batch {
                    Some(b) => {
                        let d = parse_duration("batch", b)?;
                        if d > Duration::from_secs(3600) {
                            return Err("batch: at most 1h".into());
                        }
                        d
                    }
                    None => Duration::from_millis(500),
                };
                Rule::Immediate { batch }
            }
            AlertKind::Periodic => {
                only("batch", self.batch.is_some(), "immediate")?;
                only("active_hours", self.active_hours.is_some(), "inactivity")?;
                let period = match self.interval.as_deref().map(str::trim) {
                    Some("1m") => Period::Minute,
                    Some("10m") => Period::TenMinutes,
                    Some("1h") => Period::Hour,
                    Some("1d") => Period::Day,
                    Some(other) => {
                        return Err(format!(
                            "interval: {other:?} is not a period; write \"1m\", \"10m\", \"1h\" or \"1d\""
                        ));
                    }
                    None => {
                        return Err("interval: a periodic alert needs one of \"1m\", \"10m\", \"1h\", \"1d\"".into());
                    }
                };
                if threshold == 0 {
                    return Err("threshold: at least 1 (a periodic alert with no match has nothing to say)".into());
                }
                Rule::Periodic { period, threshold }
            }
            AlertKind::Inactivity => {
                only("batch", self.batch.is_some(), "immediate")?;
                let window = match &self.interval {
                    Some(i) => parse_duration("interval", i)?,
                    None => {
                        return Err("interval: an inactivity alert needs its window, e.g. \"30m\"".into());
                    }
                };
                if window < Duration::from_secs(60) || window > Duration::from_secs(7 * 86_400) {
                    return Err("interval: an inactivity window is from 1m to 7d".into());
                }
                if threshold == 0 {
                    return Err("threshold: at least 1 (fewer than 0 matches can never happen)".into());
                }
                if threshold > 100_000 {
                    return Err("threshold: at most 100000".into());
                }
                let active_hours = self.active_hours.as_deref().map(parse_active_hours).transpose()?;
                Rule::Inactivity { window, threshold, active_hours }
            }
        };
        check_destination(&self.destination)?;
        Ok(Alert { rule, zone, zone_name, destination: self.destination.clone() })
    }
}

fn parse_duration(field: &str, v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v.trim())
        .map_err(|_| format!("{field}: {v:?} is not a duration; write e.g. \"500ms\", \"30s\", \"30m\""))
}

/// "09:00-21:00" → minutes of the day.
pub fn parse_active_hours(v: &str) -> Result<ActiveHours, String> {
    let err = || format!("active_hours: {v:?} is not a range of hours; write e.g. \"09:00-21:00\"");
    let (a, b) = v.trim().split_once('-').ok_or_else(err)?;
    let minute = |s: &str| -> Option<u16> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    let (start, end) = (minute(a).ok_or_else(err)?, minute(b).ok_or_else(err)?);
    if start == end || (start, end) == (0, 24 * 60) {
        return Err(format!("active_hours: {v:?} is empty or the whole day; leave it out to watch all day"));
    }
    Ok(ActiveHours { start, end: end % (24 * 60) })
}

fn check_url(field: &str, url: &str) -> Result<(), String> {
    if url.contains('…') {
        return Err(format!("destination.{field}: {url:?} is masked (as the API shows it); give the whole URL"));
    }
    match reqwest::Url::parse(url) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => Ok(()),
        _ => Err(format!("destination.{field}: {url:?} is not an http(s) URL")),
    }
}

/// A plausible address: one `@` with something on both sides, no spaces or angle brackets.
pub fn check_email(field: &str, addr: &str) -> Result<(), String> {
    let ok = addr.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@'))
        && !addr.chars().any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',');
    if ok { Ok(()) } else { Err(format!("destination.email.{field}: {addr:?} is not an email address")) }
}

pub(crate) fn check_destination(d: &Destination) -> Result<(), String> {
    match d {
        Destination::Webhook { url } => check_url("webhook", url),
        Destination::WebhookJson { url, secret } => {
            check_url("webhook_json", url)?;
            if secret.len() < 16 {
                return Err("destination.secret: use at least 16 characters".into());
            }
            Ok(())
        }
        Destination::Email { to, cc } => {
            if to.is_empty() {
                return Err("destination.email.to: at least one address".into());
            }
            to.iter().try_for_each(|a| check_email("to", a))?;
            cc.iter().try_for_each(|a| check_email("cc", a))
        }
        Destination::Slack { url } => check_url("slack", url),
        Destination::Telegram { bot_token, chat_id } => {
            if bot_token.trim().is_empty() || bot_token.contains('/') || bot_token.contains(char::is_whitespace) {
                return Err(
                    "destination.telegram.bot_token: the token the BotFather gave, e.g. \"123456:ABC-DEF\"".into()
                );
            }
            if chat_id.trim().is_empty() {
                return Err("destination.telegram.chat_id: the chat's id, e.g. -1001234567890".into());
            }
            Ok(())
        }
    }
}

impl SearchDef {
    /// Checks the name, the query and every alert; the error names what is wrong.
    pub fn check(&self, default_zone: &jiff::tz::TimeZone) -> Result<(query::Query, Vec<Alert>), SearchError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(SearchError::Invalid("name: from 1 to 200 characters".into()));
        }
        if self.query.len() > 10_000 {
            return Err(SearchError::Invalid("query: at most 10000 bytes".into()));
        }
        let q = query::compile(&self.query)?;
        if self.alerts.len() > MAX_ALERTS {
            return Err(SearchError::Invalid(format!("alerts: at most {MAX_ALERTS}")));
        }
        let alerts = self
            .alerts
            .iter()
            .enumerate()
            .map(|(i, a)| a.check(default_zone).map_err(|e| SearchError::Invalid(format!("alerts[{i}].{e}"))))
            .collect::<Result<_, _>>()?;
        Ok((q, alerts))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    Invalid(String),
    #[error("query: {0}")]
    Query(#[from] query::QueryError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(json: &str) -> Result<Alert, String> {
        let def: AlertDef = serde_json::from_str(json).map_err(|e| e.to_string())?;
        def.check(&jiff::tz::TimeZone::UTC)
    }

    #[test]
    fn destinations_roundtrip_in_the_documented_shapes() {
        for json in [
            r#"{"webhook":"http://127.0.0.1:9/x"}"#,
            r#"{"webhook_json":"https://h.example/x","secret":"0123456789abcdef"}"#,
            r#"{"email":{"to":["head@shop.example"],"cc":["dev@shop.example"]}}"#,
            r#"{"slack":"https://hooks.example/T/B/X"}"#,
            r#"{"telegram":{"bot_token":"123:ABC","chat_id":-100123}}"#,
        ] {
            let d: Destination = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&d).unwrap(), json);
        }
        let d: Destination = serde_json::from_str(r#"{"telegram":{"bot_token":"1:A","chat_id":"@shop"}}"#).unwrap();
        assert_eq!(d, Destination::Telegram { bot_token: "1:A".into(), chat_id: "@shop".into() });
    }

    #[test]
    fn secrets_are_masked_and_a_masked_one_means_the_stored_one() {
        let stored: Destination = serde_json::from_str(
            r#"{"webhook_json":"https://h.example/hook/abcdefghijklmnopqrstuvwxyz?k=v","secret":"0123456789abcdef"}"#,
        )
        .unwrap();
        let shown = serde_json::to_string(&stored.masked()).unwrap();
        assert_eq!(shown, r#"{"webhook_json":"https://h.example/hook/…?…","secret":"***"}"#);
        assert!(!format!("{stored:?}").contains("0123456789abcdef"));
        let mut back: Destination = serde_json::from_str(&shown).unwrap();
        back.unmask_from([&stored]);
        assert_eq!(back, stored);
        let tg: Destination = serde_json::from_str(r#"{"telegram":{"bot_token":"123:SECRET","chat_id":5}}"#).unwrap();
        assert_eq!(tg.masked(), Destination::Telegram { bot_token: "123:***".into(), chat_id: "5".into() });
        // A masked URL is never taken as a new destination.
        let def: AlertDef = serde_json::from_str(&format!(r#"{{"kind":"immediate","destination":{shown}}}"#)).unwrap();
        assert!(def.check(&jiff::tz::TimeZone::UTC).unwrap_err().contains("masked"));
    }

    #[test]
    fn bad_destinations_say_what_is_wrong() {
        for (json, want) in [
            (r#"{}"#, "exactly one"),
            (r#"{"webhook":"http://a/","slack":"http://b/"}"#, "exactly one"),
            (r#"{"webhook_json":"http://a/"}"#, "secret"),
            (r#"{"webhook":"http://a/","secret":"x"}"#, "secret"),
            (r#"{"pager":"x"}"#, "unknown field"),
        ] {
            let err = serde_json::from_str::<Destination>(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn alert_checks() {
        assert!(matches!(
            alert(r#"{"kind":"immediate","destination":{"webhook":"http://127.0.0.1/"}}"#).unwrap().rule,
            Rule::Immediate { batch } if batch == Duration::from_millis(500)
        ));
        assert!(matches!(
            alert(r#"{"kind":"periodic","interval":"10m","threshold":3,"time_zone":"Europe/Volgograd","destination":{"slack":"https://x.example/"}}"#).unwrap().rule,
            Rule::Periodic { period: Period::TenMinutes, threshold: 3 }
        ));
        let a = alert(r#"{"kind":"inactivity","interval":"30m","active_hours":"09:00-21:00","destination":{"email":{"to":["a@b.example"]}}}"#).unwrap();
        assert_eq!(
            a.rule,
            Rule::Inactivity {
                window: Duration::from_secs(1800),
                threshold: 1,
                active_hours: Some(ActiveHours { start: 540, end: 1260 })
            }
        );
        for (json, want) in [
            (r#"{"kind":"periodic","interval":"5m","destination":{"webhook":"http://a/"}}"#, "interval"),
            (r#"{"kind":"periodic","destination":{"webhook":"http://a/"}}"#, "interval"),
            (r#"{"kind":"immediate","interval":"1m","destination":{"webhook":"http://a/"}}"#, "interval: only"),
            (r#"{"kind":"inactivity","interval":"10s","destination":{"webhook":"http://a/"}}"#, "1m to 7d"),
            (
                r#"{"kind":"inactivity","interval":"1h","active_hours":"9-21","destination":{"webhook":"http://a/"}}"#,
                "active_hours",
            ),
            (r#"{"kind":"immediate","time_zone":"Mars/Base","destination":{"webhook":"http://a/"}}"#, "time_zone"),
            (r#"{"kind":"immediate","destination":{"webhook":"ftp://a/"}}"#, "http(s) URL"),
            (r#"{"kind":"immediate","destination":{"email":{"to":["nobody"]}}}"#, "email address"),
            (r#"{"kind":"immediate","destination":{"email":{"to":[]}}}"#, "at least one"),
            (r#"{"kind":"immediate","destination":{"webhook_json":"http://a/","secret":"short"}}"#, "16 characters"),
            (r#"{"kind":"sometimes","destination":{"webhook":"http://a/"}}"#, "unknown variant"),
        ] {
            let err = alert(json).unwrap_err();
            assert!(err.contains(want), "{json}: {err}");
        }
    }

    #[test]
    fn active_hours_wrap_past_midnight() {
        let night = parse_active_hours("22:00-06:00").unwrap();
        assert!(night.contains(23 * 60) && night.contains(60) && !night.contains(12 * 60));
        let day = parse_active_hours("09:00-24:00").unwrap();
        assert!(day.contains(9 * 60) && day.contains(23 * 60 + 59) && !day.contains(60));
        assert!(parse_active_hours("10:00-10:00").is_err());
        assert!(parse_active_hours("00:00-24:00").unwrap_err().contains("leave it out"));
        assert!(parse_active_hours("25:00-26:00").is_err());
    }
}
