//! `/settings` (developers and admins; managers get the 403 page): what to
//! paste into the shop's configuration (each project's Sentry DSN, the syslog
//! endpoints with rsyslog and uWSGI snippets, the HTTP log ingest, the
//! checkout reporter), then the effective configuration, read-only.
//!
//! Secrets are never shown: the SMTP password, webhook URLs past their first
//! path segment, signing secrets, bot tokens (`Destination::masked`,
//! `SmtpSettings`' display) and ingest tokens (only how many there are).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::saved::destination_words;
use super::{Layout, PageError, render_status};
use crate::config::Settings;
use crate::web::AppState;
use crate::web::i18n;
use crate::web::session::{CurrentUser, Role};

pub struct Endpoint {
    /// "UDP", "TCP", "TLS"
    pub transport: &'static str,
    pub listen: String,
    /// host:port for senders to use.
    pub target: String,
    /// Bound to the loopback only: other machines cannot send to it.
    pub loopback: bool,
}

pub struct ProjectShown {
    pub id: i64,
    pub name: String,
    pub dsn: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    ctx: Layout,
    projects: Vec<ProjectShown>,
    endpoints: Vec<Endpoint>,
    /// The first project's DSN, for the snippets.
    dsn: String,
    public_url: String,
    rsyslog: String,
    uwsgi: String,
    /// (section, [(key, value)])
    config: Vec<(&'static str, Vec<(String, String)>)>,
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "—".into() } else { v.join(", ") }
}

/// The host senders should use for a listener: its address, or, when it
/// listens on every interface, the host of `http.public_url`.
fn target(addr: SocketAddr, public_url: &str) -> String {
    if addr.ip().is_unspecified() {
        let host = url::Url::parse(public_url).ok().and_then(|u| u.host_str().map(str::to_owned));
        format!("{}:{}", host.unwrap_or_else(|| "ORDERWATCH-HOST".into()), addr.port())
    } else {
        addr.to_string()
    }
}

fn endpoints(s: &Settings) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let tls = s.syslog_tls.as_ref().map(|t| t.0);
    for (transport, addr) in [("UDP", s.syslog_udp), ("TCP", s.syslog_tcp), ("TLS", tls)] {
        if let Some(a) = addr {
            out.push(Endpoint {
                transport,
                listen: a.to_string(),
                target: target(a, &s.public_url),
                loopback: a.ip().is_loopback(),
            });
        }
    }
    out
}

fn rsyslog_snippet(eps: &[Endpoint]) -> String {
    let mut out = String::from("# /etc/rsyslog.d/60-orderwatch.conf\n");
    for e in eps {
        let (host, port) = e.target.rsplit_once(':').unwrap_or((&e.target, ""));
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match e.transport {
            "UDP" => out.push_str(&format!("# over UDP (lines longer than the datagram are cut):\n# *.* @{}\n", e.target)),
            "TCP" => out.push_str(&format!(
                "# over TCP, queued on disk while orderwatch is away:\n\
                 action(type=\"omfwd\" target=\"{host}\" port=\"{port}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\"\n\
                 \x20      queue.type=\"LinkedList\" queue.filename=\"orderwatch\" queue.saveOnShutdown=\"on\" action.resumeRetryCount=\"-1\")\n"
            )),
            _ => out.push_str(&format!(
                "# over TLS (rsyslog-gnutls; the CA that signed orderwatch's certificate):\n\
                 # global(DefaultNetstreamDriverCAFile=\"/etc/ssl/certs/orderwatch-ca.pem\")\n\
                 # action(type=\"omfwd\" target=\"{host}\" port=\"{port}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\"\n\
                 #        StreamDriver=\"gtls\" StreamDriverMode=\"1\" StreamDriverAuthMode=\"x509/name\")\n"
            )),
        }
    }
    out
}

fn uwsgi_snippet(eps: &[Endpoint]) -> String {
    let udp = eps.iter().find(|e| e.transport == "UDP").map_or("ORDERWATCH-HOST:5514", |e| e.target.as_str());
    format!(
        "[uwsgi]\n\
         ; Debian's uWSGI loads the rsyslog logger as a plugin:\n\
         plugins = python3,rsyslog\n\
         logger = rsyslog:{udp},website-backend\n\
         ; UDP packets are 1024 bytes by default: longer request lines never arrive.\n\
         rsyslog-packet-size = 8192\n\
         ; Or log to the local rsyslog (logger = rsyslog:127.0.0.1:514,website-backend)\n\
         ; and let it forward to orderwatch over TCP, as above.\n"
    )
}

