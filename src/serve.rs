//! `orderwatch serve`: opens the data directory, starts the listeners and the
//! HTTP server, and on shutdown stops accepting, lets every connection hand
//! over what it has read, fsyncs the store and exits.
//!
//! `Server::start` binds everything first (so a busy port is a clear error
//! before anything runs) and reports the addresses actually bound, which is
//! what in-process tests use with port 0.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::db::Db;
use crate::ingest::{IngestContext, syslog};
use crate::logstore::{LogStore, StoreOptions};
use crate::alerts::{self, engine::{AlertEngine, EngineOptions}};
use crate::notify::Notifier;
use crate::parse::LineParser;
use crate::web::{self, AppState, auth};

/// The database file inside the data directory.
pub const DB_FILE: &str = "orderwatch.db";

pub struct Server {
    pub http: SocketAddr,
    pub syslog_udp: Option<SocketAddr>,
    pub syslog_tcp: Option<SocketAddr>,
    pub syslog_tls: Option<SocketAddr>,
    /// The generated admin token, and whether it was generated just now (first start).
    pub admin_token: (String, bool),
    pub ingest_token: String,
    /// The password of the `admin` user created at this start (the first), to print once.
    pub first_admin_password: Option<String>,
    pub store: LogStore,
    notifier: Notifier,
    alerts: AlertEngine,
    orders: crate::orders::detector::Detector,
    health: crate::orders::health::HealthChecker,
    sentry: crate::sentry::process::Processor,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    http_task: tokio::task::JoinHandle<()>,
    db: Db,
}

fn bind_err(what: &str, addr: SocketAddr, flag: &str) -> String {
    format!("cannot listen for {what} on {addr}; is another program using it? Choose another address with {flag}")
}

