//! Sentry projects: with no config, project 1 `default` with a random public
//! key that stays the same across restarts; the API and `orderwatch projects`
//! show the DSN to give the SDKs.

mod common;

use common::Server;
use serde_json::Value;

#[test]
fn the_default_project_and_its_dsn_survive_a_restart() {
    let mut s = Server::start("");
    let r = s.api("GET", "/api/v1/projects", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let first = r.json();
    let list = first.as_array().unwrap();
    assert_eq!(list.len(), 1, "{first}");
    assert_eq!(list[0]["id"], 1);
    assert_eq!(list[0]["name"], "default");
    let dsn = list[0]["dsn"].as_str().unwrap();
    let key = dsn.strip_prefix("http://").and_then(|d| d.split_once('@')).map(|(k, _)| k).unwrap();
    assert!(key.len() == 32 && key.chars().all(|c| c.is_ascii_hexdigit()), "{dsn}");
    assert_eq!(dsn, format!("http://{key}@{}/1", s.http));

    // The CLI prints the same list.
    let out = std::process::Command::new(common::bin())
        .args(["projects", "--server", &format!("http://{}", s.http), "--token", &s.token])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, first);

    // Without a token: refused.
    let r = common::http(s.http, "GET", "/api/v1/projects", &[], b"").unwrap();
    assert_eq!(r.status, 401);

    s.stop();
    s.restart();
    let again = s.api("GET", "/api/v1/projects", "").json();
    assert_eq!(again[0]["dsn"].as_str().unwrap(), format!("http://{key}@{}/1", s.http), "the key stays");
    s.stop();
}
