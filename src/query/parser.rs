//! Recursive descent from tokens to an [`Expr`]; the grammar and the rules are
//! in the module documentation of `query`.
//!
//! ```text
//! query   = [ or ]
//! or      = and { "OR" and }            (in an attribute group, also: and and)
//! and     = unary { [ "AND" ] unary }   (in an attribute group "AND" is needed)
//! unary   = "-" unary | primary
//! primary = "(" or ")" | phrase | word | attr
//! attr    = name ":" ( word | phrase | "(" or ")" )   (no space after the colon)
//! ```

use std::net::IpAddr;

use super::QueryError;
use super::ast::{
    Cmp, Expr, FACILITY_ALIASES, FACILITY_NAMES, Field, IpPat, Leaf, SEVERITY_ALIASES, StatusPat,
};
use super::lexer::{Tok, Token, lex};

/// Parentheses and `-` together may nest this deep; deeper input is refused
/// rather than risking the stack.
pub const MAX_DEPTH: usize = 100;

/// The attributes, as a person writes them.
pub const ATTRIBUTES: &[&str] = &[
    "program", "sender", "message", "severity", "facility", "status", "method", "path", "ip",
    "duration",
];

/// What an unknown attribute probably meant.
const HINTS: &[(&str, &str)] = &[
    ("host", "sender"),
    ("hostname", "sender"),
    ("system", "sender"),
    ("source", "sender"),
    ("app", "program"),
    ("tag", "program"),
    ("msg", "message"),
    ("level", "severity"),
    ("priority", "severity"),
    ("code", "status"),
    ("url", "path"),
    ("client", "ip"),
    ("time", "duration"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attr {
    Text(Field),
    Severity,
    Facility,
    Status,
    Method,
    Path,
    Ip,
    Duration,
}

impl Attr {
    fn from_name(name: &str) -> Option<Attr> {
        Some(match name {
            "program" => Attr::Text(Field::Program),
            "sender" => Attr::Text(Field::Sender),
            "message" => Attr::Text(Field::Message),
            "severity" => Attr::Severity,
            "facility" => Attr::Facility,
            "status" => Attr::Status,
            "method" => Attr::Method,
            "path" => Attr::Path,
            "ip" => Attr::Ip,
            "duration" => Attr::Duration,
            _ => return None,
        })
    }
}

/// Top level: words search the message, program and sender, and `name:` may
/// start an attribute. Inside `name:( … )`: every term is a value of `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Top,
    Value(Attr),
}

/// What came just before the term being read, for error messages.
#[derive(Debug, Clone, Copy)]
enum After {
    Start,
    Group(usize),
    Op(&'static str),
}

/// `Ok(None)` is the empty query.
pub fn parse(query: &str) -> Result<Option<Expr>, QueryError> {
    let tokens = lex(query)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let end = query.chars().count();
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
        end,
    };
    let expr = p.or(Mode::Top, After::Start)?;
    if let Some(t) = p.peek() {
        // `or` stops only at the end or at a `)`.
        return Err(QueryError::new(
            t.start,
            "unexpected ) without a matching (",
        ));
    }
    Ok(Some(expr))
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
    end: usize,
}

fn is_op(tok: &Tok) -> Option<&'static str> {
    match tok {
        Tok::Word(w) if w == "OR" => Some("OR"),
        Tok::Word(w) if w == "AND" => Some("AND"),
        _ => None,
    }
}

fn starts_term(tok: &Tok) -> bool {
    match tok {
        Tok::LParen | Tok::Minus | Tok::Phrase(_) => true,
        Tok::Word(_) => is_op(tok).is_none(),
        Tok::RParen => false,
    }
}