fn config_rows(st: &AppState) -> Vec<(&'static str, Vec<(String, String)>)> {
    let s = &st.settings;
    let kv = |k: &str, v: String| (k.to_owned(), v);
    let addr = |a: Option<SocketAddr>| a.map_or("off".into(), |a| a.to_string());
    let zone = |z: &jiff::tz::TimeZone| z.iana_name().unwrap_or("UTC").to_owned();
    let http = vec![
        kv("data", s.data.display().to_string()),
        kv("http.listen", s.http.to_string()),
        kv("http.public_url", format!("{}{}", s.public_url, if s.public_url_set { "" } else { " (default)" })),
        kv("http.max_body_bytes", s.max_body_bytes.to_string()),
        kv("http.trusted_proxies", list(&s.trusted_proxies.iter().map(|n| n.to_string()).collect::<Vec<_>>())),
        kv("http.ingest_tokens", format!("{} × *** (+ the token generated at the first start)", s.ingest_tokens.len())),
    ];
    let syslog = vec![
        kv("syslog.udp", addr(s.syslog_udp)),
        kv("syslog.tcp", addr(s.syslog_tcp)),
        kv("syslog.tls", addr(s.syslog_tls.as_ref().map(|t| t.0))),
        kv("syslog.tls_cert", s.syslog_tls.as_ref().map_or("—".into(), |t| t.1.display().to_string())),
        kv("syslog.tls_key", s.syslog_tls.as_ref().map_or("—".into(), |t| t.2.display().to_string())),
        kv("syslog.max_line_bytes", s.max_line_bytes.to_string()),
        kv("syslog.idle_timeout", human(s.idle_timeout)),
        kv("syslog.time_zone", zone(&s.default_zone)),
        kv("syslog.time_zones", list(&s.zones.iter().map(|(k, z)| format!("{k} = {}", zone(z))).collect::<Vec<_>>())),
    ];
    let store = vec![
        kv("store.retention_age", s.retention_age.map_or("off".into(), human)),
        kv("store.retention_bytes", s.retention_bytes.map_or("off".into(), |b| b.to_string())),
        kv("store.seal_bytes", s.seal_bytes.to_string()),
        kv("store.seal_interval", human(s.seal_interval)),
    ];
    let n = &s.notify;
    let notify = vec![
        kv("notify.smtp_url", n.smtp.as_ref().map_or("—".into(), |m| m.to_string())),
        kv("notify.smtp_from", n.smtp_from.as_ref().map_or("—".into(), |m| m.to_string())),
        kv("notify.telegram_api_base", n.telegram_api_base.clone()),
        kv("notify.connect_timeout", human(n.connect_timeout)),
        kv("notify.timeout", human(n.timeout)),
        kv("notify.max_concurrency", n.max_concurrency.to_string()),
        kv("notify.per_destination_concurrency", n.per_destination_concurrency.to_string()),
        kv("notify.retry_base", human(n.retry_base)),
        kv("notify.retry_max", human(n.retry_max)),
        kv("notify.give_up_after", human(n.give_up_after)),
    ];
    let mut sentry = vec![kv("sentry.envelopes_per_minute", s.sentry_envelopes_per_minute.to_string())];
    for (i, a) in s.sentry_alerts.iter().enumerate() {
        let on: Vec<&str> = a.on.iter().map(|k| k.as_str()).collect();
        sentry.push(kv(
            &format!("sentry.alerts[{i}]"),
            format!(
                "project {}, on {}: {}",
                a.project.map_or("*".into(), |p| p.to_string()),
                on.join(", "),
                destination_words(&a.destination)
            ),
        ));
    }
    let o = &s.orders;
    let mut orders = Vec::new();
    for e in &o.endpoints {
        orders.push(kv(
            &format!("orders.endpoints.{}", e.name),
            format!(
                "{} {} success {:?} programs [{}] senders [{}]",
                e.method,
                e.path,
                e.success,
                e.programs.join(", "),
                e.senders.join(", ")
            ),
        ));
    }
    let nets = |v: &[ipnet::IpNet]| list(&v.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    orders.extend([
        kv("orders.developer_ips", nets(&o.developer_ips)),
        kv("orders.developer_emails", list(&o.developer_emails)),
        kv("orders.developer_phones", list(&o.developer_phones)),
        kv("orders.manager_ips", nets(&o.manager_ips)),
        kv("orders.manager_users", list(&o.manager_users)),
        kv("orders.join_window", human(o.join_window)),
        kv("orders.alert_delay", human(o.alert_delay)),
        kv("orders.fields", format!("{:?}", o.fields)),
        kv("orders.health", format!("{:?}", o.health)),
        kv("report.to", list(&o.report_to)),
        kv("report.cc", list(&o.report_cc)),
    ]);
    for (i, d) in o.alerts.iter().enumerate() {
        orders.push(kv(&format!("orders.alerts[{i}]"), destination_words(d)));
    }
    let searches = vec![kv(
        "searches",
        format!("{} (see /searches)", s.searches.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")),
    )];
    vec![
        ("HTTP", http),
        ("syslog", syslog),
        ("store", store),
        ("notify", notify),
        ("sentry", sentry),
        ("orders", orders),
        ("searches", searches),
    ]
}

/// `GET /settings`.
pub async fn page(State(st): State<Arc<AppState>>, user: CurrentUser) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let projects: Vec<ProjectShown> = st
        .db
        .projects()
        .await?
        .into_iter()
        .map(|p| ProjectShown { dsn: p.dsn(&st.public_url), id: p.id, name: p.name })
        .collect();
    let eps = endpoints(&st.settings);
    let page = SettingsPage {
        ctx: Layout::new(&user, "/settings", i18n::t(user.lang, "settings").into()),
        dsn: projects.first().map_or_else(String::new, |p| p.dsn.clone()),
        projects,
        public_url: st.public_url.clone(),
        rsyslog: rsyslog_snippet(&eps),
        uwsgi: uwsgi_snippet(&eps),
        endpoints: eps,
        config: config_rows(&st),
    };
    Ok(render_status(StatusCode::OK, &page))
}
