//! Splits a query into tokens, each with its character positions (0-based, in
//! `char`s, because that is what a person counts and what `QueryError` reports).
//!
//! There are five kinds of token: `(`, `)`, a `-` at the start of a term, a
//! quoted phrase (`"…"` or `'…'`, no escapes: a phrase in single quotes may
//! contain `"` and the other way round), and a bare word, which runs up to
//! whitespace or a parenthesis. A quote or a `-` inside a word is an ordinary
//! character (`don't`, `x-y`). `OR` and `AND` are words here; the parser gives
//! them their meaning, so that `"OR"` stays a phrase.
//!
//! One rule reaches into attributes: a word that is so far a lowercase
//! identifier and a colon (`program:`) ends before a quote, so that
//! `program:"Broken pipe"` is the word `program:` followed at once by a phrase.

use super::QueryError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    Minus,
    /// A quoted phrase, without its quotes.
    Phrase(String),
    Word(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Position of the first character.
    pub start: usize,
    /// Position just after the last character.
    pub end: usize,
}

pub(crate) fn lex(query: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = query.chars().collect();
    let n = chars.len();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '-' => {
                i += 1;
                Tok::Minus
            }
            '"' | '\'' => {
                let Some(len) = chars[i + 1..].iter().position(|&d| d == c) else {
                    let other = if c == '"' { '\'' } else { '"' };
                    return Err(QueryError::new(
                        start,
                        format!(
                            "expected a closing {c} for the phrase that starts here \
                             (a phrase cannot contain its own quote; quote it with {other} instead)"
                        ),
                    ));
                };
                let text: String = chars[i + 1..i + 1 + len].iter().collect();
                i += len + 2;
                Tok::Phrase(text)
            }
            _ => {
                // `ident` says whether chars[start..i] is still `[a-z][a-z0-9_]*`.
                let mut ident = true;
                while i < n {
                    let d = chars[i];
                    if d.is_whitespace() || d == '(' || d == ')' {
                        break;
                    }
                    i += 1;
                    if ident && d == ':' && i - 1 > start {
                        if i < n && (chars[i] == '"' || chars[i] == '\'') {
                            break;
                        }
                        ident = false;
                    } else if ident {
                        ident = d.is_ascii_lowercase()
                            || (i - 1 > start && (d.is_ascii_digit() || d == '_'));
                    }
                }
                Tok::Word(chars[start..i].iter().collect())
            }
        };
        tokens.push(Token { tok, start, end: i });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(q: &str) -> Vec<Tok> {
        lex(q).unwrap().into_iter().map(|t| t.tok).collect()
    }

    fn w(s: &str) -> Tok {
        Tok::Word(s.into())
    }

    fn p(s: &str) -> Tok {
        Tok::Phrase(s.into())
    }

    #[test]
    fn tokens() {
        use Tok::*;
        let table: &[(&str, Vec<Tok>)] = &[
            ("", vec![]),
            ("  \t\n", vec![]),
            ("a b", vec![w("a"), w("b")]),
            (
                "x-y -z - \"q r\"",
                vec![w("x-y"), Minus, w("z"), Minus, p("q r")],
            ),
            ("don't", vec![w("don't")]),
            ("'\"action\"=>\"index\"'", vec![p("\"action\"=>\"index\"")]),
            ("count(*)", vec![w("count"), LParen, w("*"), RParen]),
            (
                "program:(a OR b)",
                vec![w("program:"), LParen, w("a"), w("OR"), w("b"), RParen],
            ),
            ("program:\"a b\"", vec![w("program:"), p("a b")]),
            ("program:x\"y", vec![w("program:x\"y")]),
            ("Program:\"a", vec![w("Program:\"a")]),
            ("a:b:\"c\"", vec![w("a:b:\"c\"")]),
            ("[pid: 1|app", vec![w("[pid:"), w("1|app")]),
            ("\"\"", vec![p("")]),
            ("привет мир", vec![w("привет"), w("мир")]),
        ];
        for (q, want) in table {
            assert_eq!(&kinds(q), want, "{q:?}");
        }
    }

    #[test]
    fn positions_are_characters() {
        let t = lex("é (\"ü\")").unwrap();
        let spans: Vec<(usize, usize)> = t.iter().map(|t| (t.start, t.end)).collect();
        assert_eq!(spans, vec![(0, 1), (2, 3), (3, 6), (6, 7)]);
    }

    #[test]
    fn unclosed_phrase_points_at_its_quote() {
        let e = lex("ab 'cd").unwrap_err();
        assert_eq!(e.position, 3);
        assert!(e.message.contains("closing '"), "{}", e.message);
    }
}
