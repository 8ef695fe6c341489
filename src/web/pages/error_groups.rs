//! Error groups (developers): `/error-groups` (title, culprit, count, first
//! and last seen, status; most recently seen first, filtered by status),
//! `/error-groups/{id}` (the group and its events, newest first, each readable:
//! exception, stack trace with in-app frames marked, request, tags, user,
//! extra and contexts), and `POST /error-groups/{id}/status` (resolve, ignore,
//! unresolve: the same `Db::set_group_status` the API calls).

use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{Layout, PageError, render_status};
use crate::db::{ErrorEventRow, ErrorGroup, GroupStatus};
use crate::event::{now_micros, zoned};
use crate::web::AppState;
use crate::web::i18n;
use crate::web::session::{CurrentUser, Role};

/// Groups listed at most.
pub const LIST_LIMIT: i64 = 500;
/// Events shown on a group's page.
pub const EVENTS_SHOWN: i64 = 20;

pub struct GroupShown {
    pub id: i64,
    pub project_id: i64,
    pub title: String,
    pub culprit: String,
    pub count: i64,
    pub first_seen: String,
    pub last_seen: String,
    pub status: &'static str,
    pub resolved_at: String,
}

fn when(t: i64, zone: &jiff::tz::TimeZone) -> String {
    zoned(t, zone).strftime("%Y-%m-%d %H:%M:%S").to_string()
}

fn shown(g: &ErrorGroup, zone: &jiff::tz::TimeZone) -> GroupShown {
    GroupShown {
        id: g.id,
        project_id: g.project_id,
        title: g.title.clone(),
        culprit: g.culprit.clone().unwrap_or_default(),
        count: g.count,
        first_seen: when(g.first_seen, zone),
        last_seen: when(g.last_seen, zone),
        status: g.status.as_str(),
        resolved_at: g.resolved_at.map(|t| when(t, zone)).unwrap_or_default(),
    }
}

pub struct Frame {
    pub in_app: bool,
    pub place: String,
    pub function: String,
    pub context: String,
}

pub struct Exception {
    pub ty: String,
    pub value: String,
    pub module: String,
    pub frames: Vec<Frame>,
}

