//! Incidents, their report letters and the rescue queue (admin token):
//! - `GET /api/v1/incidents`, `POST /api/v1/incidents`,
//!   `GET /api/v1/incidents/suggestions` (lost orders in no incident, grouped by cause and what failed),
//!   `GET/PUT /api/v1/incidents/{id}`, `POST /api/v1/incidents/{id}/lost-orders` (`{"add": [...], "remove": [...]}`);
//! - `POST /api/v1/incidents/{id}/report/preview` (the letter exactly as it
//!   would be sent) and `…/report/send` (queued in the notifier's outbox, a copy kept);
//! - `GET /api/v1/rescue-queue` and `POST /api/v1/lost-orders/{id}/calls`
//!   (`{"outcome": "rescued" | "lost" | "no_answer" | "call_back", "note": "…"}`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::{IncidentFields, IncidentRow};
use crate::event::now_micros;
use crate::notify::{Message, NewNotification};
use crate::orders::Cause;
use crate::orders::render::{lost_order_json, time};
use crate::orders::report::{self, INCIDENT_STATUSES, Letter};
use crate::web::AppState;
use crate::web::auth::{Api, Dev, Mgr};
use crate::web::error::ApiError;

/// What a manager may record about a call.
pub const OUTCOMES: [&str; 4] = ["rescued", "lost", "no_answer", "call_back"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub cause: Option<String>,
    #[serde(default)]
    pub plain_cause: Option<String>,
    #[serde(default)]
    pub actions: Option<String>,
    #[serde(default)]
    pub assignee: Option<String>,
    #[serde(default)]
    pub lost_orders: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentChange {
    title: Option<String>,
    cause: Option<String>,
    plain_cause: Option<String>,
    actions: Option<String>,
    assignee: Option<String>,
    status: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersChange {
    #[serde(default)]
    add: Vec<i64>,
    #[serde(default)]
    remove: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    outcome: String,
    #[serde(default)]
    note: String,
}

use crate::web::error::{Limit, limit};

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("there is no incident {id}"))
}

fn check_cause(c: &str) -> Result<(), ApiError> {
    if Cause::parse(c).is_none() {
        let all: Vec<&str> = Cause::ALL.iter().map(|c| c.as_str()).collect();
        return Err(ApiError::BadRequest(format!("cause {c:?} is none of {}", all.join(", "))));
    }
    Ok(())
}

fn text_field(name: &str, v: &str, max: usize) -> Result<String, ApiError> {
    if v.chars().count() > max {
        return Err(ApiError::BadRequest(format!("{name} is longer than {max} characters")));
    }
    Ok(v.trim().to_owned())
}

fn incident_json(st: &AppState, i: &IncidentRow) -> Value {
    json!({
        "id": i.id,
        "title": i.title,
        "cause": i.cause,
        "plain_cause": i.plain_cause,
        "actions": i.actions,
        "assignee": i.assignee,
        "status": i.status,
        "created_at": time(i.created_at, &st.display_zone),
        "updated_at": time(i.updated_at, &st.display_zone),
        "lost_orders": i.lost_orders,
    })
}

pub async fn list(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Query(l): Query<Limit>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let all = st.db.incidents(limit(&l)?).await?;
    Ok(Json(all.iter().map(|i| incident_json(&st, i)).collect()))
}

pub async fn create(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Json(n): Json<NewIncident>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = create_incident(&st, n).await?;
    let row = st.db.incident(id).await?.ok_or_else(|| not_found(id))?;
    Ok((StatusCode::CREATED, Json(incident_json(&st, &row))))
}

/// A new incident (the API and the dashboard): unstated fields come from its first lost order.
pub async fn create_incident(st: &AppState, n: NewIncident) -> Result<i64, ApiError> {
    // Unstated fields come from the first lost order: its cause and the suggested title.
    let first = match n.lost_orders.first() {
        Some(&id) => Some(
            st.db.lost_order(id).await?.ok_or_else(|| ApiError::BadRequest(format!("there is no lost order {id}")))?,
        ),
        None => None,
    };
    let cause = match (n.cause, &first) {
        (Some(c), _) => c,
        (None, Some(o)) => o.cause.clone(),
        (None, None) => {
            return Err(ApiError::BadRequest("give a cause, or lost_orders to take it from".into()));
        }
    };
    check_cause(&cause)?;
    let plain_default = Cause::parse(&cause).map(Cause::plain).unwrap_or_default().to_owned();
    let title = match (n.title, &first) {
        (Some(t), _) if !t.trim().is_empty() => text_field("title", &t, 200)?,
        (_, Some(o)) => report::suggested_title(o),
        _ => format!("Lost orders: {cause}"),
    };
    let f = IncidentFields {
        title,
        plain_cause: text_field("plain_cause", n.plain_cause.as_deref().unwrap_or(&plain_default), 10_000)?,
        actions: text_field("actions", n.actions.as_deref().unwrap_or(""), 10_000)?,
        assignee: n.assignee.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()),
        status: "open".into(),
        cause,
    };
    match st.db.create_incident(&f, &n.lost_orders, now_micros()).await {
        Ok(id) => Ok(id),
        // A lost order that is not there is the request's mistake.
        Err(crate::db::DbError::Conflict(m)) => Err(ApiError::BadRequest(m)),
        Err(e) => Err(e.into()),
    }
}

