//! The configuration: a TOML file, every key optional, embedded defaults that
//! let `orderwatch serve` run with no file at all, and command-line flags on top.
//! `Config::validate` turns every mistake into a message that names the key and
//! says what is expected.
//!
//! ```toml
//! data = "./orderwatch-data"
//! [http]
//! listen = "127.0.0.1:8080"
//! ingest_tokens = ["..."]          # extra tokens for POST /api/v1/logs
//! [syslog]
//! udp = "127.0.0.1:5514"           # "off" disables a listener
//! tcp = "127.0.0.1:5514"
//! tls = "off"                      # e.g. "0.0.0.0:6514", needs tls_cert and tls_key
//! tls_cert = "/etc/orderwatch/cert.pem"
//! tls_key = "/etc/orderwatch/key.pem"
//! max_line_bytes = 102400          # longer lines are truncated and flagged
//! idle_timeout = "5m"              # a TCP/TLS peer silent this long is disconnected
//! time_zone = "Europe/Volgograd"   # RFC 3164 senders' zone; default: the server's
//! [syslog.time_zones]              # per sender, by hostname or IP
//! "website-backend" = "Europe/Moscow"
//! [store]
//! retention_age = "30d"
//! retention_bytes = "20GiB"
//! seal_bytes = "8MiB"
//! seal_interval = "10m"
//! [notify]
//! smtp_url = "smtp://user:password@smtp.example.com:587"   # or --smtp, ORDERWATCH_SMTP_URL
//! smtp_from = "orderwatch <alerts@shop.example>"          # or --smtp-from, ORDERWATCH_SMTP_FROM
//! telegram_api_base = "https://api.telegram.org"
//! connect_timeout = "10s"
//! timeout = "30s"                  # one whole delivery attempt
//! max_concurrency = 16             # attempts in flight…
//! per_destination_concurrency = 4  # …and against one SMTP server or webhook host
//! retry_base = "1s"                # first wait after a failure, doubling…
//! retry_max = "5m"                 # …up to this
//! give_up_after = "3d"             # then the notification is marked failed
//!
//! [[searches]]                     # saved searches and their alerts (the API's shape)
//! name = "non-ok website orders"
//! query = 'POST /api/v1/orders/ - "HTTP/2.0 201" - "HTTP/1.1 201" - "Broken pipe" program:website-backend'
//! [[searches.alerts]]
//! kind = "immediate"
//! time_zone = "Europe/Volgograd"
//! destination = { email = { to = ["head@shop.example"], cc = ["dev@shop.example"] } }
//!
//! [sentry]
//! envelopes_per_minute = 0         # per project; 0: no limit
//! [[sentry.alerts]]                # new error groups and regressions
//! project = 1                      # default: every project
//! on = ["first_seen", "regression"] # the default
//! destination = { slack = "https://hooks.slack.com/services/T/B/X" }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use serde::Deserialize;

use crate::notify::{NotifySettings, SmtpSettings};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data: PathBuf,
    pub http: HttpConfig,
    pub syslog: SyslogConfig,
    pub store: StoreConfig,
    pub notify: NotifyConfig,
    pub sentry: SentryConfig,
    pub searches: Vec<crate::alerts::SearchDef>,
    pub orders: OrdersConfig,
    pub report: ReportConfig,
}

/// Lost-order detection (`[orders]`, `[[orders.endpoints]]`, `[orders.fields]`, `[[orders.alerts]]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersConfig {
    /// Default: one endpoint, `POST /api/v1/orders/`, success 201.
    pub endpoints: Vec<crate::orders::EndpointDef>,
    pub developer_ips: Vec<String>,
    pub developer_emails: Vec<String>,
    pub developer_phones: Vec<String>,
    pub manager_ips: Vec<String>,
    pub manager_users: Vec<String>,
    /// Default 10s.
    pub join_window: Option<String>,
    /// Default 3s.
    pub alert_delay: Option<String>,
    pub fields: crate::orders::FieldPaths,
    pub alerts: Vec<OrderAlert>,
    /// `[orders.health]`: no orders for a while, a jump in failed attempts.
    pub health: crate::orders::health::HealthConfig,
}

