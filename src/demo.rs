//! `orderwatch demo`: the real server, in-process, with a simulated shop
//! (`shop`) playing against it over the real interfaces, so that a new user
//! sees lost orders of every cause within seconds.
//!
//! The shop's uWSGI and nginx lines go by syslog TCP to the demo's own
//! syslog listener (UDP when TCP is off, else `POST /api/v1/logs`); its
//! browser envelopes, checkout-reporter envelopes and backend events go to
//! the demo's own Sentry endpoints with the default project's key. First the
//! shop's last minute (a lost order of every cause among plenty of placed
//! ones), then a visit every 1–3 s until Ctrl-C, SIGTERM or `--for`.
//!
//! The demo's settings are `serve`'s (same flags, same config file) with
//! three additions the simulated shop needs: `127.0.0.1` (and `::1`) are
//! trusted proxies, so each simulated customer's `X-Forwarded-For` becomes its
//! address; and the shop's managers (`remote_user` `manager`, the office
//! network) are listed in `[orders]`. Without `--data` its data goes to a
//! fresh temporary directory removed at exit: a demo never writes into the
//! data of a real `orderwatch serve` (the config file's `data` is ignored)
//! and every run starts from an empty store.

pub mod shop;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::cli::ServeArgs;
use crate::config::Settings;
use crate::serve::Server;
use shop::{Scenario, SentryEndpoint, SentryPost, Shop, Visit};

#[derive(Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Stop after this long, e.g. 30s or 5m [default: until Ctrl-C or SIGTERM].
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Seed of the simulated shop: the same seed plays the same customers and failures [default: random, printed].
    #[arg(long)]
    pub seed: Option<u64>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e}; write e.g. 30s, 5m or 1h"))
}

/// A directory removed when dropped.
struct TempData(PathBuf);

impl TempData {
    fn create() -> anyhow::Result<TempData> {
        let dir =
            std::env::temp_dir().join(format!("orderwatch-demo-{}-{:08x}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir(&dir).with_context(|| {
            format!("cannot create the demo's data directory {}; choose one with --data", dir.display())
        })?;
        Ok(TempData(dir))
    }
}

impl Drop for TempData {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "cannot remove the demo's data directory");
        }
    }
}

/// What the simulated shop needs of the server's settings (see the module doc).
pub fn demo_settings(s: &mut Settings) {
    for local in ["127.0.0.1/32", "::1/128"] {
        let net: ipnet::IpNet = local.parse().expect("a network");
        if !s.trusted_proxies.contains(&net) {
            s.trusted_proxies.push(net);
        }
    }
    if !s.orders.manager_users.iter().any(|u| u == shop::MANAGER_USER) {
        s.orders.manager_users.push(shop::MANAGER_USER.to_owned());
    }
    let office: ipnet::IpNet = shop::MANAGER_NET.parse().expect("a network");
    if !s.orders.manager_ips.contains(&office) {
        s.orders.manager_ips.push(office);
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let mut settings = args.serve.settings()?;
    let temp = match &args.serve.data {
        Some(_) => None,
        None => Some(TempData::create()?),
    };
    if let Some(t) = &temp {
        settings.data = t.0.clone();
    }
    demo_settings(&mut settings);
    let seed = args.seed.unwrap_or_else(rand::random);
    // Before anything listens (see `serve::run`).
    let signals = crate::serve::stop_signals()?;
    let server = Server::start(settings.clone()).await?;
    let result = tokio::select! {
        r = play(&server, &settings, seed, temp.is_some()) => r,
        _ = stop(args.duration, signals) => Ok(()),
    };
    tracing::info!("stopping the demo: flushing the log store");
    server.shutdown().await;
    drop(temp);
    result
}

/// Ctrl-C, SIGTERM, or the end of `--for`.
async fn stop(duration: Option<Duration>, signals: impl std::future::Future<Output = ()>) {
    let deadline = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = signals => {},
        _ = deadline => {},
    }
}

/// An address to connect to for one a listener is bound to (`0.0.0.0` is any, so the loopback).
fn connectable(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), a.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), a.port()),
        _ => a,
    }
}

/// How the shop's log lines reach orderwatch.
enum Logs {
    Tcp(SocketAddr, Option<tokio::net::TcpStream>),
    Udp(SocketAddr, tokio::net::UdpSocket),
    Http,
}

struct Sender {
    http: reqwest::Client,
    base: String,
    key: String,
    project: String,
    ingest_token: String,
    logs: Logs,
}

