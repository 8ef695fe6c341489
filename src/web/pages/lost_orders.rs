//! `/lost-orders`: the live lost-order desk (filters, counts per cause for
//! today / 7 / 30 days and the money in the carts lost; new and changed lost
//! orders pushed by server-sent events from `/lost-orders/events`), and
//! `/lost-orders/{id}`: the cause in plain words, the customer and the cart,
//! the server's answer, every piece of evidence, and the actions ("it was
//! me", status, incident).
//!
//! Every page or event that shows customer data records an audit-log entry
//! per lost order shown. Filters (cause, status, time) are not customer data
//! and stay in the URL; nothing else does.

use std::convert::Infallible;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{FieldErrors, Layout, PageError, render_status};
use crate::db::{LostOrderFilter, LostOrderRow};
use crate::event::{now_micros, zoned};
use crate::orders::Cause;
use crate::orders::render::{cart_lines, money, summary};
use crate::web::AppState;
use crate::web::i18n;
use crate::web::orders::STATUSES;
use crate::web::session::{CurrentUser, Lang, Role};

const DAY_US: i64 = 86_400_000_000;

/// One row of the list (and of a live event).
pub struct OrderRow {
    pub id: i64,
    pub at: String,
    pub cause: String,
    pub cause_word: &'static str,
    pub status: String,
    pub status_word: &'static str,
    pub customer: String,
    pub phone: String,
    pub total: String,
}

pub fn cause_word(lang: Lang, cause: &str) -> &'static str {
    match Cause::parse(cause) {
        Some(c) => i18n::t(lang, &format!("cause_{}", c.as_str())),
        None => i18n::t(lang, "unknown"),
    }
}

pub fn cause_plain(lang: Lang, cause: &str) -> &'static str {
    match Cause::parse(cause) {
        Some(c) => i18n::t(lang, &format!("cause_plain_{}", c.as_str())),
        None => i18n::t(lang, "unknown"),
    }
}

pub fn status_word(lang: Lang, status: &str) -> &'static str {
    if STATUSES.contains(&status) { i18n::t(lang, &format!("status_{status}")) } else { i18n::t(lang, "unknown") }
}

pub fn show_time(micros: i64, st: &AppState) -> String {
    zoned(micros, &st.display_zone).strftime("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn order_row(r: &LostOrderRow, lang: Lang, st: &AppState) -> OrderRow {
    let s = summary(r);
    OrderRow {
        id: r.id,
        at: show_time(r.at, st),
        cause: r.cause.clone(),
        cause_word: cause_word(lang, &r.cause),
        status: r.status.clone(),
        status_word: status_word(lang, &r.status),
        customer: s.customer.name.clone().unwrap_or_else(|| "—".into()),
        phone: s.customer.phone.clone().or(s.customer.email.clone()).unwrap_or_default(),
        total: s.cart.as_ref().and_then(|c| c.total).map(money).unwrap_or_else(|| "—".into()),
    }
}

#[derive(Template)]
#[template(path = "lost_order_row.html")]
struct RowTemplate<'a> {
    o: &'a OrderRow,
}

/// Filters of the list: none is customer data, so they may stay in the URL.
#[derive(Deserialize, Default, Clone)]
pub struct Filters {
    #[serde(default)]
    cause: String,
    #[serde(default)]
    status: String,
    /// today | 7d | 30d | all
    #[serde(default)]
    period: String,
}

impl Filters {
    fn min_time(&self, now: i64, st: &AppState) -> Option<i64> {
        match self.period.as_str() {
            "today" => Some(start_of_today(now, st)),
            "7d" => Some(now - 7 * DAY_US),
            "30d" => Some(now - 30 * DAY_US),
            _ => None,
        }
    }

    fn matches(&self, r: &LostOrderRow, now: i64, st: &AppState) -> bool {
        (self.cause.is_empty() || r.cause == self.cause)
            && (self.status.is_empty() || r.status == self.status)
            && self.min_time(now, st).is_none_or(|t| r.at >= t)
    }
}

fn start_of_today(now: i64, st: &AppState) -> i64 {
    let z = zoned(now, &st.display_zone);
    z.start_of_day().map(|d| d.timestamp().as_microsecond()).unwrap_or(now - DAY_US)
}

