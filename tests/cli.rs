//! The command line's answers to mistakes: each names what is wrong and what to do.

use std::process::Command;

fn orderwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_orderwatch"))
}

#[test]
fn check_config_accepts_a_good_file_and_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[syslog]\ntime_zone = \"Europe/Volgograd\"\n[syslog.time_zones]\n\"10.0.0.5\" = \"UTC\"\n").unwrap();
    let out = orderwatch().arg("check-config").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[syslog]\nudp = \"localhost:514\"\n").unwrap();
    let out = orderwatch().arg("check-config").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("syslog.udp") && err.contains("IP:PORT"), "{err}");

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[sysl0g]\n").unwrap();
    let out = orderwatch().arg("check-config").arg(&typo).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sysl0g"));
}

#[test]
fn check_config_reads_sentry_alerts_and_keeps_their_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("alerts.toml");
    let text = "[[sentry.alerts]]\non = [\"regression\"]\n\
                destination = { webhook_json = \"https://hooks.shop.example/ow/abcdefghijklmnopqrst\", secret = \"0123456789abcdef\" }\n";
    std::fs::write(&good, text).unwrap();
    let out = orderwatch().arg("check-config").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("sentry_alerts") && shown.contains("Regression"), "{shown}");
    assert!(!shown.contains("0123456789abcdef") && !shown.contains("abcdefghijklmnopqrst"), "{shown}");

    let bad = dir.path().join("bad-alerts.toml");
    std::fs::write(&bad, text.replace("https://", "hooks.")).unwrap();
    let out = orderwatch().arg("check-config").arg(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[[sentry.alerts]] entry 0") && err.contains("destination.webhook_json"), "{err}");
}

#[test]
fn search_without_a_server_says_how_to_reach_one() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bind, read, release.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = orderwatch()
        .args(["search", "--token", "x", "--server", &format!("http://127.0.0.1:{port}"), "--data"])
        .arg(dir.path())
        .arg("orders")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach orderwatch") && err.contains("--server"), "{err}");
}

#[test]
fn search_without_a_token_says_where_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = orderwatch()
        .env_remove("ORDERWATCH_API_TOKEN")
        .args(["search", "--data"])
        .arg(dir.path())
        .arg("x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--token") && err.contains("ORDERWATCH_API_TOKEN"), "{err}");
}

#[test]
fn serve_on_a_busy_port_names_the_flag_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = orderwatch()
        .args(["serve", "--http", "127.0.0.1:0", "--syslog-udp", "off", "--syslog-tcp", &addr, "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--syslog-tcp") && err.contains(&addr), "{err}");
}

/// Users are added, listed, given another role and password, and removed on
/// the data directory; a password comes from standard input, never the
/// command line.
#[test]
fn users_are_managed_on_the_data_directory() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let with_stdin = |args: &[&str], input: &str| {
        let mut child = orderwatch()
            .args(args)
            .args(["--data", data])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = with_stdin(&["user", "add", "mia", "--role", "manager"], "a long enough password\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = with_stdin(&["user", "set-role", "mia", "developer"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = orderwatch().args(["user", "list", "--data", data]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(list.contains("mia") && list.contains("developer"), "{list}");
    let short = with_stdin(&["user", "passwd", "mia"], "short\n");
    assert!(!short.status.success(), "a short password is refused");
    let out = with_stdin(&["user", "passwd", "mia"], "another long password\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = with_stdin(&["user", "set-role", "mia", "boss"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("none of admin, developer, manager"));
    let out = with_stdin(&["user", "remove", "mia"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = with_stdin(&["user", "remove", "mia"], "");
    assert!(!out.status.success(), "there is no mia any more");
    let list = orderwatch().args(["user", "list", "--data", data]).output().unwrap();
    assert!(!String::from_utf8_lossy(&list.stdout).contains("mia"));
}