pub struct EventShown {
    pub event_id: String,
    pub received: String,
    pub facts: Vec<(&'static str, String)>,
    pub message: String,
    pub exceptions: Vec<Exception>,
    pub tags: Vec<(String, String)>,
    /// (title key, pretty JSON)
    pub blocks: Vec<(&'static str, String)>,
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pretty(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Object(m) if m.is_empty() => None,
        Value::Array(a) if a.is_empty() => None,
        v => serde_json::to_string_pretty(v).ok(),
    }
}

fn frames(st: &Value) -> Vec<Frame> {
    let Some(all) = st.get("frames").and_then(Value::as_array) else { return Vec::new() };
    all.iter()
        .map(|f| {
            let file = ["filename", "abs_path", "module"].iter().map(|k| text(&f[*k])).find(|s| !s.is_empty());
            let mut place = file.unwrap_or_else(|| "?".into());
            if let Some(l) = f["lineno"].as_i64() {
                place.push_str(&format!(":{l}"));
                if let Some(c) = f["colno"].as_i64() {
                    place.push_str(&format!(":{c}"));
                }
            }
            Frame {
                in_app: f["in_app"].as_bool().unwrap_or(false),
                place,
                function: text(&f["function"]),
                context: text(&f["context_line"]).trim().to_owned(),
            }
        })
        .collect()
}

/// A Sentry event's JSON, readable: what people look at first.
pub fn event_shown(e: &ErrorEventRow, zone: &jiff::tz::TimeZone) -> EventShown {
    let v: Value = serde_json::from_str(&e.body).unwrap_or(Value::Null);
    let mut facts = Vec::new();
    for (key, field) in [
        ("level", "level"),
        ("platform", "platform"),
        ("environment", "environment"),
        ("release", "release"),
        ("server_name", "server_name"),
        ("transaction", "transaction"),
        ("logger", "logger"),
    ] {
        let t = text(&v[field]);
        if !t.is_empty() {
            facts.push((key, t));
        }
    }
    let message = [&v["logentry"]["formatted"], &v["logentry"]["message"], &v["message"]["formatted"], &v["message"]]
        .into_iter()
        .map(text)
        .find(|s| !s.is_empty() && !s.starts_with('{'))
        .unwrap_or_default();
    let values = match &v["exception"] {
        Value::Array(a) => a.clone(),
        x => x["values"].as_array().cloned().unwrap_or_default(),
    };
    let exceptions = values
        .iter()
        .map(|x| Exception {
            ty: text(&x["type"]),
            value: text(&x["value"]),
            module: text(&x["module"]),
            frames: frames(&x["stacktrace"]),
        })
        .collect();
    let tags = match &v["tags"] {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(|t| match t {
                Value::Array(p) if p.len() == 2 => Some((text(&p[0]), text(&p[1]))),
                Value::Object(o) => Some((text(o.get("key")?), text(o.get("value")?))),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut blocks = Vec::new();
    for (key, field) in [("request", "request"), ("user", "user"), ("extra", "extra"), ("contexts", "contexts")] {
        if let Some(p) = pretty(&v[field]) {
            blocks.push((key, p));
        }
    }
    if v.is_null() {
        blocks.push(("raw_event", e.body.clone()));
    }
    EventShown {
        event_id: e.event_id.clone(),
        received: when(e.received_at, zone),
        facts,
        message,
        exceptions,
        tags,
        blocks,
    }
}

#[derive(Template)]
#[template(path = "error_groups.html")]
struct ListPage {
    ctx: Layout,
    groups: Vec<GroupShown>,
    status: String,
    zone: String,
}

#[derive(Template)]
#[template(path = "error_group.html")]
struct GroupPage {
    ctx: Layout,
    group: GroupShown,
    events: Vec<EventShown>,
    zone: String,
}

#[derive(Deserialize)]
pub struct ListParams {
    #[serde(default)]
    status: String,
}

/// `GET /error-groups[?status=unresolved|resolved|ignored]`.
pub async fn list(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Query(p): Query<ListParams>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let want = match p.status.trim() {
        "" | "all" => None,
        s => Some(GroupStatus::parse(s).ok_or_else(|| {
            PageError::BadRequest(user.lang, format!("{} {s:?}", i18n::t(user.lang, "bad_group_status")))
        })?),
    };
    let zone = &st.display_zone;
    let groups = st
        .db
        .error_groups(LIST_LIMIT)
        .await?
        .iter()
        .filter(|g| want.is_none_or(|w| g.status == w))
        .map(|g| shown(g, zone))
        .collect();
    let ctx = Layout::new(&user, "/error-groups", i18n::t(user.lang, "error_groups").into());
    let page = ListPage {
        ctx,
        groups,
        status: want.map_or("all", |s| s.as_str()).into(),
        zone: zone.iana_name().unwrap_or("UTC").into(),
    };
    Ok(render_status(StatusCode::OK, &page))
}

async fn found(st: &AppState, user: &CurrentUser, id: &str) -> Result<ErrorGroup, PageError> {
    let missing = || PageError::not_found(user, format!("{} {id}", i18n::t(user.lang, "no_such_group")));
    let id: i64 = id.trim().parse().map_err(|_| missing())?;
    st.db.error_group(id).await?.ok_or_else(missing)
}

/// `GET /error-groups/{id}`: the group and its newest events.
pub async fn detail(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let g = found(&st, &user, &id).await?;
    let zone = &st.display_zone;
    let rows = st.db.group_events(g.id, EVENTS_SHOWN).await?;
    // An event may hold a customer's request and cart: its read is recorded.
    let ids: Vec<&str> = rows.iter().map(|e| e.event_id.as_str()).collect();
    st.db.audit_event_reads(&user.name, &ids, crate::event::now_micros()).await?;
    let events = rows.iter().map(|e| event_shown(e, zone)).collect();
    let ctx = Layout::new(&user, "/error-groups", g.title.clone());
    let page = GroupPage { ctx, group: shown(&g, zone), events, zone: zone.iana_name().unwrap_or("UTC").into() };
    Ok(render_status(StatusCode::OK, &page))
}

use super::StatusForm;

/// `POST /error-groups/{id}/status` with `status` unresolved, resolved or ignored.
pub async fn set_status(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<StatusForm>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    user.check_csrf(&f.csrf)?;
    let g = found(&st, &user, &id).await?;
    let status = GroupStatus::parse(f.status.trim()).ok_or_else(|| {
        PageError::BadRequest(user.lang, format!("{} {:?}", i18n::t(user.lang, "bad_group_status"), f.status))
    })?;
    st.db
        .set_group_status(g.id, status, now_micros())
        .await?
        .ok_or_else(|| PageError::not_found(&user, format!("{} {id}", i18n::t(user.lang, "no_such_group"))))?;
    Ok(Redirect::to(&format!("/error-groups/{}", g.id)).into_response())
}