/// Where a new lost order is announced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderAlert {
    pub destination: crate::alerts::Destination,
}

/// The report letter (`[report]`): to the head of the business, the developers in copy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportConfig {
    pub to: Vec<String>,
    pub cc: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
    pub ingest_tokens: Vec<String>,
    /// Largest HTTP log-ingest body, after decompression.
    pub max_body_bytes: String,
    /// The address people reach orderwatch at, for links in notifications;
    /// default `http://<listen>`.
    pub public_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (addresses or networks).
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyslogConfig {
    pub udp: String,
    pub tcp: String,
    pub tls: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub max_line_bytes: usize,
    pub idle_timeout: String,
    pub time_zone: Option<String>,
    pub time_zones: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub retention_age: String,
    pub retention_bytes: String,
    pub seal_bytes: String,
    pub seal_interval: String,
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// Holds the SMTP password: `Debug` masks it.
    pub smtp_url: Option<String>,
    pub smtp_from: Option<String>,
    pub telegram_api_base: String,
    pub connect_timeout: String,
    pub timeout: String,
    pub max_concurrency: usize,
    pub per_destination_concurrency: usize,
    pub retry_base: String,
    pub retry_max: String,
    pub give_up_after: String,
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("smtp_url", &self.smtp_url.as_deref().map(crate::notify::smtp::mask_password))
            .field("smtp_from", &self.smtp_from)
            .field("telegram_api_base", &self.telegram_api_base)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_concurrency", &self.max_concurrency)
            .field("per_destination_concurrency", &self.per_destination_concurrency)
            .field("retry_base", &self.retry_base)
            .field("retry_max", &self.retry_max)
            .field("give_up_after", &self.give_up_after)
            .finish()
    }
}

