//! The log viewer (developers): `/search` (the search language, newest
//! first, paged by event ids as the search API is), `/search/live` (a live
//! tail as server-sent events: the lines after the page's newest that match,
//! as they are stored), and an event in its context, `/search?around={id}`
//! or `/events/{id}`: the lines before and after it from the same sender.
//!
//! The query text is not customer data, so it may be in the URL; times are
//! shown in the display zone (`syslog.time_zone`, else the server's).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{FieldErrors, Layout, PageError, render_status};
use crate::event::{LogEvent, Text, now_micros, parse_time, severity_name, zoned};
use crate::logstore::{LogStore, SearchRequest, SearchResult};
use crate::query::{Matcher, Query as Compiled};
use crate::web::AppState;
use crate::web::i18n;
use crate::web::session::{CurrentUser, Lang, Role};

/// Lines on one page of results.
pub const PAGE: usize = 100;
/// Lines shown before and after an event in its context.
pub const CONTEXT: usize = 50;
/// Live tails open at once (each holds a store subscription).
pub const MAX_LIVE: usize = 32;
/// Lines a live tail reads back after a gap (a reconnect, or falling behind)
/// before it says "more; reload" and goes on from the newest.
pub const LIVE_READ_BACK: usize = 1000;

#[derive(Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    min_time: String,
    #[serde(default)]
    max_time: String,
    #[serde(default)]
    min_id: String,
    #[serde(default)]
    max_id: String,
    #[serde(default)]
    around: String,
}

/// One line as the pages show it (and the live tail sends it, as JSON).
#[derive(Serialize, Clone)]
pub struct Line {
    pub id: String,
    pub time: String,
    pub sender: String,
    pub program: String,
    pub severity: String,
    pub message: String,
}

impl Line {
    pub fn new(e: &LogEvent, zone: &jiff::tz::TimeZone) -> Line {
        Line {
            id: e.id.to_string(),
            time: zoned(e.received_at, zone).strftime("%Y-%m-%d %H:%M:%S").to_string(),
            sender: e.source_name.to_string(),
            program: e.program.to_string(),
            severity: severity_name(e.severity).unwrap_or("").to_owned(),
            message: e.message.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    ctx: Layout,
    q: String,
    min_time: String,
    max_time: String,
    errors: FieldErrors,
    /// The query with a caret under the position a parse error names.
    caret: Option<(String, String)>,
    lines: Vec<Line>,
    searched: bool,
    older: Option<String>,
    newer: Option<String>,
    /// On the newest page: the live tail starts after this id.
    live_after: Option<String>,
    zone: String,
    timed_out: bool,
}

#[derive(Template)]
#[template(path = "event_context.html")]
struct ContextPage {
    ctx: Layout,
    id: String,
    sender: String,
    /// `sender:NAME`, quoted when it needs to be.
    sender_query: String,
    lines: Vec<Line>,
    zone: String,
    more_before: bool,
    more_after: bool,
}

fn zone_name(st: &AppState) -> String {
    st.display_zone.iana_name().unwrap_or("UTC").to_owned()
}

/// A time from the form: what the API takes (epoch seconds, RFC 3339, a span
/// ago like `1h`), or a local date and time in the display zone.
pub fn form_time(s: &str, zone: &jiff::tz::TimeZone, lang: Lang) -> Result<Option<i64>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if let Ok(v) = parse_time(t, now_micros()) {
        return Ok(Some(v));
    }
    if let Ok(dt) = t.replace(' ', "T").parse::<jiff::civil::DateTime>()
        && let Ok(ts) = zone.to_timestamp(dt)
    {
        return Ok(Some(ts.as_microsecond()));
    }
    if let Ok(d) = t.parse::<jiff::civil::Date>()
        && let Ok(ts) = zone.to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
    {
        return Ok(Some(ts.as_microsecond()));
    }
    Err(format!("{} {t:?}", i18n::t(lang, "bad_time")))
}

fn id_param(v: &str) -> Option<Result<u64, ()>> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.parse::<u64>().map_err(|_| ()))
}

fn link(q: &str, min_time: &str, max_time: &str, extra: (&str, String)) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        s.append_pair("q", q);
    }
    if !min_time.is_empty() {
        s.append_pair("min_time", min_time);
    }
    if !max_time.is_empty() {
        s.append_pair("max_time", max_time);
    }
    s.append_pair(extra.0, &extra.1);
    format!("/search?{}", s.finish())
}

async fn run(store: &LogStore, req: SearchRequest, m: impl Matcher + 'static) -> Result<SearchResult, PageError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.search(&req, &m))
        .await
        .map_err(|e| PageError::Internal(Lang::En, anyhow::anyhow!("a search task failed: {e}")))
}

