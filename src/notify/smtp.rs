//! Email through an SMTP server (RFC 5321) with lettre: the server's URL, the
//! message (RFC 5322; multipart/alternative text + HTML), and which failures
//! are worth retrying.
//!
//! The server is given as a URL (`--smtp`, `ORDERWATCH_SMTP_URL`, `notify.smtp_url`):
//!
//! | URL | connection |
//! |---|---|
//! | `smtp://user:pass@host` | port 587, STARTTLS required (the default: the password and the customer data never go out in clear) |
//! | `smtp://host:587?tls=required` | the same, spelled out |
//! | `smtp://host:25?tls=opportunistic` | STARTTLS when the server offers it, else plain (an attacker on the path can strip it) |
//! | `smtp://127.0.0.1:2525?tls=none` | plain, no TLS: for a relay on the same machine |
//! | `smtps://user:pass@host` | port 465, TLS from the first byte (implicit TLS) |
//!
//! User and password are percent-decoded (`p%40ss` is `p@ss`). `?ca=/path/ca.pem`
//! also trusts the certificates in that PEM file (a private CA); the public
//! roots (Mozilla's, built in) are always trusted. `?hello=name` sets the EHLO
//! name (default: this machine's host name). The password never appears in
//! `Debug`, logs or errors: [`SmtpSettings`] displays as `smtp://user:***@host…`.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rustls_pki_types::pem::PemObject;

use super::SendError;

/// How the connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (`smtp://…?tls=none`).
    None,
    /// STARTTLS when offered (`?tls=opportunistic`).
    Opportunistic,
    /// STARTTLS or no mail (`smtp://`, `?tls=required`).
    Required,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

impl SmtpTls {
    fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::Opportunistic => "opportunistic",
            SmtpTls::Required => "required",
            SmtpTls::Implicit => "implicit",
        }
    }
}

/// The SMTP server, read from its URL. `Debug` and `Display` mask the password.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    password: Option<String>,
    /// `?ca=`: a PEM file of extra trusted certificates, and its contents.
    pub ca: Option<PathBuf>,
    ca_pem: Option<Vec<u8>>,
    /// `?hello=`: the EHLO name.
    pub hello: Option<String>,
}

impl fmt::Display for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls == SmtpTls::Implicit {
            "smtps"
        } else {
            "smtp"
        };
        write!(f, "{scheme}://")?;
        if let Some(u) = &self.username {
            let enc = percent_encoding::utf8_percent_encode(u, USERINFO);
            if self.password.is_some() {
                write!(f, "{enc}:***@")?;
            } else {
                write!(f, "{enc}@")?;
            }
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if self.tls != SmtpTls::Implicit {
            write!(f, "?tls={}", self.tls.as_str())?;
        }
        if let Some(ca) = &self.ca {
            write!(
                f,
                "{}ca={}",
                if self.tls == SmtpTls::Implicit {
                    '?'
                } else {
                    '&'
                },
                ca.display()
            )?;
        }
        Ok(())
    }
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpSettings({self})")
    }
}

const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn decode(s: &str, what: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| format!("the {what} is not UTF-8 after percent-decoding"))
}

/// The URL with any password replaced by `***`, for messages about a URL that did not parse.
pub fn mask_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        // Not a URL: it may still hold a password somewhere; show only its scheme-ish start.
        Err(_) => match url.split_once("://") {
            Some((scheme, rest)) if rest.contains('@') => {
                format!("{scheme}://***@{}", rest.rsplit('@').next().unwrap_or(""))
            }
            _ => url.to_owned(),
        },
    }
}

