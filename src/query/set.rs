//! `QuerySet`: many compiled queries matched against an event in one pass.
//!
//! Every text term of every query is a *literal*: its needle lowercased
//! (`str::to_lowercase`), deduplicated across the set. Per event each field
//! that some literal looks at (message, program, sender) is searched once for
//! all of them, and each literal found sets its bit for that field:
//!
//! - a set with many literals uses one Aho-Corasick automaton (a DFA, ASCII
//!   case-insensitive) over the field as it is when it is ASCII (ignoring ASCII
//!   case is then exactly `to_lowercase`), else over its `to_lowercase`;
//! - a set with a few literals (one search, one alert) lowercases the field
//!   into a reused buffer and runs one SIMD substring search per literal, which
//!   beats the automaton's byte-at-a-time walk until there are about a dozen.
//!
//! Either way the result is exactly "the lowercased field contains the
//! lowercased needle", which a property test holds against a naive evaluator.
//!
//! A query is then evaluated only if it can still match. One that needs some
//! literal to be present (`POST /api/ …` needs `/api/`) is *anchored* on the
//! literals of one such need, and evaluated only when one of them was seen.
//! One without literals whose conjunct is a status (`status:>=500 path:/x/*`)
//! is evaluated only for lines whose status satisfies it (a table by status).
//! The rest (`-foo`, `duration:>1000`) are evaluated for every event. So a
//! line that mentions none of a hundred searches' words costs one scan and a
//! few bit operations. Evaluation looks at literal bits first and at
//! access-log fields last, and the message is parsed at most once, only when
//! a query or a status table needs it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use memchr::memmem;

use super::ast::{Expr, Field, Leaf, StatusPat};
use super::fields::{self, LazyAccess};
use super::{Query, QueryInner};
use crate::event::LogEvent;
use crate::parse::access::AccessLog;

/// Sets with at most this many literals search for each with `memmem`.
const FEW_LITERALS: usize = 12;

/// Up to this many bytes of literals in a set, the automaton is a DFA.
const DFA_MAX_LITERAL_BYTES: usize = 64 * 1024;

/// Statuses the status table covers (what `parse::access` accepts).
const STATUSES: std::ops::RangeInclusive<u16> = 100..=999;

const MESSAGE: u8 = 1;
const PROGRAM: u8 = 2;
const SENDER: u8 = 4;

fn segments(field: Field) -> u8 {
    match field {
        Field::Any => MESSAGE | PROGRAM | SENDER,
        Field::Message => MESSAGE,
        Field::Program => PROGRAM,
        Field::Sender => SENDER,
    }
}

#[derive(Debug)]
enum Node {
    /// Literal `lit` occurs in one of the fields in `segs`.
    Lit {
        lit: u32,
        segs: u8,
    },
    Not(u32),
    /// Children are `kids[start..start + len]`, cheapest first.
    And {
        start: u32,
        len: u32,
    },
    Or {
        start: u32,
        len: u32,
    },
    /// Severity, facility or an access-log field.
    Field(Leaf),
}

/// How the literals are found in a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), expect(dead_code, reason = "tests force each way"))]
pub(crate) enum LiteralSearch {
    /// `memmem` for a few literals, the automaton for more.
    Auto,
    Automaton,
    Each,
}

enum Finder {
    None,
    Automaton(AhoCorasick),
    /// One substring search per literal, with the fields it is looked for in.
    Each(Vec<(memmem::Finder<'static>, u8)>),
}

/// Many queries compiled together; see the module documentation.
pub struct QuerySet {
    nodes: Vec<Node>,
    kids: Vec<u32>,
    /// Per query: its root node, `None` for the empty query (matches everything).
    roots: Vec<Option<u32>>,
    finder: Finder,
    literals: usize,
    /// Per literal: the queries anchored on it.
    triggers: Vec<Vec<u32>>,
    /// Bit per query: evaluated for every event.
    always: Vec<u64>,
    /// Per status in `STATUSES`, a bit per query gated on its status; empty
    /// when no query is.
    by_status: Vec<u64>,
    /// The fields any literal looks at.
    scan: u8,
}

impl fmt::Debug for QuerySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuerySet")
            .field("queries", &self.roots.len())
            .field("literals", &self.literals)
            .field("nodes", &self.nodes.len())
            .field(
                "finder",
                &match &self.finder {
                    Finder::None => "none".to_owned(),
                    Finder::Automaton(ac) => {
                        format!("{:?}, {} bytes", ac.kind(), ac.memory_usage())
                    }
                    Finder::Each(f) => format!("{} substring searches", f.len()),
                },
            )
            .finish()
    }
}