fn join(mut items: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        items.swap_remove(0)
    } else {
        make(items)
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn enter(&mut self, position: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(QueryError::new(
                position,
                format!("the query nests parentheses and - deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn or(&mut self, mode: Mode, after: After) -> Result<Expr, QueryError> {
        let mut items = vec![self.and(mode, after)?];
        loop {
            match self.peek().map(|t| &t.tok) {
                Some(Tok::Word(w)) if w == "OR" => {
                    self.at += 1;
                    items.push(self.and(mode, After::Op("OR"))?);
                }
                // Inside an attribute group, values side by side are alternatives.
                Some(t) if matches!(mode, Mode::Value(_)) && starts_term(t) => {
                    items.push(self.and(mode, after)?);
                }
                _ => break,
            }
        }
        Ok(join(items, Expr::Or))
    }

    fn and(&mut self, mode: Mode, after: After) -> Result<Expr, QueryError> {
        let mut items = vec![self.unary(mode, after)?];
        loop {
            match self.peek().map(|t| &t.tok) {
                Some(Tok::Word(w)) if w == "AND" => {
                    self.at += 1;
                    items.push(self.unary(mode, After::Op("AND"))?);
                }
                Some(t) if mode == Mode::Top && starts_term(t) => {
                    items.push(self.unary(mode, after)?);
                }
                _ => break,
            }
        }
        Ok(join(items, Expr::And))
    }

    fn unary(&mut self, mode: Mode, after: After) -> Result<Expr, QueryError> {
        if let Some(t) = self.peek()
            && t.tok == Tok::Minus
        {
            let start = t.start;
            self.at += 1;
            self.enter(start)?;
            let inner = self.unary(mode, After::Op("-"))?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary(mode, after)
    }

    fn missing_term(&self, after: After) -> QueryError {
        let (position, found) = match self.peek() {
            None => (self.end, "the end of the query".to_owned()),
            Some(t) => (
                t.start,
                match &t.tok {
                    Tok::RParen => ")".to_owned(),
                    Tok::Word(w) => w.clone(),
                    _ => "a term".to_owned(),
                },
            ),
        };
        let message = match after {
            After::Op(op) => format!("expected a term after {op}, found {found}"),
            After::Group(open) => match self.peek() {
                Some(t) if t.tok == Tok::RParen => {
                    format!(
                        "expected a term inside the ( at {open}; empty parentheses are not a query"
                    )
                }
                None => format!("expected a term and a closing ) for the ( at {open}"),
                Some(_) => format!("expected a term before {found}"),
            },
            After::Start => match self.peek() {
                Some(t) if t.tok == Tok::RParen => "unexpected ) without a matching (".to_owned(),
                _ => format!("expected a term before {found}"),
            },
        };
        QueryError::new(position, message)
    }

    fn primary(&mut self, mode: Mode, after: After) -> Result<Expr, QueryError> {
        let t = match self.peek() {
            Some(t) if starts_term(&t.tok) && t.tok != Tok::Minus => t.clone(),
            _ => return Err(self.missing_term(after)),
        };
        self.at += 1;
        match t.tok {
            Tok::LParen => self.group(mode, t.start),
            Tok::Phrase(text) => {
                if text.is_empty() {
                    return Err(QueryError::new(
                        t.start,
                        "empty phrase; write the text to search for between the quotes",
                    ));
                }
                match mode {
                    Mode::Top => Ok(text_leaf(Field::Any, text)),
                    Mode::Value(attr) => value(attr, &text, t.start + 1).map(Expr::Leaf),
                }
            }
            Tok::Word(word) => match mode {
                Mode::Value(attr) => value(attr, &word, t.start).map(Expr::Leaf),
                Mode::Top => self.word(word, t.start, t.end),
            },
            // Excluded above.
            Tok::RParen | Tok::Minus => Err(self.missing_term(after)),
        }
    }

    /// The contents of `( … )` after the `(` at `open`, and the `)`.
    fn group(&mut self, mode: Mode, open: usize) -> Result<Expr, QueryError> {
        self.enter(open)?;
        let inner = self.or(mode, After::Group(open))?;
        self.depth -= 1;
        match self.next() {
            Some(Token {
                tok: Tok::RParen, ..
            }) => Ok(inner),
            _ => Err(QueryError::new(
                self.end,
                format!("expected a closing ) for the ( at {open}"),
            )),
        }
    }

    /// A word at the top level: a literal, or an attribute (see the module
    /// documentation for the rule).
    fn word(&mut self, word: String, start: usize, end: usize) -> Result<Expr, QueryError> {
        let Some((name, rest)) = attribute_name(&word) else {
            return Ok(text_leaf(Field::Any, word));
        };
        let value_at = start + name.chars().count() + 1;
        // The token right after the colon, when nothing separates them.
        let adjacent = self
            .peek()
            .filter(|t| t.start == end && matches!(t.tok, Tok::LParen | Tok::Phrase(_)))
            .map(|t| t.tok.clone());
        match Attr::from_name(name) {
            Some(attr) => {
                if !rest.is_empty() {
                    return value(attr, rest, value_at).map(Expr::Leaf);
                }
                match adjacent {
                    Some(Tok::LParen) => {
                        // The `(` starts where the word ends.
                        self.at += 1;
                        self.group(Mode::Value(attr), end)
                    }
                    Some(_) => self.primary(Mode::Value(attr), After::Start),
                    None => {
                        let hint = match attr {
                            Attr::Text(_) => "; put the term in quotes to search for it literally",
                            _ => "",
                        };
                        Err(QueryError::new(
                            value_at,
                            format!(
                                "expected a value after `{name}:` (with no space after the colon){hint}"
                            ),
                        ))
                    }
                }
            }
            None => {
                let value_like = match rest.chars().next() {
                    Some(c) => c.is_alphanumeric() || matches!(c, '_' | '<' | '>'),
                    None => adjacent.is_some(),
                };
                if !value_like {
                    return Ok(text_leaf(Field::Any, word));
                }
                let hint = HINTS
                    .iter()
                    .find(|(wrong, _)| *wrong == name)
                    .map(|(_, right)| format!(" (did you mean `{right}:`?)"))
                    .unwrap_or_default();
                let literally = if rest.is_empty() {
                    "put the term in quotes".to_owned()
                } else if !word.contains('"') {
                    format!("write \"{word}\"")
                } else {
                    format!("write '{word}'")
                };
                Err(QueryError::new(
                    start,
                    format!(
                        "unknown attribute `{name}`{hint}; known attributes are {}; {literally} to search for it literally",
                        ATTRIBUTES.join(", ")
                    ),
                ))
            }
        }
    }
}

/// `name` and the rest when `word` starts with `[a-z][a-z0-9_]*:`.
fn attribute_name(word: &str) -> Option<(&str, &str)> {
    let (name, rest) = word.split_once(':')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    (first.is_ascii_lowercase()
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
    .then_some((name, rest))
}

fn text_leaf(field: Field, needle: String) -> Expr {
    Expr::Leaf(Leaf::Text { field, needle })
}

fn attr_name(attr: Attr) -> &'static str {
    match attr {
        Attr::Text(Field::Program) => "program",
        Attr::Text(Field::Sender) => "sender",
        Attr::Text(Field::Message | Field::Any) => "message",
        Attr::Severity => "severity",
        Attr::Facility => "facility",
        Attr::Status => "status",
        Attr::Method => "method",
        Attr::Path => "path",
        Attr::Ip => "ip",
        Attr::Duration => "duration",
    }
}

/// One value of `attr` (written at `position`), as a leaf.
fn value(attr: Attr, v: &str, position: usize) -> Result<Leaf, QueryError> {
    let name = attr_name(attr);
    let bad = |what: &str| {
        QueryError::new(
            position,
            format!("expected {what} after `{name}:`, found `{v}`"),
        )
    };
    match attr {
        Attr::Text(field) => Ok(Leaf::Text {
            field,
            needle: v.to_owned(),
        }),
        Attr::Severity => {
            let lower = v.to_ascii_lowercase();
            if let Some(&(_, n)) = SEVERITY_ALIASES.iter().find(|(s, _)| *s == lower) {
                return Ok(Leaf::Severity(n));
            }
            match v.parse::<u8>() {
                Ok(n) if n <= 7 && all_digits(v) => Ok(Leaf::Severity(n)),
                _ => Err(bad(
                    "a severity (emergency, alert, critical, error, warning, notice, info, debug, \
                     their short forms emerg, crit, err, warn, or a number from 0 to 7)",
                )),
            }
        }
        Attr::Facility => {
            let lower = v.to_ascii_lowercase();
            if let Some(n) = FACILITY_NAMES.iter().position(|f| *f == lower) {
                return Ok(Leaf::Facility(n as u8));
            }
            if let Some(&(_, n)) = FACILITY_ALIASES.iter().find(|(s, _)| *s == lower) {
                return Ok(Leaf::Facility(n));
            }
            match v.parse::<u8>() {
                Ok(n) if n <= 23 && all_digits(v) => Ok(Leaf::Facility(n)),
                _ => Err(bad(&format!(
                    "a facility ({}, or a number from 0 to 23)",
                    FACILITY_NAMES.join(", ")
                ))),
            }
        }
        Attr::Status => {
            let b = v.as_bytes();
            if b.len() == 3 && (b'1'..=b'9').contains(&b[0]) && v[1..].eq_ignore_ascii_case("xx") {
                return Ok(Leaf::Status(StatusPat::Class(b[0] - b'0')));
            }
            let (cmp, num) = split_cmp(v);
            match num.parse::<u16>() {
                Ok(n) if all_digits(num) && (100..=999).contains(&n) => {
                    Ok(Leaf::Status(StatusPat::Cmp(cmp, n)))
                }
                _ => Err(bad(
                    "a status from 100 to 999 (429), a class (4xx) or a comparison (>=500)",
                )),
            }
        }
        Attr::Method => {
            if (1..=32).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphabetic()) {
                Ok(Leaf::Method(v.to_ascii_uppercase()))
            } else {
                Err(bad("an HTTP method such as GET or POST"))
            }
        }
        Attr::Path => {
            if v.starts_with('/') || v.starts_with('*') {
                Ok(Leaf::Path(v.to_owned()))
            } else {
                Err(bad(
                    "a path that starts with / (path:/api/v1/orders/, or path:/api/* for a prefix)",
                ))
            }
        }
        Attr::Ip => parse_ip(v)
            .map(Leaf::Ip)
            .ok_or_else(|| bad("an IP address (176.114.214.14) or a CIDR block (10.0.0.0/8)")),
        Attr::Duration => {
            let (cmp, num) = split_cmp(v);
            parse_millis(num)
                .map(|us| Leaf::Duration(cmp, us))
                .ok_or_else(|| bad("a duration in milliseconds, such as 250, >1000 or <=0.5"))
        }
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn split_cmp(v: &str) -> (Cmp, &str) {
    for (prefix, cmp) in [
        (">=", Cmp::Ge),
        ("<=", Cmp::Le),
        (">", Cmp::Gt),
        ("<", Cmp::Lt),
    ] {
        if let Some(rest) = v.strip_prefix(prefix) {
            return (cmp, rest);
        }
    }
    (Cmp::Eq, v)
}

fn parse_ip(v: &str) -> Option<IpPat> {
    match v.split_once('/') {
        None => Some(IpPat {
            addr: v.parse().ok()?,
            prefix: None,
        }),
        Some((addr, len)) => {
            let addr: IpAddr = addr.parse().ok()?;
            if !all_digits(len) || len.len() > 3 {
                return None;
            }
            let prefix: u8 = len.parse().ok()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            (prefix <= max).then_some(IpPat {
                addr,
                prefix: Some(prefix),
            })
        }
    }
}

/// Milliseconds, with up to three decimals, as µs.
fn parse_millis(v: &str) -> Option<u64> {
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if !all_digits(whole)
        || frac.len() > 3
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || v.ends_with('.')
    {
        return None;
    }
    let mut us = whole.parse::<u64>().ok()?.checked_mul(1000)?;
    if !frac.is_empty() {
        let scale = 10u64.pow(3 - frac.len() as u32);
        us = us.checked_add(frac.parse::<u64>().ok()? * scale)?;
    }
    Some(us)
}
