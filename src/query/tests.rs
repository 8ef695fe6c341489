//! Tests of the whole language: the hosted service's documented examples, the
//! seed search on real uWSGI lines, attributes, errors, canonical text, and the
//! properties that hold the prefilter to a naive evaluator.

use std::collections::BTreeSet;
use std::net::IpAddr;

use proptest::prelude::*;

use super::fields::{self, LazyAccess};
use super::set::LiteralSearch;
use super::*;
use crate::event::{LogEvent, Text};
use crate::parse::LineParser;

fn ev(host: &str, program: &str, severity: Option<u8>, message: &str) -> LogEvent {
    LogEvent {
        id: 1,
        received_at: 0,
        generated_at: 0,
        source_name: host.into(),
        source_ip: "127.0.0.1".into(),
        program: program.into(),
        severity,
        facility: Some(1),
        message: message.into(),
        raw: bytes::Bytes::new(),
        flags: 0,
    }
}

fn q(query: &str) -> Query {
    compile(query).unwrap_or_else(|e| panic!("{query:?}: {e}"))
}

/// Straightforward evaluation of the parsed query: the reference the prefilter
/// must agree with. Text terms are `to_lowercase().contains` on each field;
/// the other leaves share `fields::matches` (tested on their own below).
fn reference(e: &Expr, ev: &LogEvent) -> bool {
    match e {
        Expr::Leaf(Leaf::Text { field, needle }) => {
            let needle = needle.to_lowercase();
            let all: [&str; 3] = [&ev.message, &ev.program, &ev.source_name];
            let look: &[&str] = match field {
                Field::Any => &all,
                Field::Message => &all[0..1],
                Field::Program => &all[1..2],
                Field::Sender => &all[2..3],
            };
            look.iter().any(|f| f.to_lowercase().contains(&needle))
        }
        Expr::Leaf(leaf) => fields::matches(leaf, ev, &mut LazyAccess::new(&ev.message)),
        Expr::Not(inner) => !reference(inner, ev),
        Expr::And(items) => items.iter().all(|i| reference(i, ev)),
        Expr::Or(items) => items.iter().any(|i| reference(i, ev)),
    }
}

// ---- the hosted service's documented examples ----------------------------------

