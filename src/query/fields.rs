//! Leaves that are not text: severity and facility (from the syslog header) and
//! the access-log fields read from the message by `parse::access::parse`.
//!
//! The message is parsed at most once an event, and only when a query gets as
//! far as asking for a field. A line that is not an access-log line, or lacks
//! the field asked for, satisfies no field predicate (and so satisfies its
//! negation).

use std::net::IpAddr;

use super::ast::{Cmp, IpPat, Leaf, StatusPat};
use crate::event::LogEvent;
use crate::parse::access::{self, AccessLog};

/// The access-log fields of one message, parsed on first use.
pub(crate) struct LazyAccess<'e> {
    message: &'e str,
    /// Read by the caller already.
    given: Option<Option<&'e AccessLog>>,
    parsed: Option<Option<AccessLog>>,
}

impl<'e> LazyAccess<'e> {
    pub fn new(message: &'e str) -> Self {
        LazyAccess {
            message,
            given: None,
            parsed: None,
        }
    }

    /// `fields` must be what `access::parse(message)` returns.
    pub fn given(message: &'e str, fields: Option<&'e AccessLog>) -> Self {
        LazyAccess {
            message,
            given: Some(fields),
            parsed: None,
        }
    }

    pub fn get(&mut self) -> Option<&AccessLog> {
        if let Some(given) = self.given {
            return given;
        }
        self.parsed
            .get_or_insert_with(|| access::parse(self.message))
            .as_ref()
    }
}

/// Whether `ev` satisfies a leaf other than `Leaf::Text` (which is `false`
/// here: text is the prefilter's business).
pub(crate) fn matches(leaf: &Leaf, ev: &LogEvent, fields: &mut LazyAccess<'_>) -> bool {
    match leaf {
        Leaf::Text { .. } => false,
        Leaf::Severity(s) => ev.severity == Some(*s),
        Leaf::Facility(f) => ev.facility == Some(*f),
        Leaf::Status(pat) => fields
            .get()
            .and_then(|a| a.status)
            .is_some_and(|s| status_matches(*pat, s)),
        Leaf::Method(m) => fields
            .get()
            .and_then(|a| a.method.as_deref())
            .is_some_and(|got| got.eq_ignore_ascii_case(m)),
        Leaf::Path(p) => fields
            .get()
            .and_then(|a| a.path.as_deref())
            .is_some_and(|got| glob(p, got)),
        Leaf::Ip(pat) => fields
            .get()
            .and_then(|a| a.client_ip.as_deref())
            .and_then(|ip| ip.parse::<IpAddr>().ok())
            .is_some_and(|ip| ip_matches(*pat, ip)),
        Leaf::Duration(cmp, us) => fields
            .get()
            .and_then(|a| a.duration_us)
            .is_some_and(|d| compare(*cmp, d, *us)),
    }
}

fn compare<T: Ord>(cmp: Cmp, got: T, want: T) -> bool {
    match cmp {
        Cmp::Eq => got == want,
        Cmp::Lt => got < want,
        Cmp::Le => got <= want,
        Cmp::Gt => got > want,
        Cmp::Ge => got >= want,
    }
}

pub(crate) fn status_matches(pat: StatusPat, status: u16) -> bool {
    match pat {
        StatusPat::Cmp(cmp, want) => compare(cmp, status, want),
        StatusPat::Class(d) => status / 100 == u16::from(d),
    }
}

fn ip_matches(pat: IpPat, ip: IpAddr) -> bool {
    let (want, got) = (pat.addr.to_canonical(), ip.to_canonical());
    match pat.prefix {
        None => want == got,
        Some(len) => match (want, got) {
            (IpAddr::V4(w), IpAddr::V4(g)) => {
                prefix_eq(u32::from(w).into(), u32::from(g).into(), len, 32)
            }
            (IpAddr::V6(w), IpAddr::V6(g)) => prefix_eq(u128::from(w), u128::from(g), len, 128),
            _ => false,
        },
    }
}

/// Whether the top `len` of `bits` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, len: u8, bits: u32) -> bool {
    let len = u32::from(len).min(bits);
    if len == 0 {
        return true;
    }
    let shift = bits - len;
    a >> shift == b >> shift
}

/// `*` matches any text (also `/`); everything else matches itself. Linear in
/// practice: the classic greedy match that backtracks only to the last `*`.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let table = [
            ("/api/*", "/api/v1/orders/", true),
            ("/api/*", "/api/", true),
            ("/api/*", "/api", false),
            ("/api/v1/orders/", "/api/v1/orders/", true),
            ("/api/v1/orders/", "/api/v1/orders", false),
            ("/API/*", "/api/x", false),
            ("*/orders/", "/api/v1/orders/", true),
            ("/a*b*c", "/aXbYc", true),
            ("/a*b*c", "/aXbYcd", false),
            ("*", "", true),
            ("/**", "/", true),
            ("/é*", "/é/ü", true),
        ];
        for (p, t, want) in table {
            assert_eq!(glob(p, t), want, "{p} {t}");
        }
    }

    #[test]
    fn cidr() {
        let pat = |s: &str, len| IpPat {
            addr: s.parse().unwrap(),
            prefix: len,
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(ip_matches(pat("10.0.0.0", Some(8)), ip("10.200.3.4")));
        assert!(!ip_matches(pat("10.0.0.0", Some(8)), ip("11.0.0.1")));
        assert!(ip_matches(pat("0.0.0.0", Some(0)), ip("1.2.3.4")));
        assert!(!ip_matches(pat("0.0.0.0", Some(0)), ip("::2")));
        assert!(ip_matches(pat("1.2.3.4", Some(32)), ip("1.2.3.4")));
        assert!(ip_matches(pat("1.2.3.4", None), ip("::ffff:1.2.3.4")));
        assert!(ip_matches(pat("2001:db8::", Some(32)), ip("2001:db8:1::5")));
        assert!(!ip_matches(
            pat("2001:db8::", Some(33)),
            ip("2001:db8:8000::5")
        ));
    }
}
