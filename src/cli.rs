//! The command line: `serve`, `search`, `tail`, `projects`, `lost-orders`,
//! `check-config`, `demo`, `user`. `user` works on the data directory itself (like
//! `serve`, it finds it through --config and --data). `search`, `tail`, `projects` and `lost-orders` are clients of a running server's API, so
//! they see exactly what the API sees (including the live head of the store).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use crate::config::{Config, Settings};

#[derive(Parser)]
#[command(
    name = "orderwatch",
    version,
    about = "Makes sure an online shop never loses a customer's order without knowing why."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server: syslog and HTTP ingest, search API (embedded defaults; no config needed).
    Serve(ServeArgs),
    /// Search stored log lines, newest first.
    Search(SearchArgs),
    /// Follow new log lines that match a query, live.
    Tail(SearchArgs),
    /// Check a config file and print the effective settings.
    CheckConfig { file: PathBuf },
    /// Print the Sentry projects and the DSN to give each SDK (JSON, as GET /api/v1/projects).
    Projects(ServerArgs),
    /// List lost orders, newest first: time, cause, status, customer, cart total.
    LostOrders(LostOrdersArgs),
    /// Serve, and play a simulated shop against it: lost orders of every cause within seconds.
    #[command(mut_arg("data", |a| a.help("Data directory [default: a temporary directory, removed at exit]")))]
    Demo(crate::demo::DemoArgs),
    /// Dashboard users: add, list, remove, passwd, set-role (passwords are read from standard input).
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a dashboard user; the password (10 characters or more) is read from standard input.
    Add(UserAddArgs),
    /// List the dashboard users: name, role, language.
    List(DataArgs),
    /// Remove a dashboard user; their sessions end at once.
    Remove(UserNameArgs),
    /// Give a user a new password (read from standard input); their sessions end.
    Passwd(UserNameArgs),
    /// Change a user's role (admin, developer, manager); their sessions end.
    SetRole(UserRoleArgs),
}

#[derive(Args)]
pub struct UserNameArgs {
    pub name: String,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Args)]
pub struct UserRoleArgs {
    pub name: String,
    pub role: String,
    #[command(flatten)]
    pub data: DataArgs,
}

/// Where the data directory is, as `serve` finds it.
#[derive(Args)]
pub struct DataArgs {
    /// TOML config file (its `data` key names the data directory).
    #[arg(long, env = "ORDERWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./orderwatch-data].
    #[arg(long)]
    pub data: Option<PathBuf>,
}

impl DataArgs {
    fn data_dir(&self) -> anyhow::Result<PathBuf> {
        let args = ServeArgs { config: self.config.clone(), data: self.data.clone(), ..Default::default() };
        Ok(args.settings()?.data)
    }
}

#[derive(Args)]
pub struct UserAddArgs {
    /// The user's login name.
    pub name: String,
    /// admin (everything), developer (everything but users), manager (lost orders and the rescue queue).
    #[arg(long)]
    pub role: String,
    /// The dashboard's language for this user: en or ru.
    #[arg(long, default_value = "en")]
    pub lang: String,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Args)]
pub struct LostOrdersArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Only this cause: rejected, rate_limited, server_error, network, client_gone.
    #[arg(long)]
    pub cause: Option<String>,
    /// Only this status: new, test, investigating, reported, rescued, lost.
    #[arg(long)]
    pub status: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Default)]
