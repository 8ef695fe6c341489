//! The dashboard in a real browser: headless Debian chromium driven through
//! playwright-core (`tests/browser/dashboard.mjs`, with the npm packages of
//! `tests/browser`, or `ORDERWATCH_TEST_BROWSER_DIR`), against the real
//! orderwatch binary. Users are made with `orderwatch user add` (the password
//! piped in); each role logs in through the login form; a lost order sent by
//! syslog TCP appears on the open list without a reload; a developer marks it
//! "it was me", makes an incident, writes the cause, previews and sends the
//! letter, which a real SMTP server (aiosmtpd) receives. Screenshots of the
//! main pages go to `target/tmp/dashboard-*.png`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Server;
use common::browser::Driver;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";


struct Browser {
    d: Driver,
    base: String,
}

impl Browser {
    fn start(base: String) -> Browser {
        Browser { d: Driver::start("dashboard.mjs"), base }
    }

    fn cmd(&mut self, c: Value) -> Value {
        self.d.cmd(c)
    }

    fn act_as(&mut self, who: &str) {
        self.cmd(json!({"cmd": "as", "who": who}));
    }

    /// Loads a page of orderwatch; its HTTP status.
    fn goto(&mut self, path: &str) -> u16 {
        let url = format!("{}{path}", self.base);
        self.cmd(json!({"cmd": "goto", "url": url})).as_u64().unwrap_or(0) as u16
    }

    fn fill(&mut self, selector: &str, value: &str) {
        self.cmd(json!({"cmd": "fill", "selector": selector, "value": value}));
    }

    fn select(&mut self, selector: &str, value: &str) {
        self.cmd(json!({"cmd": "select", "selector": selector, "value": value}));
    }

    /// Clicks and waits for the page it loads; its URL.
    fn submit(&mut self, selector: &str) -> String {
        self.cmd(json!({"cmd": "submit", "selector": selector})).as_str().unwrap().to_owned()
    }

    fn text(&mut self, selector: &str) -> String {
        self.cmd(json!({"cmd": "text", "selector": selector})).as_str().unwrap_or_default().to_owned()
    }

    fn wait_for(&mut self, selector: &str, timeout_ms: u64) {
        self.cmd(json!({"cmd": "wait_for", "selector": selector, "timeout": timeout_ms}));
    }

    fn eval(&mut self, js: &str) -> Value {
        self.cmd(json!({"cmd": "eval", "js": js}))
    }

    fn screenshot(&mut self, name: &str) {
        self.d.screenshot(&format!("dashboard-{name}"));
    }

    /// Logs in through the login form; the page it lands on.
    fn login(&mut self, who: &str, next: &str) -> String {
        self.act_as(who);
        assert_eq!(self.goto(next), 200);
        assert!(self.url().contains("/login?next="), "a page without a session shows the login form");
        self.fill("#name", who);
        self.fill("#password", PASSWORD);
        self.submit("#login-form button[type=submit]")
    }

    fn url(&mut self) -> String {
        self.cmd(json!({"cmd": "url"})).as_str().unwrap().to_owned()
    }
}