/// The events the documented examples are tried on, by name.
fn doc_events() -> Vec<(&'static str, LogEvent)> {
    vec![
        (
            "a",
            ev(
                "www42",
                "sshd",
                Some(6),
                "Accepted password for deploy from 10.1.2.3 port 50112 ssh2",
            ),
        ),
        (
            "b",
            ev(
                "db-1",
                "sudo",
                Some(5),
                "deploy : Accepted password ; TTY=pts/0 ; COMMAND=/bin/ls",
            ),
        ),
        (
            "c",
            ev("www42", "some.log", Some(6), "Completed 200 OK in 12ms"),
        ),
        (
            "d",
            ev("nyc-db2", "other.log", Some(6), "checkpoint complete"),
        ),
        ("e", ev("nyc-db2", "some.log", Some(6), "vacuum done")),
        (
            "f",
            ev(
                "mx1",
                "postfix/smtpd",
                Some(6),
                "4F2A1: message-id=<a1@google.com>",
            ),
        ),
        (
            "g",
            ev(
                "mx1",
                "postfix/cleanup",
                Some(6),
                "4F2A1: message-id=<b2@example.org>",
            ),
        ),
        (
            "h",
            ev(
                "mx1",
                "postfix/qmgr",
                Some(6),
                "4F2A1: from=<c3@google.com>, size=1200",
            ),
        ),
        (
            "i",
            ev(
                "router",
                "ping",
                Some(4),
                "From 10.1.2.9 icmp_seq=1 TTL exceeded",
            ),
        ),
        (
            "j",
            ev(
                "router",
                "ping",
                Some(6),
                "64 bytes from 10.1.2.9: icmp_seq=2 ttl=63",
            ),
        ),
        (
            "k",
            ev(
                "router",
                "ping",
                Some(6),
                "10.1.2.7 ping statistics: 1 packet transmitted, 1 received",
            ),
        ),
        (
            "l",
            ev(
                "app1",
                "production.log",
                Some(6),
                r#"Parameters: {"controller"=>"orders", "action"=>"index"}"#,
            ),
        ),
        (
            "m",
            ev(
                "app1",
                "staging.log",
                Some(6),
                r#"SELECT count(*) FROM orders /* "action"=>"index" */"#,
            ),
        ),
        (
            "n",
            ev(
                "app1",
                "staging.log",
                Some(6),
                r#"{"action"=>"index", "q"=>"abc"}"#,
            ),
        ),
        (
            "o",
            ev("app1", "development.log", Some(6), r#"{"action"=>"index"}"#),
        ),
        (
            "p",
            ev(
                "www42",
                "CROND",
                Some(6),
                "(root) CMD (run-parts /etc/cron.hourly)",
            ),
        ),
        ("q", ev("bastion", "ssh", Some(6), "something bad happened")),
        (
            "r",
            ev("bastion", "ssh", Some(6), "something bad, but only noise"),
        ),
        (
            "s",
            ev(
                "web-1",
                "kernel",
                Some(3),
                "Out of memory: Killed process 4242",
            ),
        ),
        (
            "t",
            ev(
                "web-1",
                "apache",
                Some(2),
                "child pid 1234 exit signal Segmentation fault",
            ),
        ),
        (
            "u",
            ev(
                "web-1",
                "sshd",
                Some(3),
                "error: maximum authentication attempts exceeded",
            ),
        ),
        (
            "v",
            ev("web-1", "sshd", Some(2), "fatal: Write failed: Broken pipe"),
        ),
    ]
}

/// Every example query of the hosted service's search-syntax help
/// (help.papertrailapp.com/kb/how-it-works/search-syntax, current and earlier
/// versions) and of its post introducing attributes, with the events each must
/// find. `!x` lists every event except x.
#[test]
fn documented_examples() {
    let table: &[(&str, &str)] = &[
        (r#""Accepted password" sudo"#, "b"),
        ("-CROND", "!p"),
        ("(www42 some.log) OR (nyc-db2 other.log)", "c d"),
        ("(message-id postfix/smtpd) OR -google.com", "!h"),
        (r#"10.1.2 -("TTL exceeded" OR "1 packet")"#, "a j"),
        (
            r#"program:(production.log staging.log) '"action"=>"index"' -("count(*)" OR abc)"#,
            "l",
        ),
        (
            r#"(production.log OR staging.log) '"action"=>"index"' -("count(*)" OR abc)"#,
            "l",
        ),
        (
            r#"("something bad" program:ssh -noise) OR severity:error"#,
            "q s u",
        ),
        (
            r#"('something bad' program:ssh -noise) OR severity:error"#,
            "q s u",
        ),
        (r#""something bad" program:ssh -noise"#, "q"),
        ("'something bad' program:ssh -noise", "q"),
        ("program:sshd", "a u v"),
        ("program:(apache OR sshd) severity:crit", "t v"),
        // "returning messages with the severities emergency, critical, or error"
        ("severity:(emergency critical error)", "s t u v"),
    ];
    let events = doc_events();
    let names: BTreeSet<&str> = events.iter().map(|(n, _)| *n).collect();
    for (query, want) in table {
        let want: BTreeSet<&str> = match want.strip_prefix('!') {
            Some(except) => names.iter().copied().filter(|n| *n != except).collect(),
            None => want.split(' ').collect(),
        };
        let compiled = q(query);
        let got: BTreeSet<&str> = events
            .iter()
            .filter(|(_, e)| compiled.matches(e))
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(got, want, "{query}");
        // The same through a set of all of them, and through the reference.
        let expr = compiled.expr().unwrap();
        for (n, e) in &events {
            assert_eq!(reference(expr, e), want.contains(n), "{query} on {n}");
        }
    }
}

// ---- the seed search on real uWSGI lines ---------------------------------------

const FIXTURE: &str = include_str!("../../testdata/uwsgi-syslog.log");

/// The 15 lines of `testdata/uwsgi-syslog.log`, read as the server reads them.
fn fixture_events() -> Vec<LogEvent> {
    let parser = LineParser::new(jiff::tz::TimeZone::UTC, vec![]);
    let ip: Text = "10.0.0.5".into();
    FIXTURE
        .lines()
        .map(|l| {
            parser.event(
                bytes::Bytes::copy_from_slice(l.as_bytes()),
                false,
                1_529_763_461_000_000,
                &ip,
            )
        })
        .collect()
}

const SEED: &str = r#"POST /api/v1/orders/ - "HTTP/2.0 201" - "HTTP/1.1 201" - "Broken pipe" program:website-backend"#;

/// Which fixture lines (1-based, as in `uwsgi-syslog.expected.tsv`) each query finds.
#[test]
fn seed_search_on_the_fixture() {
    let events = fixture_events();
    assert_eq!(events.len(), 15);
    assert_eq!(&*events[2].program, "website-backend");
    let table: &[(&str, &[usize])] = &[
        // Every order POST not answered 201: the 429s, 400, 500, 502; and line 11,
        // whose path merely starts with the orders path (the TSV notes it).
        (SEED, &[3, 4, 5, 11, 12, 13]),
        // The same with access-log fields: exact path, no substring accidents.
        (
            "program:website-backend method:POST path:/api/v1/orders/ status:>=400",
            &[3, 4, 5, 12, 13],
        ),
        // Without a status the disconnect line (7) has no status to be 201.
        (
            "program:website-backend method:post path:/api/v1/orders/ -status:2xx",
            &[3, 4, 5, 7, 12, 13],
        ),
        ("status:429", &[3, 12]),
        ("status:4xx", &[3, 4, 12, 15]),
        ("status:5xx OR status:429", &[3, 5, 12, 13]),
        ("status:(5xx OR 429)", &[3, 5, 12, 13]),
        ("status:(<300 AND -200)", &[2, 6, 10]),
        ("path:/api/*/items/", &[11]),
        ("path:/api/v1/catalog/", &[1]),
        ("ip:176.114.214.14", &[3, 14]),
        ("ip:5.18.0.0/16", &[5, 13]),
        ("-ip:0.0.0.0/0", &[9]),
        ("duration:>1000", &[5, 13]),
        ("duration:<=3 method:POST", &[3, 12]),
        ("program:nginx", &[15]),
        ("sender:website-frontend", &[15]),
        ("severity:err", &[7, 8, 9]),
        ("severity:error OSError:", &[9]),
        ("facility:daemon status:201", &[2, 6, 10]),
        ("message:website-backend", &[]),
        (
            "website-backend -message:website",
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
        ),
        ("\"HTTP/2.0 429\" [pid:", &[3, 12]),
        ("(manager)", &[12]),
        ("'(manager)'", &[12]),
    ];
    for (query, want) in table {
        let compiled = q(query);
        let got: Vec<usize> = (1..=15)
            .filter(|&n| compiled.matches(&events[n - 1]))
            .collect();
        assert_eq!(&got, want, "{query}");
    }
    // Every saved search above, at once.
    let queries: Vec<Query> = table.iter().map(|(t, _)| q(t)).collect();
    let set = QuerySet::new(&queries);
    for (n, e) in events.iter().enumerate() {
        let mut got = Vec::new();
        set.matching(e, &mut got);
        let want: Vec<usize> = table
            .iter()
            .enumerate()
            .filter(|(_, (_, lines))| lines.contains(&(n + 1)))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(got, want, "line {}", n + 1);
    }
}

#[test]
fn seed_search_on_other_programs_and_case() {
    let line = "[pid: 20593|app: 0|req: 154/4946604] 176.114.214.14 () {48 vars in 1018 bytes} [Sat Jun 23 17:17:48 2018] POST /api/v1/orders/ => generated 99 bytes in 2 msecs (HTTP/2.0 429) 8 headers in 295 bytes (1 switches on core 0)";
    let seed = q(SEED);
    assert!(seed.matches(&ev("web-1", "website-backend", Some(6), line)));
    assert!(seed.matches(&ev(
        "web-1",
        "Website-Backend",
        Some(6),
        &line.to_lowercase()
    )));
    assert!(!seed.matches(&ev("web-1", "website-frontend", Some(6), line)));
    assert!(!seed.matches(&ev(
        "web-1",
        "website-backend",
        Some(6),
        &line.replace("429", "201")
    )));
    assert!(!seed.matches(&ev(
        "web-1",
        "website-backend",
        Some(6),
        &line.replace("HTTP/2.0 429", "HTTP/1.1 201")
    )));
    assert!(seed.matches(&ev(
        "web-1",
        "website-backend",
        Some(6),
        &line.replace("HTTP/2.0 429", "HTTP/1.1 500")
    )));
}

// ---- attributes and literals ---------------------------------------------------

fn text(field: Field, needle: &str) -> Expr {
    Expr::Leaf(Leaf::Text {
        field,
        needle: needle.into(),
    })
}

#[test]
fn words_that_stay_literals() {
    for word in [
        "http://x",
        "https://example-shop.ru/cart/",
        "12:30:45",
        "OSError:",
        "error:",
        "[pid:",
        "ERROR:root",
        "Program:sshd",
        "std::io",
        "a:/b",
        "x-y",
        "website-backend",
        "NOT",
        "or",
        "and",
        "don't",
        "a:",
        ">",
        "foo:-bar",
        "foo:@x",
    ] {
        assert_eq!(q(word).expr(), Some(&text(Field::Any, word)), "{word}");
    }
    assert_eq!(
        q("error: x").expr(),
        Some(&Expr::And(vec![
            text(Field::Any, "error:"),
            text(Field::Any, "x")
        ]))
    );
}

#[test]
fn attributes() {
    use Leaf::*;
    let table: &[(&str, Leaf)] = &[
        (
            "program:sshd",
            Text {
                field: Field::Program,
                needle: "sshd".into(),
            },
        ),
        (
            "program:\"a b\"",
            Text {
                field: Field::Program,
                needle: "a b".into(),
            },
        ),
        (
            "program:'\"x\"'",
            Text {
                field: Field::Program,
                needle: "\"x\"".into(),
            },
        ),
        (
            "program:-x",
            Text {
                field: Field::Program,
                needle: "-x".into(),
            },
        ),
        (
            "program:a:b",
            Text {
                field: Field::Program,
                needle: "a:b".into(),
            },
        ),
        (
            "sender:web-1",
            Text {
                field: Field::Sender,
                needle: "web-1".into(),
            },
        ),
        (
            "message:OR",
            Text {
                field: Field::Message,
                needle: "OR".into(),
            },
        ),
        ("severity:emerg", Severity(0)),
        ("severity:ALERT", Severity(1)),
        ("severity:crit", Severity(2)),
        ("severity:err", Severity(3)),
        ("severity:warn", Severity(4)),
        ("severity:notice", Severity(5)),
        ("severity:informational", Severity(6)),
        ("severity:7", Severity(7)),
        ("facility:kern", Facility(0)),
        ("facility:kernel", Facility(0)),
        ("facility:authpriv", Facility(10)),
        ("facility:local7", Facility(23)),
        ("facility:16", Facility(16)),
        ("status:429", Status(StatusPat::Cmp(Cmp::Eq, 429))),
        ("status:>=500", Status(StatusPat::Cmp(Cmp::Ge, 500))),
        ("status:>499", Status(StatusPat::Cmp(Cmp::Gt, 499))),
        ("status:<400", Status(StatusPat::Cmp(Cmp::Lt, 400))),
        ("status:<=399", Status(StatusPat::Cmp(Cmp::Le, 399))),
        ("status:4xx", Status(StatusPat::Class(4))),
        ("status:5XX", Status(StatusPat::Class(5))),
        ("method:post", Method("POST".into())),
        ("path:/api/*", Path("/api/*".into())),
        ("path:\"/a b\"", Path("/a b".into())),
        (
            "ip:176.114.214.14",
            Ip(IpPat {
                addr: "176.114.214.14".parse().unwrap(),
                prefix: None,
            }),
        ),
        (
            "ip:10.0.0.0/8",
            Ip(IpPat {
                addr: "10.0.0.0".parse().unwrap(),
                prefix: Some(8),
            }),
        ),
        (
            "ip:2001:db8::1",
            Ip(IpPat {
                addr: "2001:db8::1".parse::<IpAddr>().unwrap(),
                prefix: None,
            }),
        ),
        ("duration:>1000", Duration(Cmp::Gt, 1_000_000)),
        ("duration:0.5", Duration(Cmp::Eq, 500)),
        ("duration:<=250.25", Duration(Cmp::Le, 250_250)),
    ];
    for (query, leaf) in table {
        assert_eq!(q(query).expr(), Some(&Expr::Leaf(leaf.clone())), "{query}");
    }
}

#[test]
fn structure_and_precedence() {
    let w = |s: &str| text(Field::Any, s);
    let not = |e: Expr| Expr::Not(Box::new(e));
    let table: Vec<(&str, Option<Expr>)> = vec![
        ("", None),
        ("   ", None),
        (
            "a b OR c",
            Some(Expr::Or(vec![Expr::And(vec![w("a"), w("b")]), w("c")])),
        ),
        (
            "a AND b OR c d",
            Some(Expr::Or(vec![
                Expr::And(vec![w("a"), w("b")]),
                Expr::And(vec![w("c"), w("d")]),
            ])),
        ),
        (
            "a (b OR c)",
            Some(Expr::And(vec![w("a"), Expr::Or(vec![w("b"), w("c")])])),
        ),
        ("-a b", Some(Expr::And(vec![not(w("a")), w("b")]))),
        ("- a", Some(not(w("a")))),
        ("--a", Some(not(not(w("a"))))),
        ("-(a OR b)", Some(not(Expr::Or(vec![w("a"), w("b")])))),
        ("((a))", Some(w("a"))),
        ("\"OR\" 'AND'", Some(Expr::And(vec![w("OR"), w("AND")]))),
        (
            "program:(a b AND -c)",
            Some(Expr::Or(vec![
                text(Field::Program, "a"),
                Expr::And(vec![
                    text(Field::Program, "b"),
                    not(text(Field::Program, "c")),
                ]),
            ])),
        ),
        (
            "program:(severity:x)",
            Some(text(Field::Program, "severity:x")),
        ),
    ];
    for (query, want) in table {
        assert_eq!(q(query).expr(), want.as_ref(), "{query}");
    }
}

// ---- errors --------------------------------------------------------------------

#[test]
fn errors_say_where_and_what() {
    let deep = "(".repeat(MAX_DEPTH + 1) + "a" + &")".repeat(MAX_DEPTH + 1);
    let long = "a ".repeat(MAX_QUERY_CHARS);
    let table: &[(&str, usize, &str)] = &[
        ("(a", 2, "expected a closing ) for the ( at 0"),
        (
            "POST (status:429 OR x",
            21,
            "expected a closing ) for the ( at 5",
        ),
        ("a)", 1, "unexpected ) without a matching ("),
        (")", 0, "unexpected ) without a matching ("),
        ("()", 1, "expected a term inside the ( at 0"),
        ("a ( )", 4, "expected a term inside the ( at 2"),
        ("(", 1, "expected a term and a closing ) for the ( at 0"),
        (
            "-",
            1,
            "expected a term after -, found the end of the query",
        ),
        ("a - OR b", 4, "expected a term after -, found OR"),
        (
            "a OR",
            4,
            "expected a term after OR, found the end of the query",
        ),
        ("a OR OR b", 5, "expected a term after OR, found OR"),
        ("a OR )", 5, "expected a term after OR, found )"),
        ("OR a", 0, "expected a term before OR"),
        ("(OR a)", 1, "expected a term before OR"),
        ("a AND", 5, "expected a term after AND"),
        ("AND a", 0, "expected a term before AND"),
        (
            "\"unclosed",
            0,
            "expected a closing \" for the phrase that starts here",
        ),
        ("a 'b", 2, "expected a closing ' for the phrase"),
        ("\"\"", 0, "empty phrase"),
        ("program:''", 8, "empty phrase"),
        ("status:", 7, "expected a value after `status:`"),
        (
            "status: 500",
            7,
            "expected a value after `status:` (with no space after the colon)",
        ),
        (
            "message: x",
            8,
            "put the term in quotes to search for it literally",
        ),
        (
            "foo:bar",
            0,
            "unknown attribute `foo`; known attributes are program, sender, message, severity, facility, status, method, path, ip, duration; write \"foo:bar\" to search for it literally",
        ),
        (
            "x host:web1",
            2,
            "unknown attribute `host` (did you mean `sender:`?)",
        ),
        (
            "level:(error)",
            0,
            "unknown attribute `level` (did you mean `severity:`?)",
        ),
        ("foo:\"bar\"", 0, "unknown attribute `foo`"),
        ("localhost:8080", 0, "unknown attribute `localhost`"),
        (
            "status:abc",
            7,
            "expected a status from 100 to 999 (429), a class (4xx) or a comparison (>=500) after `status:`, found `abc`",
        ),
        ("status:99", 7, "expected a status"),
        ("status:1000", 7, "expected a status"),
        ("status:=429", 7, "expected a status"),
        ("status:(429 OR 6y)", 15, "found `6y`"),
        ("severity:loud", 9, "expected a severity"),
        ("severity:8", 9, "expected a severity"),
        ("facility:local8", 9, "expected a facility"),
        ("method:P0ST", 7, "expected an HTTP method"),
        ("path:api/*", 5, "expected a path that starts with /"),
        ("ip:300.1.1.1", 3, "expected an IP address"),
        ("ip:10.0.0.0/33", 3, "expected an IP address"),
        ("duration:>1s", 9, "expected a duration in milliseconds"),
        ("duration:1.2345", 9, "expected a duration in milliseconds"),
        ("program:()", 9, "expected a term inside the ( at 8"),
        ("program:(a", 10, "expected a closing ) for the ( at 8"),
        ("привет (мир", 11, "expected a closing ) for the ( at 7"),
        ("привет foo:бар", 7, "unknown attribute `foo`"),
        (&deep, MAX_DEPTH, "deeper than"),
        (&long, MAX_QUERY_CHARS, "longer than"),
    ];
    for (query, position, message) in table {
        let e = compile(query).expect_err(query);
        assert_eq!(e.position, *position, "{query}: {e}");
        assert!(e.message.contains(message), "{query}: {e}");
    }
    let minus = "-".repeat(MAX_DEPTH + 1) + "a";
    assert!(compile(&minus).unwrap_err().message.contains("deeper than"));
    assert!(compile(&("-".repeat(MAX_DEPTH) + "a")).is_ok());
}

// ---- canonical text -------------------------------------------------------------

#[test]
fn canonical_text() {
    let table: &[(&str, &str)] = &[
        (
            SEED,
            r#"POST /api/v1/orders/ -"HTTP/2.0 201" -"HTTP/1.1 201" -"Broken pipe" program:website-backend"#,
        ),
        (
            "program:(apache OR sshd) severity:crit",
            "(program:apache OR program:sshd) severity:critical",
        ),
        (
            "program:(production.log staging.log)",
            "program:production.log OR program:staging.log",
        ),
        (
            r#"'"action"=>"index"' -("count(*)" OR abc)"#,
            r#"'"action"=>"index"' -("count(*)" OR abc)"#,
        ),
        ("\"foo\" 'a b'", "foo \"a b\""),
        (
            "\"OR\" \"-x\" \"a:b\" \"foo:bar\" \"status:5\"",
            "\"OR\" \"-x\" \"a:b\" \"foo:bar\" \"status:5\"",
        ),
        ("a AND b", "a b"),
        ("a (b c) ((d OR e) OR f)", "a (b c) ((d OR e) OR f)"),
        ("--a - (b c)", "--a -(b c)"),
        (
            "method:post status:4XX severity:3 facility:kernel",
            "method:POST status:4xx severity:error facility:kern",
        ),
        (
            "duration:>0.50 duration:1000 duration:<=0.001",
            "duration:>0.5 duration:1000 duration:<=0.001",
        ),
        (
            "ip:10.0.0.0/8 ip:::1 path:'/a b' path:/x*",
            "ip:10.0.0.0/8 ip:::1 path:\"/a b\" path:/x*",
        ),
        (
            "program:'\"' message:\"'\" sender:a\"b'c",
            "program:'\"' message:\"'\" sender:a\"b'c",
        ),
    ];
    for (query, want) in table {
        let compiled = q(query);
        assert_eq!(compiled.canonical(), *want, "{query}");
        assert_eq!(q(want).expr(), compiled.expr(), "{want}");
        assert_eq!(compiled.text(), *query);
    }
}

// ---- field predicates on their own ----------------------------------------------

#[test]
fn lines_without_fields_satisfy_no_field_predicate() {
    let plain = ev("h", "p", Some(3), "Traceback (most recent call last):");
    for query in [
        "status:500",
        "status:<600",
        "method:GET",
        "path:*",
        "ip:0.0.0.0/0",
        "duration:>=0",
    ] {
        assert!(!q(query).matches(&plain), "{query}");
        assert!(q(&format!("-{query}")).matches(&plain), "-{query}");
    }
    let no_severity = LogEvent {
        severity: None,
        facility: None,
        ..plain
    };
    assert!(!q("severity:error").matches(&no_severity));
    assert!(q("-facility:user").matches(&no_severity));
}

// ---- big and hostile input ------------------------------------------------------

#[test]
fn a_100_kb_line_is_quick() {
    let unit =
        "[pid: 20593|app: 0|req: 154/4946604] 176.114.214.14 () {48 vars} GET /api/v1/catalog/?q=";
    let mut message = String::new();
    while message.len() < 100 * 1024 {
        message.push_str(unit);
    }
    message.push_str(" needle-at-the-end Ärger");
    let queries: Vec<Query> = (0..100)
        .map(|i| {
            q(&format!(
                "(word{i} OR \"phrase {i}\") -noise{i} program:website-backend status:>=500"
            ))
        })
        .chain([
            q("needle-at-the-end ärger"),
            q("catalog -pid"),
            q("status:200"),
            q("\"q=[pid\""),
        ])
        .collect();
    let set = QuerySet::new(&queries);
    let events = [
        ev("web-1", "website-backend", Some(6), &message),
        ev("web-1", "website-backend", Some(6), &message.to_uppercase()),
    ];
    let started = std::time::Instant::now();
    for e in &events {
        let mut got = Vec::new();
        set.matching(e, &mut got);
        assert!(got.contains(&100) && got.contains(&103), "{got:?}");
        let want: Vec<usize> = queries
            .iter()
            .enumerate()
            .filter(|(_, q)| reference(q.expr().unwrap(), e))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(got, want);
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn unicode_case() {
    let e = ev(
        "сервер-1",
        "website-backend",
        None,
        "POST /api/v1/orders/ => (HTTP/2.0 429) Привет ΟΔΟΣ \u{212A}elvin",
    );
    let table: &[(&str, bool)] = &[
        ("привет", true),
        ("ПРИВЕТ orders", true),
        ("СЕРВЕР-1", true),
        ("sender:сервер", true),
        ("program:сервер", false),
        ("οδος", true),
        ("οδοσ", false),
        ("kelvin", true),
        ("\u{212A}ELVIN", true),
    ];
    for (query, want) in table {
        assert_eq!(q(query).matches(&e), *want, "{query}");
        assert_eq!(reference(q(query).expr().unwrap(), &e), *want, "{query}");
    }
}

#[test]
fn empty_query_and_empty_set() {
    let e = ev("h", "p", None, "");
    assert!(q("").matches(&e));
    let set = QuerySet::new(&[]);
    assert!(set.is_empty());
    let mut out = vec![7];
    set.matching(&e, &mut out);
    assert_eq!(out, vec![7]);
    let set = QuerySet::new(&[q("x"), q(""), q("-x"), q("")]);
    set.matching(&e, &mut out);
    assert_eq!(out, vec![7, 1, 2, 3]);
}

// ---- properties -------------------------------------------------------------------

fn needle() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[abAB]{1,3}",
        3 => "[abAB é:\"'()\\-]{1,4}",
        1 => "[ΣσςİiKk\u{212A}ß]{1,2}",
        1 => prop::sample::select(vec![
            "OR", "AND", "NOT", "-x", "x-y", "status:500", "foo:bar", "http://x", "a:b", "a:", "a\"b'c",
            "program:", "(", ")", "\"", "'", " ", "a b", "\u{0}", "/api/*",
        ]).prop_map(String::from),
    ]
    // A phrase cannot hold both quotes; only a bare word can.
    .prop_filter("representable", |s| !(s.contains('"') && s.contains('\'')) || s == "a\"b'c")
}

fn cmp() -> impl Strategy<Value = Cmp> {
    prop::sample::select(vec![Cmp::Eq, Cmp::Lt, Cmp::Le, Cmp::Gt, Cmp::Ge])
}

fn status_leaf() -> impl Strategy<Value = Leaf> {
    prop_oneof![
        3 => (cmp(), prop::sample::select(vec![199u16, 200, 201, 399, 400, 428, 429, 430, 499, 500, 502]))
            .prop_map(|(c, n)| Leaf::Status(StatusPat::Cmp(c, n))),
        1 => (cmp(), 100u16..=999).prop_map(|(c, n)| Leaf::Status(StatusPat::Cmp(c, n))),
        1 => (1u8..=9).prop_map(|d| Leaf::Status(StatusPat::Class(d))),
    ]
}

/// Queries the status table serves: a status, an OR of them, or either beside another term.
fn status_query() -> impl Strategy<Value = Expr> {
    let one = prop_oneof![
        status_leaf().prop_map(Expr::Leaf),
        prop::collection::vec(status_leaf().prop_map(Expr::Leaf), 2..4).prop_map(Expr::Or),
    ];
    (one, prop::option::of(leaf())).prop_map(|(s, other)| match other {
        None => s,
        Some(o) => Expr::And(vec![Expr::Leaf(o), s]),
    })
}

fn leaf() -> impl Strategy<Value = Leaf> {
    let field = prop::sample::select(vec![
        Field::Any,
        Field::Message,
        Field::Program,
        Field::Sender,
    ]);
    prop_oneof![
        8 => (field, needle()).prop_map(|(field, needle)| Leaf::Text { field, needle }),
        1 => (0u8..8).prop_map(Leaf::Severity),
        1 => (0u8..24).prop_map(Leaf::Facility),
        2 => status_leaf(),
        1 => "[A-Z]{1,6}".prop_map(Leaf::Method),
        1 => "/[a-z*/ ]{0,6}".prop_map(Leaf::Path),
        1 => (any::<[u8; 4]>(), prop::option::of(0u8..=32))
            .prop_map(|(a, prefix)| Leaf::Ip(IpPat { addr: IpAddr::from(a), prefix })),
        1 => (any::<u128>(), prop::option::of(0u8..=128))
            .prop_map(|(a, prefix)| Leaf::Ip(IpPat { addr: IpAddr::from(a.to_be_bytes()), prefix })),
        1 => (cmp(), 0u64..5_000_000).prop_map(|(c, us)| Leaf::Duration(c, us)),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    leaf()
        .prop_map(Expr::Leaf)
        .prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
            ]
        })
}

fn fixture_messages() -> Vec<String> {
    fixture_events()
        .into_iter()
        .map(|e| e.message.to_string())
        .collect()
}

/// A uWSGI request line with fields that queries look at.
fn access_line() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT"]),
        prop::sample::select(vec!["/api/v1/orders/", "/a", "/api/x", "/aB"]),
        prop::sample::select(vec!["1.2.3.4", "10.0.0.7", "2001:db8::1"]),
        0u64..3000,
        prop::sample::select(vec![100u16, 200, 201, 399, 400, 429, 430, 499, 500, 502, 999]),
    )
        .prop_map(|(method, path, ip, ms, status)| {
            format!(
                "[pid: 1|app: 0|req: 1/1] {ip} () {{40 vars in 900 bytes}} [Sat Jun 23 17:17:48 2018] \
                 {method} {path} => generated 9 bytes in {ms} msecs (HTTP/1.1 {status}) 7 headers \
                 in 250 bytes (1 switches on core 0)"
            )
        })
}

