//! The harness for the real-component tests (`tests/real_*.rs`): it runs the
//! built `orderwatch` binary as a child process on free 127.0.0.1 ports with a
//! temporary data directory, and talks to it over real sockets only.
//!
//! - [`Server::start`] / [`Server::with`]: start the server, wait for `/healthz`.
//! - [`Server::search`], [`Server::wait_for`], [`Server::search_all`]: the search API.
//! - [`Server::stop`] (SIGTERM, exit code 0 asserted), [`Server::kill9`],
//!   [`Server::restart`] (same data directory).
//! - [`require`]: external programs must be there; a missing one is a failure
//!   that says what to install, never a skip (`scripts/test` installs them).
//! - [`Proc`]: a helper daemon (rsyslogd, uWSGI) in its own process group,
//!   killed with its children when dropped; [`Rsyslog`]: rsyslogd with its own
//!   config, inputs on free ports and the given actions.
//!
//! HTTP is spoken with a tiny blocking HTTP/1.1 client over `std::net`, so the
//! tests need no async runtime and see exactly the bytes the server sends.

#![allow(dead_code)]

pub mod browser;
pub mod smtp;

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The admin token every test server gets through `ORDERWATCH_API_TOKEN`.
pub const TOKEN: &str = "orderwatch-test-admin-token";

/// How long a server may take to answer `/healthz` after it is spawned.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_orderwatch")
}

// ---------------------------------------------------------------------------
// External programs

/// The Debian package that provides a program or file the tests use.
fn package_of(what: &str) -> &'static str {
    match what {
        "logger" => "bsdutils",
        "rsyslogd" => "rsyslog",
        "lmnsd_gtls.so" => "rsyslog-gnutls",
        "uwsgi" => "uwsgi-core",
        "python3_plugin.so" => "uwsgi-plugin-python3",
        "rsyslog_plugin.so" => "uwsgi-core",
        "openssl" => "openssl",
        "unshare" | "nsenter" => "util-linux",
        "mount" => "mount",
        "python3" => "python3",
        "chromium" => "chromium",
        "node" => "nodejs",
        _ => "the package that provides it",
    }
}

/// The full path of `cmd`, searched in `PATH` and the sbin directories.
/// Panics (never skips) when it is missing.
pub fn require(cmd: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    for d in ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        dirs.push(PathBuf::from(d));
    }
    for d in dirs {
        let p = d.join(cmd);
        if let Ok(meta) = std::fs::metadata(&p) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return p;
            }
        }
    }
    panic!(
        "`{cmd}` is not installed: install {} (scripts/test does: apt-get install {})",
        package_of(cmd),
        package_of(cmd)
    );
}

/// A plugin or module file, looked up in `dirs` and in `/usr/lib/<arch>/<sub>`.
/// Panics (never skips) when it is missing.
pub fn require_file(name: &str, sub: &str) -> PathBuf {
    let mut candidates = vec![Path::new("/usr/lib").join(sub).join(name), Path::new("/usr/lib64").join(sub).join(name)];
    if let Ok(rd) = std::fs::read_dir("/usr/lib") {
        for e in rd.flatten() {
            candidates.push(e.path().join(sub).join(name));
        }
    }
    for c in candidates {
        if c.is_file() {
            return c;
        }
    }
    panic!(
        "{name} (in /usr/lib/.../{sub}) is not installed: install {} (scripts/test does: apt-get install {})",
        package_of(name),
        package_of(name)
    );
}

/// Runs a command to completion and returns its stdout; panics with its output if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `logger TRANSPORT... -n 127.0.0.1 -P PORT EXTRA...` (util-linux, Debian
/// `bsdutils`), not yet run: for the callers that need more (an environment).
pub fn logger_cmd(transport: &[&str], port: u16, extra: &[&str]) -> Command {
    let mut cmd = Command::new(require("logger"));
    cmd.args(transport).args(["-n", "127.0.0.1", "-P", &port.to_string()]).args(extra);
    cmd
}

