//! `/incidents` (developers): the list and the suggestions (lost orders in no
//! incident, grouped by cause and what failed) to make incidents from;
//! `/incidents/{id}`: write the plain-words cause, what was done, the
//! assignee and the status (each field validated, the message next to it),
//! its lost orders, the letters sent (and whether the outbox delivered them)
//! and the timeline; `/incidents/{id}/preview`: the letter exactly as it will
//! be sent (`orders::report::letter`, the same call the API and the send
//! use); `POST /incidents/{id}/send` queues it in the notification outbox.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::lost_orders::{OrderRow, cause_word, order_row, parse_id, show_time};
use super::{FieldErrors, Layout, PageError, render, render_status};
use crate::db::IncidentFields;
use crate::event::now_micros;
use crate::orders::report::{self, INCIDENT_STATUSES, Letter};
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::i18n;
use crate::web::incidents::{NewIncident, build_letter, create_incident, send_letter};
use crate::web::session::{CurrentUser, Role};

pub struct IncidentItem {
    pub id: i64,
    pub title: String,
    pub cause: &'static str,
    pub status: &'static str,
    pub orders: i64,
    pub updated: String,
}

pub struct Suggestion {
    pub title: String,
    pub cause: &'static str,
    pub ids: String,
    pub count: usize,
}

#[derive(Template)]
#[template(path = "incidents.html")]
struct ListPage {
    ctx: Layout,
    incidents: Vec<IncidentItem>,
    suggestions: Vec<Suggestion>,
    errors: FieldErrors,
}

async fn list_page(st: &AppState, user: &CurrentUser, errors: FieldErrors) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let lang = user.lang;
    let incidents = st
        .db
        .incidents(200)
        .await?
        .into_iter()
        .map(|i| IncidentItem {
            cause: cause_word(lang, &i.cause),
            updated: show_time(i.updated_at, st),
            id: i.id,
            title: i.title,
            status: i18n::t(lang, &format!("incident_{}", i.status)),
            orders: i.lost_orders,
        })
        .collect();
    let rows = st.db.lost_orders_without_incident(1000).await?;
    let suggestions = report::suggest(&rows)
        .into_iter()
        .map(|(_, orders)| Suggestion {
            title: report::suggested_title(orders[0]),
            cause: cause_word(lang, &orders[0].cause),
            ids: orders.iter().map(|o| o.id.to_string()).collect::<Vec<_>>().join(","),
            count: orders.len(),
        })
        .collect();
    let ctx = Layout::new(user, "/incidents", i18n::t(lang, "incidents").into());
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok(render_status(status, &ListPage { ctx, incidents, suggestions, errors }))
}

/// `GET /incidents`.
pub async fn list(State(st): State<Arc<AppState>>, user: CurrentUser) -> Result<Response, PageError> {
    list_page(&st, &user, FieldErrors::default()).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    /// Lost order ids, comma-separated.
    #[serde(default)]
    lost_orders: String,
}

/// `POST /incidents`: an incident from a suggestion.
pub async fn create(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Form(f): Form<CreateForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&f.csrf)?;
    user.require(Role::Developer)?;
    let mut errors = FieldErrors::default();
    let ids: Result<Vec<i64>, _> =
        f.lost_orders.split(',').filter(|s| !s.trim().is_empty()).map(|s| s.trim().parse()).collect();
    let ids = match ids {
        Ok(ids) if !ids.is_empty() => ids,
        _ => {
            errors.add("lost_orders", i18n::t(user.lang, "choose_lost_orders"));
            return list_page(&st, &user, errors).await;
        }
    };
    let n = NewIncident {
        title: Some(f.title).filter(|t| !t.trim().is_empty()),
        cause: None,
        plain_cause: None,
        actions: None,
        assignee: None,
        lost_orders: ids,
    };
    match create_incident(&st, n).await {
        Ok(id) => Ok(Redirect::to(&format!("/incidents/{id}")).into_response()),
        Err(ApiError::BadRequest(m) | ApiError::Conflict(m)) => {
            errors.add("lost_orders", m);
            list_page(&st, &user, errors).await
        }
        Err(e) => Err(PageError::Internal(user.lang, e.into())),
    }
}

