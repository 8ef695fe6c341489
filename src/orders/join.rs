//! Which pieces of evidence describe the same order attempt, and whether that
//! attempt is a lost order and why.
//!
//! [`partition`] depends only on the set of pieces, never on the order they
//! arrived in: pieces are first sorted by a key of their own content. Then
//! 1. pieces that share a request id or a trace id are one attempt;
//! 2. in time order, each group joins the earlier attempt with the same client
//!    IP and endpoint, a status that does not contradict it, no source twice
//!    (one uWSGI line, one nginx line, one frontend report…) and no other
//!    request id, whose first piece is within the window, the nearest one;
//!    otherwise it starts an attempt of its own.
//!
//! So two attempts are never joined: two failures of one customer a few
//! seconds apart each have their own uWSGI line, which cannot share an attempt.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::evidence::{Kind, Piece};

/// Why an order was lost (DESIGN.md, "The domain").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// 4xx other than 429: the server refused what the frontend sent.
    Rejected,
    /// 429: the customer was refused for ordering too often.
    RateLimited,
    /// 5xx or any other non-success, or a backend error while serving it.
    ServerError,
    /// The frontend got no answer and the backend never saw the request.
    Network,
    /// The client closed the connection before the answer (nginx 499).
    ClientGone,
}

impl Cause {
    pub const ALL: [Cause; 5] =
        [Cause::Rejected, Cause::RateLimited, Cause::ServerError, Cause::Network, Cause::ClientGone];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Rejected => "rejected",
            Cause::RateLimited => "rate_limited",
            Cause::ServerError => "server_error",
            Cause::Network => "network",
            Cause::ClientGone => "client_gone",
        }
    }

    pub fn parse(s: &str) -> Option<Cause> {
        Cause::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The cause in plain words, for people who do not read logs.
    pub fn plain(self) -> &'static str {
        match self {
            Cause::Rejected => "The server refused the order the site sent: it did not accept some of its fields.",
            Cause::RateLimited => {
                "The server refused the order because this customer had ordered too often (the rate limit)."
            }
            Cause::ServerError => "The server failed while placing the order (an error in the backend).",
            Cause::Network => {
                "The order never reached the server: probably the customer's connection (timeout or network error)."
            }
            Cause::ClientGone => "The customer's browser closed the connection before the server answered.",
        }
    }
}

/// A lost order's cause and status code, or `None` when the attempt is not a
/// lost order (it succeeded, or all we know is that a client went away).
pub fn assess(pieces: &[&Piece]) -> Option<(Cause, Option<u16>)> {
    if pieces.iter().any(|p| p.success) {
        return None;
    }
    if !pieces.iter().any(|p| matches!(p.kind, Kind::Request | Kind::Frontend | Kind::Backend)) {
        return None;
    }
    // A 499 (the client left) says less than the backend's own status of the request.
    let first = |kind: Kind| {
        let mut of: Vec<&&Piece> = pieces.iter().filter(|p| p.kind == kind && p.status.is_some()).collect();
        of.sort_by(|a, b| (a.status == Some(499), order_key(a)).cmp(&(b.status == Some(499), order_key(b))));
        of.first().and_then(|p| p.status)
    };
    let status = first(Kind::Request).or_else(|| first(Kind::Frontend)).or_else(|| first(Kind::Backend));
    let cause = match status {
        Some(429) => Cause::RateLimited,
        Some(499) => Cause::ClientGone,
        Some(400..=499) => Cause::Rejected,
        Some(_) => Cause::ServerError,
        None if pieces.iter().any(|p| p.kind == Kind::Backend) => Cause::ServerError,
        None => Cause::Network,
    };
    Some((cause, status))
}

/// The attempts a block is compared with at most: the latest ones of its
/// client and endpoint within the window.
const MAX_CANDIDATES: usize = 64;

/// nginx's "client closed the request": the proxy's view, not the backend's answer.
const CLIENT_CLOSED: u16 = 499;

/// A total order on pieces by their content alone.
fn order_key(p: &Piece) -> (i64, Kind, &str, &str) {
    (p.at, p.kind, &p.source, &p.reference)
}