/// Runs `logger TRANSPORT... -n 127.0.0.1 -P PORT EXTRA...` to completion
/// (panics if it fails), e.g. `logger(&["--tcp"], port, &["-t", tag, msg])`.
pub fn logger(transport: &[&str], port: u16, extra: &[&str]) {
    run(&mut logger_cmd(transport, port, extra));
}

/// A string unique to this call in this test run, for telling test lines apart.
pub fn nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{:x}{:x}{}", (t as u64) & 0xff_ffff_ffff, std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// The machine's host name, as `gethostname(2)` gives it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").expect("read /proc/sys/kernel/hostname").trim().to_owned()
}

// ---------------------------------------------------------------------------
// Ports

/// `n_tcp` free TCP ports and `n_udp` free UDP ports on 127.0.0.1, all distinct
/// (every socket is held until all are chosen).
pub fn free_ports(n_tcp: usize, n_udp: usize) -> (Vec<u16>, Vec<u16>) {
    let tcp: Vec<TcpListener> =
        (0..n_tcp).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a TCP port")).collect();
    let udp: Vec<UdpSocket> = (0..n_udp).map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port")).collect();
    (
        tcp.iter().map(|l| l.local_addr().unwrap().port()).collect(),
        udp.iter().map(|s| s.local_addr().unwrap().port()).collect(),
    )
}

pub fn free_tcp_port() -> u16 {
    free_ports(1, 0).0[0]
}

pub fn free_udp_port() -> u16 {
    free_ports(0, 1).1[0]
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_tcp(addr: SocketAddr, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        if Instant::now() > deadline {
            panic!("{what} does not accept connections on {addr} after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------
// A minimal HTTP/1.1 client

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("answer ({}) is not JSON ({e}): {}", self.status, self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Percent-encodes a query parameter value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One HTTP/1.1 request with `Connection: close`; the answer is read to EOF.
pub fn http(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    // A server may answer (413, 401) before reading the whole body and close:
    // a failed write is fine as long as an answer can be read.
    let write_err = s.write_all(body).err();
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => return Err(e),
    }
    if raw.is_empty() {
        return Err(write_err.unwrap_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "empty answer")));
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let bad = |m: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{m}: {:?}", String::from_utf8_lossy(&raw[..raw.len().min(200)])),
        )
    };
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 =
        status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))).collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked =
        headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(|| bad("bad chunk"))?;
            let size_str = std::str::from_utf8(&rest[..nl]).map_err(|_| bad("bad chunk size"))?;
            let size = usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size).ok_or_else(|| bad("short chunk"))?);
            rest = rest.get(size + 2..).unwrap_or(&[]);
        }
        body = out;
    }
    Ok(HttpResponse { status, headers, body })
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

// ---------------------------------------------------------------------------
// Prometheus text

/// The sum of every sample of `name` whose labels include all of `labels`
/// (0 when there is none: a counter that was never incremented is not shown).
/// `orderwatch_lines_received_total` of one listener in a metrics text.
pub fn received(text: &str, listener: &str) -> f64 {
    metric(text, "orderwatch_lines_received_total", &[("listener", listener)])
}

pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut total = 0.0;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (n, l) = match series.find('{') {
            Some(i) => (&series[..i], &series[i..]),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        if labels.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))) {
            total += value.trim().parse::<f64>().unwrap_or_else(|_| panic!("bad metric value in {line:?}"));
        }
    }
    total
}

// ---------------------------------------------------------------------------
// Syslog senders over raw sockets

/// `MSG-LEN SP MSG` (RFC 6587 octet counting).
pub fn octet(msg: &[u8]) -> Vec<u8> {
    let mut v = format!("{} ", msg.len()).into_bytes();
    v.extend_from_slice(msg);
    v
}