impl Server {
    pub async fn start(s: Settings) -> anyhow::Result<Server> {
        std::fs::create_dir_all(&s.data)
            .with_context(|| format!("cannot create the data directory {}; choose another with --data", s.data.display()))?;
        let db = Db::open_sqlite(&s.data.join(DB_FILE)).await.context("cannot open the database")?;
        let admin_token = db.setting_or_insert("api_token", auth::generate_token).await?;
        let (ingest_token, _) = db.setting_or_insert("ingest_token", auth::generate_token).await?;
        // The Sentry project every SDK can report to from the start (its key is a DSN's public key).
        db.ensure_default_project(|| auth::generate_token()[..32].to_owned(), crate::event::now_micros()).await?;

        let mut tokens = auth::Tokens { admin: vec![admin_token.0.clone()], ingest: vec![ingest_token.clone()] };
        if let Ok(t) = std::env::var("ORDERWATCH_API_TOKEN")
            && !t.trim().is_empty()
        {
            tokens.admin.push(t.trim().to_owned());
        }
        tokens.ingest.extend(s.ingest_tokens.iter().cloned());

        let store = LogStore::open(
            StoreOptions {
                dir: s.data.join("logs"),
                seal_bytes: s.seal_bytes,
                seal_interval: s.seal_interval,
                retention_age: s.retention_age,
                retention_bytes: s.retention_bytes,
            },
            db.clone(),
        )
        .await?;
        // The config file's saved searches, before anything evaluates them.
        alerts::engine::sync_config(&db, &s.searches, store.newest_id()).await?;
        let parser = Arc::new(LineParser::new(s.default_zone.clone(), s.zones.clone()));
        let ctx = Arc::new(IngestContext {
            store: store.clone(),
            parser: parser.clone(),
            max_line_bytes: s.max_line_bytes,
            idle_timeout: s.idle_timeout,
        });

        // Bind everything before starting anything.
        let http_listener = TcpListener::bind(s.http).await.with_context(|| bind_err("HTTP", s.http, "--http"))?;
        let udp = match s.syslog_udp {
            Some(a) => Some(syslog::bind_udp(a).with_context(|| bind_err("syslog over UDP", a, "--syslog-udp"))?),
            None => None,
        };
        let tcp = match s.syslog_tcp {
            Some(a) => Some(TcpListener::bind(a).await.with_context(|| bind_err("syslog over TCP", a, "--syslog-tcp"))?),
            None => None,
        };
        let tls = match &s.syslog_tls {
            Some((a, cert, key)) => {
                let acceptor = syslog::tls_acceptor(cert, key)?;
                let l = TcpListener::bind(a).await.with_context(|| bind_err("syslog over TLS", *a, "--syslog-tls"))?;
                Some((l, acceptor))
            }
            None => None,
        };

        let mut listening = vec![crate::telemetry::Listener::Http];
        listening.extend(udp.as_ref().map(|_| crate::telemetry::Listener::Udp));
        listening.extend(tcp.as_ref().map(|_| crate::telemetry::Listener::Tcp));
        listening.extend(tls.as_ref().map(|_| crate::telemetry::Listener::Tls));
        crate::telemetry::register(&listening);
        crate::telemetry::register_alerts();

        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        let http = http_listener.local_addr()?;
        let syslog_udp = udp.as_ref().map(|u| u.local_addr()).transpose()?;
        let syslog_tcp = tcp.as_ref().map(|t| t.local_addr()).transpose()?;
        let syslog_tls = tls.as_ref().map(|(t, _)| t.local_addr()).transpose()?;

        if let Some(sock) = udp {
            tasks.spawn(syslog::run_udp(sock, ctx.clone(), shutdown.clone()));
        }
        if let Some(l) = tcp {
            tasks.spawn(syslog::run_stream_listener(l, None, ctx.clone(), shutdown.clone(), tasks.clone()));
        }
        if let Some((l, acceptor)) = tls {
            tasks.spawn(syslog::run_stream_listener(l, Some(acceptor), ctx.clone(), shutdown.clone(), tasks.clone()));
        }

        // After everything is bound: a start that fails sends nothing.
        // The dashboard's first admin, when there is no user yet: its password is
        // shown once. Made only now that every listener is bound, so a start that
        // fails cannot make the admin and exit before printing the password.
        let first_admin_password = if db.user_count().await? == 0 {
            let pw = crate::web::session::random_password();
            crate::web::session::add_user(&db, "admin", &pw, crate::web::session::Role::Admin, crate::web::session::Lang::En)
                .await
                .context("cannot create the first dashboard user")?;
            Some(pw)
        } else {
            None
        };
        let notifier = Notifier::start(db.clone(), s.notify.clone());
        if let Some(smtp) = &s.notify.smtp {
            tracing::info!(smtp = %smtp, "email notifications go through this SMTP server");
        }

        let alerts = AlertEngine::start(
            db.clone(),
            store.clone(),
            notifier.clone(),
            EngineOptions { public_url: s.public_url.clone(), default_zone: s.default_zone.clone() },
        )
        .await?;

        let orders_settings = Arc::new(s.orders.clone());
        let (lost_order_events, _) = tokio::sync::broadcast::channel(256);
        let orders = crate::orders::detector::Detector::start(
            db.clone(),
            store.clone(),
            notifier.clone(),
            crate::orders::detector::DetectorOptions {
                settings: orders_settings.clone(),
                public_url: s.public_url.clone(),
                zone: s.default_zone.clone(),
                changed: Some(lost_order_events.clone()),
            },
        )
        .await?;
        // Order-flow health: its own periodic check beside the detector.
        let health = crate::orders::health::HealthChecker::start(
            db.clone(),
            &store,
            notifier.clone(),
            crate::orders::health::Watch::new(&orders_settings, &s.public_url, &s.default_zone),
        );
        // New error groups and regressions notify `[[sentry.alerts]]`.
        let projects = db.projects().await?;
        for (i, a) in s.sentry_alerts.iter().enumerate() {
            if let Some(p) = a.project
                && !projects.iter().any(|q| q.id == p)
            {
                tracing::warn!(
                    entry = i,
                    project = p,
                    "[[sentry.alerts]] names a project that does not exist (yet); GET /api/v1/projects lists them"
                );
            }
        }
        let sentry = crate::sentry::process::Processor::start_with(
            db.clone(),
            Some(crate::sentry::process::Alerting {
                alerts: crate::alerts::groups::GroupAlerts {
                    defs: s.sentry_alerts.clone(),
                    public_url: s.public_url_set.then(|| s.public_url.clone()),
                    zone: s.default_zone.clone(),
                },
                notifier: notifier.clone(),
            }),
            crate::sentry::process::OrdersHook { settings: orders_settings.clone(), detector: Some(orders.handle()) },
        );
        let state = Arc::new(AppState {
            orders: orders_settings,
            sentry: sentry.clone(),
            store: store.clone(),
            db: db.clone(),
            alerts: alerts.handle(),
            notifier: notifier.clone(),
            parser,
            tokens,
            max_line_bytes: s.max_line_bytes,
            max_body_bytes: s.max_body_bytes,
            public_url: s.public_url.clone(),
            trusted_proxies: s.trusted_proxies.clone(),
            sentry_limits: crate::web::sentry::RateLimits::new(s.sentry_envelopes_per_minute),
            display_zone: s.default_zone.clone(),
            udp_port: syslog_udp.map(|a| a.port()),
            prometheus: crate::telemetry::prometheus(),
            lost_order_events,
            shutdown: shutdown.clone(),
            settings: Arc::new(effective(&s, http, syslog_udp, syslog_tcp, syslog_tls)),
        });
        let app = web::app(state).into_make_service_with_connect_info::<SocketAddr>();
        let http_shutdown = shutdown.clone();
        let http_task = tokio::spawn(async move {
            let r = axum::serve(http_listener, app)
                .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "HTTP server failed");
            }
        });

        Ok(Server {
            http,
            syslog_udp,
            syslog_tcp,
            syslog_tls,
            admin_token,
            ingest_token,
            first_admin_password,
            store,
            notifier,
            alerts,
            orders,
            health,
            sentry,
            shutdown,
            tasks,
            http_task,
            db,
        })
    }

    /// Stops accepting, waits for connections to hand over what they read
    /// (bounded), makes everything durable, and closes the database.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(std::time::Duration::from_secs(10), self.tasks.wait()).await.is_err() {
            tracing::warn!("some syslog connections did not finish within 10 s");
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.http_task).await;
        // Envelopes not yet processed are processed at the next start.
        self.sentry.stop();
        // Alerts save where they are (what is not yet notified is found again at the next start).
        if tokio::time::timeout(std::time::Duration::from_secs(10), self.alerts.shutdown()).await.is_err() {
            tracing::warn!("the alert engine did not stop within 10 s; its alerts resume from their saved cursors");
        }
        if tokio::time::timeout(std::time::Duration::from_secs(10), self.orders.shutdown()).await.is_err() {
            tracing::warn!("the lost-order detector did not stop within 10 s; it resumes from its saved cursor");
        }
        if tokio::time::timeout(std::time::Duration::from_secs(10), self.health.shutdown()).await.is_err() {
            tracing::warn!("the order-flow health check did not stop within 10 s; its alerts resume from their saved state");
        }
        // Everything acknowledged is already fsynced in the WAL; this waits for
        // what is queued. Bounded, because a writer held up by a sealer that
        // retries on a full disk must not keep the process from stopping.
        // The notifier stops meanwhile (its attempts in flight finish or stay pending).
        let store = async {
            if tokio::time::timeout(std::time::Duration::from_secs(30), self.store.shutdown()).await.is_err() {
                tracing::warn!("the log store did not stop within 30 s (is the disk full?); exiting, the WAL is replayed at the next start");
            }
        };
        tokio::join!(store, self.notifier.shutdown());
        self.db.close().await;
    }

    /// The notifier: enqueue notifications through it, or insert them in
    /// your own transaction (`db::insert_notifications`) and then `wake` it.
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// What to tell the person who started the server.
    pub fn banner(&self) -> String {
        let mut b = String::new();
        b.push_str(&format!("orderwatch is running.\n  web and API:    http://{}/\n", self.http));
        if let Some(a) = self.syslog_udp {
            b.push_str(&format!("  syslog UDP:     {a}   (e.g. logger --udp -n {} -P {} hello)\n", a.ip(), a.port()));
        }
        if let Some(a) = self.syslog_tcp {
            b.push_str(&format!("  syslog TCP:     {a}   (rsyslog: *.* @@{a}, or logger --tcp -n {} -P {})\n", a.ip(), a.port()));
        }
        if let Some(a) = self.syslog_tls {
            b.push_str(&format!("  syslog TLS:     {a}\n"));
        }
        b.push_str(&format!(
            "  HTTP log ingest: curl -H 'Authorization: Bearer {}' --data-binary @lines.log http://{}/api/v1/logs\n",
            self.ingest_token, self.http
        ));
        if self.admin_token.1 {
            b.push_str(&format!(
                "  API token (admin, shown once; `orderwatch search` finds it in the data directory): {}\n",
                self.admin_token.0
            ));
        }
        b.push_str("  search:         orderwatch search 'POST /api/v1/orders/'   live: orderwatch tail QUERY\n");
        b
    }
}

/// The settings as running: the addresses actually bound (port 0 becomes the real port).
fn effective(
    s: &Settings,
    http: SocketAddr,
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
) -> Settings {
    let mut e = s.clone();
    e.http = http;
    e.syslog_udp = udp;
    e.syslog_tcp = tcp;
    if let (Some(t), Some(bound)) = (e.syslog_tls.as_mut(), tls) {
        t.0 = bound;
    }
    e
}

/// Runs until SIGTERM or SIGINT, then shuts down cleanly.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    // Installed before anything listens: a SIGTERM sent as soon as /healthz
    // answers must stop the server cleanly, not kill it.
    let stop = stop_signals()?;
    let server = Server::start(settings).await?;
    println!("{}", server.banner());
    if let Some(pw) = &server.first_admin_password {
        // Shown once, on stderr with the token's kind of secret; never stored in clear.
        eprintln!(
            "Dashboard: log in at http://{}/login as admin with the password {pw}\n  (shown once; add users with `orderwatch user add NAME --role admin|developer|manager`)",
            server.http
        );
    }
    stop.await;
    tracing::info!("shutting down: flushing the log store");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM or SIGINT, from the moment this is called.
pub fn stop_signals() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}
