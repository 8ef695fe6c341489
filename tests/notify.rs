//! The notifier against real peers: Debian's aiosmtpd (plain, STARTTLS and
//! implicit TLS with a test CA made by rcgen, AUTH), with every received mail
//! parsed by Python's own `email` package (`tests/data/smtp_sink.py`); and
//! real HTTP receivers (axum on 127.0.0.1) for the webhook, signed-JSON
//! webhook, Slack and Telegram shapes, outages, permanent errors, a
//! destination that never answers, and a restart with work left in flight.
//!
//! aiosmtpd must be installed (`apt-get install python3-aiosmtpd`, which
//! `scripts/test` does); a missing one fails the test, it never skips.

mod common;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::free_tcp_port;
use common::smtp::{SinkTls, SmtpSink, make_pki};
use orderwatch::db::{Db, NotificationRow};
use orderwatch::notify::{Message, NewNotification, Notifier, NotifySettings, SmtpSettings};
use serde_json::{Value, json};

const PYTHON: &str = "/usr/bin/python3";
const FROM: &str = "orderwatch <alerts@shop.example>";

// ---------------------------------------------------------------------------
// HTTP receivers

#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the receiver answers next: status, body, and how long it takes.
type Answer = (u16, String, Duration);

#[derive(Default)]
struct ReceiverState {
    got: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    /// The answer when the script is used up.
    default: Mutex<Option<Answer>>,
    open: AtomicUsize,
    max_open: AtomicUsize,
}

/// A real HTTP server on 127.0.0.1 that records every request and answers
/// from a script (200 "ok" when it runs out).
struct Receiver {
    addr: SocketAddr,
    state: Arc<ReceiverState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    async fn start() -> Receiver {
        Receiver::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    async fn start_on(addr: SocketAddr) -> Receiver {
        use axum::extract::State;
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .fallback(
                |State(st): State<Arc<ReceiverState>>,
                 uri: axum::http::Uri,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    let headers = headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                        .collect();
                    st.got.lock().unwrap().push(Received {
                        path: uri.path().to_owned(),
                        headers,
                        body: body.to_vec(),
                    });
                    let now = st.open.fetch_add(1, Ordering::SeqCst) + 1;
                    st.max_open.fetch_max(now, Ordering::SeqCst);
                    let answer = st.script.lock().unwrap().pop_front();
                    let default = st.default.lock().unwrap().clone();
                    let (status, body, delay) =
                        answer
                            .or(default)
                            .unwrap_or((200, "ok".to_owned(), Duration::ZERO));
                    tokio::time::sleep(delay).await;
                    st.open.fetch_sub(1, Ordering::SeqCst);
                    (axum::http::StatusCode::from_u16(status).unwrap(), body)
                },
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, state, task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn script(&self, answers: &[(u16, &str)]) {
        let mut s = self.state.script.lock().unwrap();
        s.extend(
            answers
                .iter()
                .map(|(c, b)| (*c, (*b).to_owned(), Duration::ZERO)),
        );
    }

    fn script_slow(&self, status: u16, delay: Duration) {
        self.state
            .script
            .lock()
            .unwrap()
            .push_back((status, "ok".into(), delay));
    }

    fn always(&self, status: u16, delay: Duration) {
        *self.state.default.lock().unwrap() = Some((status, "ok".into(), delay));
    }

    fn requests(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }
}

// ---------------------------------------------------------------------------
// The outbox under test

/// Settings for tests: retries after 100–400 ms, short timeouts.
fn fast() -> NotifySettings {
    NotifySettings {
        retry_base: Duration::from_millis(100),
        retry_max: Duration::from_millis(400),
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        poll_interval: Duration::from_secs(1),
        shutdown_grace: Duration::from_millis(300),
        ..NotifySettings::default()
    }
}

fn with_smtp(url: &str) -> NotifySettings {
    NotifySettings {
        smtp: Some(SmtpSettings::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))),
        smtp_from: Some(FROM.parse().unwrap()),
        ..fast()
    }
}

struct Outbox {
    dir: tempfile::TempDir,
    db: Db,
    notifier: Notifier,
}