fn event() -> impl Strategy<Value = LogEvent> {
    let small = "[abAB é:\"'()\\-ΣσςİiKk\u{212A}ß]{0,10}";
    (
        prop_oneof![
            3 => small,
            1 => prop::sample::select(fixture_messages()),
            2 => access_line(),
        ],
        small,
        small,
        prop::option::of(0u8..8),
        prop::option::of(0u8..24),
    )
        .prop_map(|(message, program, host, severity, facility)| LogEvent {
            severity,
            facility,
            ..ev(&host, &program, None, &message)
        })
}

/// Query-shaped strings: reaches deeper into the parser than arbitrary text.
fn query_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("a".to_owned()),
        Just("B".to_owned()),
        Just(" ".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("-".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just(":".to_owned()),
        Just(" OR ".to_owned()),
        Just(" AND ".to_owned()),
        Just("program:".to_owned()),
        Just("status:".to_owned()),
        Just(">=".to_owned()),
        Just("5xx".to_owned()),
        Just("severity:".to_owned()),
        Just("err".to_owned()),
        Just("foo:".to_owned()),
        Just("ip:".to_owned()),
        Just("1.2.3.4/8".to_owned()),
        Just("path:".to_owned()),
        Just("/a*".to_owned()),
        Just("é".to_owned()),
        "\\PC{0,3}",
    ];
    prop::collection::vec(piece, 0..16).prop_map(|v| v.concat())
}

