//! A real SMTP server for tests: Debian's aiosmtpd with the `smtp_sink.Sink`
//! handler (`tests/data/smtp_sink.py`), which parses every mail with Python's
//! own `email` package and writes it as JSON; plain, STARTTLS or SMTPS with a
//! test CA made by rcgen.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::Proc;

const PYTHON: &str = "/usr/bin/python3";

/// `/usr/bin/python3` with the aiosmtpd module (the `python3` on PATH may be
/// another Python). Panics, saying what to install, when either is missing.
pub fn python_with_aiosmtpd() -> &'static str {
    if !Path::new(PYTHON).is_file() {
        panic!("{PYTHON} is not installed: apt-get install python3 python3-aiosmtpd (scripts/test does)");
    }
    let out = Command::new(PYTHON).args(["-c", "import aiosmtpd"]).output().unwrap();
    if !out.status.success() {
        panic!(
            "the Python module aiosmtpd is not installed for {PYTHON}: apt-get install python3-aiosmtpd (scripts/test does)\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    PYTHON
}

pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A test CA and a server certificate for `localhost` and 127.0.0.1 signed by it.
pub fn make_pki(dir: &Path) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "orderwatch test CA");
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let pki = Pki { ca: dir.join("ca.pem"), cert: dir.join("server-cert.pem"), key: dir.join("server-key.pem") };
    std::fs::write(&pki.ca, ca_cert.pem()).unwrap();
    std::fs::write(&pki.cert, cert.pem()).unwrap();
    std::fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}

pub enum SinkTls<'a> {
    Plain,
    /// STARTTLS offered and required before MAIL.
    StartTls(&'a Pki),
    /// TLS from the first byte (SMTPS).
    Implicit(&'a Pki),
}

/// aiosmtpd with the `smtp_sink.Sink` handler on 127.0.0.1:`port`.
pub struct SmtpSink {
    proc: Proc,
    out: PathBuf,
}

impl SmtpSink {
    pub fn start(dir: &Path, port: u16, tls: SinkTls<'_>, auth: Option<&str>) -> SmtpSink {
        let python = python_with_aiosmtpd();
        let out = dir.join(format!("mail-{port}"));
        let mut cmd = Command::new(python);
        cmd.env("PYTHONPATH", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data")).args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
        ]);
        match tls {
            SinkTls::Plain => {}
            SinkTls::StartTls(p) => {
                cmd.arg("--tlscert").arg(&p.cert).arg("--tlskey").arg(&p.key);
            }
            SinkTls::Implicit(p) => {
                cmd.arg("--smtpscert").arg(&p.cert).arg("--smtpskey").arg(&p.key);
            }
        }
        cmd.args(["-c", "smtp_sink.Sink"]).arg(&out);
        if let Some(a) = auth {
            cmd.arg(format!("auth={a}"));
        }
        let mut proc = Proc::spawn("aiosmtpd", cmd, dir.join(format!("aiosmtpd-{port}.log")));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        super::wait_until("aiosmtpd to listen", Duration::from_secs(15), || {
            proc.assert_running();
            TcpStream::connect(addr).ok()
        });
        SmtpSink { proc, out }
    }

    /// Every message received so far, in order of arrival.
    pub fn messages(&self) -> Vec<Value> {
        let Ok(rd) = std::fs::read_dir(&self.out) else {
            return Vec::new();
        };
        let mut names: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json") && !p.file_name().unwrap().to_string_lossy().starts_with('.')
            })
            .collect();
        names.sort();
        names.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
    }

    pub fn stop(mut self) {
        self.proc.assert_running();
        self.proc.stop(Duration::from_secs(2));
    }
}