/// The incident's editable fields as the form holds them.
#[derive(Deserialize, Default)]
pub struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    plain_cause: String,
    #[serde(default)]
    actions: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    status: String,
}

pub struct ReportItem {
    pub at: String,
    pub subject: String,
    pub to: String,
    pub delivery: String,
}

#[derive(Template)]
#[template(path = "incident.html")]
struct DetailPage {
    ctx: Layout,
    id: i64,
    cause: &'static str,
    form: EditForm,
    statuses: Vec<(&'static str, &'static str)>,
    orders: Vec<OrderRow>,
    reports: Vec<ReportItem>,
    timeline: Vec<(String, String, String)>,
    errors: FieldErrors,
}

async fn detail_page(
    st: &AppState,
    user: &CurrentUser,
    id: i64,
    form: Option<EditForm>,
    errors: FieldErrors,
    flash: Option<&str>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let lang = user.lang;
    let Some(row) = st.db.incident(id).await? else {
        return Err(PageError::not_found(user, format!("{} {id}", i18n::t(lang, "no_incident"))));
    };
    let orders = st.db.incident_lost_orders(id).await?;
    let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    st.db.audit_customer_reads(&user.name, &ids, now_micros()).await?;
    let mut reports = Vec::new();
    for r in st.db.reports(id).await? {
        let delivery = match r.notification_id {
            Some(n) => match st.db.notification(n, 0).await? {
                Some(n) if n.status == "sent" => {
                    format!(
                        "{} {}",
                        i18n::t(lang, "delivered"),
                        n.sent_at.map(|t| show_time(t, st)).unwrap_or_default()
                    )
                }
                Some(n) if n.status == "failed" => {
                    format!("{}: {}", i18n::t(lang, "delivery_failed"), n.last_error.unwrap_or_default())
                }
                Some(n) => {
                    format!("{} ({} {})", i18n::t(lang, "delivery_pending"), n.attempts, i18n::t(lang, "attempts"))
                }
                None => String::new(),
            },
            None => String::new(),
        };
        let to = serde_json::from_str::<serde_json::Value>(&r.recipients)
            .ok()
            .map(|v| {
                let list = |k: &str| {
                    v[k].as_array()
                        .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default()
                };
                let cc = list("cc");
                if cc.is_empty() { list("to") } else { format!("{}; cc {cc}", list("to")) }
            })
            .unwrap_or_default();
        reports.push(ReportItem { at: show_time(r.created_at, st), subject: r.subject, to, delivery });
    }
    let timeline =
        st.db.incident_events(id).await?.into_iter().map(|e| (show_time(e.at, st), e.what, e.detail)).collect();
    let form = form.unwrap_or(EditForm {
        csrf: String::new(),
        title: row.title.clone(),
        plain_cause: row.plain_cause.clone(),
        actions: row.actions.clone(),
        assignee: row.assignee.clone().unwrap_or_default(),
        status: row.status.clone(),
    });
    let mut ctx = Layout::new(user, "/incidents", format!("{} #{id}", i18n::t(lang, "incident")));
    ctx.flash = flash.map(str::to_owned);
    let page = DetailPage {
        id,
        cause: cause_word(lang, &row.cause),
        form,
        statuses: INCIDENT_STATUSES.iter().map(|s| (*s, i18n::t(lang, &format!("incident_{s}")))).collect(),
        orders: orders.iter().map(|o| order_row(o, lang, st)).collect(),
        reports,
        timeline,
        ctx,
        errors,
    };
    let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok(render_status(status, &page))
}

#[derive(Deserialize)]
pub struct Flash {
    saved: Option<String>,
    sent: Option<String>,
}

/// `GET /incidents/{id}`.
pub async fn detail(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(q): Query<Flash>,
) -> Result<Response, PageError> {
    let id = parse_id(&user, &id)?;
    let flash = if q.sent.is_some() {
        Some(i18n::t(user.lang, "letter_queued"))
    } else {
        q.saved.as_ref().map(|_| i18n::t(user.lang, "saved"))
    };
    detail_page(&st, &user, id, None, FieldErrors::default(), flash).await
}