impl Sender {
    async fn send(&mut self, v: &Visit) -> anyhow::Result<()> {
        self.send_lines(&v.syslog).await?;
        for p in &v.sentry {
            self.send_sentry(p).await?;
        }
        Ok(())
    }

    async fn send_lines(&mut self, lines: &[String]) -> anyhow::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        match &mut self.logs {
            Logs::Tcp(addr, conn) => {
                let mut text = lines.join("\n");
                text.push('\n');
                // One reconnection: a connection the server closed (idle timeout) is opened again.
                for attempt in 0..2 {
                    if conn.is_none() {
                        *conn =
                            Some(tokio::net::TcpStream::connect(*addr).await.with_context(|| {
                                format!("cannot connect to the demo's own syslog TCP listener {addr}")
                            })?);
                    }
                    match conn.as_mut().unwrap().write_all(text.as_bytes()).await {
                        Ok(()) => return Ok(()),
                        Err(e) if attempt == 0 => {
                            tracing::debug!(error = %e, "syslog TCP connection lost; reconnecting");
                            *conn = None;
                        }
                        Err(e) => return Err(e).context("cannot send to the demo's own syslog TCP listener"),
                    }
                }
                Ok(())
            }
            Logs::Udp(addr, sock) => {
                for l in lines {
                    sock.send_to(l.as_bytes(), *addr)
                        .await
                        .context("cannot send to the demo's own syslog UDP listener")?;
                }
                Ok(())
            }
            Logs::Http => {
                let r = self
                    .http
                    .post(format!("{}/api/v1/logs", self.base))
                    .bearer_auth(&self.ingest_token)
                    .body(lines.join("\n"))
                    .send()
                    .await
                    .context("cannot post log lines to the demo's own /api/v1/logs")?;
                if !r.status().is_success() {
                    bail!("the demo's own /api/v1/logs refused the shop's lines: {}", r.status());
                }
                Ok(())
            }
        }
    }

    async fn send_sentry(&self, p: &SentryPost) -> anyhow::Result<()> {
        let req = match p.endpoint {
            SentryEndpoint::Envelope => self
                .http
                .post(format!("{}/api/{}/envelope/", self.base, self.project))
                .query(&[("sentry_key", self.key.as_str()), ("sentry_version", "7")]),
            SentryEndpoint::Store => self.http.post(format!("{}/api/{}/store/", self.base, self.project)).header(
                "X-Sentry-Auth",
                format!("Sentry sentry_key={}, sentry_version=7, sentry_client={}", self.key, p.user_agent),
            ),
        };
        let mut req =
            req.header("Content-Type", p.content_type).header("User-Agent", p.user_agent).body(p.body.clone());
        if let Some(ip) = &p.forwarded_for {
            req = req.header("X-Forwarded-For", ip);
        }
        let r = req.send().await.context("cannot post to the demo's own Sentry endpoint")?;
        if !r.status().is_success() {
            let status = r.status();
            bail!("the demo's own Sentry endpoint refused an event ({status}): {}", r.text().await.unwrap_or_default());
        }
        Ok(())
    }
}