impl Outbox {
    async fn new(settings: NotifySettings) -> Outbox {
        let dir = tempfile::Builder::new()
            .prefix("orderwatch-notify-")
            .tempdir()
            .unwrap();
        let db = Db::open_sqlite(&dir.path().join("orderwatch.db"))
            .await
            .unwrap();
        let notifier = Notifier::start(db.clone(), settings);
        Outbox { dir, db, notifier }
    }

    /// Stops the notifier and starts a new one on a new connection to the
    /// same database file, as a restarted process would.
    async fn restart(&mut self, settings: NotifySettings) {
        self.notifier.shutdown().await;
        self.db.close().await;
        self.db = Db::open_sqlite(&self.dir.path().join("orderwatch.db"))
            .await
            .unwrap();
        self.notifier = Notifier::start(self.db.clone(), settings);
    }

    async fn enqueue(&self, source: &str, message: Message) -> i64 {
        let ids = self
            .notifier
            .enqueue(&[NewNotification {
                source: source.into(),
                dedup_key: None,
                message,
            }])
            .await
            .unwrap();
        ids[0]
    }

    async fn row(&self, id: i64) -> NotificationRow {
        self.db
            .notification(id, 1000)
            .await
            .unwrap()
            .expect("the notification exists")
    }

    /// Polls the row until `cond` holds (panics with the row after `timeout`).
    async fn wait(
        &self,
        id: i64,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&NotificationRow) -> bool,
    ) -> NotificationRow {
        let deadline = Instant::now() + timeout;
        loop {
            let row = self.row(id).await;
            if cond(&row) {
                return row;
            }
            if Instant::now() > deadline {
                panic!("after {timeout:?}, notification {id} is not {what}: {row:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_sent(&self, id: i64) -> NotificationRow {
        self.wait(id, "sent", Duration::from_secs(20), |r| r.status == "sent")
            .await
    }
}

async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn email(to: &[&str], cc: &[&str], subject: &str, text: &str, html: Option<&str>) -> Message {
    Message::Email {
        to: to.iter().map(|s| s.to_string()).collect(),
        cc: cc.iter().map(|s| s.to_string()).collect(),
        subject: subject.into(),
        text: text.into(),
        html: html.map(str::to_owned),
    }
}

fn crlf_to_lf(v: &Value) -> String {
    v.as_str().unwrap().replace("\r\n", "\n")
}

// ---------------------------------------------------------------------------
// Email

const SUBJECT: &str =
    "Потерян заказ №1042: клиент не смог оформить заказ (HTTP 429, «слишком много попыток»)";
const TEXT: &str = "Здравствуйте!\n\nЗаказ не оформлен: POST /api/v1/orders/ ответил 429.\n.a line that starts with a dot\nFrom here on, a line that starts with From\nА это очень длинная строка, чтобы проверить перенос строк при кодировании quoted-printable или base64: 0123456789 0123456789 0123456789 0123456789.\n";
const HTML: &str = "<p>Здравствуйте!</p>\n<p>Заказ <b>№1042</b> не оформлен.</p>\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_plain_smtp_arrives_whole_with_utf8_headers_and_both_parts() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let sink = SmtpSink::start(tmp.path(), port, SinkTls::Plain, None);

    // The default for smtp:// is STARTTLS required: a plain server is refused, and the error says what to write.
    let strict = Outbox::new(with_smtp(&format!("smtp://127.0.0.1:{port}"))).await;
    let id = strict
        .enqueue("alert:1", email(&["ops@shop.example"], &[], "s", "t", None))
        .await;
    let row = strict
        .wait(id, "retried", Duration::from_secs(10), |r| r.attempts >= 1)
        .await;
    assert_eq!(row.status, "pending");
    let err = row.last_error.unwrap();
    assert!(
        err.contains("STARTTLS") && err.contains("?tls=none"),
        "{err}"
    );
    strict.notifier.shutdown().await;
    assert!(sink.messages().is_empty());

    let out = Outbox::new(with_smtp(&format!("smtp://127.0.0.1:{port}?tls=none"))).await;
    let id = out
        .enqueue(
            "alert:12",
            email(
                &["Руководитель <head@shop.example>", "ops@shop.example"],
                &["developers@shop.example"],
                SUBJECT,
                TEXT,
                Some(HTML),
            ),
        )
        .await;
    let text_only = out
        .enqueue(
            "alert:13",
            email(
                &["ops@shop.example"],
                &[],
                "Only text",
                "Просто текст.\n",
                None,
            ),
        )
        .await;
    let row = out.wait_sent(id).await;
    out.wait_sent(text_only).await;
    assert_eq!(row.attempts, 1);
    assert_eq!(
        row.target,
        "Руководитель <head@shop.example>, ops@shop.example; cc developers@shop.example"
    );

    let mails = sink.messages();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let m = mails
        .iter()
        .find(|m| m["headers"]["subject"] == SUBJECT)
        .unwrap_or_else(|| panic!("{mails:#?}"));
    assert_eq!(m["mail_from"], "alerts@shop.example");
    let mut rcpt: Vec<&str> = m["rcpt_tos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    rcpt.sort();
    assert_eq!(
        rcpt,
        [
            "developers@shop.example",
            "head@shop.example",
            "ops@shop.example"
        ]
    );
    let h = &m["headers"];
    assert_eq!(h["from"], FROM);
    assert_eq!(
        h["to"],
        "Руководитель <head@shop.example>, ops@shop.example"
    );
    assert_eq!(h["cc"], "developers@shop.example");
    assert_eq!(h["auto-submitted"], "auto-generated");
    assert_eq!(
        h["message-id"],
        format!("<orderwatch.{id}.{}@shop.example>", row.created_at)
    );
    // Date is when the notification was created (to the second).
    let date = jiff::fmt::rfc2822::parse(h["date"].as_str().unwrap())
        .unwrap()
        .timestamp()
        .as_second();
    assert_eq!(date, row.created_at / 1_000_000, "{}", h["date"]);
    assert_eq!(m["content_type"], "multipart/alternative");
    let parts = m["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{parts:#?}");
    assert_eq!(parts[0]["content_type"], "text/plain");
    assert_eq!(parts[0]["charset"], "utf-8");
    assert_eq!(crlf_to_lf(&parts[0]["content"]), TEXT);
    assert_eq!(parts[1]["content_type"], "text/html");
    assert_eq!(crlf_to_lf(&parts[1]["content"]), HTML);
    // The raw message is 7-bit: every non-ASCII byte is encoded.
    assert!(m["raw"].as_str().unwrap().is_ascii(), "{}", m["raw"]);

    let t = mails
        .iter()
        .find(|m| m["headers"]["subject"] == "Only text")
        .unwrap();
    assert_eq!(t["content_type"], "text/plain");
    assert_eq!(crlf_to_lf(&t["parts"][0]["content"]), "Просто текст.\n");
    out.notifier.shutdown().await;
    sink.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_starttls_and_smtps_with_a_private_ca_and_a_login() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = make_pki(tmp.path());
    let port = free_tcp_port();
    let sink = SmtpSink::start(
        tmp.path(),
        port,
        SinkTls::StartTls(&pki),
        Some("alerts@shop.example:p@ss:w/rd%"),
    );
    // User and password percent-encoded in the URL.
    let url =
        format!("smtp://alerts%40shop.example:p%40ss%3Aw%2Frd%25@127.0.0.1:{port}?tls=required");

    // Without the CA the server's certificate is refused: retried, with a hint.
    let mut out = Outbox::new(with_smtp(&url)).await;
    let id = out
        .enqueue(
            "alert:1",
            email(
                &["head@shop.example"],
                &[],
                "TLS проверка",
                "текст",
                Some("<p>html</p>"),
            ),
        )
        .await;
    let row = out
        .wait(id, "retried", Duration::from_secs(10), |r| r.attempts >= 1)
        .await;
    let err = row.last_error.clone().unwrap();
    assert_eq!(row.status, "pending");
    assert!(err.contains("?ca="), "{err}");
    assert!(
        !err.contains("p@ss") && !err.contains("p%40ss"),
        "the password leaked: {err}"
    );
    assert!(sink.messages().is_empty());

    // The config is fixed and the server restarted: the waiting email goes out.
    out.restart(with_smtp(&format!("{url}&ca={}", pki.ca.display())))
        .await;
    let row = out.wait_sent(id).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    assert!(
        mails[0]["tls"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLS")),
        "{}",
        mails[0]["tls"]
    );
    assert_eq!(mails[0]["login"], "alerts@shop.example");
    assert_eq!(mails[0]["headers"]["subject"], "TLS проверка");
    assert!(row.attempt_log.last().unwrap().error.is_none());

    // SMTPS: TLS from the first byte, port given.
    let sport = free_tcp_port();
    let smtps = SmtpSink::start(tmp.path(), sport, SinkTls::Implicit(&pki), None);
    out.restart(with_smtp(&format!(
        "smtps://127.0.0.1:{sport}?ca={}",
        pki.ca.display()
    )))
    .await;
    let id = out
        .enqueue(
            "alert:2",
            email(&["head@shop.example"], &[], "SMTPS", "text", None),
        )
        .await;
    out.wait_sent(id).await;
    let mails = smtps.messages();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0]["tls"]
            .as_str()
            .is_some_and(|v| v.starts_with("TLS")),
        "{}",
        mails[0]["tls"]
    );
    out.notifier.shutdown().await;
    sink.stop();
    smtps.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_during_an_smtp_outage_is_retried_and_arrives_once() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let out = Outbox::new(with_smtp(&format!("smtp://127.0.0.1:{port}?tls=none"))).await;
    let id = out
        .enqueue(
            "alert:7",
            email(&["ops@shop.example"], &[], "Outage", "text", None),
        )
        .await;
    let row = out
        .wait(id, "retried twice", Duration::from_secs(10), |r| {
            r.attempts >= 2
        })
        .await;
    assert_eq!(row.status, "pending");
    for a in &row.attempt_log {
        let e = a.error.as_deref().unwrap();
        assert!(
            e.contains(&format!("SMTP 127.0.0.1:{port}")) && e.contains("refused"),
            "{e}"
        );
    }

    let sink = SmtpSink::start(tmp.path(), port, SinkTls::Plain, None);
    let row = out.wait_sent(id).await;
    assert!(row.attempts >= 3);
    assert_eq!(
        row.attempt_log.iter().filter(|a| a.error.is_none()).count(),
        1
    );
    // Nothing comes after the delivery.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(out.row(id).await.attempts, row.attempts);
    out.notifier.shutdown().await;
    sink.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_rejections_and_missing_config_are_visible() {
    let tmp = tempfile::tempdir().unwrap();

    // No SMTP configured: pending, and the error says how to configure it.
    let none = Outbox::new(fast()).await;
    let id = none
        .enqueue("alert:1", email(&["ops@shop.example"], &[], "s", "t", None))
        .await;
    let row = none
        .wait(id, "attempted", Duration::from_secs(10), |r| {
            r.attempts >= 1
        })
        .await;
    assert_eq!(row.status, "pending");
    let err = row.last_error.unwrap();
    assert!(
        err.contains("SMTP is not configured") && err.contains("--smtp"),
        "{err}"
    );
    none.notifier.shutdown().await;

    let port = free_tcp_port();
    let sink = SmtpSink::start(tmp.path(), port, SinkTls::Plain, None);
    let out = Outbox::new(with_smtp(&format!("smtp://127.0.0.1:{port}?tls=none"))).await;
    let rejected = out
        .enqueue(
            "alert:2",
            email(&["reject@shop.example"], &[], "s", "t", None),
        )
        .await;
    let later = out
        .enqueue(
            "alert:3",
            email(&["later@shop.example"], &[], "s", "t", None),
        )
        .await;
    let invalid = out
        .enqueue("alert:4", email(&["not an address"], &[], "s", "t", None))
        .await;

    let row = out
        .wait(rejected, "failed", Duration::from_secs(10), |r| {
            r.status == "failed"
        })
        .await;
    assert_eq!(row.attempts, 1);
    assert!(
        row.last_error.as_deref().unwrap().contains("550"),
        "{row:?}"
    );
    let row = out
        .wait(invalid, "failed", Duration::from_secs(10), |r| {
            r.status == "failed"
        })
        .await;
    assert!(
        row.last_error
            .as_deref()
            .unwrap()
            .contains("not an email address"),
        "{row:?}"
    );
    let row = out
        .wait(later, "retried", Duration::from_secs(10), |r| {
            r.attempts >= 2
        })
        .await;
    assert_eq!(row.status, "pending");
    assert!(
        row.last_error.as_deref().unwrap().contains("451"),
        "{row:?}"
    );
    assert!(sink.messages().is_empty());
    out.notifier.shutdown().await;
    sink.stop();
}

// ---------------------------------------------------------------------------
// HTTP channels

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn papertrail_webhook_posts_the_payload_form_field_once_per_dedup_key() {
    let fixture = include_str!("../testdata/papertrail-webhook-payload.json");
    let rx = Receiver::start().await;
    let out = Outbox::new(fast()).await;
    let item = NewNotification {
        source: "alert:42".into(),
        dedup_key: Some("alert:42:924738417398165504".into()),
        message: Message::Webhook {
            url: rx.url("/hooks/papertrail"),
            payload: fixture.into(),
        },
    };
    let ids = out
        .notifier
        .enqueue(std::slice::from_ref(&item))
        .await
        .unwrap();
    assert_eq!(
        out.notifier.enqueue(&[item]).await.unwrap(),
        Vec::<i64>::new(),
        "the same key is stored once"
    );
    out.wait_sent(ids[0]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = rx.requests();
    assert_eq!(got.len(), 1, "{got:#?}");
    let r = &got[0];
    assert_eq!(r.path, "/hooks/papertrail");
    assert_eq!(
        r.header("content-type"),
        "application/x-www-form-urlencoded"
    );
    assert_eq!(r.header("x-orderwatch-notification-id"), ids[0].to_string());
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&r.body).into_owned().collect();
    assert_eq!(form.len(), 1, "{form:?}");
    assert_eq!(form[0].0, "payload");
    let sent: Value = serde_json::from_str(&form[0].1).unwrap();
    assert_eq!(sent, serde_json::from_str::<Value>(fixture).unwrap());
    out.notifier.shutdown().await;
}

/// The receiver's check from the module doc of `notify::http`, run by Python.
const VERIFY_PY: &str = r#"
import hashlib, hmac, sys, time

def verify(secret: bytes, timestamp: str, signature: str, body: bytes) -> bool:
    if abs(time.time() - int(timestamp)) > 300:
        return False
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), signature)