pub async fn get_one(
    State(st): State<Arc<AppState>>,
    api: Api<Dev>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let row = st.db.incident(id).await?.ok_or_else(|| not_found(id))?;
    let mut v = incident_json(&st, &row);
    let orders = st.db.incident_lost_orders(id).await?;
    let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    st.db.audit_customer_reads(&api.caller.who, &ids, now_micros()).await?;
    v["orders"] = orders.iter().map(|o| lost_order_json(o, None, &st.display_zone)).collect();
    v["timeline"] = st
        .db
        .incident_events(id)
        .await?
        .iter()
        .map(|e| json!({"at": time(e.at, &st.display_zone), "what": e.what, "detail": e.detail}))
        .collect();
    v["reports"] = st
        .db
        .reports(id)
        .await?
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "created_at": time(r.created_at, &st.display_zone),
                "recipients": serde_json::from_str::<Value>(&r.recipients).unwrap_or(Value::Null),
                "subject": r.subject,
                "text": r.text,
                "notification_id": r.notification_id,
            })
        })
        .collect();
    Ok(Json(v))
}

pub async fn update(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Path(id): Path<i64>,
    Json(c): Json<IncidentChange>,
) -> Result<Json<Value>, ApiError> {
    let row = st.db.incident(id).await?.ok_or_else(|| not_found(id))?;
    if let Some(cause) = &c.cause {
        check_cause(cause)?;
    }
    if let Some(s) = c.status.as_deref().filter(|s| !INCIDENT_STATUSES.contains(s)) {
        return Err(ApiError::BadRequest(format!("status {s:?} is none of {}", INCIDENT_STATUSES.join(", "))));
    }
    let title = match c.title {
        Some(t) if t.trim().is_empty() => return Err(ApiError::BadRequest("title must not be empty".into())),
        Some(t) => text_field("title", &t, 200)?,
        None => row.title,
    };
    let f = IncidentFields {
        title,
        cause: c.cause.unwrap_or(row.cause),
        plain_cause: match c.plain_cause {
            Some(p) => text_field("plain_cause", &p, 10_000)?,
            None => row.plain_cause,
        },
        actions: match c.actions {
            Some(a) => text_field("actions", &a, 10_000)?,
            None => row.actions,
        },
        assignee: match c.assignee {
            Some(a) => Some(a.trim().to_owned()).filter(|a| !a.is_empty()),
            None => row.assignee,
        },
        status: c.status.unwrap_or(row.status),
    };
    if !st.db.update_incident(id, &f, now_micros()).await? {
        return Err(not_found(id));
    }
    let row = st.db.incident(id).await?.ok_or_else(|| not_found(id))?;
    Ok(Json(incident_json(&st, &row)))
}

pub async fn change_orders(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Path(id): Path<i64>,
    Json(c): Json<OrdersChange>,
) -> Result<Json<Value>, ApiError> {
    match st.db.change_incident_orders(id, &c.add, &c.remove, now_micros()).await {
        Ok(true) => {}
        Ok(false) => return Err(not_found(id)),
        Err(crate::db::DbError::Conflict(m)) => return Err(ApiError::BadRequest(m)),
        Err(e) => return Err(e.into()),
    }
    let row = st.db.incident(id).await?.ok_or_else(|| not_found(id))?;
    Ok(Json(incident_json(&st, &row)))
}

pub async fn suggestions(State(st): State<Arc<AppState>>, _api: Api<Dev>) -> Result<Json<Vec<Value>>, ApiError> {
    let rows = st.db.lost_orders_without_incident(1000).await?;
    Ok(Json(
        report::suggest(&rows)
            .into_iter()
            .map(|(key, orders)| {
                json!({
                    "key": key,
                    "cause": orders[0].cause,
                    "title": report::suggested_title(orders[0]),
                    "lost_orders": orders.iter().map(|o| o.id).collect::<Vec<_>>(),
                })
            })
            .collect(),
    ))
}

/// The incident's letter exactly as it would be sent; reading it is a read of
/// its lost orders' customer data, recorded for `who`.
pub async fn build_letter(st: &AppState, id: i64, who: &str) -> Result<Letter, ApiError> {
    Ok(letter_of(st, id, who).await?.0)
}