impl Default for NotifyConfig {
    fn default() -> Self {
        let d = NotifySettings::default();
        let human = |t: Duration| humantime::format_duration(t).to_string();
        NotifyConfig {
            smtp_url: None,
            smtp_from: None,
            telegram_api_base: d.telegram_api_base,
            connect_timeout: human(d.connect_timeout),
            timeout: human(d.timeout),
            max_concurrency: d.max_concurrency,
            per_destination_concurrency: d.per_destination_concurrency,
            retry_base: human(d.retry_base),
            retry_max: human(d.retry_max),
            give_up_after: human(d.give_up_after),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("./orderwatch-data"),
            http: HttpConfig::default(),
            syslog: SyslogConfig::default(),
            store: StoreConfig::default(),
            notify: NotifyConfig::default(),
            sentry: SentryConfig::default(),
            searches: Vec::new(),
            orders: OrdersConfig::default(),
            report: ReportConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            ingest_tokens: Vec::new(),
            max_body_bytes: "64MiB".into(),
            public_url: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for SyslogConfig {
    fn default() -> Self {
        SyslogConfig {
            udp: "127.0.0.1:5514".into(),
            tcp: "127.0.0.1:5514".into(),
            tls: "off".into(),
            tls_cert: None,
            tls_key: None,
            max_line_bytes: 100 * 1024,
            idle_timeout: "5m".into(),
            time_zone: None,
            time_zones: BTreeMap::new(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            retention_age: "30d".into(),
            retention_bytes: "20GiB".into(),
            seal_bytes: "8MiB".into(),
            seal_interval: "10m".into(),
        }
    }
}

/// The Sentry ingest.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SentryConfig {
    /// Envelopes one project may post a minute; beyond it SDKs get 429 with
    /// Retry-After and X-Sentry-Rate-Limits (and wait). 0: no limit.
    pub envelopes_per_minute: u32,
    /// Who hears of new error groups and regressions (`[[sentry.alerts]]`).
    pub alerts: Vec<crate::alerts::groups::GroupAlertDef>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("config: saved search {index} ({name:?}): {message}")]
    Search { index: usize, name: String, message: String },
    #[error("config: [[sentry.alerts]] entry {index} (counting from 0): {message}")]
    SentryAlert { index: usize, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, message: message.into() }
}

/// The largest `syslog.max_line_bytes` allowed.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// The configuration checked and turned into the types the program runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data: PathBuf,
    pub http: SocketAddr,
    pub ingest_tokens: Vec<String>,
    pub max_body_bytes: usize,
    pub syslog_udp: Option<SocketAddr>,
    pub syslog_tcp: Option<SocketAddr>,
    pub syslog_tls: Option<(SocketAddr, PathBuf, PathBuf)>,
    pub max_line_bytes: usize,
    pub idle_timeout: Duration,
    pub default_zone: jiff::tz::TimeZone,
    pub zones: Vec<(String, jiff::tz::TimeZone)>,
    pub retention_age: Option<Duration>,
    pub retention_bytes: Option<u64>,
    pub seal_bytes: u64,
    pub seal_interval: Duration,
    pub notify: NotifySettings,
    /// Envelopes a Sentry project may post a minute (0: no limit).
    pub sentry_envelopes_per_minute: u32,
    pub public_url: String,
    /// Whether `http.public_url` was set (links in error-group alerts need a real address).
    pub public_url_set: bool,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Saved searches of the config file, checked.
    pub searches: Vec<crate::alerts::SearchDef>,
    /// `[[sentry.alerts]]`, checked.
    pub sentry_alerts: Vec<crate::alerts::groups::GroupAlertDef>,
    pub orders: crate::orders::OrdersSettings,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.to_owned(), source: Box::new(source) })
    }

    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let s = &self.syslog;
        let tls = match listen_addr("syslog.tls", &s.tls)? {
            None => None,
            Some(addr) => {
                let cert = s.tls_cert.clone().ok_or_else(|| {
                    invalid("syslog.tls_cert", "syslog.tls is on, so a PEM certificate file is required")
                })?;
                let key = s.tls_key.clone().ok_or_else(|| {
                    invalid("syslog.tls_key", "syslog.tls is on, so a PEM private key file is required")
                })?;
                Some((addr, cert, key))
            }
        };
        let default_zone = match &s.time_zone {
            Some(name) => zone("syslog.time_zone", name)?,
            None => jiff::tz::TimeZone::system(),
        };
        let mut zones = Vec::new();
        for (sender, name) in &s.time_zones {
            zones.push((sender.clone(), zone("syslog.time_zones", name)?));
        }
        // A WAL record holds the raw line and, for invalid UTF-8, a lossy copy
        // up to three times as long: 8 MiB keeps every record far below the
        // WAL's record limit.
        if !(64..=MAX_LINE_BYTES).contains(&s.max_line_bytes) {
            return Err(invalid("syslog.max_line_bytes", format!("must be from 64 to {MAX_LINE_BYTES} bytes")));
        }
        let http = listen_addr("http.listen", &self.http.listen)?
            .ok_or_else(|| invalid("http.listen", "the HTTP listener cannot be turned off"))?;
        let public_url = match &self.http.public_url {
            Some(u) => match reqwest::Url::parse(u) {
                Ok(p) if matches!(p.scheme(), "http" | "https") && p.host().is_some() => u.trim_end_matches('/').to_owned(),
                _ => return Err(invalid("http.public_url", format!("{u:?} is not an http(s) URL; write e.g. \"https://orderwatch.shop.example\""))),
            },
            None => format!("http://{http}"),
        };
        for (index, def) in self.searches.iter().enumerate() {
            let fail = |message: String| ConfigError::Search { index, name: def.name.clone(), message };
            def.check(&default_zone).map_err(|e| fail(e.to_string()))?;
            if self.searches[..index].iter().any(|d| d.name.trim() == def.name.trim()) {
                return Err(fail("another saved search has this name; names must differ".into()));
            }
        }
        for (index, def) in self.sentry.alerts.iter().enumerate() {
            def.check().map_err(|message| ConfigError::SentryAlert { index, message })?;
        }
        Ok(Settings {
            data: self.data.clone(),
            http,
            ingest_tokens: self.http.ingest_tokens.clone(),
            max_body_bytes: size("http.max_body_bytes", &self.http.max_body_bytes)? as usize,
            syslog_udp: listen_addr("syslog.udp", &s.udp)?,
            syslog_tcp: listen_addr("syslog.tcp", &s.tcp)?,
            syslog_tls: tls,
            max_line_bytes: s.max_line_bytes,
            idle_timeout: duration("syslog.idle_timeout", &s.idle_timeout)?,
            default_zone,
            zones,
            retention_age: optional(&self.store.retention_age)
                .map(|v| duration("store.retention_age", v))
                .transpose()?,
            retention_bytes: optional(&self.store.retention_bytes)
                .map(|v| size("store.retention_bytes", v))
                .transpose()?,
            seal_bytes: size("store.seal_bytes", &self.store.seal_bytes)?,
            seal_interval: duration("store.seal_interval", &self.store.seal_interval)?,
            notify: self.notify.validate()?,
            sentry_envelopes_per_minute: self.sentry.envelopes_per_minute,
            public_url,
            public_url_set: self.http.public_url.is_some(),
            trusted_proxies: crate::web::client_ip::parse_trusted(&self.http.trusted_proxies)
                .map_err(|m| invalid("http.trusted_proxies", m))?,
            searches: self.searches.clone(),
            sentry_alerts: self.sentry.alerts.clone(),
            orders: self.orders_settings()?,
        })
    }

    fn orders_settings(&self) -> Result<crate::orders::OrdersSettings, ConfigError> {
        let o = &self.orders;
        let d = crate::orders::OrdersSettings::default();
        let mut endpoints = Vec::new();
        for (i, e) in o.endpoints.iter().enumerate() {
            let e = e.check().map_err(|m| invalid("orders.endpoints", format!("endpoint {}: {m}", i + 1)))?;
            if endpoints.iter().any(|x: &crate::orders::Endpoint| x.name == e.name) {
                return Err(invalid("orders.endpoints", format!("two endpoints are named {:?}; names must differ", e.name)));
            }
            endpoints.push(e);
        }
        let nets = |key: &'static str, v: &[String]| {
            crate::web::client_ip::parse_trusted(v).map_err(|m| invalid(key, m))
        };
        let email = |key: &'static str, v: &[String]| -> Result<Vec<String>, ConfigError> {
            v.iter()
                .map(|e| {
                    let e = e.trim();
                    if e.parse::<Mailbox>().is_ok() { Ok(e.to_owned()) } else {
                        Err(invalid(key, format!("{e:?} is not an email address")))
                    }
                })
                .collect()
        };
        let mut phones = Vec::new();
        for p in &o.developer_phones {
            let d = crate::orders::phone_digits(p);
            if d.len() < 5 {
                return Err(invalid("orders.developer_phones", format!("{p:?} is not a phone number")));
            }
            phones.push(d);
        }
        let window = match &o.join_window {
            Some(v) => duration("orders.join_window", v)?,
            None => d.join_window,
        };
        if window.is_zero() || window > Duration::from_secs(600) {
            return Err(invalid("orders.join_window", "must be more than 0 and at most 10m"));
        }
        let alerts = o.alerts.iter().map(|a| a.destination.clone()).collect();
        Ok(crate::orders::OrdersSettings {
            endpoints: if endpoints.is_empty() { d.endpoints } else { endpoints },
            developer_ips: nets("orders.developer_ips", &o.developer_ips)?,
            developer_emails: email("orders.developer_emails", &o.developer_emails)?,
            developer_phones: phones,
            manager_ips: nets("orders.manager_ips", &o.manager_ips)?,
            manager_users: o.manager_users.clone(),
            join_window: window,
            alert_delay: match &o.alert_delay {
                Some(v) => duration("orders.alert_delay", v)?,
                None => d.alert_delay,
            },
            fields: o.fields.clone(),
            alerts,
            report_to: email("report.to", &self.report.to)?,
            report_cc: email("report.cc", &self.report.cc)?,
            health: o.health.check().map_err(|(key, message)| invalid(key, message))?,
        })
    }
}

