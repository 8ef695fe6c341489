//! `orderwatch demo` as a new user runs it: the built binary serves and plays
//! its simulated shop against itself; within seconds its API holds lost
//! orders of every cause, joined with their evidence, and it stops cleanly.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn lost_orders(http: SocketAddr) -> Vec<Value> {
    let auth = format!("Bearer {}", common::TOKEN);
    match common::http(http, "GET", "/api/v1/lost-orders?limit=1000", &[("Authorization", &auth)], b"") {
        Ok(r) if r.status == 200 => r.json().as_array().unwrap().clone(),
        _ => Vec::new(),
    }
}

fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("orderwatch demo did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_demo_shows_lost_orders_of_every_cause_within_seconds_and_exits_at_the_end_of_for() {
    let dir = tempfile::tempdir().unwrap();
    let (tcp, _) = common::free_ports(2, 0);
    let http: SocketAddr = format!("127.0.0.1:{}", tcp[0]).parse().unwrap();
    let syslog = format!("127.0.0.1:{}", tcp[1]);
    let data = dir.path().join("data");
    let child = Command::new(common::bin())
        .args(["demo", "--for", "8s", "--seed", "7", "--http", &http.to_string(), "--syslog-udp", "off"])
        .args(["--syslog-tcp", &syslog, "--data"])
        .arg(&data)
        .env("ORDERWATCH_API_TOKEN", common::TOKEN)
        .stdout(std::fs::File::create(dir.path().join("out")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = common::ChildGuard(child);
    let started = Instant::now();
    common::wait_tcp(http, Duration::from_secs(10), "orderwatch demo");

    let causes = ["rejected", "rate_limited", "server_error", "network", "client_gone"];
    let all = common::wait_until("a lost order of every cause, joined", Duration::from_secs(7), || {
        let all = lost_orders(http);
        let has = |c: &str| all.iter().any(|o| o["cause"] == c);
        let rejected = all.iter().any(|o| o["cause"] == "rejected" && o["customer"]["phone"].is_string());
        let backend = all.iter().any(|o| o["cause"] == "server_error" && o["backend_errors"][0].is_object());
        let gone = all.iter().any(|o| o["cause"] == "client_gone" && o["customer"]["name"].is_string());
        (causes.iter().all(|c| has(c)) && rejected && backend && gone).then_some(all)
    });
    let took = started.elapsed();
    eprintln!("every cause after {took:?}");

    let rejected = all.iter().find(|o| o["cause"] == "rejected").unwrap();
    assert_eq!(rejected["status_code"], 400);
    assert!(rejected["customer"]["name"].as_str().is_some_and(|n| n.contains(' ')), "{rejected}");
    assert!(rejected["customer"]["phone"].as_str().unwrap().starts_with("+7 9"), "{rejected}");
    assert!(rejected["cart"]["total"].as_f64().is_some_and(|t| t > 0.0), "{rejected}");
    assert!(!rejected["cart"]["items"].as_array().unwrap().is_empty());
    assert!(rejected["refused"][0].as_str().is_some(), "{rejected}");
    let auth = format!("Bearer {}", common::TOKEN);
    let one =
        common::http(http, "GET", &format!("/api/v1/lost-orders/{}", rejected["id"]), &[("Authorization", &auth)], b"")
            .unwrap()
            .json();
    let mut kinds: Vec<String> = one["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["kind"].as_str().unwrap(), e["source"].as_str().unwrap()))
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["frontend frontend", "request log:nginx", "request log:website-backend"], "{one}");

    let server_error = all.iter().find(|o| o["cause"] == "server_error" && o["backend_errors"][0].is_object()).unwrap();
    assert!(
        server_error["backend_errors"][0]["title"].as_str().unwrap().starts_with("IntegrityError"),
        "{server_error}"
    );
    assert_eq!(server_error["status_code"], 500);
    let limited: Vec<&Value> = all.iter().filter(|o| o["cause"] == "rate_limited").collect();
    assert!(limited.iter().any(|o| o["manager"] == true && o["remote_user"] == "manager"), "{limited:?}");
    assert!(limited.iter().any(|o| o["manager"] == false), "the spammer: {limited:?}");
    let network = all.iter().find(|o| o["cause"] == "network").unwrap();
    assert!(network["status_code"].is_null() && network["customer"]["name"].is_string(), "{network}");
    let gone = all.iter().find(|o| o["cause"] == "client_gone").unwrap();
    assert_eq!(gone["status_code"], 499);
    assert!(gone["customer"]["name"].is_string(), "the page's timeout report joined: {gone}");
    // Placed orders (whose customer left or not) are never lost orders.
    assert!(all.iter().all(|o| o["status_code"] != 201), "{all:?}");

    let status = wait_exit(&mut child.0, Duration::from_secs(40));
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
    let err = std::fs::read_to_string(dir.path().join("err")).unwrap();
    assert!(status.success(), "{status}\n{out}\n{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "--for 8s");
    assert!(out.contains("orderwatch lost-orders --server http://") && out.contains("Sentry DSN:"), "{out}");
    assert!(out.contains("orderwatch found them"), "{out}");
    assert!(data.join("orderwatch.db").exists(), "--data is kept");
}

#[test]
fn without_data_the_demo_keeps_nothing_and_sigterm_stops_it_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let (tcp, _) = common::free_ports(2, 0);
    let http: SocketAddr = format!("127.0.0.1:{}", tcp[0]).parse().unwrap();
    let child = Command::new(common::bin())
        .args(["demo", "--http", &http.to_string(), "--syslog-udp", "off"])
        .args(["--syslog-tcp", &format!("127.0.0.1:{}", tcp[1])])
        .env("TMPDIR", tmp.path())
        .env("ORDERWATCH_API_TOKEN", common::TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = common::ChildGuard(child);
    common::wait_tcp(http, Duration::from_secs(10), "orderwatch demo");
    let data: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(data.len(), 1, "a temporary data directory: {data:?}");
    assert!(data[0].join("orderwatch.db").exists());
    common::wait_until("a lost order", Duration::from_secs(7), || (!lost_orders(http).is_empty()).then_some(()));
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let status = wait_exit(&mut child.0, Duration::from_secs(30));
    let mut out = String::new();
    std::io::Read::read_to_string(child.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(status.success(), "{status}\n{out}");
    assert!(out.contains("temporary: removed at exit"), "{out}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "the temporary data directory is removed: {left:?}");
}