/// The attempts `pieces` make, as lists of indices into `pieces`; each list
/// in time order, the lists in the order of their first piece.
pub fn partition(pieces: &[Piece], window_us: i64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    order.sort_by(|&a, &b| order_key(&pieces[a]).cmp(&order_key(&pieces[b])));

    // 1. Same request id: one attempt; same trace id, when it can be one.
    let mut parent: Vec<usize> = (0..pieces.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    // Linear: the first piece seen with each (endpoint, request id) is where the others join.
    let mut first_with: HashMap<(&str, &str), usize> = HashMap::new();
    for &i in &order {
        let p = &pieces[i];
        let Some(id) = p.request_id.as_deref() else { continue };
        match first_with.entry((&p.endpoint, id)) {
            Entry::Occupied(e) => {
                let (ra, rb) = (find(&mut parent, i), find(&mut parent, *e.get()));
                if ra != rb {
                    parent[ra] = rb;
                }
            }
            Entry::Vacant(v) => {
                v.insert(i);
            }
        }
    }
    // A trace id is shared by every request of a page load: it joins only
    // what cannot be two requests (no two request ids, no source twice,
    // within the window).
    let mut info: HashMap<usize, Group> = HashMap::new();
    for &i in &order {
        let r = find(&mut parent, i);
        match info.entry(r) {
            Entry::Occupied(mut e) => e.get_mut().merge(Group::of(pieces, vec![i])),
            Entry::Vacant(v) => {
                v.insert(Group::of(pieces, vec![i]));
            }
        }
    }
    let mut traced: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for &i in &order {
        let p = &pieces[i];
        let Some(trace) = p.trace_id.as_deref() else { continue };
        let seen = traced.entry((&p.endpoint, trace)).or_default();
        let ri = find(&mut parent, i);
        let mut joined = false;
        for &j in seen.iter() {
            let rj = find(&mut parent, j);
            if rj == ri {
                joined = true;
                break;
            }
            let (gi, gj) = (&info[&ri], &info[&rj]);
            let ids_agree = gi.request_ids.is_empty() || gj.request_ids.is_empty() || gi.request_ids == gj.request_ids;
            if ids_agree && gi.sources.is_disjoint(&gj.sources) && (gi.anchor - gj.anchor).abs() <= window_us {
                let gi = info.remove(&ri).expect("every root has its group");
                info.get_mut(&rj).expect("every root has its group").merge(gi);
                parent[ri] = rj;
                joined = true;
                break;
            }
        }
        if !joined {
            seen.push(i);
        }
    }
    let mut blocks: Vec<Vec<usize>> = Vec::new();
    let mut block_of_root: HashMap<usize, usize> = HashMap::new();
    for &i in &order {
        let r = find(&mut parent, i);
        let b = *block_of_root.entry(r).or_insert_with(|| {
            blocks.push(Vec::new());
            blocks.len() - 1
        });
        blocks[b].push(i);
    }

    // 2. By client IP, endpoint and time, in time order. Blocks come in the
    // order of their first (earliest) piece, so the attempts of one client
    // and endpoint are kept in the order of their anchors, and only those
    // within the window before a block need looking at.
    let mut attempts: Vec<Group> = Vec::new();
    let mut of_client: HashMap<(String, String), Vec<usize>> = HashMap::new();
    for block in blocks {
        let g = Group::of(pieces, block);
        // Pieces with no IP (a backend event without the client's headers) do
        // not stop their block from joining by the IP the others know.
        let key = match g.ips.len() {
            1 => Some((g.endpoint.clone(), g.ips.first().cloned().unwrap_or_default())),
            _ => None,
        };
        let best = key.as_ref().and_then(|k| {
            let list = of_client.get(k)?;
            list.iter()
                .rev()
                .take_while(|&&i| attempts[i].anchor >= g.anchor - window_us)
                // The pieces of one request come together; a flood from one
                // client must not make every piece compare with all of it.
                .take(MAX_CANDIDATES)
                .filter(|&&i| attempts[i].accepts(&g, window_us))
                .min_by_key(|&&i| ((g.anchor - attempts[i].anchor).abs(), i))
                .copied()
        });
        match best {
            Some(i) => attempts[i].merge(g),
            None => {
                attempts.push(g);
                if let Some(k) = key {
                    of_client.entry(k).or_default().push(attempts.len() - 1);
                }
            }
        }
    }
    attempts
        .into_iter()
        .map(|mut a| {
            a.members.sort_by(|&x, &y| order_key(&pieces[x]).cmp(&order_key(&pieces[y])));
            a.members
        })
        .collect()
}

struct Group {
    members: Vec<usize>,
    anchor: i64,
    endpoint: String,
    ips: BTreeSet<String>,
    statuses: BTreeSet<u16>,
    sources: BTreeSet<String>,
    request_ids: BTreeSet<String>,
}

impl Group {
    fn of(pieces: &[Piece], members: Vec<usize>) -> Group {
        let mut g = Group {
            anchor: members.iter().map(|&i| pieces[i].at).min().unwrap_or(0),
            endpoint: pieces[members[0]].endpoint.clone(),
            ips: BTreeSet::new(),
            statuses: BTreeSet::new(),
            sources: BTreeSet::new(),
            request_ids: BTreeSet::new(),
            members: Vec::new(),
        };
        for &i in &members {
            let p = &pieces[i];
            g.ips.extend(p.client_ip.clone());
            // nginx's 499 (the client left) goes with whatever the backend answered.
            g.statuses.extend(p.status.filter(|&s| s != CLIENT_CLOSED));
            g.sources.insert(p.source.clone());
            g.request_ids.extend(p.request_id.clone());
        }
        g.members = members;
        g
    }

    fn accepts(&self, other: &Group, window_us: i64) -> bool {
        self.endpoint == other.endpoint
            && self.ips.len() == 1
            && self.ips == other.ips
            && self.statuses.union(&other.statuses).count() <= 1
            && self.sources.is_disjoint(&other.sources)
            && (self.request_ids.is_empty() || other.request_ids.is_empty() || self.request_ids == other.request_ids)
            && (other.anchor - self.anchor).abs() <= window_us
    }

    fn merge(&mut self, other: Group) {
        self.anchor = self.anchor.min(other.anchor);
        self.ips.extend(other.ips);
        self.statuses.extend(other.statuses);
        self.sources.extend(other.sources);
        self.request_ids.extend(other.request_ids);
        self.members.extend(other.members);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const W: i64 = 10_000_000;

    fn piece(kind: Kind, source: &str, ip: &str, status: Option<u16>, at_s: i64, reference: &str) -> Piece {
        Piece {
            kind,
            reference: reference.into(),
            source: source.into(),
            endpoint: "POST /api/v1/orders/".into(),
            method: Some("POST".into()),
            path: Some("/api/v1/orders/".into()),
            status,
            success: kind == Kind::Request && status == Some(201),
            client_ip: Some(ip.into()),
            request_id: None,
            trace_id: None,
            remote_user: None,
            at: at_s * 1_000_000,
            network_error: None,
        }
    }

    fn refs(pieces: &[Piece], parts: Vec<Vec<usize>>) -> BTreeSet<BTreeSet<String>> {
        parts.into_iter().map(|p| p.into_iter().map(|i| pieces[i].reference.clone()).collect()).collect()
    }

    #[test]
    fn nginx_uwsgi_and_the_frontend_of_one_request_are_one_attempt() {
        let ps = vec![
            piece(Kind::Request, "log:website-backend", "188.32.201.9", Some(400), 100, "4"),
            piece(Kind::Request, "log:nginx", "188.32.201.9", Some(400), 100, "15"),
            piece(Kind::Frontend, "frontend", "188.32.201.9", Some(400), 101, "ev"),
        ];
        let parts = partition(&ps, W);
        assert_eq!(parts.len(), 1);
        let all: Vec<&Piece> = parts[0].iter().map(|&i| &ps[i]).collect();
        assert_eq!(assess(&all), Some((Cause::Rejected, Some(400))));
    }

    #[test]
    fn two_failures_of_one_customer_are_two_attempts() {
        let ps = vec![
            piece(Kind::Request, "log:b", "1.1.1.1", Some(400), 100, "a"),
            piece(Kind::Request, "log:b", "1.1.1.1", Some(400), 103, "b"),
            piece(Kind::Frontend, "frontend", "1.1.1.1", Some(400), 103, "fb"),
            piece(Kind::Frontend, "frontend", "1.1.1.1", Some(400), 100, "fa"),
        ];
        let got = refs(&ps, partition(&ps, W));
        let want: BTreeSet<BTreeSet<String>> =
            [["a", "fa"], ["b", "fb"]].iter().map(|s| s.iter().map(|x| x.to_string()).collect()).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn causes() {
        let one = |kind, status| {
            let p = piece(kind, "s", "1.1.1.1", status, 0, "r");
            assess(&[&p])
        };
        assert_eq!(one(Kind::Request, Some(429)), Some((Cause::RateLimited, Some(429))));
        assert_eq!(one(Kind::Request, Some(502)), Some((Cause::ServerError, Some(502))));
        assert_eq!(one(Kind::Request, Some(499)), Some((Cause::ClientGone, Some(499))));
        assert_eq!(one(Kind::Request, Some(201)), None);
        assert_eq!(one(Kind::ClientGone, None), None, "a client gone is evidence, not a lost order");
        assert_eq!(one(Kind::Backend, None), Some((Cause::ServerError, None)));
        assert_eq!(one(Kind::Frontend, None), Some((Cause::Network, None)));
        // A client gone beside a placed order: not lost.
        let gone = piece(Kind::ClientGone, "gone", "1.1.1.1", None, 0, "g");
        let ok = piece(Kind::Request, "log:b", "1.1.1.1", Some(201), 0, "o");
        assert_eq!(assess(&[&gone, &ok]), None);
        // The backend's line decides over the frontend's view.
        let net = piece(Kind::Frontend, "frontend", "1.1.1.1", None, 0, "f");
        let bad = piece(Kind::Request, "log:b", "1.1.1.1", Some(502), 0, "l");
        assert_eq!(assess(&[&net, &bad]), Some((Cause::ServerError, Some(502))));
    }

    #[test]
    fn a_customer_who_left_while_the_order_was_placed_lost_nothing() {
        // nginx logs 499 when the browser gives up; uWSGI still logs the 201.
        let ps = vec![
            piece(Kind::Request, "log:nginx", "1.1.1.1", Some(499), 130, "n"),
            piece(Kind::Request, "log:uwsgi", "1.1.1.1", Some(201), 131, "u"),
        ];
        let parts = partition(&ps, W);
        assert_eq!(parts.len(), 1);
        let all: Vec<&Piece> = parts[0].iter().map(|&i| &ps[i]).collect();
        assert_eq!(assess(&all), None);
        // When the backend failed too, that is the cause.
        let ps = vec![
            piece(Kind::Request, "log:nginx", "1.1.1.1", Some(499), 130, "n"),
            piece(Kind::Request, "log:uwsgi", "1.1.1.1", Some(500), 131, "u"),
        ];
        let all: Vec<&Piece> = ps.iter().collect();
        assert_eq!(partition(&ps, W).len(), 1);
        assert_eq!(assess(&all), Some((Cause::ServerError, Some(500))));
    }

    #[test]
    fn a_backend_event_without_an_ip_does_not_keep_its_request_apart() {
        // Backend event (no IP, r1) + uWSGI (IP A, r1) + nginx (IP A, no id): one attempt.
        let mut b = piece(Kind::Backend, "backend", "x", None, 100, "b");
        b.client_ip = None;
        b.request_id = Some("r1".into());
        let mut u = piece(Kind::Request, "log:uwsgi", "1.1.1.1", Some(500), 100, "u");
        u.request_id = Some("r1".into());
        let n = piece(Kind::Request, "log:nginx", "1.1.1.1", Some(500), 100, "n");
        for ps in [vec![b.clone(), u.clone(), n.clone()], vec![n.clone(), u.clone(), b.clone()]] {
            assert_eq!(partition(&ps, W).len(), 1);
        }
    }

    #[test]
    fn one_page_loads_trace_does_not_join_two_requests() {
        // Same trace id (one page load), two submissions with their own request ids.
        let mut f1 = piece(Kind::Frontend, "frontend", "1.1.1.1", Some(400), 100, "f1");
        f1.request_id = Some("r1".into());
        f1.trace_id = Some("T".into());
        let mut b2 = piece(Kind::Backend, "backend", "1.1.1.1", None, 160, "b2");
        b2.request_id = Some("r2".into());
        b2.trace_id = Some("T".into());
        let mut u2 = piece(Kind::Request, "log:uwsgi", "1.1.1.1", Some(500), 160, "u2");
        u2.request_id = Some("r2".into());
        let ps = vec![f1, b2.clone(), u2];
        assert_eq!(partition(&ps, W).len(), 2);
        // A trace alone joins the frontend and backend sides of one request.
        let mut f = piece(Kind::Frontend, "frontend", "9.9.9.9", Some(500), 200, "f");
        f.trace_id = Some("T2".into());
        let mut b = piece(Kind::Backend, "backend", "x", None, 201, "b");
        b.client_ip = None;
        b.trace_id = Some("T2".into());
        assert_eq!(partition(&[f, b], W).len(), 1);
    }

    #[test]
    fn request_ids_join_far_apart_and_keep_apart_when_they_differ() {
        let mut a = piece(Kind::Frontend, "frontend", "1.1.1.1", Some(400), 0, "f");
        let mut b = piece(Kind::Request, "log:nginx", "2.2.2.2", Some(400), 60, "n");
        a.request_id = Some("r1".into());
        b.request_id = Some("r1".into());
        assert_eq!(partition(&[a.clone(), b.clone()], W).len(), 1, "one request id, whatever the IPs say");
        b.request_id = Some("r2".into());
        b.client_ip = Some("1.1.1.1".into());
        b.at = 1_000_000;
        assert_eq!(partition(&[a, b], W).len(), 2, "two request ids are two requests");
    }

    /// Attempts that really happened, and their pieces, such that a reader
    /// could tell them apart: the same IP and status only `> window` apart,
    /// unless each source appears once in each.
    fn attempts() -> impl Strategy<Value = Vec<Vec<Piece>>> {
        let attempt = (0u8..3, 0u8..4, 0i64..300, any::<[bool; 4]>(), 0i64..3);
        proptest::collection::vec(attempt, 1..12).prop_map(|specs| {
            let mut out: Vec<Vec<Piece>> = Vec::new();
            for (n, (ip, st, at, has, jitter)) in specs.into_iter().enumerate() {
                let ip = format!("10.0.0.{ip}");
                let status = [Some(400), Some(429), Some(500), None][st as usize];
                let at = at * 30; // attempts of one IP are 0 or >= 30 s apart
                // Two attempts of one IP at the same time are not told apart by anyone: skip.
                if out.iter().any(|a| {
                    a[0].client_ip.as_deref() == Some(&ip) && (a[0].at / 1_000_000 - at).abs() <= 2 * W / 1_000_000
                }) {
                    continue;
                }
                let mut ps = Vec::new();
                if status.is_some() && has[0] {
                    ps.push(piece(Kind::Request, "log:uwsgi", &ip, status, at, &format!("u{n}")));
                }
                if status.is_some() && has[1] {
                    ps.push(piece(Kind::Request, "log:nginx", &ip, status, at + jitter, &format!("n{n}")));
                }
                if has[2] || ps.is_empty() {
                    ps.push(piece(Kind::Frontend, "frontend", &ip, status, at + jitter, &format!("f{n}")));
                }
                if has[3] {
                    ps.push(piece(Kind::Backend, "backend", &ip, None, at + 1, &format!("b{n}")));
                }
                out.push(ps);
            }
            out
        })
    }

    proptest! {
        #[test]
        fn joining_finds_the_real_attempts_in_any_arrival_order(truth in attempts(), seed in any::<u64>()) {
            let mut pieces: Vec<Piece> = truth.iter().flatten().cloned().collect();
            // Shuffle by the seed: the arrival order.
            let mut s = seed | 1;
            for i in (1..pieces.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                pieces.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let want: BTreeSet<BTreeSet<String>> =
                truth.iter().map(|a| a.iter().map(|p| p.reference.clone()).collect()).collect();
            prop_assert_eq!(refs(&pieces, partition(&pieces, W)), want);
        }

        #[test]
        fn partition_depends_only_on_the_set(truth in attempts(), cut in 0usize..100) {
            let pieces: Vec<Piece> = truth.into_iter().flatten().collect();
            let mut rotated = pieces.clone();
            let n = rotated.len();
            rotated.rotate_left(cut % n);
            prop_assert_eq!(refs(&pieces, partition(&pieces, W)), refs(&rotated, partition(&rotated, W)));
        }
    }
}