/// `GET /search`: the search form and its results, newest first; with
/// `around`, an event in its context.
pub async fn search(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Query(p): Query<SearchParams>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    if !p.around.trim().is_empty() {
        return context(&st, &user, p.around.trim()).await;
    }
    let lang = user.lang;
    let mut errors = FieldErrors::default();
    let mut caret = None;
    let matcher = match crate::query::compile(&p.q) {
        Ok(m) => Some(m),
        Err(e) => {
            let pos = e.position.min(p.q.chars().count());
            errors.add("q", format!("{} {}: {}", i18n::t(lang, "query_error_at"), pos, e.message));
            caret = Some((p.q.clone(), format!("{}^", " ".repeat(pos))));
            None
        }
    };
    let min_time = form_time(&p.min_time, &st.display_zone, lang).unwrap_or_else(|e| {
        errors.add("min_time", e);
        None
    });
    let max_time = form_time(&p.max_time, &st.display_zone, lang).unwrap_or_else(|e| {
        errors.add("max_time", e);
        None
    });
    let bad_id = || PageError::BadRequest(lang, i18n::t(lang, "bad_event_id").into());
    let min_id = id_param(&p.min_id).transpose().map_err(|_| bad_id())?;
    let max_id = id_param(&p.max_id).transpose().map_err(|_| bad_id())?;
    let mut page = SearchPage {
        ctx: Layout::new(&user, "/search", i18n::t(lang, "log_search").into()),
        q: p.q.clone(),
        min_time: p.min_time.clone(),
        max_time: p.max_time.clone(),
        errors,
        caret,
        lines: Vec::new(),
        searched: false,
        older: None,
        newer: None,
        live_after: None,
        zone: zone_name(&st),
        timed_out: false,
    };
    let Some(matcher) = matcher.filter(|_| page.errors.is_empty()) else {
        return Ok(render_status(StatusCode::BAD_REQUEST, &page));
    };
    // Paging newer (a `min_id` alone) reads the oldest lines after it, so no line is skipped.
    let oldest_first = min_id.is_some() && max_id.is_none();
    let newest_before = st.store.newest_id();
    let req =
        SearchRequest { min_id, max_id, min_time, max_time, limit: PAGE, oldest_first, ..SearchRequest::default() };
    let result = run(&st.store, req, matcher).await?;
    page.searched = true;
    page.timed_out = result.reached_time_limit;
    page.lines = result.events.iter().rev().map(|e| Line::new(e, &st.display_zone)).collect();
    let (q, a, b) = (&p.q, &p.min_time, &p.max_time);
    if result.min_id != 0 && (oldest_first || !result.reached_beginning) {
        page.older = Some(link(q, a, b, ("max_id", result.min_id.to_string())));
    }
    let newest_page = max_id.is_none() && max_time.is_none() && !(oldest_first && result.reached_record_limit);
    if !newest_page {
        let from = if result.max_id != 0 { result.max_id } else { min_id.or(max_id.map(|m| m - 1)).unwrap_or(0) };
        page.newer = Some(link(q, a, b, ("min_id", from.to_string())));
    } else {
        page.live_after = Some(result.max_id.max(newest_before).max(min_id.unwrap_or(0)).to_string());
    }
    Ok(render_status(StatusCode::OK, &page))
}

/// `GET /events/{id}`: the same as `/search?around={id}` (alert notifications link here).
pub async fn event(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    context(&st, &user, id.trim()).await
}

struct SameSender(Text);

impl Matcher for SameSender {
    fn matches(&self, e: &LogEvent) -> bool {
        e.source_name == self.0
    }
}

struct Everything;

impl Matcher for Everything {
    fn matches(&self, _: &LogEvent) -> bool {
        true
    }
}

async fn context(st: &AppState, user: &CurrentUser, id: &str) -> Result<Response, PageError> {
    let lang = user.lang;
    let missing = || PageError::not_found(user, format!("{} {id}", i18n::t(lang, "no_such_event")));
    let id: u64 = id.parse().map_err(|_| missing())?;
    if id == 0 || id == u64::MAX {
        return Err(missing());
    }
    let one = SearchRequest { min_id: Some(id - 1), max_id: Some(id + 1), limit: 1, ..SearchRequest::default() };
    let found = run(&st.store, one, Everything).await?;
    let ev = found.events.into_iter().next().filter(|e| e.id == id).ok_or_else(missing)?;
    let sender = ev.source_name.clone();
    let before = SearchRequest { max_id: Some(id), limit: CONTEXT, ..SearchRequest::default() };
    let after = SearchRequest { min_id: Some(id), limit: CONTEXT, oldest_first: true, ..SearchRequest::default() };
    let before = run(&st.store, before, SameSender(sender.clone())).await?;
    let after = run(&st.store, after, SameSender(sender.clone())).await?;
    let zone = &st.display_zone;
    let mut lines: Vec<Line> = before.events.iter().map(|e| Line::new(e, zone)).collect();
    lines.push(Line::new(&ev, zone));
    lines.extend(after.events.iter().map(|e| Line::new(e, zone)));
    let page = ContextPage {
        ctx: Layout::new(user, "/search", i18n::t(lang, "event_in_context").into()),
        id: id.to_string(),
        sender_query: format!("sender:\"{}\"", sender.replace('"', "")),
        sender: sender.to_string(),
        lines,
        zone: zone_name(st),
        more_before: before.reached_record_limit,
        more_after: after.reached_record_limit,
    };
    Ok(render_status(StatusCode::OK, &page))
}