secret, timestamp, signature, path = sys.argv[1:]
sys.exit(0 if verify(secret.encode(), timestamp, signature, open(path, "rb").read()) else 1)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_json_webhook_verifies_with_the_documented_check() {
    let rx = Receiver::start().await;
    let out = Outbox::new(fast()).await;
    let body = r#"{"event":"alert","name":"non-ok website orders","count":1,"note":"Заказ"}"#;
    let secret = "whsec_0123456789";
    let id = out
        .enqueue(
            "alert:5",
            Message::WebhookJson {
                url: rx.url("/in"),
                body: body.into(),
                secret: secret.into(),
            },
        )
        .await;
    let row = out.wait_sent(id).await;
    assert!(!format!("{row:?}").contains(secret));
    let r = rx.requests().pop().unwrap();
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.body, body.as_bytes());
    let ts = r.header("x-orderwatch-timestamp");
    let sig = r.header("x-orderwatch-signature");
    assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
    assert!((jiff::Timestamp::now().as_second() - ts.parse::<i64>().unwrap()).abs() < 60);

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("body");
    std::fs::write(&path, &r.body).unwrap();
    let check = |secret: &str, body: &Path| {
        Command::new(PYTHON)
            .arg("-c")
            .arg(VERIFY_PY)
            .args([secret, ts, sig])
            .arg(body)
            .status()
            .unwrap()
            .success()
    };
    assert!(
        check(secret, &path),
        "the documented check refuses the signature"
    );
    assert!(!check("another secret", &path));
    let tampered = tmp.path().join("tampered");
    std::fs::write(&tampered, body.replace("1", "2")).unwrap();
    assert!(!check(secret, &tampered));
    out.notifier.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_telegram_get_their_shapes_and_telegram_errors_hide_the_token() {
    let rx = Receiver::start().await;
    let settings = NotifySettings {
        telegram_api_base: rx.url(""),
        ..fast()
    };
    let out = Outbox::new(settings).await;
    let text = "Потерян заказ №1042\nhttps://shop.example/orders/1042";
    let slack = out
        .enqueue(
            "alert:1",
            Message::Slack {
                url: rx.url("/services/T0/B0/SLACKSECRET"),
                text: text.into(),
            },
        )
        .await;
    out.wait_sent(slack).await;
    let tg = out
        .enqueue(
            "alert:1",
            Message::Telegram {
                bot_token: "123456:TGSECRET".into(),
                chat_id: "-100200300".into(),
                text: text.into(),
            },
        )
        .await;
    let row = out.wait_sent(tg).await;
    assert_eq!(row.target, "telegram bot 123456, chat -100200300");
    let got = rx.requests();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].path, "/services/T0/B0/SLACKSECRET");
    assert_eq!(got[0].header("content-type"), "application/json");
    assert_eq!(got[0].json(), json!({ "text": text }));
    assert_eq!(got[1].path, "/bot123456:TGSECRET/sendMessage");
    assert_eq!(got[1].header("content-type"), "application/json");
    assert_eq!(
        got[1].json(),
        json!({ "chat_id": "-100200300", "text": text, "disable_web_page_preview": true })
    );

    // The Bot API's refusal is permanent and explains itself; the token stays out of it.
    rx.script(&[(
        400,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
    )]);
    let bad = out
        .enqueue(
            "alert:1",
            Message::Telegram {
                bot_token: "123456:TGSECRET".into(),
                chat_id: "42".into(),
                text: "x".into(),
            },
        )
        .await;
    let row = out
        .wait(bad, "failed", Duration::from_secs(10), |r| {
            r.status == "failed"
        })
        .await;
    let err = row.last_error.unwrap();
    assert!(
        err.contains("400") && err.contains("chat not found"),
        "{err}"
    );
    assert!(!err.contains("TGSECRET"), "{err}");
    out.notifier.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_answering_500_is_retried_until_200_and_delivered_once() {
    let rx = Receiver::start().await;
    rx.script(&[(500, "database is down"), (503, "")]);
    let out = Outbox::new(fast()).await;
    let id = out
        .enqueue(
            "alert:9",
            Message::Webhook {
                url: rx.url("/hook"),
                payload: "{}".into(),
            },
        )
        .await;
    let row = out.wait_sent(id).await;
    assert_eq!(row.attempts, 3, "{row:#?}");
    let errors: Vec<Option<&str>> = row.attempt_log.iter().map(|a| a.error.as_deref()).collect();
    assert!(
        errors[0].unwrap().contains("500") && errors[0].unwrap().contains("database is down"),
        "{errors:?}"
    );
    assert!(errors[1].unwrap().contains("503"), "{errors:?}");
    assert_eq!(errors[2], None);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.requests().len(), 3);
    // Every attempt carries the same id, so the receiver can tell a repeat.
    assert!(
        rx.requests()
            .iter()
            .all(|r| r.header("x-orderwatch-notification-id") == id.to_string())
    );
    out.notifier.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_permanent_and_retry_makes_it_due_again() {
    let rx = Receiver::start().await;
    rx.script(&[(404, "no such hook")]);
    let out = Outbox::new(fast()).await;
    let id = out
        .enqueue(
            "alert:3",
            Message::Webhook {
                url: rx.url("/gone"),
                payload: "{}".into(),
            },
        )
        .await;
    let row = out
        .wait(id, "failed", Duration::from_secs(10), |r| {
            r.status == "failed"
        })
        .await;
    assert_eq!(row.attempts, 1);
    assert!(
        row.last_error.as_deref().unwrap().contains("404"),
        "{row:?}"
    );
    // Failed stays failed: no more attempts by itself.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.requests().len(), 1);

    assert_eq!(
        out.db
            .retry_notification(id, orderwatch::event::now_micros())
            .await
            .unwrap(),
        orderwatch::db::RetryResult::Due
    );
    out.notifier.wake();
    let row = out.wait_sent(id).await;
    assert_eq!(row.attempts, 2);
    assert_eq!(rx.requests().len(), 2);
    out.notifier.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_never_answers_does_not_delay_the_others() {
    let stuck = Receiver::start().await;
    stuck.always(200, Duration::from_secs(3600));
    let fine = Receiver::start().await;
    let settings = NotifySettings {
        max_concurrency: 4,
        per_destination_concurrency: 2,
        ..fast()
    };
    let out = Outbox::new(settings).await;
    let mut stuck_ids = Vec::new();
    for n in 0..8 {
        stuck_ids.push(
            out.enqueue(
                "alert:1",
                Message::Webhook {
                    url: stuck.url(&format!("/{n}")),
                    payload: "{}".into(),
                },
            )
            .await,
        );
    }
    wait_for(
        "two attempts to hang at the stuck destination",
        Duration::from_secs(5),
        || (stuck.state.open.load(Ordering::SeqCst) == 2).then_some(()),
    )
    .await;

    let started = Instant::now();
    let id = out
        .enqueue(
            "alert:2",
            Message::Webhook {
                url: fine.url("/ok"),
                payload: "{}".into(),
            },
        )
        .await;
    out.wait_sent(id).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the healthy destination waited {took:?}"
    );
    assert_eq!(
        stuck.state.max_open.load(Ordering::SeqCst),
        2,
        "at most per_destination_concurrency at one destination"
    );

    // Shutdown does not wait for the stuck attempts: they stay pending, never lost.
    let t = Instant::now();
    out.notifier.shutdown().await;
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        t.elapsed()
    );
    for id in stuck_ids {
        assert_eq!(out.row(id).await.status, "pending");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_notifier_sends_what_a_stopped_one_left() {
    // 1. The destination is down: the notification waits, retried.
    let port = free_tcp_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut out = Outbox::new(fast()).await;
    let id = out
        .enqueue(
            "alert:1",
            Message::Webhook {
                url: format!("http://{addr}/hook"),
                payload: "{}".into(),
            },
        )
        .await;
    let row = out
        .wait(id, "retried", Duration::from_secs(10), |r| r.attempts >= 1)
        .await;
    assert_eq!(row.status, "pending");
    assert!(
        row.last_error.as_deref().unwrap().contains("refused"),
        "{row:?}"
    );
    out.notifier.shutdown().await;
    let rx = Receiver::start_on(addr).await;
    out.restart(fast()).await;
    out.wait_sent(id).await;
    assert_eq!(rx.requests().len(), 1);

    // 2. Stopped while an attempt is in flight: left pending (and claimed); the
    // next notifier frees the claim and sends it again (at least once).
    rx.script_slow(200, Duration::from_secs(3600));
    let id = out
        .enqueue(
            "alert:2",
            Message::Webhook {
                url: rx.url("/hook"),
                payload: "{}".into(),
            },
        )
        .await;
    wait_for(
        "the slow attempt to reach the receiver",
        Duration::from_secs(5),
        || (rx.requests().len() == 2).then_some(()),
    )
    .await;
    out.notifier.shutdown().await;
    let row = out.row(id).await;
    assert_eq!(
        (row.status.as_str(), row.attempts),
        ("pending", 0),
        "{row:?}"
    );
    out.restart(fast()).await;
    let row = out.wait_sent(id).await;
    assert_eq!(row.attempts, 1);
    let got = rx.requests();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[1].header("x-orderwatch-notification-id"),
        got[2].header("x-orderwatch-notification-id")
    );
    out.notifier.shutdown().await;
}