impl NotifyConfig {
    fn validate(&self) -> Result<NotifySettings, ConfigError> {
        let smtp = match self.smtp_url.as_deref().and_then(optional) {
            None => None,
            Some(url) => Some(SmtpSettings::parse(url).map_err(|e| {
                invalid("notify.smtp_url", format!("{e} (set by notify.smtp_url, --smtp or ORDERWATCH_SMTP_URL)"))
            })?),
        };
        let from = |v: &str| {
            v.trim().parse::<Mailbox>().map_err(|e| {
                invalid(
                    "notify.smtp_from",
                    format!("{v:?} is not an email address ({e}); write e.g. \"orderwatch <alerts@shop.example>\" (notify.smtp_from, --smtp-from or ORDERWATCH_SMTP_FROM)"),
                )
            })
        };
        let smtp_from = match (self.smtp_from.as_deref().and_then(optional), &smtp) {
            (Some(v), _) => Some(from(v)?),
            // A login that is an address is the usual sender.
            (None, Some(s)) => match s.username.as_deref().and_then(|u| u.parse::<Mailbox>().ok()) {
                Some(m) => Some(m),
                None => {
                    return Err(invalid(
                        "notify.smtp_from",
                        "SMTP is configured, so emails need a From address: set notify.smtp_from, --smtp-from or ORDERWATCH_SMTP_FROM, e.g. \"orderwatch <alerts@shop.example>\"",
                    ));
                }
            },
            (None, None) => None,
        };
        let base = self.telegram_api_base.trim().trim_end_matches('/').to_owned();
        if !url::Url::parse(&base).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            return Err(invalid(
                "notify.telegram_api_base",
                format!("{base:?} is not an http(s) URL; the default is \"https://api.telegram.org\""),
            ));
        }
        let count = |key: &'static str, v: usize| {
            if (1..=1024).contains(&v) { Ok(v) } else { Err(invalid(key, "must be from 1 to 1024")) }
        };
        let positive = |key: &'static str, v: &str| {
            let d = duration(key, v)?;
            if d.is_zero() { Err(invalid(key, "must be more than zero")) } else { Ok(d) }
        };
        let retry_base = positive("notify.retry_base", &self.retry_base)?;
        let retry_max = positive("notify.retry_max", &self.retry_max)?;
        if retry_max < retry_base {
            return Err(invalid("notify.retry_max", "must not be shorter than notify.retry_base"));
        }
        Ok(NotifySettings {
            smtp,
            smtp_from,
            telegram_api_base: base,
            connect_timeout: positive("notify.connect_timeout", &self.connect_timeout)?,
            timeout: positive("notify.timeout", &self.timeout)?,
            max_concurrency: count("notify.max_concurrency", self.max_concurrency)?,
            per_destination_concurrency: count("notify.per_destination_concurrency", self.per_destination_concurrency)?,
            retry_base,
            retry_max,
            give_up_after: positive("notify.give_up_after", &self.give_up_after)?,
            ..NotifySettings::default()
        })
    }
}