/// Sends bytes over a new TCP connection and closes it.
pub fn send_tcp(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.write_all(bytes).unwrap_or_else(|e| panic!("write to {addr}: {e}"));
    s.shutdown(std::net::Shutdown::Write).ok();
    // Wait for the server to close its side, so the lines are read before we return.
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut sink = [0u8; 64];
    let _ = s.read(&mut sink);
}

pub fn send_udp(addr: SocketAddr, datagram: &[u8]) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(datagram, addr).unwrap();
}

// ---------------------------------------------------------------------------
// The server

/// How to start a server.
#[derive(Clone, Default)]
pub struct Opts {
    /// The TOML config file's text (may be empty).
    pub config: String,
    /// Also listen for syslog over TLS (the config must name tls_cert and tls_key).
    pub tls: bool,
    /// Extra environment for the server process.
    pub env: Vec<(String, String)>,
    /// A command the server is run under, e.g. `nsenter -t PID -m --`.
    pub wrapper: Vec<OsString>,
    /// The data directory (default: `data` in the server's temporary directory).
    pub data: Option<PathBuf>,
}

pub struct Server {
    pub http: SocketAddr,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub tls: Option<SocketAddr>,
    pub token: String,
    pub data: PathBuf,
    /// A temporary directory for this server and its test (config, logs, scratch files).
    pub dir: PathBuf,
    opts: Opts,
    child: Option<Child>,
    /// The stderr file of the current (or last) process.
    log: PathBuf,
    starts: u32,
    /// The next spawn listens on the current ports again (`restart_on_same_ports`).
    keep_ports: bool,
    _tmp: tempfile::TempDir,
}

impl Server {
    /// Starts a server with `config_toml` as its config file, on free ports.
    pub fn start(config_toml: &str) -> Server {
        Server::with(Opts { config: config_toml.to_owned(), ..Opts::default() })
    }

    pub fn with(opts: Opts) -> Server {
        let tmp = tempfile::Builder::new().prefix("orderwatch-test-").tempdir().expect("create a temporary directory");
        Server::with_dir(opts, tmp)
    }

    /// Like `with`, in a temporary directory the test prepared (certificates, say).
    pub fn with_dir(opts: Opts, tmp: tempfile::TempDir) -> Server {
        let dir = tmp.path().to_owned();
        let data = opts.data.clone().unwrap_or_else(|| dir.join("data"));
        let unset: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut s = Server {
            http: unset,
            udp: unset,
            tcp: unset,
            tls: None,
            token: TOKEN.to_owned(),
            data,
            dir,
            opts,
            child: None,
            log: PathBuf::new(),
            starts: 0,
            keep_ports: false,
            _tmp: tmp,
        };
        s.spawn();
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is not running").id()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("orderwatch.toml")
    }