pub struct ServeArgs {
    /// TOML config file (every key optional).
    #[arg(long, env = "ORDERWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./orderwatch-data].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long)]
    pub http: Option<String>,
    /// Syslog UDP listen address, or "off" [default: 127.0.0.1:5514].
    #[arg(long)]
    pub syslog_udp: Option<String>,
    /// Syslog TCP listen address, or "off" [default: 127.0.0.1:5514].
    #[arg(long)]
    pub syslog_tcp: Option<String>,
    /// Syslog TLS listen address (needs syslog.tls_cert and syslog.tls_key in the config) [default: off].
    #[arg(long)]
    pub syslog_tls: Option<String>,
    /// SMTP server for email notifications: smtp://user:pass@host:587 (STARTTLS required),
    /// smtps://user:pass@host (TLS, port 465), smtp://127.0.0.1:25?tls=none (plain).
    #[arg(long = "smtp", value_name = "URL", env = "ORDERWATCH_SMTP_URL", hide_env_values = true)]
    pub smtp: Option<String>,
    /// The From of notification emails, e.g. "orderwatch <alerts@shop.example>".
    #[arg(long = "smtp-from", value_name = "ADDR", env = "ORDERWATCH_SMTP_FROM")]
    pub smtp_from: Option<String>,
}

impl ServeArgs {
    /// The config file (or the defaults) with the flags applied, validated.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let mut cfg = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data {
            cfg.data = d.clone();
        }
        if let Some(v) = &self.http {
            cfg.http.listen = v.clone();
        }
        if let Some(v) = &self.syslog_udp {
            cfg.syslog.udp = v.clone();
        }
        if let Some(v) = &self.syslog_tcp {
            cfg.syslog.tcp = v.clone();
        }
        if let Some(v) = &self.syslog_tls {
            cfg.syslog.tls = v.clone();
        }
        if let Some(v) = &self.smtp {
            cfg.notify.smtp_url = Some(v.clone());
        }
        if let Some(v) = &self.smtp_from {
            cfg.notify.smtp_from = Some(v.clone());
        }
        Ok(cfg.validate()?)
    }
}

/// How a command reaches the running server.
#[derive(Args)]
pub struct ServerArgs {
    /// The server's URL [default: from the config's http.listen, else http://127.0.0.1:8080].
    #[arg(long)]
    pub server: Option<String>,
    /// API token [default: $ORDERWATCH_API_TOKEN, else the one in the data directory].
    #[arg(long, env = "ORDERWATCH_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Args)]
pub struct SearchArgs {
    /// The query, in the hosted log service's language: words, "phrases", OR, -negation,
    /// (groups), program:, sender:, severity:, and access-log fields such as status:>=500.
    pub query: Vec<String>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Oldest time: epoch seconds, RFC 3339, or a span ago like 1h.
    #[arg(long)]
    pub min_time: Option<String>,
    /// Newest time: epoch seconds, RFC 3339, or a span ago.
    #[arg(long)]
    pub max_time: Option<String>,
    /// How many lines at most.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Print oldest first instead of newest first.
    #[arg(long)]
    pub oldest_first: bool,
    /// Print the API's JSON events, one per line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Deserialize)]
struct SearchAnswer {
    events: Vec<serde_json::Value>,
    max_id: String,
    #[serde(default)]
    reached_record_limit: bool,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn new(args: &ServerArgs) -> anyhow::Result<Client> {
        let settings = args.serve.settings()?;
        let base = args.server.clone().unwrap_or_else(|| format!("http://{}", settings.http));
        let token = match &args.token {
            Some(t) => t.clone(),
            None => token_from_data(&settings.data).await?,
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
        Ok(Client { http, base: base.trim_end_matches('/').to_owned(), token })
    }

    async fn search(&self, params: &[(&str, String)]) -> anyhow::Result<SearchAnswer> {
        self.get("/api/v1/events/search.json", params, "the search").await
    }

    /// GET `path` with the token; `what` names the request in errors.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
        what: &str,
    ) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let resp = self.http.get(&url).bearer_auth(&self.token).query(params).send().await.with_context(|| {
            format!("cannot reach orderwatch at {}; is `orderwatch serve` running? (choose with --server)", self.base)
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let msg = body.get("error").and_then(|e| e.as_str()).unwrap_or("no message");
            bail!("the server refused {what} ({status}): {msg}");
        }
        resp.json().await.with_context(|| format!("the server's answer to {what} is not the JSON expected"))
    }
}

async fn token_from_data(data: &Path) -> anyhow::Result<String> {
    let path = data.join(crate::serve::DB_FILE);
    if !path.exists() {
        bail!(
            "no API token: pass --token or set ORDERWATCH_API_TOKEN (or run where the server's data directory is, or pass --data); {} does not exist",
            path.display()
        );
    }
    let db = crate::db::Db::open_sqlite_read_only(&path).await?;
    let token = db.setting("api_token").await?;
    db.close().await;
    token.context("the data directory has no API token yet; start `orderwatch serve` once")
}

fn print_event(ev: &serde_json::Value, json: bool) {
    if json {
        println!("{ev}");
        return;
    }
    let s = |k: &str| ev.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let program = s("program");
    if program.is_empty() {
        println!("{} {} {}", s("display_received_at"), s("source_name"), s("message"));
    } else {
        println!("{} {} {}: {}", s("display_received_at"), s("source_name"), program, s("message"));
    }
}

fn base_params(args: &SearchArgs) -> Vec<(&'static str, String)> {
    let mut p = vec![("q", args.query.join(" ")), ("limit", args.limit.to_string())];
    if let Some(t) = &args.min_time {
        p.push(("min_time", t.clone()));
    }
    if let Some(t) = &args.max_time {
        p.push(("max_time", t.clone()));
    }
    p
}

pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server).await?;
    let answer = client.search(&base_params(&args)).await?;
    // The API answers in chronological order.
    let events: Box<dyn Iterator<Item = &serde_json::Value>> =
        if args.oldest_first { Box::new(answer.events.iter()) } else { Box::new(answer.events.iter().rev()) };
    for ev in events {
        print_event(ev, args.json);
    }
    Ok(())
}