#[derive(Deserialize, Default)]
pub struct LiveParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Counts an open live stream (a log tail or the live lost-order list); the
/// count goes down when the stream ends. At most `MAX_LIVE` at once.
pub(crate) struct LiveSlot;

impl LiveSlot {
    pub(crate) fn take() -> Option<LiveSlot> {
        LIVE.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < MAX_LIVE).then_some(n + 1))
            .ok()
            .map(|_| LiveSlot)
    }
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// `GET /search/live?q=…&after={id}`: server-sent events, one `line` event
/// (JSON, with the line's id as the event id) for each newly stored line that
/// matches, oldest first. A reconnecting `EventSource` sends `Last-Event-ID`
/// and goes on from there. After a gap of more than `LIVE_READ_BACK` lines a
/// `gap` event says some were left out. The stream ends when the page closes.
pub async fn live(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    headers: HeaderMap,
    Query(p): Query<LiveParams>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let lang = user.lang;
    let matcher = crate::query::compile(&p.q).map_err(|e| {
        PageError::BadRequest(lang, format!("{} {}: {}", i18n::t(lang, "query_error_at"), e.position, e.message))
    })?;
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    let after = match id_param(last).or_else(|| id_param(&p.after)) {
        Some(Ok(id)) => id,
        Some(Err(())) => return Err(PageError::BadRequest(lang, i18n::t(lang, "bad_event_id").into())),
        None => st.store.newest_id(),
    };
    let Some(slot) = LiveSlot::take() else {
        let mut r = PageError::BadRequest(lang, i18n::t(lang, "live_busy").into()).into_response();
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return Ok(r);
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(256);
    let store = st.store.clone();
    let zone = st.display_zone.clone();
    tokio::spawn(async move {
        let _slot = slot;
        tail(store, matcher, after, zone, tx).await;
    });
    let stream =
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|o| o.map(Ok::<_, std::convert::Infallible>)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

fn line_event(e: &LogEvent, zone: &jiff::tz::TimeZone) -> Event {
    let data = serde_json::to_string(&Line::new(e, zone)).unwrap_or_default();
    Event::default().event("line").id(e.id.to_string()).data(data)
}

/// Reads back what matched after `upto` (at most `LIVE_READ_BACK` lines):
/// the events to send and where it got to.
async fn read_back(store: &LogStore, m: &Compiled, upto: u64) -> (Vec<LogEvent>, u64, bool) {
    let req = SearchRequest {
        min_id: Some(upto),
        oldest_first: true,
        limit: LIVE_READ_BACK,
        time_budget: Duration::from_secs(10),
        ..SearchRequest::default()
    };
    let (store2, m2) = (store.clone(), m.clone());
    let newest = store.newest_id();
    match tokio::task::spawn_blocking(move || store2.search(&req, &m2)).await {
        Ok(r) if r.reached_record_limit || r.reached_time_limit => {
            // Too much to send: say so, and go on from the newest line.
            let to = newest.max(r.max_id);
            (r.events, to, true)
        }
        Ok(r) => (r.events, r.max_id.max(upto), false),
        Err(_) => (Vec::new(), newest.max(upto), true),
    }
}

async fn tail(
    store: LogStore,
    m: Compiled,
    after: u64,
    zone: jiff::tz::TimeZone,
    tx: tokio::sync::mpsc::Sender<Event>,
) {
    // Subscribe first, then read back: a line stored meanwhile comes by either way (ids dedupe).
    let mut sub = store.subscribe();
    let mut upto = after;
    let mut catch_up = true;
    loop {
        if catch_up {
            let (events, to, gap) = read_back(&store, &m, upto).await;
            for e in events.iter().filter(|e| e.id > upto) {
                if tx.send(line_event(e, &zone)).await.is_err() {
                    return;
                }
            }
            if gap && tx.send(Event::default().event("gap").data(to.to_string())).await.is_err() {
                return;
            }
            upto = upto.max(to);
            catch_up = false;
        }
        let batch = tokio::select! {
            _ = tx.closed() => return,
            b = sub.recv() => b,
        };
        match batch {
            Ok(batch) => {
                for e in batch.iter().filter(|e| e.id > upto) {
                    if m.matches(e) && tx.send(line_event(e, &zone)).await.is_err() {
                        return;
                    }
                }
                if let Some(last) = batch.last() {
                    upto = upto.max(last.id);
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => catch_up = true,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}