/// Counts per cause for today, 7 and 30 days, and the money in the carts lost (tests excluded).
pub struct Counts {
    pub rows: Vec<(&'static str, [i64; 3])>,
    pub totals: [i64; 3],
    pub money: [String; 3],
}

fn counts(rows: &[LostOrderRow], now: i64, st: &AppState, lang: Lang) -> Counts {
    let since = [start_of_today(now, st), now - 7 * DAY_US, now - 30 * DAY_US];
    let mut by: Vec<(&'static str, [i64; 3])> =
        Cause::ALL.iter().map(|c| (cause_word(lang, c.as_str()), [0; 3])).collect();
    let mut totals = [0; 3];
    let mut money_lost = [0.0f64; 3];
    for r in rows.iter().filter(|r| r.status != "test") {
        let idx = Cause::ALL.iter().position(|c| c.as_str() == r.cause);
        let total = summary(r).cart.and_then(|c| c.total).unwrap_or(0.0);
        for (i, s) in since.iter().enumerate() {
            if r.at >= *s {
                if let Some(idx) = idx {
                    by[idx].1[i] += 1;
                }
                totals[i] += 1;
                money_lost[i] += total;
            }
        }
    }
    Counts { rows: by, totals, money: money_lost.map(money) }
}

#[derive(Template)]
#[template(path = "lost_orders.html")]
struct ListPage {
    ctx: Layout,
    rows: Vec<OrderRow>,
    counts: Counts,
    f: Filters,
    causes: Vec<(&'static str, &'static str)>,
    statuses: Vec<(&'static str, &'static str)>,
    errors: FieldErrors,
}

/// `GET /lost-orders` (managers and up).
pub async fn list(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Query(mut f): Query<Filters>,
) -> Result<Response, PageError> {
    user.require(Role::Manager)?;
    let lang = user.lang;
    let mut errors = FieldErrors::default();
    if !f.cause.is_empty() && Cause::parse(&f.cause).is_none() {
        errors.add("cause", i18n::t(lang, "choose_from_list"));
        f.cause.clear();
    }
    if !f.status.is_empty() && !STATUSES.contains(&f.status.as_str()) {
        errors.add("status", i18n::t(lang, "choose_from_list"));
        f.status.clear();
    }
    if !["", "today", "7d", "30d", "all"].contains(&f.period.as_str()) {
        errors.add("period", i18n::t(lang, "choose_from_list"));
        f.period.clear();
    }
    let now = now_micros();
    let month = st
        .db
        .lost_orders(&LostOrderFilter {
            cause: None,
            status: None,
            min_time: Some(now - 30 * DAY_US),
            max_time: None,
            before_id: None,
            limit: 100_000,
        })
        .await?;
    let shown = st
        .db
        .lost_orders(&LostOrderFilter {
            cause: Some(f.cause.clone()).filter(|c| !c.is_empty()),
            status: Some(f.status.clone()).filter(|s| !s.is_empty()),
            min_time: f.min_time(now, &st),
            max_time: None,
            before_id: None,
            limit: 200,
        })
        .await?;
    let ids: Vec<i64> = shown.iter().map(|r| r.id).collect();
    st.db.audit_customer_reads(&user.name, &ids, now).await?;
    let page = ListPage {
        rows: shown.iter().map(|r| order_row(r, lang, &st)).collect(),
        counts: counts(&month, now, &st, lang),
        causes: Cause::ALL.iter().map(|c| (c.as_str(), cause_word(lang, c.as_str()))).collect(),
        statuses: STATUSES.iter().map(|s| (*s, status_word(lang, s))).collect(),
        ctx: Layout::new(&user, "/lost-orders", i18n::t(lang, "lost_orders").into()),
        f,
        errors,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok(render_status(status, &page))
}

/// `GET /lost-orders/events`: server-sent events, one `lost-order` event (the
/// rendered row) per lost order created or changed that passes the filters.
pub async fn events(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    headers: axum::http::HeaderMap,
    Query(f): Query<Filters>,
) -> Result<Response, PageError> {
    user.require(Role::Manager)?;
    // The session is checked again before each row: after a logout or its
    // expiry, the open stream sends no customer data.
    let session = crate::web::session::cookie_token(&headers).map(crate::web::session::sha256_hex);
    let Some(slot) = super::logs::LiveSlot::take() else {
        return Ok(StatusCode::SERVICE_UNAVAILABLE.into_response());
    };
    let rx = st.lost_order_events.subscribe();
    let ctx = Layout::new(&user, "/lost-orders", String::new());
    let state = (st.clone(), rx, ctx, f, user, session, slot);
    let stream = futures_util::stream::unfold(state, |(st, mut rx, ctx, f, user, session, slot)| async move {
        loop {
            let id = tokio::select! {
                _ = st.shutdown.cancelled() => return None,
                r = rx.recv() => match r {
                    Ok(id) => id,
                    // Missed some: the page still has what it had; go on with the next.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
            };
            let row = match st.db.lost_order(id).await {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "the live lost-order list cannot read a lost order");
                    continue;
                }
            };
            let now = now_micros();
            if !f.matches(&row, now, &st) {
                continue;
            }
            let live = match &session {
                Some(h) => matches!(st.db.session(h).await, Ok(Some(s))
                    if now < s.expires_at && now - s.last_seen <= crate::web::session::IDLE_US),
                None => false,
            };
            if !live {
                return None;
            }
            if let Err(e) = st.db.audit_customer_reads(&user.name, &[id], now).await {
                tracing::warn!(error = %e, "cannot record the audit entry; the row is not sent");
                continue;
            }
            let o = order_row(&row, ctx.lang, &st);
            let html = match (RowTemplate { o: &o }).render() {
                Ok(h) => h.replace('\n', ""),
                Err(_) => continue,
            };
            let ev = Event::default().event("lost-order").id(id.to_string()).data(html);
            return Some((Ok::<_, Infallible>(ev), (st, rx, ctx, f, user, session, slot)));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

/// A piece of evidence as the page shows it.
pub struct EvidenceView {
    pub kind: String,
    pub source: String,
    pub at: String,
    pub status: String,
    pub request_id: String,
    /// A log line: the raw line and its event id (for the link to its context).
    pub raw: Option<String>,
    pub log_id: Option<String>,
    /// A Sentry event.
    pub event: Option<SentryView>,
}

pub struct SentryView {
    pub event_id: String,
    pub title: String,
    /// (type: value, frames most recent first)
    pub exceptions: Vec<(String, Vec<String>)>,
    pub request: Option<String>,
    pub extra: Option<String>,
    pub contexts: Option<String>,
}

fn pretty(v: Option<&Value>) -> Option<String> {
    v.filter(|v| !v.is_null() && v.as_object().is_none_or(|o| !o.is_empty()))
        .map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
}

fn sentry_view(event_id: &str, body: &Value) -> SentryView {
    let s = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    let mut exceptions = Vec::new();
    let values = body.pointer("/exception/values").or_else(|| body.pointer("/exception")).and_then(Value::as_array);
    for e in values.into_iter().flatten() {
        let head =
            format!("{}: {}", e.get("type").map(s).unwrap_or_default(), e.get("value").map(s).unwrap_or_default());
        let mut frames: Vec<String> = e
            .pointer("/stacktrace/frames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|f| {
                let g = |k: &str| f.get(k).map(s).unwrap_or_default();
                format!(
                    "{} in {} line {}",
                    if g("filename").is_empty() { g("abs_path") } else { g("filename") },
                    g("function"),
                    g("lineno")
                )
            })
            .collect();
        frames.reverse();
        exceptions.push((head, frames));
    }
    let title = body
        .get("message")
        .and_then(|m| {
            m.as_str().map(str::to_owned).or_else(|| m.get("formatted").and_then(Value::as_str).map(str::to_owned))
        })
        .or_else(|| body.pointer("/logentry/message").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| exceptions.first().map(|e| e.0.clone()))
        .unwrap_or_default();
    SentryView {
        event_id: event_id.to_owned(),
        title,
        exceptions,
        request: pretty(body.get("request")),
        extra: pretty(body.get("extra")),
        contexts: pretty(body.get("contexts")),
    }
}

#[derive(Template)]
#[template(path = "lost_order.html")]
struct DetailPage {
    ctx: Layout,
    o: OrderRow,
    cause_plain: &'static str,
    endpoint: String,
    status_code: String,
    client_ip: String,
    test_reason: String,
    email: String,
    address: String,
    contact_missing: bool,
    cart: Vec<String>,
    cart_truncated: bool,
    response: Option<String>,
    refused: Vec<String>,
    network_error: String,
    attempts_last_hour: String,
    manager: bool,
    backend_errors: Vec<(String, String)>,
    evidence: Vec<EvidenceView>,
    calls: Vec<(String, &'static str, String)>,
    incident_id: Option<i64>,
    incidents: Vec<(i64, String)>,
    statuses: Vec<(&'static str, &'static str)>,
    outcomes: Vec<(&'static str, &'static str)>,
    errors: FieldErrors,
    can_act: bool,
    status: StatusCode,
    /// The call form shows `errors` when they are about this order.
    errors_for: String,
}

pub fn outcomes(lang: Lang) -> Vec<(&'static str, &'static str)> {
    crate::web::incidents::OUTCOMES.iter().map(|o| (*o, i18n::t(lang, &format!("outcome_{o}")))).collect()
}

/// The page of one lost order; `errors` are shown next to the action's fields.
pub async fn detail_page(
    st: &AppState,
    user: &CurrentUser,
    id: i64,
    errors: FieldErrors,
    saved: bool,
) -> Result<Response, PageError> {
    user.require(Role::Manager)?;
    let lang = user.lang;
    let Some((row, pieces)) = st.db.lost_order_with_evidence(id).await? else {
        return Err(PageError::not_found(user, format!("{} {id}", i18n::t(lang, "no_lost_order"))));
    };
    st.db.audit_customer_reads(&user.name, &[id], now_micros()).await?;
    let s = summary(&row);
    let mut evidence = Vec::new();
    // Managers work with the customer and the cart; the raw log lines and
    // error events (logs) are the developers'.
    let pieces = if user.can(Role::Developer) { pieces } else { Vec::new() };
    for e in pieces {
        let Ok(p) = e.piece() else { continue };
        let event = if e.raw.is_none() {
            st.db
                .error_event(&p.reference)
                .await?
                .and_then(|ev| serde_json::from_str::<Value>(&ev.body).ok())
                .map(|b| sentry_view(&p.reference, &b))
        } else {
            None
        };
        evidence.push(EvidenceView {
            kind: p.kind.as_str().to_owned(),
            source: p.source.clone(),
            at: show_time(p.at, st),
            status: p.status.map(|c| c.to_string()).unwrap_or_default(),
            request_id: p.request_id.clone().unwrap_or_default(),
            log_id: e.raw.as_ref().map(|_| p.reference.clone()),
            raw: e.raw.clone(),
            event,
        });
    }
    let calls = st
        .db
        .rescue_calls(id)
        .await?
        .into_iter()
        .map(|c| (show_time(c.at, st), i18n::t(lang, &format!("outcome_{}", c.outcome)), c.note))
        .collect();
    let incidents = if user.can(Role::Developer) {
        st.db.incidents(100).await?.into_iter().filter(|i| i.status != "closed").map(|i| (i.id, i.title)).collect()
    } else {
        Vec::new()
    };
    let mut ctx = Layout::new(user, "/lost-orders", format!("{} #{id}", i18n::t(lang, "lost_order")));
    if saved {
        ctx.flash = Some(i18n::t(lang, "saved").into());
    }
    let page = DetailPage {
        o: order_row(&row, lang, st),
        cause_plain: cause_plain(lang, &row.cause),
        endpoint: row.endpoint.clone(),
        status_code: row.status_code.map_or_else(|| i18n::t(lang, "no_answer").to_owned(), |c| c.to_string()),
        client_ip: row.client_ip.clone().unwrap_or_default(),
        test_reason: row.test_reason.clone().unwrap_or_default(),
        email: s.customer.email.clone().unwrap_or_default(),
        address: s.address.clone().unwrap_or_default(),
        contact_missing: s.contact_missing,
        cart: s.cart.as_ref().map(cart_lines).unwrap_or_default(),
        cart_truncated: s.cart_truncated,
        response: s.response.as_ref().map(|v| serde_json::to_string_pretty(v).unwrap_or_default()),
        refused: s.refused.clone(),
        network_error: s.network_error.clone().unwrap_or_default(),
        attempts_last_hour: s.attempts_last_hour.map(|n| n.to_string()).unwrap_or_default(),
        manager: s.manager,
        backend_errors: s.backend_errors.iter().map(|e| (e.title.clone(), e.event_id.clone())).collect(),
        evidence,
        calls,
        incident_id: row.incident_id,
        incidents,
        statuses: STATUSES.iter().map(|s| (*s, status_word(lang, s))).collect(),
        outcomes: outcomes(lang),
        can_act: user.can(Role::Developer),
        errors_for: id.to_string(),
        status: if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST },
        errors,
        ctx,
    };
    Ok(render_status(page.status, &page))
}

#[derive(Deserialize)]
pub struct Saved {
    saved: Option<String>,
}

/// `GET /lost-orders/{id}` (managers and up).
pub async fn detail(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(q): Query<Saved>,
) -> Result<Response, PageError> {
    let id = parse_id(&user, &id)?;
    detail_page(&st, &user, id, FieldErrors::default(), q.saved.is_some()).await
}

/// An id from the path; anything else is the same 404 as an unknown id.
pub fn parse_id(user: &CurrentUser, s: &str) -> Result<i64, PageError> {
    s.parse().map_err(|_| PageError::not_found(user, i18n::t(user.lang, "no_such_page").into()))
}

use super::StatusForm;

/// `POST /lost-orders/{id}/status` (developers): "it was me" is `status=test`.
pub async fn set_status(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<StatusForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&f.csrf)?;
    user.require(Role::Developer)?;
    let id = parse_id(&user, &id)?;
    if !STATUSES.contains(&f.status.as_str()) {
        let mut errors = FieldErrors::default();
        errors.add("status", i18n::t(user.lang, "choose_from_list"));
        return detail_page(&st, &user, id, errors, false).await;
    }
    if !st.db.set_lost_order_status(id, &f.status, now_micros()).await? {
        return Err(PageError::not_found(&user, format!("{} {id}", i18n::t(user.lang, "no_lost_order"))));
    }
    tracing::info!(lost_order = id, status = %f.status, user = %user.name, "lost order status changed");
    Ok(Redirect::to(&format!("/lost-orders/{id}?saved=1")).into_response())
}

#[derive(Deserialize)]
pub struct IncidentForm {
    #[serde(default)]
    csrf: String,
    /// An incident's id, or `new`.
    #[serde(default)]
    incident: String,
}

/// `POST /lost-orders/{id}/incident` (developers): into an open incident, or a new one.
pub async fn to_incident(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<IncidentForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&f.csrf)?;
    user.require(Role::Developer)?;
    let id = parse_id(&user, &id)?;
    if st.db.lost_order(id).await?.is_none() {
        return Err(PageError::not_found(&user, format!("{} {id}", i18n::t(user.lang, "no_lost_order"))));
    }
    let fail = |msg: String| {
        let mut errors = FieldErrors::default();
        errors.add("incident", msg);
        errors
    };
    if f.incident == "new" {
        let n = crate::web::incidents::NewIncident {
            title: None,
            cause: None,
            plain_cause: None,
            actions: None,
            assignee: None,
            lost_orders: vec![id],
        };
        return match crate::web::incidents::create_incident(&st, n).await {
            Ok(new) => Ok(Redirect::to(&format!("/incidents/{new}")).into_response()),
            Err(e) => detail_page(&st, &user, id, fail(e.to_string()), false).await,
        };
    }
    let Ok(incident) = f.incident.parse::<i64>() else {
        return detail_page(&st, &user, id, fail(i18n::t(user.lang, "choose_from_list").into()), false).await;
    };
    match st.db.change_incident_orders(incident, &[id], &[], now_micros()).await {
        Ok(true) => Ok(Redirect::to(&format!("/lost-orders/{id}?saved=1")).into_response()),
        Ok(false) => {
            detail_page(&st, &user, id, fail(format!("{} {incident}", i18n::t(user.lang, "no_incident"))), false).await
        }
        Err(crate::db::DbError::Conflict(m)) => detail_page(&st, &user, id, fail(m), false).await,
        Err(e) => Err(e.into()),
    }
}