impl SmtpSettings {
    /// Reads `smtp[s]://[user[:pass]@]host[:port][?tls=…&ca=…&hello=…]`; see the module doc.
    /// The `ca` file is read now, so a missing file is a configuration error.
    pub fn parse(s: &str) -> Result<SmtpSettings, String> {
        const EXAMPLE: &str = "write e.g. smtp://user:password@smtp.example.com:587, smtps://user:password@smtp.example.com, or smtp://127.0.0.1:2525?tls=none";
        let u = url::Url::parse(s.trim())
            .map_err(|e| format!("{:?} is not a URL ({e}); {EXAMPLE}", mask_password(s)))?;
        let implicit = match u.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => {
                return Err(format!(
                    "the scheme must be smtp or smtps, not {other:?}; {EXAMPLE}"
                ));
            }
        };
        let host = match u.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err(format!("the URL has no host; {EXAMPLE}")),
        };
        if !matches!(u.path(), "" | "/") {
            return Err(format!(
                "unexpected path {:?} in the SMTP URL; {EXAMPLE}",
                u.path()
            ));
        }
        let mut tls = if implicit {
            SmtpTls::Implicit
        } else {
            SmtpTls::Required
        };
        let mut ca = None;
        let mut hello = None;
        for (k, v) in u.query_pairs() {
            match &*k {
                "tls" if implicit => {
                    return Err("smtps:// is TLS from the first byte; drop ?tls=, or use smtp:// with ?tls=required for STARTTLS".into());
                }
                "tls" => {
                    tls = match &*v {
                        "none" => SmtpTls::None,
                        "opportunistic" => SmtpTls::Opportunistic,
                        "required" => SmtpTls::Required,
                        other => {
                            return Err(format!(
                                "tls={other:?}: write tls=required (STARTTLS, the default), tls=opportunistic or tls=none"
                            ));
                        }
                    }
                }
                "ca" => ca = Some(PathBuf::from(&*v)),
                "hello" => hello = Some(v.into_owned()),
                other => {
                    return Err(format!(
                        "unknown parameter {other:?} in the SMTP URL; known: tls, ca, hello"
                    ));
                }
            }
        }
        let ca_pem = match &ca {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    format!("cannot read the CA file {} (?ca=): {e}", path.display())
                })?;
                let n = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
                    .filter(|c| c.is_ok())
                    .count();
                if n == 0 {
                    return Err(format!(
                        "the CA file {} (?ca=) holds no PEM certificate",
                        path.display()
                    ));
                }
                Some(pem)
            }
        };
        let username = match u.username() {
            "" => None,
            name => Some(decode(name, "user name")?),
        };
        let password = u.password().map(|p| decode(p, "password")).transpose()?;
        if password.is_some() && username.is_none() {
            return Err(format!(
                "a password needs a user name: smtp://USER:PASSWORD@host; {EXAMPLE}"
            ));
        }
        Ok(SmtpSettings {
            host,
            port: u.port().unwrap_or(if implicit { 465 } else { 587 }),
            tls,
            username,
            password,
            ca,
            ca_pem,
            hello,
        })
    }

    /// Whether the server is on this machine (plain SMTP is then harmless).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback())
    }
}

/// The `Auto-Submitted: auto-generated` header (RFC 3834), so that vacation
/// responders do not answer an alert.
#[derive(Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// The parts of a `Message::Email`.
pub struct Email<'a> {
    pub to: &'a [String],
    pub cc: &'a [String],
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
}

fn parse_mailbox(role: &str, s: &str) -> Result<Mailbox, SendError> {
    s.trim().parse::<Mailbox>().map_err(|e| {
        SendError::permanent(format!(
            "the {role} address {s:?} is not an email address ({e})"
        ))
    })
}

/// Builds the RFC 5322 message. `Date` is when the notification was created
/// and `Message-ID` is derived from its id, so every attempt sends the same
/// message and a mail client can tell a resend. Errors are permanent: the
/// same message would fail the same way.
pub fn build_message(
    from: &Mailbox,
    id: i64,
    created_at_us: i64,
    e: &Email<'_>,
) -> Result<lettre::Message, SendError> {
    if e.to.is_empty() && e.cc.is_empty() {
        return Err(SendError::permanent(
            "the email has no recipients (to and cc are empty)",
        ));
    }
    let domain = from.email.domain();
    let date = SystemTime::UNIX_EPOCH + Duration::from_micros(created_at_us.max(0) as u64);
    let mut b = lettre::Message::builder()
        .from(from.clone())
        .date(date)
        .message_id(Some(format!("<orderwatch.{id}.{created_at_us}@{domain}>")))
        .header(AutoSubmitted)
        .subject(e.subject);
    for to in e.to {
        b = b.to(parse_mailbox("To", to)?);
    }
    for cc in e.cc {
        b = b.cc(parse_mailbox("Cc", cc)?);
    }
    let built = match e.html {
        Some(html) => b.multipart(MultiPart::alternative_plain_html(
            e.text.to_owned(),
            html.to_owned(),
        )),
        None => b.header(ContentType::TEXT_PLAIN).body(e.text.to_owned()),
    };
    built.map_err(|err| SendError::permanent(format!("cannot build the email: {err}")))
}

/// Sends through one SMTP server; a new connection per message.
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    server: String,
}

impl SmtpSender {
    pub fn new(s: &SmtpSettings, from: Mailbox, timeout: Duration) -> Result<SmtpSender, String> {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port)
            .timeout(Some(timeout));
        if s.tls != SmtpTls::None {
            let mut p = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &s.ca_pem {
                let cert = Certificate::from_pem(pem)
                    .map_err(|e| format!("the CA file (?ca=) cannot be used: {e}"))?;
                p = p.add_root_certificate(cert);
            }
            let p = p
                .build()
                .map_err(|e| format!("cannot set up TLS for SMTP: {e}"))?;
            b = b.tls(match s.tls {
                SmtpTls::Opportunistic => Tls::Opportunistic(p),
                SmtpTls::Required => Tls::Required(p),
                _ => Tls::Wrapper(p),
            });
        }
        if let Some(user) = &s.username {
            b = b.credentials(Credentials::new(
                user.clone(),
                s.password.clone().unwrap_or_default(),
            ));
        }
        if let Some(h) = &s.hello {
            b = b.hello_name(ClientId::Domain(h.clone()));
        }
        Ok(SmtpSender {
            transport: b.build(),
            from,
            server: format!("{}:{}", s.host, s.port),
        })
    }

    pub async fn send(&self, id: i64, created_at_us: i64, e: &Email<'_>) -> Result<(), SendError> {
        let msg = build_message(&self.from, id, created_at_us, e)?;
        match self.transport.send(msg).await {
            Ok(_) => Ok(()),
            Err(err) => Err(classify(&self.server, &err)),
        }
    }
}