/// Anything that compiles must survive its canonical form, and match without panicking.
fn check_compiled(text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = compile(text) {
        prop_assert!(e.position <= text.chars().count(), "{text:?}: {e}");
    }
    if let Ok(query) = compile(text) {
        let again = compile(&query.canonical());
        prop_assert!(
            again.is_ok(),
            "{text:?} -> {:?}: {again:?}",
            query.canonical()
        );
        let again = again.unwrap();
        prop_assert_eq!(
            again.expr(),
            query.expr(),
            "{:?} -> {:?}",
            text,
            query.canonical()
        );
        for e in fixture_events().iter().take(3) {
            let got = query.matches(e);
            prop_assert_eq!(got, query.expr().is_none_or(|x| reference(x, e)));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn display_parses_back(e in expr()) {
        let text = e.to_string();
        let parsed = compile(&text);
        prop_assert!(parsed.is_ok(), "{text}: {parsed:?}");
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.expr(), Some(&e), "{}", text);
    }

    #[test]
    fn compile_never_panics(text in any::<String>()) {
        check_compiled(&text)?;
    }

    #[test]
    fn compile_never_panics_on_query_like_text(text in query_text()) {
        check_compiled(&text)?;
    }

    /// The key property of the prefilter: a set reports exactly the queries the
    /// naive evaluator says match, in order.
    #[test]
    fn set_agrees_with_the_reference(exprs in prop::collection::vec(prop_oneof![3 => expr(), 1 => status_query()], 1..8), events in prop::collection::vec(event(), 1..6)) {
        let queries: Vec<Query> = exprs.iter().map(|e| compile(&e.to_string()).unwrap()).collect();
        let set = QuerySet::new(&queries);
        for e in &events {
            let mut got = Vec::new();
            set.matching(e, &mut got);
            let want: Vec<usize> = exprs.iter().enumerate().filter(|(_, x)| reference(x, e)).map(|(i, _)| i).collect();
            prop_assert_eq!(&got, &want, "{:?} on {:?}", exprs.iter().map(|x| x.to_string()).collect::<Vec<_>>(), e);
            let mut given = Vec::new();
            set.matching_parsed(e, crate::parse::access::parse(&e.message).as_ref(), &mut given);
            prop_assert_eq!(&given, &want);
            // Both ways of finding literals, whatever the set's size.
            for strategy in [LiteralSearch::Automaton, LiteralSearch::Each] {
                let forced = QuerySet::from_exprs(exprs.iter().map(Some), strategy);
                let mut got = Vec::new();
                forced.matching(e, &mut got);
                prop_assert_eq!(&got, &want, "{:?}", strategy);
            }
            for (i, query) in queries.iter().enumerate() {
                prop_assert_eq!(query.matches(e), want.contains(&i));
            }
        }
    }
}