    /// Spawns the process on fresh ports and waits until `/healthz` answers 200.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        std::fs::write(self.config_path(), &self.opts.config).unwrap();
        for attempt in 0..5 {
            let (tcp_ports, udp_ports) = if self.keep_ports {
                let tls = self.tls.map_or_else(free_tcp_port, |a| a.port());
                (vec![self.http.port(), self.tcp.port(), tls], vec![self.udp.port()])
            } else {
                free_ports(3, 1)
            };
            self.http = SocketAddr::from(([127, 0, 0, 1], tcp_ports[0]));
            self.tcp = SocketAddr::from(([127, 0, 0, 1], tcp_ports[1]));
            self.udp = SocketAddr::from(([127, 0, 0, 1], udp_ports[0]));
            self.tls = self.opts.tls.then(|| SocketAddr::from(([127, 0, 0, 1], tcp_ports[2])));
            self.starts += 1;
            self.log = self.dir.join(format!("orderwatch-{}.stderr", self.starts));
            let stdout = std::fs::File::create(self.dir.join(format!("orderwatch-{}.stdout", self.starts))).unwrap();
            let stderr = std::fs::File::create(&self.log).unwrap();

            let mut cmd = match self.opts.wrapper.split_first() {
                Some((first, rest)) => {
                    let mut c = Command::new(first);
                    c.args(rest).arg(bin());
                    c
                }
                None => Command::new(bin()),
            };
            cmd.arg("serve")
                .arg("--config")
                .arg(self.config_path())
                .arg("--data")
                .arg(&self.data)
                .arg("--http")
                .arg(self.http.to_string())
                .arg("--syslog-udp")
                .arg(self.udp.to_string())
                .arg("--syslog-tcp")
                .arg(self.tcp.to_string());
            if let Some(tls) = self.tls {
                cmd.arg("--syslog-tls").arg(tls.to_string());
            }
            cmd.env_remove("ORDERWATCH_CONFIG")
                .env("ORDERWATCH_API_TOKEN", &self.token)
                .env("ORDERWATCH_LOG", std::env::var("ORDERWATCH_TEST_LOG").unwrap_or_else(|_| "info".into()))
                .envs(self.opts.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(stdout)
                .stderr(stderr);
            let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
            self.child = Some(child);

            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    self.child = None;
                    let log = self.stderr();
                    if log.contains("cannot listen") && attempt < 4 {
                        break; // a port was taken meanwhile: try others
                    }
                    panic!("orderwatch serve exited ({status}) before answering /healthz; its stderr:\n{log}");
                }
                if let Ok(r) = http(self.http, "GET", "/healthz", &[], b"")
                    && r.status == 200
                {
                    return;
                }
                if Instant::now() > deadline {
                    self.kill9();
                    panic!(
                        "orderwatch serve did not answer /healthz within {START_TIMEOUT:?}; its stderr:\n{}",
                        self.stderr()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("could not find free ports for orderwatch after 5 attempts");
    }

    /// Starts the server again on the same data directory (new ports).
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// Starts the server again on the same data directory and the same ports,
    /// as a restarted service would be: clients holding its address (a DSN in a
    /// browser) reach it again.
    pub fn restart_on_same_ports(&mut self) {
        self.keep_ports = true;
        self.spawn();
        self.keep_ports = false;
    }

    /// Replaces the config file's text (takes effect at the next `restart`).
    pub fn set_config(&mut self, config: &str) {
        self.opts.config = config.to_owned();
    }

    /// What the current (or last) server process wrote to stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of stderr, for failure messages.
    pub fn stderr_tail(&self, n: usize) -> String {
        let s = self.stderr();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Panics with the server's log if the process has died.
    pub fn assert_running(&mut self) {
        if let Some(c) = &mut self.child
            && let Some(status) = c.try_wait().unwrap()
        {
            panic!("orderwatch died ({status}); its stderr:\n{}", self.stderr_tail(60));
        }
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.pid() as i32;
        // SAFETY: kill(2) on the pid of our own child process.
        let r = unsafe { libc::kill(pid, sig) };
        assert_eq!(r, 0, "kill({pid}, {sig}) failed: {}", std::io::Error::last_os_error());
    }

    /// Sends `sig` and waits for the exit (panics after 15 s); returns the exit status.
    pub fn stop_with(&mut self, sig: i32) -> ExitStatus {
        self.signal(sig);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return status;
            }
            if Instant::now() > deadline {
                self.kill9();
                panic!(
                    "orderwatch did not exit within {STOP_TIMEOUT:?} of signal {sig}; its stderr:\n{}",
                    self.stderr_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM; asserts a clean exit (code 0) within 15 s.
    pub fn stop(&mut self) {
        let status = self.stop_with(libc::SIGTERM);
        assert_eq!(
            status.code(),
            Some(0),
            "orderwatch exited with {status} after SIGTERM; its stderr:\n{}",
            self.stderr_tail(60)
        );
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    // --- HTTP API ---

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn get(&self, target: &str) -> HttpResponse {
        let auth = self.auth();
        http(self.http, "GET", target, &[("Authorization", &auth)], b"")
            .unwrap_or_else(|e| panic!("GET {target}: {e}; server stderr:\n{}", self.stderr_tail(40)))
    }

    /// Any API request with the admin token and a JSON body (empty for none).
    pub fn api(&self, method: &str, target: &str, body: &str) -> HttpResponse {
        let auth = self.auth();
        let mut headers = vec![("Authorization", auth.as_str())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        http(self.http, method, target, &headers, body.as_bytes())
            .unwrap_or_else(|e| panic!("{method} {target}: {e}; server stderr:\n{}", self.stderr_tail(40)))
    }

    pub fn healthz(&self) -> u16 {
        http(self.http, "GET", "/healthz", &[], b"").map(|r| r.status).unwrap_or(0)
    }

    /// POST /api/v1/logs with the admin token.
    pub fn post_logs(&self, body: &[u8]) -> HttpResponse {
        let auth = self.auth();
        self.post_logs_with(&[("Authorization", &auth)], body)
            .unwrap_or_else(|e| panic!("POST /api/v1/logs: {e}; server stderr:\n{}", self.stderr_tail(40)))
    }

    pub fn post_logs_with(&self, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<HttpResponse> {
        http(self.http, "POST", "/api/v1/logs", headers, body)
    }

    /// The search API's whole answer for these `(name, value)` parameters.
    pub fn search_raw(&self, params: &[(&str, &str)]) -> Value {
        let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
        let r = self.get(&format!("/api/v1/events/search.json?{}", q.join("&")));
        assert_eq!(r.status, 200, "search {params:?} answered {}: {}", r.status, r.text());
        r.json()
    }

    /// The newest (up to 10 000) events matching `q`, in chronological order.
    pub fn search(&self, q: &str) -> Vec<Value> {
        let v = self.search_raw(&[("q", q), ("limit", "10000")]);
        v["events"].as_array().expect("events array").clone()
    }

    /// Every event matching `q`, oldest first, paging forward by id.
    pub fn search_all(&self, q: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut min_id = "0".to_owned();
        loop {
            let v = self.search_raw(&[("q", q), ("limit", "10000"), ("min_id", &min_id), ("tail", "false")]);
            let events = v["events"].as_array().expect("events array");
            out.extend(events.iter().cloned());
            let more = v["reached_record_limit"] == true || v["reached_time_limit"] == true;
            let max_id = v["max_id"].as_str().expect("max_id string").to_owned();
            if !more || max_id == min_id || max_id == "0" {
                return out;
            }
            min_id = max_id;
        }
    }

    /// Polls the search until at least `n` events match `q` (panics after `timeout`).
    pub fn wait_for(&mut self, q: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            let found = self.search(q);
            if found.len() >= n {
                return found;
            }
            if Instant::now() > deadline {
                let msgs: Vec<&str> = found.iter().map(|e| e["message"].as_str().unwrap_or("")).take(20).collect();
                panic!(
                    "after {timeout:?}, {} event(s) match {q:?}, expected {n}: {msgs:#?}\nserver stderr:\n{}",
                    found.len(),
                    self.stderr_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The one event matching `q` (waits for it; panics if there are more).
    pub fn wait_one(&mut self, q: &str) -> Value {
        let found = self.wait_for(q, 1, Duration::from_secs(15));
        assert_eq!(found.len(), 1, "more than one event matches {q:?}: {found:#?}");
        found.into_iter().next().unwrap()
    }

    pub fn metrics(&self) -> String {
        let r = http(self.http, "GET", "/metrics", &[], b"").unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        assert_eq!(r.status, 200, "GET /metrics answered {}", r.status);
        r.text()
    }

    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric(&self.metrics(), name, labels)
    }

    /// Polls until `cond(metrics text)` holds (panics with the metrics after `timeout`).
    pub fn wait_metrics(&mut self, what: &str, timeout: Duration, mut cond: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_running();
            let m = self.metrics();
            if cond(&m) {
                return m;
            }
            if Instant::now() > deadline {
                panic!("after {timeout:?}: {what} does not hold; /metrics:\n{m}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// RSS of the server process in kB (from /proc).
    pub fn rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.log.as_os_str().is_empty() {
            eprintln!("--- orderwatch stderr (last 80 lines) ---\n{}\n---", self.stderr_tail(80));
        }
        self.kill9();
    }
}

// ---------------------------------------------------------------------------
// Helper daemons

/// A helper process (rsyslogd, uWSGI) in its own process group; the whole
/// group is terminated when it is stopped or dropped.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr going to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Proc {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null()).stdout(out.try_clone().unwrap()).stderr(out).process_group(0);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        Proc { name: name.to_owned(), child: Some(child), log }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the output if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(c) = &mut self.child
            && let Some(status) = c.try_wait().unwrap()
        {
            panic!("{} exited ({status}); its output:\n{}", self.name, self.output());
        }
    }

    /// SIGTERM to the process group, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let pgid = c.id() as i32;
        // SAFETY: signals to the process group we created for our own child.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if c.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Also ends workers the main process left behind.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = c.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() && self.child.is_some() {
            eprintln!("--- {} output ---\n{}\n---", self.name, self.output());
        }
        self.stop(Duration::from_secs(2));
    }
}

/// Finds the event whose message contains `needle` (panics with all messages if none or several do).
pub fn find_msg<'a>(events: &'a [Value], needle: &str) -> &'a Value {
    let hits: Vec<&Value> = events.iter().filter(|e| e["message"].as_str().unwrap_or("").contains(needle)).collect();
    match hits.as_slice() {
        [one] => one,
        _ => {
            let msgs: Vec<&str> = events.iter().map(|e| e["message"].as_str().unwrap_or("")).collect();
            panic!("{} events contain {needle:?} (expected 1) among: {msgs:#?}", hits.len())
        }
    }
}

/// Polls `f` until it returns Some (panics with `what` after `timeout`).
pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills a plain child process (a CLI under test) when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// rsyslogd running with its own config, work directory and pid file in `dir`:
/// an `imtcp` input (and, with `udp_input`, an `imudp` input) on free ports,
/// no other inputs, and the given actions.
pub struct Rsyslog {
    pub input: SocketAddr,
    pub input_udp: Option<SocketAddr>,
    pub proc: Proc,
}

impl Rsyslog {
    pub fn start(dir: &Path, globals: &str, actions: &str, udp_input: bool) -> Rsyslog {
        let rsyslogd = require("rsyslogd");
        let input = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        let input_udp = udp_input.then(|| SocketAddr::from(([127, 0, 0, 1], free_udp_port())));
        let work = dir.join("rsyslog-work");
        std::fs::create_dir_all(&work).unwrap();
        let mut conf = format!(
            "global(workDirectory=\"{work}\" {globals})\n\
             module(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")\n",
            work = work.display(),
            port = input.port(),
        );
        if let Some(u) = input_udp {
            conf.push_str(&format!(
                "module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{}\")\n",
                u.port()
            ));
        }
        conf.push_str(actions);
        conf.push('\n');
        let conf_path = dir.join("rsyslog.conf");
        std::fs::write(&conf_path, &conf).unwrap();
        // Check the config first, so a mistake in it is reported as such.
        let check = Command::new(&rsyslogd).args(["-N1", "-f"]).arg(&conf_path).output().unwrap();
        assert!(
            check.status.success(),
            "rsyslogd -N1 refused the config:\n{conf}\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let mut cmd = Command::new(&rsyslogd);
        cmd.arg("-n").arg("-f").arg(&conf_path).arg("-i").arg(dir.join("rsyslogd.pid"));
        let mut proc = Proc::spawn("rsyslogd", cmd, dir.join("rsyslogd.log"));
        wait_until("rsyslogd's imtcp input", Duration::from_secs(15), || {
            proc.assert_running();
            TcpStream::connect(input).ok()
        });
        Rsyslog { input, input_udp, proc }
    }

    /// Stops rsyslogd (asserting it was still running).
    pub fn stop(mut self) {
        self.proc.assert_running();
        self.proc.stop(Duration::from_secs(5));
    }
}

/// An `omfwd` action forwarding over plain TCP to `server`'s syslog port.
pub fn omfwd_tcp(server: &Server, extra: &str) -> String {
    format!("action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{}\" protocol=\"tcp\" {extra})", server.tcp.port())
}

/// One request a [`Hooks`] receiver got.
#[derive(Clone, Debug)]
pub struct Hook {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// The status it was answered with.
    pub status: u16,
}

impl Hook {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("hook body is not JSON ({e}): {}", self.text()))
    }

    /// A field of an `application/x-www-form-urlencoded` body.
    pub fn form(&self, name: &str) -> Option<String> {
        self.text().split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (form_decode(k) == name).then(|| form_decode(v))
        })
    }
}

/// Decodes one `application/x-www-form-urlencoded` component.
pub fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A real HTTP receiver for webhooks on 127.0.0.1: it records every request
/// and answers with the status set by [`Hooks::set_status`] (200 at first).
/// It stops when dropped.
pub struct Hooks {
    pub addr: SocketAddr,
    got: std::sync::Arc<std::sync::Mutex<Vec<Hook>>>,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Hooks {
    pub fn start() -> Hooks {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU16};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a webhook receiver");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(std::sync::Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, st, sp) = (got.clone(), status.clone(), stop.clone());
        std::thread::spawn(move || {
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (g, st) = (g.clone(), st.clone());
                        std::thread::spawn(move || serve_hook(conn, &g, &st));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Hooks { addr, got, status, stop }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Everything received so far (also the requests answered with an error).
    pub fn all(&self) -> Vec<Hook> {
        self.got.lock().unwrap().clone()
    }

    /// The requests to `path` answered 2xx.
    pub fn delivered(&self, path: &str) -> Vec<Hook> {
        self.all().into_iter().filter(|h| h.path == path && (200..300).contains(&h.status)).collect()
    }

    /// Waits until `done` holds for the requests to `path` answered 2xx.
    pub fn wait(&self, path: &str, timeout: Duration, done: impl Fn(&[Hook]) -> bool) -> Vec<Hook> {
        let deadline = Instant::now() + timeout;
        loop {
            let d = self.delivered(path);
            if done(&d) {
                return d;
            }
            if Instant::now() > deadline {
                panic!(
                    "after {timeout:?} the webhook receiver has {} request(s) to {path}: {:#?}",
                    d.len(),
                    d.iter().map(|h| h.text()).collect::<Vec<_>>()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_hook(mut conn: TcpStream, got: &std::sync::Mutex<Vec<Hook>>, status: &std::sync::atomic::AtomicU16) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    loop {
        // One request (keep-alive allowed): headers, then a Content-Length or chunked body.
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match conn.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&buf).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or("").split(' ');
        let method = first.next().unwrap_or("").to_owned();
        let path = first.next().unwrap_or("").to_owned();
        let headers: Vec<(String, String)> =
            lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))).collect();
        let find = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        if let Some(len) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
            body.resize(len, 0);
            if conn.read_exact(&mut body).is_err() {
                return;
            }
        } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let mut line = Vec::new();
                while !line.ends_with(b"\r\n") {
                    match conn.read(&mut byte) {
                        Ok(1) => line.push(byte[0]),
                        _ => return,
                    }
                }
                let size = usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16).unwrap_or(0);
                let mut chunk = vec![0u8; size + 2];
                if conn.read_exact(&mut chunk).is_err() {
                    return;
                }
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        let code = status.load(Ordering::SeqCst);
        got.lock().unwrap().push(Hook { method, path, headers, body, at: Instant::now(), status: code });
        let answer = format!("HTTP/1.1 {code} X\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok");
        if conn.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