/// "off", "none" or "" turn a setting off.
fn optional(v: &str) -> Option<&str> {
    match v.trim() {
        "" | "off" | "none" => None,
        v => Some(v),
    }
}

pub fn listen_addr(key: &'static str, v: &str) -> Result<Option<SocketAddr>, ConfigError> {
    optional(v)
        .map(|v| {
            v.parse().map_err(|_| {
                invalid(key, format!("{v:?} is not an address to listen on; write IP:PORT, e.g. 127.0.0.1:5514, or \"off\""))
            })
        })
        .transpose()
}

fn zone(key: &'static str, name: &str) -> Result<jiff::tz::TimeZone, ConfigError> {
    jiff::tz::TimeZone::get(name).map_err(|_| {
        invalid(key, format!("{name:?} is not an IANA time zone name; write e.g. \"Europe/Volgograd\" or \"UTC\""))
    })
}

pub fn duration(key: &'static str, v: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(v.trim())
        .map_err(|e| invalid(key, format!("{v:?} is not a duration ({e}); write e.g. \"30s\", \"5m\", \"30d\"")))
}

/// Parses "123", "64KiB", "32MiB", "20GiB", "1GB" (binary and decimal units).
pub fn size(key: &'static str, v: &str) -> Result<u64, ConfigError> {
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return Err(invalid(key, format!("{v:?} has an unknown unit; write e.g. \"512KiB\", \"32MiB\", \"20GiB\""))),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| invalid(key, format!("{v:?} is not a size; write e.g. \"32MiB\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let s = Config::default().validate().unwrap();
        assert_eq!(s.http.to_string(), "127.0.0.1:8080");
        assert_eq!(s.syslog_udp.unwrap().to_string(), "127.0.0.1:5514");
        assert_eq!(s.syslog_tcp.unwrap().to_string(), "127.0.0.1:5514");
        assert!(s.syslog_tls.is_none());
        assert_eq!(s.max_line_bytes, 102_400);
        assert_eq!(s.data, PathBuf::from("./orderwatch-data"));
    }

    #[test]
    fn mistakes_name_the_key() {
        let cases = [
            ("[syslog]\nudp = \"localhost\"", "syslog.udp"),
            ("[syslog]\ntls = \"127.0.0.1:6514\"", "syslog.tls_cert"),
            ("[syslog]\ntime_zone = \"Mars/Olympus\"", "syslog.time_zone"),
            ("[store]\nretention_bytes = \"lots\"", "store.retention_bytes"),
            ("[store]\nseal_interval = \"soon\"", "store.seal_interval"),
            ("[syslog]\nmax_line_bytes = 100000000", "syslog.max_line_bytes"),
            ("[notify]\nsmtp_url = \"mail.example.com\"", "notify.smtp_url"),
            ("[notify]\nsmtp_url = \"smtp://relay:25?tls=none\"", "notify.smtp_from"),
            ("[notify]\nsmtp_from = \"not an address\"", "notify.smtp_from"),
            ("[notify]\ntimeout = \"0s\"", "notify.timeout"),
            ("[notify]\nmax_concurrency = 0", "notify.max_concurrency"),
            ("[notify]\nretry_max = \"1ms\"", "notify.retry_max"),
            ("[notify]\ntelegram_api_base = \"api.telegram.org\"", "notify.telegram_api_base"),
            ("[orders.health]\nfailure_share = 30.0", "orders.health.failure_share"),
        ];
        for (text, key) in cases {
            let cfg: Config = toml::from_str(text).unwrap();
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{text:?} gave {err}");
        }
    }

    #[test]
    fn smtp_settings_and_the_password_stays_out_of_debug() {
        let cfg: Config = toml::from_str(
            "[notify]\nsmtp_url = \"smtp://alerts%40shop.example:s3cret%21@smtp.shop.example\"",
        )
        .unwrap();
        assert!(!format!("{cfg:?}").contains("s3cret"));
        let s = cfg.validate().unwrap();
        assert!(!format!("{s:?}").contains("s3cret"), "{s:?}");
        // The login is an address, so it is the sender.
        assert_eq!(s.notify.smtp_from.unwrap().email.to_string(), "alerts@shop.example");
        let smtp = s.notify.smtp.unwrap();
        assert_eq!(smtp.to_string(), "smtp://alerts%40shop.example:***@smtp.shop.example:587?tls=required");
        let err = toml::from_str::<Config>("[notify]\nsmtp_url = \"smtp://u:s3cret@h?tls=maybe\"")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("notify.smtp_url") && !err.contains("s3cret"), "{err}");
    }

    #[test]
    fn saved_searches_are_checked() {
        let ok = r#"
[[searches]]
name = "non-ok website orders"
query = 'POST /api/v1/orders/ - "HTTP/2.0 201" program:website-backend'
[[searches.alerts]]
kind = "periodic"
interval = "1h"
time_zone = "Europe/Volgograd"
destination = { webhook = "http://127.0.0.1:9/hook" }
"#;
        let s = toml::from_str::<Config>(ok).unwrap().validate().unwrap();
        assert_eq!(s.searches.len(), 1);
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        for (text, want) in [
            (ok.replace("1h", "2h"), "alerts[0].interval"),
            (ok.replace("program:website-backend", "(unclosed"), "query"),
            (format!("{ok}\n[[searches]]\nname = \"non-ok website orders\"\nquery = \"x\""), "names must differ"),
        ] {
            let err = toml::from_str::<Config>(&text).unwrap().validate().unwrap_err().to_string();
            assert!(err.contains("non-ok website orders") && err.contains(want), "{err}");
        }
        let err = toml::from_str::<Config>("[http]\npublic_url = \"orderwatch\"").unwrap().validate().unwrap_err();
        assert!(err.to_string().contains("http.public_url"), "{err}");
    }

    #[test]
    fn sentry_alerts_are_checked() {
        let ok = r#"
[http]
public_url = "https://ow.shop.example"
[[sentry.alerts]]
destination = { email = { to = ["dev@shop.example"] } }
[[sentry.alerts]]
project = 2
on = ["regression"]
destination = { webhook_json = "https://hooks.shop.example/ow", secret = "0123456789abcdef" }
"#;
        let s = toml::from_str::<Config>(ok).unwrap().validate().unwrap();
        use crate::alerts::groups::GroupAlertKind::*;
        assert_eq!(s.sentry_alerts.len(), 2);
        assert_eq!(
            (s.sentry_alerts[0].project, s.sentry_alerts[0].on.as_slice()),
            (None, &[FirstSeen, Regression][..])
        );
        assert_eq!((s.sentry_alerts[1].project, s.sentry_alerts[1].on.as_slice()), (Some(2), &[Regression][..]));
        assert!(s.public_url_set);
        assert!(!format!("{s:?}").contains("0123456789abcdef"), "the secret stays out of check-config's print");
        for (text, want) in [
            (ok.replace("project = 2", "project = -1"), "entry 1 (counting from 0): project: -1"),
            (ok.replace("[\"regression\"]", "[]"), "entry 1 (counting from 0): on:"),
            (ok.replace("\"0123456789abcdef\"", "\"short\""), "destination.secret: use at least 16"),
            (ok.replace("dev@shop.example", "dev"), "entry 0 (counting from 0): destination.email.to"),
        ] {
            let err = toml::from_str::<Config>(&text).unwrap().validate().unwrap_err().to_string();
            assert!(err.contains("[[sentry.alerts]]") && err.contains(want), "{want}: {err}");
        }
        for (text, want) in [
            (ok.replace("[\"regression\"]", "[\"regresion\"]"), "regression"),
            (ok.replace("project = 2", "projects = 2"), "unknown field `projects`"),
            (ok.replace("email = { to = [\"dev@shop.example\"] }", "pager = \"x\""), "unknown field"),
        ] {
            let err = toml::from_str::<Config>(&text).unwrap_err().to_string();
            assert!(err.contains(want), "{want}: {err}");
        }
        assert!(!Config::default().validate().unwrap().public_url_set);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("[syslog]\nudpp = \"x\"").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size("k", "20GiB").unwrap(), 20 << 30);
        assert_eq!(size("k", "100").unwrap(), 100);
        assert_eq!(size("k", "1 kb").unwrap(), 1000);
        assert!(size("k", "99999999999999999999GiB").is_err());
    }
}
