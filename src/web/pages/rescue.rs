//! `/rescue`: the managers' queue — whom to call (lost orders not yet rescued,
//! lost or marked a test, with a phone or an email), their cart, the calls so
//! far — and `POST /lost-orders/{id}/calls` to record a call's outcome
//! (rescued, lost, no answer, call back) with a note. Showing the queue is a
//! read of each customer's data and is audited.

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::lost_orders::{OrderRow, detail_page, order_row, outcomes, parse_id, show_time};
use super::{FieldErrors, Layout, PageError, render_status};
use crate::event::now_micros;
use crate::orders::render::{cart_lines, summary};
use crate::web::AppState;
use crate::web::i18n;
use crate::web::incidents::OUTCOMES;
use crate::web::session::{CurrentUser, Role};

pub struct QueueEntry {
    pub o: OrderRow,
    pub email: String,
    pub address: String,
    pub cart: Vec<String>,
    pub calls: Vec<(String, &'static str, String)>,
}

#[derive(Template)]
#[template(path = "rescue.html")]
struct QueuePage {
    ctx: Layout,
    entries: Vec<QueueEntry>,
    outcomes: Vec<(&'static str, &'static str)>,
    errors: FieldErrors,
    /// The id of the lost order whose call form `errors` are about.
    errors_for: String,
}

async fn queue_page(
    st: &AppState,
    user: &CurrentUser,
    errors: FieldErrors,
    errors_for: Option<i64>,
    saved: bool,
) -> Result<Response, PageError> {
    user.require(Role::Manager)?;
    let lang = user.lang;
    let rows = st.db.rescue_queue(200).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    st.db.audit_customer_reads(&user.name, &ids, now_micros()).await?;
    let mut entries = Vec::new();
    for r in &rows {
        let s = summary(r);
        let calls = st
            .db
            .rescue_calls(r.id)
            .await?
            .into_iter()
            .map(|c| (show_time(c.at, st), i18n::t(lang, &format!("outcome_{}", c.outcome)), c.note))
            .collect();
        entries.push(QueueEntry {
            o: order_row(r, lang, st),
            email: s.customer.email.clone().unwrap_or_default(),
            address: s.address.clone().unwrap_or_default(),
            cart: s.cart.as_ref().map(cart_lines).unwrap_or_default(),
            calls,
        });
    }
    let mut ctx = Layout::new(user, "/rescue", i18n::t(lang, "rescue_queue").into());
    if saved {
        ctx.flash = Some(i18n::t(lang, "saved").into());
    }
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    Ok(render_status(
        status,
        &QueuePage {
            ctx,
            entries,
            outcomes: outcomes(lang),
            errors,
            errors_for: errors_for.map(|i| i.to_string()).unwrap_or_default(),
        },
    ))
}

#[derive(Deserialize)]
pub struct Saved {
    saved: Option<String>,
}

/// `GET /rescue` (managers and up).
pub async fn queue(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Query(q): Query<Saved>,
) -> Result<Response, PageError> {
    queue_page(&st, &user, FieldErrors::default(), None, q.saved.is_some()).await
}

#[derive(Deserialize)]
pub struct CallForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
    /// `rescue` or `lost-order`: which page the form was on.
    #[serde(default)]
    back: String,
}

/// `POST /lost-orders/{id}/calls` (managers and up): a call's outcome and note.
pub async fn record_call(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<CallForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&f.csrf)?;
    user.require(Role::Manager)?;
    let id = parse_id(&user, &id)?;
    let lang = user.lang;
    let mut errors = FieldErrors::default();
    if !OUTCOMES.contains(&f.outcome.as_str()) {
        errors.add("outcome", i18n::t(lang, "choose_outcome"));
    }
    if f.note.chars().count() > 10_000 {
        errors.add("note", i18n::t(lang, "note_too_long"));
    }
    let on_detail = f.back == "lost-order";
    if errors.is_empty() && !st.db.add_rescue_call(id, &f.outcome, f.note.trim(), now_micros()).await? {
        return Err(PageError::not_found(&user, format!("{} {id}", i18n::t(lang, "no_lost_order"))));
    }
    if !errors.is_empty() {
        if st.db.lost_order(id).await?.is_none() {
            return Err(PageError::not_found(&user, format!("{} {id}", i18n::t(lang, "no_lost_order"))));
        }
        return if on_detail {
            detail_page(&st, &user, id, errors, false).await
        } else {
            queue_page(&st, &user, errors, Some(id), false).await
        };
    }
    // The note may hold what the customer said: it goes in no log line.
    tracing::info!(lost_order = id, outcome = %f.outcome, user = %user.name, "rescue call recorded");
    let to = if on_detail { format!("/lost-orders/{id}?saved=1") } else { "/rescue?saved=1".to_owned() };
    Ok(Redirect::to(&to).into_response())
}