/// The letter and the lost orders it names.
async fn letter_of(st: &AppState, id: i64, who: &str) -> Result<(Letter, Vec<i64>), ApiError> {
    let row = st.db.incident(id).await?.ok_or_else(|| not_found(id))?;
    let orders = st.db.incident_lost_orders(id).await?;
    if orders.is_empty() {
        return Err(ApiError::Conflict(format!(
            "incident {id} holds no lost orders: add some before writing the letter"
        )));
    }
    if st.orders.report_to.is_empty() {
        return Err(ApiError::Conflict(
            "no one to send the letter to: set [report] to = [\"head@shop.example\"] (and cc, the developers) in the config"
                .into(),
        ));
    }
    let ids: Vec<i64> = orders.iter().map(|o| o.id).collect();
    st.db.audit_customer_reads(who, &ids, now_micros()).await?;
    Ok((report::letter(&row, &orders, &st.orders.report_to, &st.orders.report_cc, &st.display_zone), ids))
}

pub async fn preview(
    State(st): State<Arc<AppState>>,
    api: Api<Dev>,
    Path(id): Path<i64>,
) -> Result<Json<Letter>, ApiError> {
    Ok(Json(build_letter(&st, id, &api.caller.who).await?))
}

pub async fn send(
    State(st): State<Arc<AppState>>,
    api: Api<Dev>,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (report_id, l) = send_letter(&st, id, &api.caller.who).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"report_id": report_id, "letter": l}))))
}

/// Queues the incident's letter in the outbox and keeps a copy (the API and
/// the dashboard): the report's id and the letter.
pub async fn send_letter(st: &AppState, id: i64, who: &str) -> Result<(i64, Letter), ApiError> {
    let (l, named) = letter_of(st, id, who).await?;
    if !st.notifier.can_email() {
        return Err(ApiError::Conflict(
            "email is not set up: start orderwatch with --smtp URL and --smtp-from ADDR (or notify.smtp_url and notify.smtp_from in the config)"
                .into(),
        ));
    }
    let now = now_micros();
    let letter = NewNotification {
        source: format!("incident:{id}"),
        dedup_key: None,
        message: Message::Email {
            to: l.to.clone(),
            cc: l.cc.clone(),
            subject: l.subject.clone(),
            text: l.text.clone(),
            html: Some(l.html.clone()),
        },
    };
    let recipients = json!({"to": l.to, "cc": l.cc}).to_string();
    let report_id = st.db.record_report(id, &named, &recipients, &l.subject, &l.text, &l.html, &letter, now).await?;
    st.notifier.wake();
    Ok((report_id, l))
}

pub async fn rescue_queue(
    State(st): State<Arc<AppState>>,
    api: Api<Mgr>,
    Query(l): Query<Limit>,
) -> Result<Json<Vec<Value>>, ApiError> {
    let rows = st.db.rescue_queue(limit(&l)?).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    st.db.audit_customer_reads(&api.caller.who, &ids, now_micros()).await?;
    let mut out = Vec::new();
    for r in &rows {
        let mut v = lost_order_json(r, None, &st.display_zone);
        v["calls"] = calls_json(&st, r.id).await?;
        out.push(v);
    }
    Ok(Json(out))
}

pub async fn calls_json(st: &AppState, lost_order_id: i64) -> Result<Value, ApiError> {
    Ok(st
        .db
        .rescue_calls(lost_order_id)
        .await?
        .iter()
        .map(|c| json!({"at": time(c.at, &st.display_zone), "outcome": c.outcome, "note": c.note}))
        .collect())
}

pub async fn add_call(
    State(st): State<Arc<AppState>>,
    api: Api<Mgr>,
    Path(id): Path<i64>,
    Json(c): Json<Call>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if !OUTCOMES.contains(&c.outcome.as_str()) {
        return Err(ApiError::BadRequest(format!("outcome {:?} is none of {}", c.outcome, OUTCOMES.join(", "))));
    }
    let note = text_field("note", &c.note, 10_000)?;
    if !st.db.add_rescue_call(id, &c.outcome, &note, now_micros()).await? {
        return Err(ApiError::NotFound(format!("there is no lost order {id}")));
    }
    let row = st.db.lost_order(id).await?.ok_or_else(|| ApiError::NotFound(format!("there is no lost order {id}")))?;
    st.db.audit_customer_reads(&api.caller.who, &[id], now_micros()).await?;
    let mut v = lost_order_json(&row, None, &st.display_zone);
    v["calls"] = calls_json(&st, id).await?;
    Ok((StatusCode::CREATED, Json(v)))
}