pub async fn tail(args: SearchArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server).await?;
    let mut params = base_params(&args);
    let first = client.search(&params).await?;
    for ev in &first.events {
        print_event(ev, args.json);
    }
    let mut min_id = first.max_id;
    params.retain(|(k, _)| *k != "min_time" && *k != "max_time");
    // Completeness over recency: the oldest lines after the last one seen, and
    // at once again while a poll came back full, so a burst is never skipped.
    params.push(("tail", "false".into()));
    let mut more = false;
    loop {
        if !more {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        let mut p = params.clone();
        p.push(("min_id", min_id.clone()));
        let answer = client.search(&p).await?;
        for ev in &answer.events {
            print_event(ev, args.json);
        }
        more = answer.reached_record_limit;
        if answer.max_id != "0" {
            min_id = answer.max_id;
        }
    }
}

/// `orderwatch projects`: what `GET /api/v1/projects` answers, pretty-printed.
pub async fn projects(args: ServerArgs) -> anyhow::Result<()> {
    let client = Client::new(&args).await?;
    let all: serde_json::Value = client.get("/api/v1/projects", &[], "the projects list").await?;
    println!("{}", serde_json::to_string_pretty(&all)?);
    Ok(())
}

pub async fn lost_orders(args: LostOrdersArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.server).await?;
    let mut q = vec![("limit", args.limit.to_string())];
    q.extend(args.cause.map(|c| ("cause", c)));
    q.extend(args.status.map(|s| ("status", s)));
    let all: Vec<serde_json::Value> = client.get("/api/v1/lost-orders", &q, "the lost orders").await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if all.is_empty() {
        println!("No lost orders.");
        return Ok(());
    }
    for o in &all {
        let s = |k: &str| o.pointer(k).and_then(|v| v.as_str()).unwrap_or("-").to_owned();
        let total = o.pointer("/cart/total").and_then(|v| v.as_f64()).map_or("-".into(), crate::orders::render::money);
        let code = o.get("status_code").and_then(|v| v.as_i64()).map_or("-".into(), |c| c.to_string());
        println!(
            "#{:<5} {}  {:<12} {:>3}  {:<13} {}  {}  {}  total {}",
            o["id"],
            s("/at"),
            s("/cause"),
            code,
            s("/status"),
            s("/customer/name"),
            s("/customer/phone"),
            s("/customer/email"),
            total
        );
    }
    Ok(())
}

