//! The search language: a query is compiled once ([`compile`] into a [`Query`])
//! and then serves search, live tail and alerts through one interface,
//! [`Matcher`]. Many saved searches are matched together by a [`QuerySet`],
//! which scans each line once for the words of all of them. The query engine
//! does no I/O and never panics, on any query or event.
//!
//! # The language
//!
//! It is the hosted log service's (Papertrail's), plus access-log fields:
//!
//! - A **word** (`timeout`, `/api/v1/orders/`, `x-y`) or a **phrase** in double
//!   or single quotes (`"Broken pipe"`, `'"action"=>"index"'`: single quotes let
//!   a phrase hold `"`, and the other way round; there are no escapes) matches
//!   when it occurs, ignoring case, in the message, the program or the sender
//!   (hostname). A phrase cannot be empty.
//! - Terms side by side must all match (AND); `AND` may be written out. `OR`
//!   between terms matches either. A `-` before a term, a phrase or a
//!   parenthesised group negates it, also with a space after it (`- "HTTP/2.0
//!   201"`); a `-` inside a word is part of it. Parentheses group and nest.
//!   `-` binds tightest, then AND, then OR: `a b OR c` is `(a b) OR c`.
//!   `OR` and `AND` are operators only in capitals; `"OR"` searches for the
//!   word. `NOT` is an ordinary word, as the hosted service documents no `NOT`.
//! - **Attributes** constrain a term to one field: `program:`, `sender:`,
//!   `message:` (substrings, ignoring case), `severity:` (emergency, alert,
//!   critical, error, warning, notice, info, debug, or emerg, crit, err, warn,
//!   or 0–7) and `facility:` (kern, user, mail, daemon, auth, syslog, lpr, news,
//!   uucp, cron, authpriv, ftp, ntp, audit, alert, clock, local0–local7, or
//!   0–23). On the fields of access-log lines (read by `parse::access`):
//!   `status:429`, `status:4xx`, `status:>=500` (also `>`, `<`, `<=`),
//!   `method:POST` (ignoring case), `path:/api/v1/orders/` (exact, or a glob
//!   with `*`: `path:/api/*`), `ip:176.114.214.14` or `ip:10.0.0.0/8`, and
//!   `duration:>1000` (milliseconds). A line that is not an access-log line, or
//!   lacks the field, satisfies no field predicate (and so its negation).
//! - An attribute's value is a word, a phrase or a group, right after the colon:
//!   `program:website-backend`, `message:"Broken pipe"`, `program:(apache OR
//!   sshd)`. A word value is taken literally (`program:-x` looks for `-x`).
//!   Inside an attribute's parentheses values side by side are alternatives,
//!   so `program:(production.log staging.log)` (the hosted service's own
//!   example) finds either program; `AND`, `OR` and `-` work as at the top.
//!
//! ## When `word:` is an attribute
//!
//! A word is read as `name:value` only when it starts with a lowercase ASCII
//! identifier (`[a-z][a-z0-9_]*`) and a colon. Then:
//!
//! - a known `name` is an attribute; with nothing right after the colon (no
//!   word, phrase or group touching it) that is an error, "expected a value
//!   after `status:`";
//! - an unknown `name` followed at once by a value that starts with a letter,
//!   a digit, `_`, `<`, `>`, a quote or `(` is an error ("unknown attribute
//!   `foo`; known attributes are …; put the term in quotes …"), so a saved
//!   search with a misspelt attribute is refused instead of quietly searching
//!   for text;
//! - anything else is a literal word: `http://x` (the value starts with `/`),
//!   `OSError:` or `error:` at the end of a term (no value), `12:30:45` and
//!   `[pid:` (not an identifier), `ERROR:root` (not lowercase), `std::io`.
//!
//! To search for text an attribute would take, quote it: `"host:web1"`.
//!
//! ## Errors
//!
//! A query that does not parse is refused with a [`QueryError`] (character
//! position, 0-based, and what was expected); it never quietly matches
//! everything or nothing. The empty query matches everything; `()`, a lone
//! `-`, `OR` or `AND` with nothing on one side, an empty phrase, an unknown
//! severity and the like are errors. An unclosed phrase is reported where it
//! starts (it swallowed the rest of the query); an unclosed `(` where the `)`
//! was expected, naming the `(`.
//!
//! # Pieces
//!
//! `lexer` (tokens with positions), `parser` (tokens to [`Expr`]), `ast`
//! ([`Expr`] and its canonical `Display`), `fields` (severity, facility and
//! access-log predicates), `set` ([`QuerySet`]: the shared Aho-Corasick
//! prefilter and the evaluator).

mod ast;
mod fields;
mod lexer;
mod parser;
mod set;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

pub use ast::{Cmp, Expr, Field, IpPat, Leaf, StatusPat};
pub use parser::{ATTRIBUTES, MAX_DEPTH};
pub use set::QuerySet;

/// `path:`'s rule, shared with the order endpoints: exact, or `*` for any text (also `/`).
pub fn path_matches(pattern: &str, path: &str) -> bool {
    fields::glob(pattern, path)
}

use crate::event::LogEvent;

pub trait Matcher: Send + Sync {
    fn matches(&self, ev: &LogEvent) -> bool;
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("query error at position {position}: {message}")]
pub struct QueryError {
    /// Character position (0-based) in the query where the problem is.
    pub position: usize,
    pub message: String,
}

impl QueryError {
    pub(crate) fn new(position: usize, message: impl Into<String>) -> Self {
        QueryError {
            position,
            message: message.into(),
        }
    }
}

/// Longest query accepted, in characters: far above any real search, low
/// enough that no query can make compiling or matching expensive.
pub const MAX_QUERY_CHARS: usize = 16 * 1024;

/// Compiles a query. The empty query (or only whitespace) matches everything.
pub fn compile(query: &str) -> Result<Query, QueryError> {
    if query.chars().nth(MAX_QUERY_CHARS).is_some() {
        return Err(QueryError::new(
            MAX_QUERY_CHARS,
            format!("the query is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    let expr = parser::parse(query)?;
    Ok(Query {
        inner: Arc::new(QueryInner::compiled(query.to_owned(), expr)),
    })
}

/// A compiled query: its source text, its parsed form and a one-query
/// [`QuerySet`] that matches it. Cheap to clone.
#[derive(Clone)]
pub struct Query {
    inner: Arc<QueryInner>,
}

struct QueryInner {
    text: String,
    expr: Option<Expr>,
    set: QuerySet,
}

impl Query {
    /// The query as it was written.
    pub fn text(&self) -> &str {
        &self.inner.text
    }

    /// The parsed query; `None` for the empty query.
    pub fn expr(&self) -> Option<&Expr> {
        self.inner.expr.as_ref()
    }

    /// The query in canonical form (what `Display` of its [`Expr`] writes);
    /// it compiles to the same [`Expr`].
    pub fn canonical(&self) -> String {
        self.inner
            .expr
            .as_ref()
            .map(Expr::to_string)
            .unwrap_or_default()
    }
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("text", &self.inner.text)
            .field("canonical", &self.canonical())
            .finish()
    }
}

impl Matcher for Query {
    fn matches(&self, ev: &LogEvent) -> bool {
        self.inner.set.any(ev)
    }
}
