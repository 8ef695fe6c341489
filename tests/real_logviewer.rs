//! The log viewer in a real browser: headless Debian `chromium` driven by
//! `playwright-core` (`tests/browser/logviewer.mjs`; `npm ci` in
//! `tests/browser`) against a real `orderwatch serve`, with users made by
//! `orderwatch user add`. A developer searches a line sent by `logger` over
//! syslog, turns the live tail on and sees a newly sent line appear without a
//! reload, opens a line in its context, opens an error group sent through the
//! Sentry endpoint and resolves it, and opens the settings; a manager gets
//! the 403 page on /search. Screenshots go to `target/tmp/logviewer-*.png`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::browser::Driver;
use common::{Server, nonce, wait_until};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";


struct Browser {
    d: Driver,
    base: String,
}

impl Browser {
    fn start(base: String) -> Browser {
        Browser { d: Driver::start("logviewer.mjs"), base }
    }

    fn cmd(&mut self, c: Value) -> Value {
        self.d.cmd(c)
    }

    fn raw(&mut self, c: Value) -> String {
        self.d.raw(&c)
    }

    /// Loads a path of orderwatch's; the HTTP status.
    fn goto(&mut self, path: &str) -> u64 {
        let url = format!("{}{path}", self.base);
        self.cmd(json!({"cmd": "goto", "url": url})).as_u64().unwrap_or(0)
    }

    fn fill(&mut self, selector: &str, value: &str) {
        self.cmd(json!({"cmd": "fill", "selector": selector, "value": value}));
    }

    fn click(&mut self, selector: &str) {
        self.cmd(json!({"cmd": "click", "selector": selector}));
    }

    fn wait_text(&mut self, selector: &str, text: &str) {
        self.cmd(json!({"cmd": "wait_text", "selector": selector, "text": text}));
    }

    fn text(&mut self, selector: &str) -> String {
        self.cmd(json!({"cmd": "text", "selector": selector})).as_str().unwrap_or_default().to_owned()
    }

    fn eval(&mut self, js: &str) -> Value {
        self.cmd(json!({"cmd": "eval", "js": js}))
    }

    fn screenshot(&mut self, name: &str) {
        self.d.screenshot(&format!("logviewer-{name}"));
    }

    fn login(&mut self, name: &str) {
        self.goto("/login?next=/search");
        self.fill("#name", name);
        self.fill("#password", PASSWORD);
        self.click("#login-form button[type=submit]");
    }
}


/// `orderwatch user add NAME --role ROLE --data DIR`, the password on standard input.
fn add_user(s: &Server, name: &str, role: &str) {
    let mut child = Command::new(common::bin())
        .args(["user", "add", name, "--role", role, "--data"])
        .arg(&s.data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add {name}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_developer_searches_tails_and_reads_errors_in_chromium_and_a_manager_cannot_open_logs() {
    let mut s = Server::start("");
    add_user(&s, "dev", "developer");
    add_user(&s, "mgr", "manager");
    let tag = nonce();
    let first = format!("order refused {tag} floor=-1");
    common::logger(&["--udp"], s.udp.port(), &["-t", "website-backend", &first]);
    s.wait_one(&tag);

    let mut b = Browser::start(format!("http://{}", s.http));
    b.login("dev");
    // The search page: the query, the line with its sender and program.
    b.fill("#q", &tag);
    b.click("#search-button");
    b.wait_text("#log-lines tbody tr", &first);
    let row = b.text("#log-lines tbody tr");
    assert!(row.contains("website-backend"), "{row}");
    b.screenshot("search");

    // A query that does not parse: the message next to the box.
    b.fill("#q", "status:>=500 (");
    b.click("#search-button");
    b.wait_text("#q-error", "position");

    // The live tail: a line sent now appears at the top, without a reload.
    b.goto(&format!("/search?q={tag}"));
    b.eval("window.notReloaded = true;");
    b.cmd(json!({"cmd": "check", "selector": "#live"}));
    b.cmd(json!({"cmd": "visible", "selector": "#live-status"}));
    let second = format!("order accepted {tag} after the fix");
    common::logger(&["--tcp"], s.tcp.port(), &["-t", "website-backend", &second]);
    b.wait_text("#log-lines tbody tr:first-child", &second);
    assert_eq!(b.eval("return window.notReloaded === true"), json!(true), "the page was not reloaded");
    assert_eq!(b.eval("return document.querySelectorAll('#log-lines tbody tr').length"), json!(2));
    b.screenshot("live-tail");

    // The first line in its context: highlighted among its sender's lines.
    let id = s.wait_one(&format!("\"{first}\""))["id"].as_str().unwrap().to_owned();
    b.goto(&format!("/search?around={id}"));
    b.wait_text("tr.hit", &first);
    assert!(b.text("#context-lines").contains(&second), "the later line of the same sender");
    b.screenshot("context");
    assert_eq!(b.goto("/events/1"), 404);

    // An error group sent through the Sentry endpoint.
    let dsn = s.api("GET", "/api/v1/projects", "").json()[0]["dsn"].as_str().unwrap().to_owned();
    let key = dsn.split("//").nth(1).unwrap().split('@').next().unwrap().to_owned();
    let event =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sentry-python-order-500.event.json")).unwrap();
    let auth = format!("Sentry sentry_version=7, sentry_key={key}");
    let r = common::http(s.http, "POST", "/api/1/store/", &[("X-Sentry-Auth", &auth)], &event).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let group = wait_until("the error group", Duration::from_secs(15), || {
        let all = s.api("GET", "/api/v1/error-groups", "").json();
        all.as_array().and_then(|a| a.first()).map(|g| g["id"].as_i64().unwrap())
    });
    b.goto("/error-groups");
    b.wait_text("#error-groups", "IntegrityError");
    b.click(&format!("#group-{group} a"));
    b.wait_text("#group-title", "IntegrityError");
    b.wait_text(".frames li.in-app", "create_order");
    b.screenshot("error-group");
    b.click("#set-resolved");
    b.wait_text("#group-status", "resolved");
    assert_eq!(s.api("GET", &format!("/api/v1/error-groups/{group}"), "").json()["status"], "resolved");

    // The settings: the DSN to paste, the syslog endpoints.
    assert_eq!(b.goto("/settings"), 200);
    b.wait_text("#projects", &dsn);
    b.wait_text("#syslog-endpoints", &s.udp.to_string());
    b.screenshot("settings");

    // A manager cannot open logs.
    b.click("#logout");
    b.login("mgr");
    assert_eq!(b.goto("/search"), 403);
    b.wait_text("main", "Your role may not open this page.");
    b.screenshot("manager-403");
    let console = b.raw(json!({"cmd": "console"}));
    assert!(!console.contains("pageerror"), "{console}");
}