pub fn check_config(file: &Path) -> anyhow::Result<()> {
    let settings = Config::load(file)?.validate()?;
    println!("{file}: OK", file = file.display());
    println!("{settings:#?}");
    Ok(())
}

/// Opens the data directory's database (creating it, as `serve` would).
async fn open_data(args: &DataArgs) -> anyhow::Result<crate::db::Db> {
    let dir = args.data_dir()?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the data directory {}; choose another with --data", dir.display()))?;
    crate::db::Db::open_sqlite(&dir.join(crate::serve::DB_FILE))
        .await
        .with_context(|| format!("cannot open the database in {}", dir.display()))
}

/// `orderwatch user add NAME --role ROLE [--lang en|ru]`, the password from standard input.
pub async fn user_add(args: UserAddArgs) -> anyhow::Result<()> {
    use crate::web::session::{Lang, Role, add_user};
    let role = Role::parse(&args.role)
        .with_context(|| format!("role {:?} is none of admin, developer, manager", args.role))?;
    let lang = Lang::parse(&args.lang).with_context(|| format!("language {:?} is neither en nor ru", args.lang))?;
    let password = read_password(&args.name, &format!("orderwatch user add {} --role {}", args.name, args.role))?;
    let db = open_data(&args.data).await?;
    let r = add_user(&db, &args.name, &password, role, lang).await;
    db.close().await;
    r?;
    println!("added {} ({}, {})", args.name.trim(), role.as_str(), lang.as_str());
    Ok(())
}

/// A password from standard input (one line).
fn read_password(name: &str, example: &str) -> anyhow::Result<String> {
    let mut password = String::new();
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprint!("Password for {name} (10 characters or more, then Enter): ");
    }
    std::io::stdin().read_line(&mut password).context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input: e.g. `echo 'a long password' | {example}`");
    }
    Ok(password)
}

/// `orderwatch user remove NAME`, `user passwd NAME`, `user set-role NAME ROLE`.
pub async fn user_change(cmd: UserCommand) -> anyhow::Result<()> {
    use crate::web::session::{Role, check_new_password, hash_password};
    let (name, data, hash, role) = match cmd {
        UserCommand::Remove(a) => {
            let db = open_data(&a.data).await?;
            let r = db.remove_user(a.name.trim()).await;
            db.close().await;
            if !r? {
                bail!("there is no user {:?} (`orderwatch user list` lists them)", a.name);
            }
            println!("removed {}; their sessions have ended", a.name.trim());
            return Ok(());
        }
        UserCommand::Passwd(a) => {
            let pw = read_password(&a.name, &format!("orderwatch user passwd {}", a.name))?;
            check_new_password(&pw).map_err(anyhow::Error::msg)?;
            (a.name, a.data, Some(hash_password(&pw)?), None)
        }
        UserCommand::SetRole(a) => {
            let role = Role::parse(&a.role)
                .with_context(|| format!("role {:?} is none of admin, developer, manager", a.role))?;
            (a.name, a.data, None, Some(role.as_str()))
        }
        _ => bail!("not a change of a user"),
    };
    let db = open_data(&data).await?;
    let r = db.change_user(name.trim(), hash.as_deref(), role).await;
    db.close().await;
    if !r? {
        bail!("there is no user {name:?} (`orderwatch user list` lists them)");
    }
    println!("changed {}; their sessions have ended", name.trim());
    Ok(())
}

/// `orderwatch user list`.
pub async fn user_list(args: DataArgs) -> anyhow::Result<()> {
    let db = open_data(&args).await?;
    let users = db.users().await;
    db.close().await;
    let users = users?;
    if users.is_empty() {
        println!(
            "No users yet: `orderwatch serve` creates `admin` at its first start, or add one with `orderwatch user add`."
        );
    }
    for u in users {
        println!("{:<24} {:<10} {}", u.name, u.role, u.lang);
    }
    Ok(())
}