/// `orderwatch user add NAME --role ROLE --lang LANG --data DIR`, the password piped in.
fn user_add(data: &std::path::Path, name: &str, role: &str, lang: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(common::bin())
        .args(["user", "add", name, "--role", role, "--lang", lang, "--data"])
        .arg(data)
        .env_remove("ORDERWATCH_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// A uWSGI request line (RFC 3164, as Debian's uWSGI sends it) for an order POST answered `status`, now.
fn order_line(status: u16, ip: &str) -> Vec<u8> {
    let now = jiff::Timestamp::now().in_tz("UTC").unwrap();
    let header = now.strftime("%b %e %H:%M:%S");
    let inner = now.strftime("%a %b %e %H:%M:%S %Y");
    format!(
        "<30>{header} website-backend website-backend: [pid: 20593|app: 0|req: 154/4946604] {ip} () {{48 vars in 1018 bytes}} \
         [{inner}] POST /api/v1/orders/ => generated 99 bytes in 2 msecs (HTTP/2.0 {status}) 8 headers in 295 bytes (1 switches on core 0)\n"
    )
    .into_bytes()
}

#[test]
fn each_role_works_the_lost_order_desk_in_a_real_browser() {
    use common::smtp::{SinkTls, SmtpSink};
    let tmp = tempfile::Builder::new().prefix("orderwatch-dashboard-").tempdir().unwrap();
    let data = tmp.path().join("data");
    // Users first, on the data directory itself; a short password is refused with the rule.
    let short = user_add(&data, "shorty", "manager", "en", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 10"), "{short:?}");
    for (name, role, lang) in [("ada", "admin", "en"), ("dev", "developer", "en"), ("mia", "manager", "ru")] {
        let out = user_add(&data, name, role, lang, PASSWORD);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let smtp_port = common::free_tcp_port();
    let config = "[syslog]\ntime_zone = \"UTC\"\n[orders]\nalert_delay = \"500ms\"\n\
                  [report]\nto = [\"head@shop.example\"]\ncc = [\"developers@shop.example\"]\n";
    let mut s = Server::with_dir(
        common::Opts {
            config: config.into(),
            data: Some(data.clone()),
            env: vec![
                ("ORDERWATCH_SMTP_URL".into(), format!("smtp://127.0.0.1:{smtp_port}?tls=none")),
                ("ORDERWATCH_SMTP_FROM".into(), "orderwatch <alerts@shop.example>".into()),
            ],
            ..common::Opts::default()
        },
        tmp,
    );
    assert!(!s.stderr().contains("as admin with the password"), "users exist: no first admin is made");
    let sink = SmtpSink::start(&s.dir, smtp_port, SinkTls::Plain, None);
    let mut b = Browser::start(format!("http://{}", s.http));

    // The manager (in Russian): the lost orders and the rescue queue, not the developers' pages.
    let landed = b.login("mia", "/lost-orders");
    assert!(landed.ends_with("/lost-orders"), "{landed}");
    assert!(b.text("h1").contains("Потерянные заказы"), "the manager's language");
    assert_eq!(b.goto("/rescue"), 200);
    assert_eq!(b.goto("/search"), 403, "a manager cannot open the logs");
    assert_eq!(b.goto("/incidents"), 403);
    assert_eq!(b.goto("/users"), 403);
    b.screenshot("forbidden");
    let nav = b.text("header nav");
    assert!(nav.contains("Потерянные заказы") && !nav.contains("Поиск по логам"), "{nav}");
    // The manager's session cannot use the developers' API either.
    let api = b.eval("const r = await fetch('/api/v1/events/search.json?q=x'); return r.status;");
    assert_eq!(api, 403);

    // The admin: everything, users too; a wrong password is said next to the field.
    b.act_as("ada");
    b.goto("/lost-orders");
    b.fill("#name", "ada");
    b.fill("#password", "not the password");
    b.submit("#login-form button[type=submit]");
    assert!(b.text("#password-error").contains("Wrong name or password"));
    b.fill("#name", "ada");
    b.fill("#password", PASSWORD);
    b.submit("#login-form button[type=submit]");
    assert_eq!(b.goto("/users"), 200);

    // The developer opens the list; a lost order sent by syslog appears without a reload.
    let landed = b.login("dev", "/lost-orders");
    assert!(landed.ends_with("/lost-orders"), "{landed}");
    assert_eq!(b.goto("/search"), 200);
    assert_eq!(b.goto("/lost-orders"), 200);
    b.wait_for("#live-status:not([hidden])", 10_000);
    let before = b.eval("return document.querySelectorAll('#lost-orders tbody tr').length;");
    assert_eq!(before, 0);
    b.eval("window.notReloaded = true; return null;");
    common::send_tcp(s.tcp, &order_line(400, "203.0.113.77"));
    b.wait_for("#lost-orders tbody tr", 20_000);
    assert_eq!(b.eval("return window.notReloaded === true;"), true, "the row came without a reload");
    let row = b.text("#lost-orders tbody tr");
    assert!(row.contains("Refused by the server"), "{row}");
    b.screenshot("lost-orders");
    let id: i64 =
        b.eval("return document.querySelector('#lost-orders tbody tr').dataset.id;").as_str().unwrap().parse().unwrap();

    // The manager's open list gets it too (in Russian).
    b.act_as("mia");
    assert_eq!(b.goto(&format!("/lost-orders/{id}")), 200);
    assert!(b.text("#cause-plain").contains("Сервер отклонил заказ"));
    assert_eq!(b.text("#it-was-me"), "", "a manager has no developer actions");

    // The developer: the lost order's page, "it was me", then back to new and into an incident.
    b.act_as("dev");
    assert_eq!(b.goto(&format!("/lost-orders/{id}")), 200);
    assert!(b.text("#cause-plain").contains("The server refused the order"));
    assert!(b.text(".evidence pre").contains("POST /api/v1/orders/"), "the raw line");
    assert!(
        b.eval("return document.querySelector('.evidence a').getAttribute('href');")
            .as_str()
            .unwrap()
            .starts_with("/search?around=")
    );
    b.screenshot("lost-order");
    b.submit("#it-was-me");
    assert!(b.text("#order-status").contains("test"), "{}", b.text("#order-status"));
    b.select("#status", "investigating");
    b.submit("form[action$='/status'] button:not(#it-was-me)");
    assert!(b.text("#order-status").contains("investigating"));
    b.select("#incident", "new");
    let incident = b.submit("#add-to-incident");
    assert!(incident.contains("/incidents/"), "{incident}");

    // The incident: a bad form says what is wrong next to the field; then the cause, the preview, the letter.
    b.fill("#plain_cause", "   ");
    b.submit("#save-incident");
    assert!(b.text("#plain_cause-error").contains("plain words"));
    b.fill("#title", "We did not allow a basement floor");
    b.fill(
        "#plain_cause",
        "We changed the order API and did not allow a basement delivery floor, i.e. a floor below zero.",
    );
    b.fill("#actions", "Fixed the validation; managers call the customer.");
    b.submit("#save-incident");
    assert!(b.text(".flash").contains("Saved"));
    b.screenshot("incident");
    b.submit("#preview-letter");
    let preview = b.text("#letter-text");
    assert!(preview.contains("did not allow a basement delivery floor"), "{preview}");
    let subject = b.text("#letter-subject");
    b.screenshot("letter");
    b.submit("#send-letter");
    assert!(b.text(".flash").contains("on its way"));
    let mail =
        common::wait_until("the letter over SMTP", Duration::from_secs(30), || sink.messages().into_iter().next());
    assert_eq!(mail["headers"]["to"], "head@shop.example");
    assert_eq!(mail["headers"]["subject"], subject, "the preview's subject is the letter's");
    let text = mail["parts"].as_array().unwrap().iter().find(|p| p["content_type"] == "text/plain").unwrap()["content"]
        .as_str()
        .unwrap()
        .replace("\r\n", "\n");
    assert_eq!(text.trim_end(), preview.trim_end(), "the letter is exactly the preview");
    // The page shows it sent.
    common::wait_until("the letter shown delivered", Duration::from_secs(20), || {
        b.goto(&incident.replace(&b.base.clone(), ""));
        b.text("#reports").contains("delivered").then_some(())
    });

    // The manager records a call from the rescue queue (the outcome is required).
    b.act_as("mia");
    assert_eq!(b.goto("/rescue"), 200);
    b.screenshot("rescue");
    if b.eval(&format!("return !!document.querySelector('#rescue-{id}');")) == true {
        b.submit(&format!("#rescue-{id} .call-form button"));
        assert!(b.text(&format!("#outcome-error-{id}")).contains("Выберите"));
    }

    // A phone-sized screen still shows the list.
    b.cmd(json!({"cmd": "as", "who": "phone", "width": 390}));
    assert_eq!(b.goto("/lost-orders"), 200);
    b.fill("#name", "dev");
    b.fill("#password", PASSWORD);
    assert!(b.submit("#login-form button[type=submit]").ends_with("/lost-orders"));
    assert!(b.text("#lost-orders").contains("Refused by the server"), "the row on a phone");
    b.screenshot("phone");

    // The admin sees who read the customer data.
    b.act_as("ada");
    assert_eq!(b.goto("/users"), 200);
    let audit = b.text("#audit");
    for who in ["mia", "dev"] {
        assert!(audit.contains(who) && audit.contains(&format!("lost_order:{id}")), "{who} in {audit}");
    }
    b.screenshot("users");
    // No customer data or session in orderwatch's own log.
    let log = s.stderr();
    assert!(!log.contains(PASSWORD));
    s.stop();
}

#[test]
fn the_first_start_makes_an_admin_and_shows_its_password_once() {
    let mut s = Server::start("");
    let line = common::wait_until("the first admin's password", Duration::from_secs(10), || {
        s.stderr().lines().find(|l| l.contains("as admin with the password")).map(str::to_owned)
    });
    let password = line.split("the password ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    assert!(password.len() >= 16);
    s.stop();
    s.restart();
    assert!(!s.stderr().contains("as admin with the password"), "shown once only");
    // It logs in: the login form's token, then the form.
    let form = s.get("/login");
    let cookie = form.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let text = form.text();
    let token = text.split("name=\"token\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let body = format!("name=admin&password={}&next=%2Fusers&token={token}", common::urlencode(&password));
    let r = common::http(
        s.http,
        "POST",
        "/login",
        &[("content-type", "application/x-www-form-urlencoded"), ("cookie", &cookie)],
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(r.header("set-cookie").unwrap().starts_with("ow_session="));
}