/// SMTP 5xx about the message or a recipient is permanent; 4xx, network and
/// TLS trouble are transient. So are 5xx answers about authentication (53x):
/// a wrong password is fixed in the config, and the queue then goes out by itself.
fn classify(server: &str, err: &lettre::transport::smtp::Error) -> SendError {
    let text = err.to_string();
    let code = err.status().map(|c| c.to_string());
    let auth = code.as_deref().is_some_and(|c| c.starts_with("53"));
    let hint = if auth {
        "; check the user and password in the SMTP URL"
    } else if text.contains("STARTTLS is not supported") {
        "; the server offers no STARTTLS: use ?tls=opportunistic or ?tls=none in the SMTP URL if that is acceptable (e.g. a relay on this machine)"
    } else if err.is_tls() || text.contains("certificate") {
        "; for a server with a private CA, add ?ca=/path/to/ca.pem to the SMTP URL"
    } else {
        ""
    };
    let message = format!("SMTP {server}: {text}{hint}");
    if err.is_permanent() && !auth {
        SendError::permanent(message)
    } else {
        SendError::transient(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = SmtpSettings::parse("smtp://us%40er:p%40ss%3Aw%2Frd@mail.example.com").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.tls),
            ("mail.example.com", 587, SmtpTls::Required)
        );
        assert_eq!(s.username.as_deref(), Some("us@er"));
        assert_eq!(s.password.as_deref(), Some("p@ss:w/rd"));
        assert_eq!(
            s.to_string(),
            "smtp://us%40er:***@mail.example.com:587?tls=required"
        );
        assert!(!format!("{s:?}").contains("p@ss"));

        let s = SmtpSettings::parse("smtps://u:p@mail.example.com").unwrap();
        assert_eq!((s.port, s.tls), (465, SmtpTls::Implicit));
        assert_eq!(s.to_string(), "smtps://u:***@mail.example.com:465");

        let s = SmtpSettings::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!(
            (s.port, s.tls, s.username.as_deref()),
            (2525, SmtpTls::None, None)
        );
        assert!(s.is_loopback());

        let s =
            SmtpSettings::parse("smtp://[::1]:25?tls=opportunistic&hello=shop.example").unwrap();
        assert_eq!(
            (s.host.as_str(), s.tls, s.hello.as_deref()),
            ("::1", SmtpTls::Opportunistic, Some("shop.example"))
        );
        assert_eq!(s.to_string(), "smtp://[::1]:25?tls=opportunistic");
    }

    #[test]
    fn url_mistakes_say_what_to_write() {
        let cases = [
            ("mail.example.com", "not a URL"),
            ("http://mail.example.com", "smtp or smtps"),
            ("smtp://h?tls=yes", "tls=required"),
            ("smtps://h?tls=required", "drop ?tls="),
            ("smtp://h?port=25", "unknown parameter"),
            ("smtp://h?ca=/nonexistent/ca.pem", "cannot read the CA file"),
            ("smtp://:secret@h", "needs a user name"),
            ("smtp://h/x", "unexpected path"),
        ];
        for (url, want) in cases {
            let err = SmtpSettings::parse(url).unwrap_err();
            assert!(err.contains(want), "{url}: {err}");
            assert!(!err.contains("secret"), "{url}: {err}");
        }
    }

    #[test]
    fn passwords_are_masked_in_unparsable_urls() {
        assert_eq!(mask_password("smtp://u:secret@h:25"), "smtp://u:***@h:25");
        assert!(!mask_password("smtp://u:sec ret@h:x").contains("sec"));
    }

    #[test]
    fn message_has_headers_and_alternative_parts() {
        let from: Mailbox = "orderwatch <alerts@shop.example>".parse().unwrap();
        let to = vec!["Head <head@shop.example>".to_owned()];
        let cc = vec!["developers@shop.example".to_owned()];
        let e = Email {
            to: &to,
            cc: &cc,
            subject: "Потерян заказ",
            text: "текст",
            html: Some("<p>html</p>"),
        };
        let m = build_message(&from, 7, 1_700_000_000_000_000, &e).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(
            raw.contains("Message-ID: <orderwatch.7.1700000000000000@shop.example>"),
            "{raw}"
        );
        assert!(
            raw.contains("Date: Tue, 14 Nov 2023 22:13:20 +0000"),
            "{raw}"
        );
        assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            !raw.contains("Потерян"),
            "the subject must be encoded: {raw}"
        );

        let bad = vec!["not an address".to_owned()];
        let e = Email {
            to: &bad,
            cc: &[],
            subject: "s",
            text: "t",
            html: None,
        };
        let err = build_message(&from, 1, 0, &e).unwrap_err();
        assert!(
            err.permanent && err.message.contains("not an address"),
            "{err:?}"
        );
    }
}
