//! The parsed form of a query, and its canonical text.
//!
//! Attribute groups are pushed down to their leaves when parsing
//! (`program:(a OR -b)` is `program:a OR -program:b`), so a leaf always knows
//! its field and the evaluator never carries context. `Display` writes the
//! canonical query: leaves as `attr:value` (names for severities and
//! facilities, uppercase methods), parentheses only where the structure needs
//! them, words bare when they read back as the same word and quoted otherwise.
//! `parse(expr.to_string())` gives `expr` back (a property test holds it).

use std::fmt::{self, Write as _};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Leaf(Leaf),
    Not(Box<Expr>),
    /// Two or more.
    And(Vec<Expr>),
    /// Two or more.
    Or(Vec<Expr>),
}

/// Where a text term looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// The message, the program or the sender.
    Any,
    Message,
    Program,
    Sender,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPat {
    Cmp(Cmp, u16),
    /// `4xx`: the hundreds digit.
    Class(u8),
}

/// An IP address, or a CIDR block when `prefix` is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpPat {
    pub addr: IpAddr,
    pub prefix: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaf {
    /// A case-insensitive substring of `field`; `needle` as written, never empty.
    Text {
        field: Field,
        needle: String,
    },
    /// 0 (emergency) to 7 (debug).
    Severity(u8),
    /// 0 (kern) to 23 (local7).
    Facility(u8),
    Status(StatusPat),
    /// Uppercase ASCII letters; compared ignoring case.
    Method(String),
    /// Exact, or a glob where `*` stands for any text; case-sensitive.
    Path(String),
    Ip(IpPat),
    /// Compares the request's duration in µs (the value is written in ms).
    Duration(Cmp, u64),
}

impl Leaf {
    /// Whether it needs the access-log fields of the message.
    pub fn is_access(&self) -> bool {
        matches!(
            self,
            Leaf::Status(_) | Leaf::Method(_) | Leaf::Path(_) | Leaf::Ip(_) | Leaf::Duration(..)
        )
    }
}

/// Severity names as written in canonical queries, by number.
pub const SEVERITY_NAMES: [&str; 8] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "info",
    "debug",
];

/// Every name a severity may be given, with its number.
pub const SEVERITY_ALIASES: &[(&str, u8)] = &[
    ("emergency", 0),
    ("emerg", 0),
    ("panic", 0),
    ("alert", 1),
    ("critical", 2),
    ("crit", 2),
    ("error", 3),
    ("err", 3),
    ("warning", 4),
    ("warn", 4),
    ("notice", 5),
    ("info", 6),
    ("informational", 6),
    ("debug", 7),
];

/// Facility names as written in canonical queries, by number (RFC 5424).
pub const FACILITY_NAMES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Names a facility may be given besides `FACILITY_NAMES`.
pub const FACILITY_ALIASES: &[(&str, u8)] = &[("kernel", 0), ("security", 4)];

impl fmt::Display for Cmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cmp::Eq => "",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        })
    }
}

impl Field {
    pub fn attribute(self) -> Option<&'static str> {
        match self {
            Field::Any => None,
            Field::Message => Some("message"),
            Field::Program => Some("program"),
            Field::Sender => Some("sender"),
        }
    }
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Leaf::Text { field, needle } => match field.attribute() {
                None => write_text(f, None, needle),
                Some(attr) => write_text(f, Some(attr), needle),
            },
            Leaf::Severity(s) => {
                let name = SEVERITY_NAMES.get(*s as usize).copied();
                write!(
                    f,
                    "severity:{}",
                    name.map_or_else(|| s.to_string(), str::to_owned)
                )
            }
            Leaf::Facility(x) => {
                let name = FACILITY_NAMES.get(*x as usize).copied();
                write!(
                    f,
                    "facility:{}",
                    name.map_or_else(|| x.to_string(), str::to_owned)
                )
            }
            Leaf::Status(StatusPat::Cmp(c, n)) => write!(f, "status:{c}{n}"),
            Leaf::Status(StatusPat::Class(d)) => write!(f, "status:{d}xx"),
            Leaf::Method(m) => write!(f, "method:{m}"),
            Leaf::Path(p) => write_text(f, Some("path"), p),
            Leaf::Ip(IpPat { addr, prefix: None }) => write!(f, "ip:{addr}"),
            Leaf::Ip(IpPat {
                addr,
                prefix: Some(p),
            }) => write!(f, "ip:{addr}/{p}"),
            Leaf::Duration(c, us) => {
                write!(f, "duration:{c}{}", us / 1000)?;
                let frac = us % 1000;
                if frac != 0 {
                    let digits = format!("{frac:03}");
                    write!(f, ".{}", digits.trim_end_matches('0'))?;
                }
                Ok(())
            }
        }
    }
}

/// Writes `attr:value` (or a bare term when `attr` is `None`), with the value
/// bare when it reads back as itself and quoted otherwise.
fn write_text(f: &mut fmt::Formatter<'_>, attr: Option<&str>, value: &str) -> fmt::Result {
    let mut bare = String::new();
    if let Some(a) = attr {
        bare.push_str(a);
        bare.push(':');
    }
    let prefix_len = bare.len();
    bare.push_str(value);
    if reads_back_bare(&bare, attr, value) {
        return f.write_str(&bare);
    }
    bare.truncate(prefix_len);
    // A parsed value never holds both quotes unless it was a bare word, which
    // `reads_back_bare` accepted; anything else is written as well as it can be.
    let q = if value.contains('"') && !value.contains('\'') {
        '\''
    } else {
        '"'
    };
    write!(f, "{bare}{q}{value}{q}")
}

fn reads_back_bare(text: &str, attr: Option<&str>, value: &str) -> bool {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c == '(' || c == ')')
    {
        return false;
    }
    let Ok(Some(Expr::Leaf(leaf))) = super::parser::parse(text) else {
        return false;
    };
    match (attr, leaf) {
        (
            None,
            Leaf::Text {
                field: Field::Any,
                needle,
            },
        ) => needle == value,
        (Some("path"), Leaf::Path(p)) => p == value,
        (Some(a), Leaf::Text { field, needle }) => field.attribute() == Some(a) && needle == value,
        _ => false,
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Leaf(l) => l.fmt(f),
            Expr::Not(inner) => {
                f.write_char('-')?;
                match **inner {
                    Expr::And(_) | Expr::Or(_) => write!(f, "({inner})"),
                    _ => inner.fmt(f),
                }
            }
            Expr::And(items) => {
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(' ')?;
                    }
                    match e {
                        Expr::And(_) | Expr::Or(_) => write!(f, "({e})")?,
                        _ => e.fmt(f)?,
                    }
                }
                Ok(())
            }
            Expr::Or(items) => {
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    match e {
                        Expr::Or(_) => write!(f, "({e})")?,
                        _ => e.fmt(f)?,
                    }
                }
                Ok(())
            }
        }
    }
}