async fn play(server: &Server, settings: &Settings, seed: u64, temporary: bool) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let web = connectable(server.http);
    let base = format!("http://{web}");
    let token = server.admin_token.0.clone();
    let projects: Value = http
        .get(format!("{base}/api/v1/projects"))
        .bearer_auth(&token)
        .send()
        .await
        .context("the demo cannot reach its own API")?
        .error_for_status()?
        .json()
        .await?;
    let listed = projects.pointer("/0/dsn").and_then(Value::as_str).context("the server lists no Sentry project")?;
    let (key, project) = crate::sentry::auth::parse_dsn(listed)?;
    // The DSN by the address actually bound (the listed one follows http.public_url, which may say port 0).
    let dsn = format!("http://{key}@{web}/{project}");
    let logs = match (server.syslog_tcp, server.syslog_udp) {
        (Some(a), _) => Logs::Tcp(connectable(a), None),
        (None, Some(a)) => {
            let a = connectable(a);
            let bind: SocketAddr = if a.is_ipv4() { "127.0.0.1:0".parse()? } else { "[::1]:0".parse()? };
            Logs::Udp(a, tokio::net::UdpSocket::bind(bind).await?)
        }
        (None, None) => Logs::Http,
    };
    let how = match &logs {
        Logs::Tcp(a, _) => format!("by syslog TCP to {a}"),
        Logs::Udp(a, _) => format!("by syslog UDP to {a}"),
        Logs::Http => format!("by POST {base}/api/v1/logs"),
    };
    let mut out = Sender {
        http: http.clone(),
        base: base.clone(),
        key,
        project,
        ingest_token: server.ingest_token.clone(),
        logs,
    };

    print!("{}", server.banner());
    println!("{}", guide(&base, &token, &dsn, &how, settings, seed, temporary));

    let zone = settings
        .zones
        .iter()
        .find(|(k, _)| k == "127.0.0.1")
        .map(|(_, z)| z.clone())
        .unwrap_or_else(|| settings.default_zone.clone());
    let mut shop = Shop::new(seed, &dsn, zone.clone());

    let opening = shop.opening(jiff::Timestamp::now());
    for v in &opening {
        out.send(v).await?;
    }
    let lost: Vec<&str> = opening.iter().filter_map(|v| v.scenario.cause()).collect();
    let placed = opening.iter().filter(|v| matches!(v.scenario, Scenario::Placed | Scenario::PlacedClientGone)).count();
    println!(
        "The shop's last minute is sent: {} visits, {placed} orders placed, {} lost ({}).",
        opening.len(),
        lost.len(),
        lost.join(", ")
    );
    // What orderwatch made of it, as `orderwatch lost-orders` shows it.
    let want: std::collections::BTreeSet<&str> = lost.iter().copied().collect();
    let found = async {
        loop {
            let all: Vec<Value> = match http
                .get(format!("{base}/api/v1/lost-orders"))
                .bearer_auth(&token)
                .send()
                .await
                .and_then(|r| r.error_for_status())
            {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            let causes: std::collections::BTreeSet<&str> =
                all.iter().filter_map(|o| o.get("cause").and_then(Value::as_str)).collect();
            if want.iter().all(|c| causes.contains(c)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(15), found).await.is_ok() {
        println!("orderwatch found them (orderwatch lost-orders):");
        let args = crate::cli::LostOrdersArgs {
            server: crate::cli::ServerArgs {
                server: Some(base.clone()),
                token: Some(token.clone()),
                serve: ServeArgs::default(),
            },
            cause: None,
            status: None,
            limit: 50,
            json: false,
        };
        crate::cli::lost_orders(args).await?;
    } else {
        println!("orderwatch has not found all of them within 15 s; see the log above for what went wrong.");
    }
    println!("\nThe shop goes on: a visit every 1–3 s (Ctrl-C stops).");
    loop {
        tokio::time::sleep(shop.pause()).await;
        let v = shop.next(jiff::Timestamp::now());
        out.send(&v).await?;
        if v.scenario == Scenario::Browse {
            continue;
        }
        let time = v.at.to_zoned_datetime(zone.clone()).strftime("%H:%M:%S").to_string();
        let total = v.total.map_or(String::new(), crate::orders::render::money);
        let what = match v.scenario.cause() {
            Some(cause) => format!("LOST ({cause})"),
            None => "placed".to_owned(),
        };
        println!("{time}  {what:<19} {:<22} {:<17} {total:>12}  {}", v.customer.name, v.customer.phone, v.note);
    }
}

/// Where to look, printed after the server's banner.
fn guide(base: &str, token: &str, dsn: &str, how: &str, s: &Settings, seed: u64, temporary: bool) -> String {
    let cli = format!("--server {base} --token {token}");
    let data = if temporary {
        format!("{} (temporary: removed at exit; --data DIR keeps it)", s.data.display())
    } else {
        s.data.display().to_string()
    };
    format!(
        "
orderwatch demo: a simulated building-materials shop plays against this server (seed {seed}).
  Its uWSGI and nginx lines go {how};
  its browser and backend Sentry events to {base}/api/{{project}}/envelope/ and /store/.
  Within seconds there is a lost order of every cause: rejected, rate_limited, server_error, network, client_gone.

Where to look:
  lost orders:   orderwatch lost-orders {cli}
                 curl -H 'Authorization: Bearer {token}' {base}/api/v1/lost-orders
                 (one with its evidence: {base}/api/v1/lost-orders/1)
  order lines:   orderwatch search {cli} 'POST /api/v1/orders/ -\"HTTP/2.0 201\" -\"HTTP/1.1 201\" program:website-backend'
  live:          orderwatch tail {cli} 'status:>=400'
  error groups:  curl -H 'Authorization: Bearer {token}' {base}/api/v1/error-groups
  Sentry DSN:    {dsn}   (point your own SDKs here too)
  data:          {data}
"
    )
}