/// `POST /incidents/{id}`: the edit form; each field checked, the message next to it.
pub async fn update(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<EditForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&f.csrf)?;
    user.require(Role::Developer)?;
    let id = parse_id(&user, &id)?;
    let lang = user.lang;
    let Some(row) = st.db.incident(id).await? else {
        return Err(PageError::not_found(&user, format!("{} {id}", i18n::t(lang, "no_incident"))));
    };
    let mut errors = FieldErrors::default();
    if f.title.trim().is_empty() {
        errors.add("title", i18n::t(lang, "required"));
    } else if f.title.chars().count() > 200 {
        errors.add("title", i18n::t(lang, "too_long_200"));
    }
    if f.plain_cause.trim().is_empty() {
        errors.add("plain_cause", i18n::t(lang, "plain_cause_required"));
    } else if f.plain_cause.chars().count() > 10_000 {
        errors.add("plain_cause", i18n::t(lang, "too_long_10000"));
    }
    if f.actions.chars().count() > 10_000 {
        errors.add("actions", i18n::t(lang, "too_long_10000"));
    }
    if f.assignee.chars().count() > 200 {
        errors.add("assignee", i18n::t(lang, "too_long_200"));
    }
    if !INCIDENT_STATUSES.contains(&f.status.as_str()) {
        errors.add("status", i18n::t(lang, "choose_from_list"));
    }
    if !errors.is_empty() {
        return detail_page(&st, &user, id, Some(f), errors, None).await;
    }
    let fields = IncidentFields {
        title: f.title.trim().to_owned(),
        cause: row.cause,
        plain_cause: f.plain_cause.trim().to_owned(),
        actions: f.actions.trim().to_owned(),
        assignee: Some(f.assignee.trim().to_owned()).filter(|a| !a.is_empty()),
        status: f.status,
    };
    if !st.db.update_incident(id, &fields, now_micros()).await? {
        return Err(PageError::not_found(&user, format!("{} {id}", i18n::t(lang, "no_incident"))));
    }
    Ok(Redirect::to(&format!("/incidents/{id}?saved=1")).into_response())
}

#[derive(Template)]
#[template(path = "letter.html")]
struct LetterPage {
    ctx: Layout,
    id: i64,
    letter: Option<Letter>,
    problem: String,
}

/// Why a letter cannot be written or sent, for a person: the API's message.
fn letter_problem(e: ApiError, user: &CurrentUser) -> Result<String, PageError> {
    match e {
        ApiError::Conflict(m) | ApiError::BadRequest(m) => Ok(m),
        ApiError::NotFound(m) => Err(PageError::not_found(user, m)),
        e => Err(PageError::Internal(user.lang, e.into())),
    }
}

/// `GET /incidents/{id}/preview`: the letter exactly as it will be sent.
pub async fn preview(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let id = parse_id(&user, &id)?;
    let (letter, problem) = match build_letter(&st, id, &user.name).await {
        Ok(l) => (Some(l), String::new()),
        Err(e) => (None, letter_problem(e, &user)?),
    };
    let ctx = Layout::new(&user, "/incidents", format!("{} #{id}", i18n::t(user.lang, "letter_preview")));
    Ok(render(&LetterPage { ctx, id, letter, problem }))
}

#[derive(Deserialize)]
pub struct SendForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /incidents/{id}/send`: queued in the outbox; the page shows it sent.
pub async fn send(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<SendForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&f.csrf)?;
    user.require(Role::Developer)?;
    let id = parse_id(&user, &id)?;
    match send_letter(&st, id, &user.name).await {
        Ok((report_id, _)) => {
            tracing::info!(incident = id, report = report_id, user = %user.name, "incident letter queued");
            Ok(Redirect::to(&format!("/incidents/{id}?sent=1")).into_response())
        }
        Err(e) => {
            let problem = letter_problem(e, &user)?;
            let letter = build_letter(&st, id, &user.name).await.ok();
            let ctx = Layout::new(&user, "/incidents", format!("{} #{id}", i18n::t(user.lang, "letter_preview")));
            Ok(render_status(StatusCode::CONFLICT, &LetterPage { ctx, id, letter, problem }))
        }
    }
}