/// Per-thread buffers, reused from event to event.
#[derive(Default)]
struct Scratch {
    /// Per literal: the fields it was seen in.
    seen: Vec<u8>,
    /// Bit per query: worth evaluating for this event.
    candidates: Vec<u64>,
    lower: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

struct Builder {
    nodes: Vec<Node>,
    kids: Vec<u32>,
    literal_ids: HashMap<String, u32>,
    literals: Vec<String>,
    /// Per literal: the fields it is looked for in.
    literal_segs: Vec<u8>,
}

impl Builder {
    fn literal(&mut self, needle: &str, segs: u8) -> u32 {
        let lower = needle.to_lowercase();
        let id = match self.literal_ids.get(&lower) {
            Some(&id) => id,
            None => {
                let id = self.literals.len() as u32;
                self.literals.push(lower.clone());
                self.literal_segs.push(0);
                self.literal_ids.insert(lower, id);
                id
            }
        };
        self.literal_segs[id as usize] |= segs;
        id
    }

    fn push(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        (self.nodes.len() - 1) as u32
    }

    /// Compiles `e`; returns its node and its cost (literal tests are cheap,
    /// access-log fields dear).
    fn compile(&mut self, e: &Expr) -> (u32, u32) {
        match e {
            Expr::Leaf(Leaf::Text { field, needle }) => {
                let segs = segments(*field);
                let lit = self.literal(needle, segs);
                (self.push(Node::Lit { lit, segs }), 1)
            }
            Expr::Leaf(leaf) => {
                let cost = if leaf.is_access() { 20 } else { 1 };
                (self.push(Node::Field(leaf.clone())), cost)
            }
            Expr::Not(inner) => {
                let (n, cost) = self.compile(inner);
                (self.push(Node::Not(n)), cost)
            }
            Expr::And(items) | Expr::Or(items) => {
                let mut compiled: Vec<(u32, u32)> = items.iter().map(|i| self.compile(i)).collect();
                compiled.sort_by_key(|&(_, cost)| cost);
                let start = self.kids.len() as u32;
                self.kids.extend(compiled.iter().map(|&(n, _)| n));
                let len = compiled.len() as u32;
                let cost = compiled.iter().map(|&(_, c)| c).sum();
                let node = match e {
                    Expr::And(_) => Node::And { start, len },
                    _ => Node::Or { start, len },
                };
                (self.push(node), cost)
            }
        }
    }

    /// Literals of which at least one must occur for `n` to be true, or `None`
    /// when `n` can be true without any. For an AND, the first need whose
    /// shortest literal is longest (longer literals are rarer).
    fn anchor(&self, n: u32) -> Option<Vec<u32>> {
        match &self.nodes[n as usize] {
            Node::Lit { lit, .. } => Some(vec![*lit]),
            Node::Not(_) | Node::Field(_) => None,
            Node::And { start, len } => self
                .kids_of(*start, *len)
                .iter()
                .filter_map(|&k| self.anchor(k))
                .min_by_key(|need| {
                    let shortest = need
                        .iter()
                        .map(|&l| self.literals[l as usize].len())
                        .min()
                        .unwrap_or(0);
                    (std::cmp::Reverse(shortest), need.len())
                }),
            Node::Or { start, len } => {
                let mut all = Vec::new();
                for &k in self.kids_of(*start, *len) {
                    all.extend(self.anchor(k)?);
                }
                all.sort_unstable();
                all.dedup();
                Some(all)
            }
        }
    }

    /// Status patterns of which one must hold for `n` to be true: `n` is a
    /// status leaf, an OR of them, or an AND with such a conjunct.
    fn status_need(&self, n: u32, top: bool) -> Option<Vec<StatusPat>> {
        match &self.nodes[n as usize] {
            Node::Field(Leaf::Status(p)) => Some(vec![*p]),
            Node::Or { start, len } => {
                let mut all = Vec::new();
                for &k in self.kids_of(*start, *len) {
                    match &self.nodes[k as usize] {
                        Node::Field(Leaf::Status(p)) => all.push(*p),
                        _ => return None,
                    }
                }
                Some(all)
            }
            Node::And { start, len } if top => self
                .kids_of(*start, *len)
                .iter()
                .find_map(|&k| self.status_need(k, false)),
            _ => None,
        }
    }

    fn kids_of(&self, start: u32, len: u32) -> &[u32] {
        &self.kids[start as usize..(start + len) as usize]
    }

