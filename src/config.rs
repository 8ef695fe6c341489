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
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data: PathBuf,
    pub http: HttpConfig,
    pub syslog: SyslogConfig,
    pub store: StoreConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: String,
    pub ingest_tokens: Vec<String>,
    /// Largest HTTP log-ingest body, after decompression.
    pub max_body_bytes: String,
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

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("./orderwatch-data"),
            http: HttpConfig::default(),
            syslog: SyslogConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8080".into(),
            ingest_tokens: Vec::new(),
            max_body_bytes: "64MiB".into(),
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
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
        ];
        for (text, key) in cases {
            let cfg: Config = toml::from_str(text).unwrap();
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(key), "{text:?} gave {err}");
        }
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
