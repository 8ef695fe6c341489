//! The search matcher: one interface (`Matcher`) that search, live tail and
//! (later) alerts all evaluate, so the language can grow without touching them.
//!
//! Today's language is the plain-substring subset of the Papertrail language:
//! whitespace-separated words and `"quoted phrases"` (or `'single-quoted'`),
//! all of which must occur, case-insensitively, in the message, the program or
//! the sender. The query engine never does I/O.

use crate::event::LogEvent;

pub trait Matcher: Send + Sync {
    fn matches(&self, ev: &LogEvent) -> bool;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("query error at position {position}: {message}")]
pub struct QueryError {
    /// Character position (0-based) in the query where the problem is.
    pub position: usize,
    pub message: String,
}

/// Compiles a query. The empty query matches everything.
pub fn compile(query: &str) -> Result<Box<dyn Matcher>, QueryError> {
    Ok(Box::new(Substrings::parse(query)?))
}

/// All terms must each occur in the message, program or sender (case-insensitive).
#[derive(Debug)]
pub struct Substrings {
    /// Lowercased terms; `ascii` says whether all of them are ASCII (the fast path).
    terms: Vec<String>,
    ascii: bool,
}

impl Substrings {
    pub fn parse(query: &str) -> Result<Self, QueryError> {
        let mut terms = Vec::new();
        let mut chars = query.char_indices().peekable();
        while let Some(&(pos, c)) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            if c == '"' || c == '\'' {
                chars.next();
                let mut term = String::new();
                let mut closed = false;
                for (_, d) in chars.by_ref() {
                    if d == c {
                        closed = true;
                        break;
                    }
                    term.push(d);
                }
                if !closed {
                    let position = query[..pos].chars().count();
                    return Err(QueryError {
                        position,
                        message: format!("expected a closing {c} for the phrase that starts here"),
                    });
                }
                if !term.is_empty() {
                    terms.push(term.to_lowercase());
                }
                continue;
            }
            let mut term = String::new();
            while let Some(&(_, d)) = chars.peek() {
                if d.is_whitespace() {
                    break;
                }
                term.push(d);
                chars.next();
            }
            terms.push(term.to_lowercase());
        }
        let ascii = terms.iter().all(|t| t.is_ascii());
        Ok(Substrings { terms, ascii })
    }
}

thread_local! {
    static LOWER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn contains_ci(haystack: &str, needle: &str, ascii: bool) -> bool {
    if needle.is_empty() {
        return true;
    }
    if ascii {
        LOWER.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            buf.extend(haystack.bytes().map(|b| b.to_ascii_lowercase()));
            memchr::memmem::find(&buf, needle.as_bytes()).is_some()
        })
    } else {
        haystack.to_lowercase().contains(needle)
    }
}

impl Matcher for Substrings {
    fn matches(&self, ev: &LogEvent) -> bool {
        self.terms.iter().all(|t| {
            contains_ci(&ev.message, t, self.ascii)
                || contains_ci(&ev.program, t, self.ascii)
                || contains_ci(&ev.source_name, t, self.ascii)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(program: &str, host: &str, msg: &str) -> LogEvent {
        LogEvent {
            id: 1,
            received_at: 0,
            generated_at: 0,
            source_name: host.into(),
            source_ip: "127.0.0.1".into(),
            program: program.into(),
            severity: None,
            facility: None,
            message: msg.into(),
            raw: bytes::Bytes::new(),
            flags: 0,
        }
    }

    #[test]
    fn table() {
        let e = ev("website-backend", "web-1", "POST /api/v1/orders/ => (HTTP/2.0 429) Привет");
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("post", true),
            ("POST /api/v1/orders/", true),
            ("\"orders/ =>\"", true),
            ("'HTTP/2.0 429'", true),
            ("\"HTTP/2.0 201\"", false),
            ("website-backend", true),
            ("WEB-1 orders", true),
            ("orders missing", false),
            ("привет", true),
            ("ПРИВЕТ orders", true),
        ];
        for (q, want) in cases {
            assert_eq!(compile(q).unwrap().matches(&e), *want, "query {q:?}");
        }
    }

    #[test]
    fn unclosed_phrase_says_where() {
        let err = Substrings::parse("abc \"def").unwrap_err();
        assert_eq!(err.position, 4);
        assert!(err.message.contains("closing \""));
    }
}