    fn finder(&self, strategy: LiteralSearch) -> Finder {
        if self.literals.is_empty() {
            return Finder::None;
        }
        let each = || {
            Finder::Each(
                self.literals
                    .iter()
                    .zip(&self.literal_segs)
                    .map(|(l, &segs)| (memmem::Finder::new(l.as_bytes()).into_owned(), segs))
                    .collect(),
            )
        };
        let automaton = match strategy {
            LiteralSearch::Each => false,
            LiteralSearch::Automaton => true,
            LiteralSearch::Auto => self.literals.len() > FEW_LITERALS,
        };
        if !automaton {
            return each();
        }
        let mut builder = AhoCorasick::builder();
        builder.match_kind(MatchKind::Standard);
        // A DFA searches fastest, and with a few thousand short literals it
        // stays at a few MB; beyond that the crate's own choice.
        let bytes: usize = self.literals.iter().map(String::len).sum();
        let dfa = if bytes <= DFA_MAX_LITERAL_BYTES {
            builder
                .kind(Some(AhoCorasickKind::DFA))
                .build(&self.literals)
                .ok()
        } else {
            None
        };
        match dfa.map_or_else(|| builder.kind(None).build(&self.literals), Ok) {
            Ok(ac) => Finder::Automaton(ac),
            // Too big for any automaton: slow, but still right.
            Err(_) => each(),
        }
    }
}

impl QuerySet {
    /// Compiles `queries` together; `matching` reports them by their index here.
    pub fn new(queries: &[Query]) -> QuerySet {
        Self::from_exprs(
            queries.iter().map(|q| q.inner.expr.as_ref()),
            LiteralSearch::Auto,
        )
    }

    pub(crate) fn from_exprs<'a>(
        exprs: impl IntoIterator<Item = Option<&'a Expr>>,
        strategy: LiteralSearch,
    ) -> QuerySet {
        let mut b = Builder {
            nodes: Vec::new(),
            kids: Vec::new(),
            literal_ids: HashMap::new(),
            literals: Vec::new(),
            literal_segs: Vec::new(),
        };
        let roots: Vec<Option<u32>> = exprs
            .into_iter()
            .map(|e| e.map(|e| b.compile(e).0))
            .collect();
        let words = roots.len().div_ceil(64);
        let mut triggers = vec![Vec::new(); b.literals.len()];
        let mut always = vec![0u64; words];
        let mut by_status = Vec::new();
        for (q, root) in roots.iter().enumerate() {
            let bit = 1u64 << (q % 64);
            let Some(root) = *root else {
                always[q / 64] |= bit;
                continue;
            };
            if let Some(need) = b.anchor(root) {
                need.iter()
                    .for_each(|&l| triggers[l as usize].push(q as u32));
            } else if let Some(pats) = b.status_need(root, true) {
                if by_status.is_empty() {
                    by_status = vec![0u64; STATUSES.len() * words];
                }
                for (i, status) in STATUSES.enumerate() {
                    if pats.iter().any(|&p| fields::status_matches(p, status)) {
                        by_status[i * words + q / 64] |= bit;
                    }
                }
            } else {
                always[q / 64] |= bit;
            }
        }
        QuerySet {
            finder: b.finder(strategy),
            scan: b.literal_segs.iter().fold(0, |a, &s| a | s),
            literals: b.literals.len(),
            nodes: b.nodes,
            kids: b.kids,
            roots,
            triggers,
            always,
            by_status,
        }
    }