// ---------------------------------------------------------------------------
// The command line

#[test]
fn a_bad_smtp_url_stops_serve_naming_the_key_and_hiding_the_password() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(common::bin())
        .args(["serve", "--data"])
        .arg(tmp.path().join("data"))
        .args([
            "--http",
            "127.0.0.1:0",
            "--syslog-udp",
            "off",
            "--syslog-tcp",
            "off",
        ])
        .args(["--smtp", "smtp://alerts:s3cret@mail.example.com?tls=maybe"])
        .env_remove("ORDERWATCH_CONFIG")
        .env_remove("ORDERWATCH_SMTP_FROM")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("notify.smtp_url") && stderr.contains("tls=required"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");

    // From the environment; no From address and a login that is not one.
    let out = Command::new(common::bin())
        .args(["serve", "--data"])
        .arg(tmp.path().join("data"))
        .args([
            "--http",
            "127.0.0.1:0",
            "--syslog-udp",
            "off",
            "--syslog-tcp",
            "off",
        ])
        .env(
            "ORDERWATCH_SMTP_URL",
            "smtp://alerts:s3cret@mail.example.com",
        )
        .env_remove("ORDERWATCH_CONFIG")
        .env_remove("ORDERWATCH_SMTP_FROM")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("notify.smtp_from") && stderr.contains("--smtp-from"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
