//! A headless Debian `chromium` driven by `playwright-core` through a node
//! script in `tests/browser` (JSON lines on stdin and stdout: one command, one
//! answer `{"ok": …}` or `{"error": …}`), shared by the real-browser tests.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// `tests/browser` with its node_modules; missing ones fail the test and say how to make them.
pub fn browser_dir() -> PathBuf {
    let dir = std::env::var_os("ORDERWATCH_TEST_BROWSER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser")));
    for m in ["playwright-core", "@sentry/browser"] {
        assert!(
            dir.join("node_modules").join(m).join("package.json").is_file(),
            "{m} is not installed in {}/node_modules: run scripts/test (it runs `npm ci` there), or \
             cd {0} && npm ci",
            dir.display()
        );
    }
    dir
}

/// One driver process and its browser.
pub struct Driver {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// What the driver said when it was ready.
    pub ready: Value,
}

impl Driver {
    /// Starts `tests/browser/{script}` and waits for its `ready` line.
    pub fn start(script: &str) -> Driver {
        let mut child = Command::new(super::require("node"))
            .arg(browser_dir().join(script))
            .env("ORDERWATCH_TEST_CHROMIUM", super::require("chromium"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let ready: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("the driver did not start: {e}: {line:?}"));
        Driver { child, stdin, stdout, ready }
    }

    /// Sends a command; its answer line as it came.
    pub fn raw(&mut self, c: &Value) -> String {
        writeln!(self.stdin, "{c}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line
    }

    /// Sends a command; its `ok` value (an `error` fails the test, with the page's console).
    pub fn cmd(&mut self, c: Value) -> Value {
        let line = self.raw(&c);
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{c}: the driver answered {line:?}: {e}"));
        if let Some(e) = v.get("error") {
            let console = self.raw(&json!({"cmd": "console"}));
            panic!("{c}: {}\nconsole: {console}", e.as_str().unwrap_or_default());
        }
        v["ok"].clone()
    }

    /// Runs `js` (an async function's body) in the page; its result.
    pub fn eval(&mut self, js: &str) -> Value {
        self.cmd(json!({"cmd": "eval", "js": js}))
    }

    /// Saves a screenshot as `target/tmp/{name}.png` (a test artifact).
    pub fn screenshot(&mut self, name: &str) {
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/target/tmp"));
        std::fs::create_dir_all(&dir).unwrap();
        self.cmd(json!({"cmd": "screenshot", "path": dir.join(format!("{name}.png"))}));
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "close"}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