    pub fn len(&self) -> usize {
        self.roots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// Pushes onto `out` the indices of the queries that match `ev`, in order.
    pub fn matching(&self, ev: &LogEvent, out: &mut Vec<usize>) {
        self.run(ev, LazyAccess::new(&ev.message), &mut |q| {
            out.push(q);
            true
        });
    }

    /// `matching` for a caller that has already read the message's access-log
    /// fields (`parse::access::parse(&ev.message)`), so they are not read again.
    pub fn matching_parsed(&self, ev: &LogEvent, fields: Option<&AccessLog>, out: &mut Vec<usize>) {
        self.run(ev, LazyAccess::given(&ev.message, fields), &mut |q| {
            out.push(q);
            true
        });
    }

    /// Whether any query matches `ev` (stops at the first).
    pub fn any(&self, ev: &LogEvent) -> bool {
        let mut found = false;
        self.run(ev, LazyAccess::new(&ev.message), &mut |_| {
            found = true;
            false
        });
        found
    }

    /// Calls `hit` with each matching query's index in order, until it returns false.
    fn run(&self, ev: &LogEvent, fields: LazyAccess<'_>, hit: &mut dyn FnMut(usize) -> bool) {
        if self.roots.is_empty() {
            return;
        }
        let mut fields = Some(fields);
        let _ = SCRATCH.try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut()
                && let Some(f) = fields.take()
            {
                self.run_with(&mut s, ev, f, hit);
            }
        });
        if let Some(f) = fields {
            // Re-entered, or the thread is ending: fresh buffers.
            self.run_with(&mut Scratch::default(), ev, f, hit);
        }
    }

    fn run_with(
        &self,
        s: &mut Scratch,
        ev: &LogEvent,
        mut fields: LazyAccess<'_>,
        hit: &mut dyn FnMut(usize) -> bool,
    ) {
        s.candidates.clear();
        s.candidates.extend_from_slice(&self.always);
        s.seen.clear();
        s.seen.resize(self.literals, 0);
        if self.literals > 0 {
            self.scan(s, ev);
        }
        if !self.by_status.is_empty()
            && let Some(status) = fields.get().and_then(|a| a.status)
            && STATUSES.contains(&status)
        {
            let words = s.candidates.len();
            let row = usize::from(status - STATUSES.start()) * words;
            for (c, g) in s
                .candidates
                .iter_mut()
                .zip(&self.by_status[row..row + words])
            {
                *c |= g;
            }
        }
        let mut cx = Cx {
            seen: &s.seen,
            ev,
            fields,
        };
        for (w, &word) in s.candidates.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let q = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let matched = match self.roots.get(q) {
                    Some(Some(root)) => self.eval(*root, &mut cx),
                    Some(None) => true,
                    None => false,
                };
                if matched && !hit(q) {
                    return;
                }
            }
        }
    }

    /// Lowercases the fields that literals look at into one buffer, finds
    /// every literal in it, and marks each in the field it lies in wholly (an
    /// occurrence across two fields is no occurrence).
    fn scan(&self, s: &mut Scratch, ev: &LogEvent) {
        let Scratch {
            seen,
            candidates,
            lower,
        } = s;
        lower.clear();
        let mut spans = [(0u8, 0usize, 0usize); 3];
        let mut n = 0;
        for (seg, text) in [
            (MESSAGE, &*ev.message),
            (PROGRAM, &*ev.program),
            (SENDER, &*ev.source_name),
        ] {
            if self.scan & seg == 0 {
                continue;
            }
            let start = lower.len();
            if text.is_ascii() {
                lower.extend_from_slice(text.as_bytes());
                lower[start..].make_ascii_lowercase();
            } else {
                lower.extend_from_slice(text.to_lowercase().as_bytes());
            }
            spans[n] = (seg, start, lower.len());
            n += 1;
        }
        let spans = &spans[..n];
        // Returns the fields the literal has been seen in so far.
        let mut mark = |lit: usize, start: usize, end: usize| -> u8 {
            let was = &mut seen[lit];
            if let Some(&(seg, ..)) = spans.iter().find(|&&(_, a, b)| a <= start && end <= b) {
                if *was == 0 {
                    for &q in &self.triggers[lit] {
                        candidates[q as usize / 64] |= 1 << (q % 64);
                    }
                }
                *was |= seg;
            }
            *was
        };
        match &self.finder {
            Finder::None => {}
            Finder::Automaton(ac) => {
                for m in ac.find_overlapping_iter(lower.as_slice()) {
                    let _ = mark(m.pattern().as_usize(), m.start(), m.end());
                }
            }
            Finder::Each(finders) => {
                for (lit, (f, segs)) in finders.iter().enumerate() {
                    let len = f.needle().len();
                    // Every occurrence, overlapping ones too, until each field
                    // the literal is looked for in has one.
                    let mut at = 0;
                    while let Some(found) = lower.get(at..).and_then(|rest| f.find(rest)) {
                        let start = at + found;
                        if mark(lit, start, start + len) & segs == *segs {
                            break;
                        }
                        at = start + 1;
                    }
                }
            }
        }
    }

    fn eval(&self, n: u32, cx: &mut Cx<'_>) -> bool {
        match &self.nodes[n as usize] {
            Node::Lit { lit, segs } => cx.seen[*lit as usize] & segs != 0,
            Node::Not(inner) => !self.eval(*inner, cx),
            Node::And { start, len } => self.kids[*start as usize..(*start + *len) as usize]
                .iter()
                .all(|&k| self.eval(k, cx)),
            Node::Or { start, len } => self.kids[*start as usize..(*start + *len) as usize]
                .iter()
                .any(|&k| self.eval(k, cx)),
            Node::Field(leaf) => fields::matches(leaf, cx.ev, &mut cx.fields),
        }
    }
}

struct Cx<'a> {
    seen: &'a [u8],
    ev: &'a LogEvent,
    fields: LazyAccess<'a>,
}

impl QueryInner {
    pub(crate) fn compiled(text: String, expr: Option<Expr>) -> QueryInner {
        let set = QuerySet::from_exprs([expr.as_ref()], LiteralSearch::Auto);
        QueryInner { text, expr, set }
    }
}
