//! Saved searches and their alerts (developers): `/searches` (the list and
//! a form for a new one), `/searches/{id}` (one, its alerts with their times in
//! each alert's zone, and its edit form; `/searches/{id}/edit` is the same
//! page, as alert notifications link there), `POST /searches`, `POST
//! /searches/{id}`, `POST /searches/{id}/delete`.
//!
//! A form is turned into the API's `SearchDef` and checked by the same
//! `SearchDef::check` (and the same unmasking of destinations shown masked),
//! so the dashboard accepts exactly what the API does; each message is shown
//! next to its field. Searches from the config file are shown read-only.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{FieldErrors, Layout, PageError, render_status};
use crate::alerts::{AlertDef, AlertKind, Destination, MAX_ALERTS, SearchDef, SearchError};
use crate::db::{DbError, Origin, StoredSearch};
use crate::event::{now_micros, zoned};
use crate::web::AppState;
use crate::web::i18n;
use crate::web::session::{CurrentUser, Lang, Role};

/// One alert as the form shows and sends it.
#[derive(Default, Clone)]
pub struct AlertRow {
    pub index: usize,
    pub kind: String,
    pub interval: String,
    pub threshold: String,
    pub time_zone: String,
    pub batch: String,
    pub active_hours: String,
    pub dest: String,
    pub url: String,
    pub secret: String,
    pub to: String,
    pub cc: String,
    pub bot_token: String,
    pub chat_id: String,
    errors: BTreeMap<&'static str, String>,
}

impl AlertRow {
    /// The message for one of this alert's fields.
    pub fn e(&self, field: &str) -> Option<&str> {
        self.errors.get(field).map(String::as_str)
    }

    pub fn kind_is(&self, k: &str) -> bool {
        self.kind == k
    }

    pub fn dest_is(&self, d: &str) -> bool {
        self.dest == d
    }

    /// The form name of one of this alert's fields.
    pub fn n(&self, field: &str) -> String {
        format!("a{}_{field}", self.index)
    }

    fn from_def(index: usize, d: &AlertDef) -> AlertRow {
        let mut r = AlertRow {
            index,
            kind: kind_str(d.kind).into(),
            interval: d.interval.clone().unwrap_or_default(),
            threshold: d.threshold.map(|t| t.to_string()).unwrap_or_default(),
            time_zone: d.time_zone.clone().unwrap_or_default(),
            batch: d.batch.clone().unwrap_or_default(),
            active_hours: d.active_hours.clone().unwrap_or_default(),
            ..AlertRow::default()
        };
        match d.destination.masked() {
            Destination::Webhook { url } => (r.dest, r.url) = ("webhook".into(), url),
            Destination::WebhookJson { url, secret } => {
                (r.dest, r.url, r.secret) = ("webhook_json".into(), url, secret)
            }
            Destination::Email { to, cc } => (r.dest, r.to, r.cc) = ("email".into(), to.join(", "), cc.join(", ")),
            Destination::Slack { url } => (r.dest, r.url) = ("slack".into(), url),
            Destination::Telegram { bot_token, chat_id } => {
                (r.dest, r.bot_token, r.chat_id) = ("telegram".into(), bot_token, chat_id)
            }
        }
        r
    }

    fn blank(index: usize) -> AlertRow {
        AlertRow { index, ..AlertRow::default() }
    }

    /// The alert this row defines; `None` for a blank row. Errors go to the row's fields.
    fn read_def(&mut self, lang: Lang) -> Option<AlertDef> {
        let kind = match self.kind.as_str() {
            "" => return None,
            "immediate" => AlertKind::Immediate,
            "periodic" => AlertKind::Periodic,
            "inactivity" => AlertKind::Inactivity,
            _ => {
                self.errors.insert("kind", i18n::t(lang, "alert_kind_unknown").into());
                AlertKind::Immediate
            }
        };
        let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let threshold = match opt(&self.threshold) {
            None => None,
            Some(t) => match t.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    self.errors.insert("threshold", i18n::t(lang, "threshold_number").into());
                    None
                }
            },
        };
        let list = |s: &str| -> Vec<String> {
            s.split([',', ';', ' ', '\n']).map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect()
        };
        let destination = match self.dest.as_str() {
            "email" => Destination::Email { to: list(&self.to), cc: list(&self.cc) },
            "webhook" => Destination::Webhook { url: self.url.trim().to_owned() },
            "webhook_json" => {
                Destination::WebhookJson { url: self.url.trim().to_owned(), secret: self.secret.trim().to_owned() }
            }
            "slack" => Destination::Slack { url: self.url.trim().to_owned() },
            "telegram" => Destination::Telegram {
                bot_token: self.bot_token.trim().to_owned(),
                chat_id: self.chat_id.trim().to_owned(),
            },
            _ => {
                self.errors.insert("destination", i18n::t(lang, "choose_destination").into());
                Destination::Webhook { url: String::new() }
            }
        };
        Some(AlertDef {
            kind,
            interval: opt(&self.interval),
            threshold,
            time_zone: opt(&self.time_zone),
            batch: opt(&self.batch),
            active_hours: opt(&self.active_hours),
            destination,
        })
    }
}

fn kind_str(k: AlertKind) -> &'static str {
    match k {
        AlertKind::Immediate => "immediate",
        AlertKind::Periodic => "periodic",
        AlertKind::Inactivity => "inactivity",
    }
}

/// An alert as the detail page lists it.
pub struct AlertShown {
    pub kind: &'static str,
    pub rule: String,
    pub zone: String,
    pub destination: String,
    pub evaluated: String,
}

pub struct SearchShown {
    pub id: i64,
    pub name: String,
    pub query: String,
    pub config: bool,
    pub created: String,
    pub updated: String,
    pub alerts: Vec<AlertShown>,
}

/// A destination in words, masked.
pub fn destination_words(d: &Destination) -> String {
    match d.masked() {
        Destination::Webhook { url } => format!("webhook {url}"),
        Destination::WebhookJson { url, secret } => format!("webhook_json {url} (secret {secret})"),
        Destination::Email { to, cc } if cc.is_empty() => format!("email {}", to.join(", ")),
        Destination::Email { to, cc } => format!("email {} (cc {})", to.join(", "), cc.join(", ")),
        Destination::Slack { url } => format!("slack {url}"),
        Destination::Telegram { bot_token, chat_id } => format!("telegram {chat_id} (bot {bot_token})"),
    }
}

fn shown(s: &StoredSearch, zone: &jiff::tz::TimeZone, lang: Lang) -> SearchShown {
    let when = |t: i64, z: &jiff::tz::TimeZone| zoned(t, z).strftime("%Y-%m-%d %H:%M:%S %:z").to_string();
    let alerts = s
        .alerts
        .iter()
        .map(|a| {
            let d = &a.definition;
            let (z, zone_name) =
                match d.time_zone.as_deref().and_then(|n| jiff::tz::TimeZone::get(n).ok().map(|z| (z, n))) {
                    Some((z, n)) => (z, n.to_owned()),
                    None => (zone.clone(), zone.iana_name().unwrap_or("UTC").to_owned()),
                };
            let mut rule = Vec::new();
            if let Some(i) = &d.interval {
                rule.push(format!("{} {i}", i18n::t(lang, "interval")));
            }
            if let Some(t) = d.threshold {
                rule.push(format!("{} {t}", i18n::t(lang, "threshold")));
            }
            if let Some(b) = &d.batch {
                rule.push(format!("{} {b}", i18n::t(lang, "batch")));
            }
            if let Some(h) = &d.active_hours {
                rule.push(format!("{} {h}", i18n::t(lang, "active_hours")));
            }
            AlertShown {
                kind: kind_str(d.kind),
                rule: rule.join(", "),
                destination: destination_words(&d.destination),
                evaluated: if a.evaluated_at > 0 { when(a.evaluated_at, &z) } else { "—".into() },
                zone: zone_name,
            }
        })
        .collect();
    SearchShown {
        id: s.id,
        name: s.name.clone(),
        query: s.query.clone(),
        config: s.origin == Origin::Config,
        created: when(s.created_at, zone),
        updated: when(s.updated_at, zone),
        alerts,
    }
}

#[derive(Template)]
#[template(path = "searches.html")]
struct ListPage {
    ctx: Layout,
    searches: Vec<SearchShown>,
    form: SearchForm,
}

#[derive(Template)]
#[template(path = "saved_search.html")]
struct DetailPage {
    ctx: Layout,
    search: SearchShown,
    form: SearchForm,
}

/// The form for a search and its alerts.
#[derive(Default)]
pub struct SearchForm {
    pub name: String,
    pub query: String,
    pub alerts: Vec<AlertRow>,
    pub errors: FieldErrors,
    /// Where it posts.
    pub action: String,
}

impl SearchForm {
    fn new(action: String) -> SearchForm {
        SearchForm { alerts: vec![AlertRow::blank(0)], action, ..SearchForm::default() }
    }

    fn of(s: &StoredSearch) -> SearchForm {
        let mut alerts: Vec<AlertRow> =
            s.alerts.iter().enumerate().map(|(i, a)| AlertRow::from_def(i, &a.definition)).collect();
        if alerts.len() < MAX_ALERTS {
            alerts.push(AlertRow::blank(alerts.len()));
        }
        SearchForm {
            name: s.name.clone(),
            query: s.query.clone(),
            alerts,
            action: format!("/searches/{}", s.id),
            ..SearchForm::default()
        }
    }

    /// Reads the posted fields (`name`, `query`, `a{i}_{field}`); rows marked for removal are dropped.
    fn read(pairs: &[(String, String)], action: String) -> (SearchForm, String) {
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let mut form = SearchForm { name: get("name"), query: get("query"), action, ..SearchForm::default() };
        for i in 0..=MAX_ALERTS {
            let f = |field: &str| get(&format!("a{i}_{field}"));
            if !pairs.iter().any(|(n, _)| n.starts_with(&format!("a{i}_"))) || f("remove") == "1" {
                continue;
            }
            let index = form.alerts.len();
            form.alerts.push(AlertRow {
                index,
                kind: f("kind"),
                interval: f("interval"),
                threshold: f("threshold"),
                time_zone: f("time_zone"),
                batch: f("batch"),
                active_hours: f("active_hours"),
                dest: f("dest"),
                url: f("url"),
                secret: f("secret"),
                to: f("to"),
                cc: f("cc"),
                bot_token: f("bot_token"),
                chat_id: f("chat_id"),
                errors: BTreeMap::new(),
            });
        }
        (form, get("csrf"))
    }

    /// The definition, checked as the API checks it; `None` when a field has a message.
    fn definition(&mut self, st: &AppState, lang: Lang, stored: Option<&StoredSearch>) -> Option<SearchDef> {
        let mut rows = Vec::new();
        let mut alerts = Vec::new();
        for row in &mut self.alerts {
            if let Some(d) = row.read_def(lang) {
                rows.push(row.index);
                alerts.push(d);
            }
        }
        if self.name.trim().is_empty() {
            self.errors.add("name", i18n::t(lang, "required"));
        }
        if self.errors.is_empty() && self.alerts.iter().all(|r| r.errors.is_empty()) {
            let mut def = SearchDef { name: self.name.trim().to_owned(), query: self.query.clone(), alerts };
            if let Some(stored) = stored {
                for a in &mut def.alerts {
                    a.destination.unmask_from(stored.alerts.iter().map(|s| &s.definition.destination));
                }
            }
            match def.check(&st.display_zone) {
                Ok(_) => return Some(def),
                Err(SearchError::Query(q)) => self
                    .errors
                    .add("query", format!("{} {}: {}", i18n::t(lang, "query_error_at"), q.position, q.message)),
                Err(SearchError::Invalid(m)) => self.place(&m, &rows),
            }
        }
        // Blank rows stay, so another alert can be added.
        if self.alerts.len() < MAX_ALERTS && !self.alerts.iter().any(|r| r.kind.is_empty()) {
            self.alerts.push(AlertRow::blank(self.alerts.len()));
        }
        None
    }

    /// Puts a check's message ("alerts[1].interval: …", "name: …") next to its field.
    fn place(&mut self, m: &str, rows: &[usize]) {
        if let Some(rest) = m.strip_prefix("alerts[")
            && let Some((i, rest)) = rest.split_once("].")
            && let Some(&row) = i.parse::<usize>().ok().and_then(|i| rows.get(i))
        {
            let field = rest.split([':', '.']).next().unwrap_or("");
            let field = ["interval", "threshold", "time_zone", "batch", "active_hours", "destination"]
                .into_iter()
                .find(|f| *f == field)
                .unwrap_or("kind");
            self.alerts[row].errors.insert(field, rest.to_owned());
        } else if m.starts_with("name:") {
            self.errors.add("name", m);
        } else if m.starts_with("query:") {
            self.errors.add("query", m);
        } else {
            self.errors.add("form", m);
        }
    }
}

#[derive(Deserialize)]
pub struct ListParams {
    #[serde(default)]
    query: String,
}

async fn list_page(
    st: &AppState,
    user: &CurrentUser,
    form: SearchForm,
    status: StatusCode,
) -> Result<Response, PageError> {
    let searches = st.db.searches().await?.iter().map(|s| shown(s, &st.display_zone, user.lang)).collect();
    let ctx = Layout::new(user, "/searches", i18n::t(user.lang, "saved_searches").into());
    Ok(render_status(status, &ListPage { ctx, searches, form }))
}

/// `GET /searches`: every saved search, and a form for a new one (`?query=` fills it in).
pub async fn list(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Query(p): Query<ListParams>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let mut form = SearchForm::new("/searches".into());
    form.query = p.query;
    list_page(&st, &user, form, StatusCode::OK).await
}

async fn found(st: &AppState, user: &CurrentUser, id: &str) -> Result<StoredSearch, PageError> {
    let missing = || PageError::not_found(user, format!("{} {id}", i18n::t(user.lang, "no_such_search")));
    let id: i64 = id.trim().parse().map_err(|_| missing())?;
    st.db.search_by_id(id).await?.ok_or_else(missing)
}

fn detail_page(
    st: &AppState,
    user: &CurrentUser,
    s: &StoredSearch,
    form: SearchForm,
    saved: bool,
    status: StatusCode,
) -> Response {
    let mut ctx = Layout::new(user, "/searches", s.name.clone());
    if saved {
        ctx.flash = Some(i18n::t(user.lang, "saved").into());
    }
    render_status(status, &DetailPage { ctx, search: shown(s, &st.display_zone, user.lang), form })
}

#[derive(Deserialize)]
pub struct SavedParam {
    #[serde(default)]
    saved: String,
}

/// `GET /searches/{id}` (and `/searches/{id}/edit`).
pub async fn detail(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
    Query(p): Query<SavedParam>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let s = found(&st, &user, &id).await?;
    Ok(detail_page(&st, &user, &s, SearchForm::of(&s), p.saved == "1", StatusCode::OK))
}

fn internal(e: anyhow::Error) -> PageError {
    PageError::Internal(Lang::En, e)
}

/// `POST /searches`: a new saved search.
pub async fn create(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let (mut form, csrf) = SearchForm::read(&pairs, "/searches".into());
    user.check_csrf(&csrf)?;
    let Some(def) = form.definition(&st, user.lang, None) else {
        return list_page(&st, &user, form, StatusCode::BAD_REQUEST).await;
    };
    match st.db.create_search(&def, Origin::Api, now_micros(), st.store.newest_id()).await {
        Ok(id) => {
            st.alerts.reload().await.map_err(internal)?;
            Ok(Redirect::to(&format!("/searches/{id}?saved=1")).into_response())
        }
        Err(DbError::Conflict(m)) => {
            form.errors.add("name", m);
            list_page(&st, &user, form, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

fn read_only(user: &CurrentUser, s: &StoredSearch) -> Result<(), PageError> {
    if s.origin == Origin::Config {
        return Err(PageError::BadRequest(user.lang, i18n::t(user.lang, "search_from_config").into()));
    }
    Ok(())
}

/// `POST /searches/{id}`: the search changed.
pub async fn update(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let s = found(&st, &user, &id).await?;
    let (mut form, csrf) = SearchForm::read(&pairs, format!("/searches/{}", s.id));
    user.check_csrf(&csrf)?;
    read_only(&user, &s)?;
    let Some(def) = form.definition(&st, user.lang, Some(&s)) else {
        return Ok(detail_page(&st, &user, &s, form, false, StatusCode::BAD_REQUEST));
    };
    match st.db.update_search(s.id, &def, now_micros(), st.store.newest_id()).await {
        Ok(true) => {
            st.alerts.reload().await.map_err(internal)?;
            Ok(Redirect::to(&format!("/searches/{}?saved=1", s.id)).into_response())
        }
        Ok(false) => Err(PageError::not_found(&user, format!("{} {id}", i18n::t(user.lang, "no_such_search")))),
        Err(DbError::Conflict(m)) => {
            form.errors.add("name", m);
            Ok(detail_page(&st, &user, &s, form, false, StatusCode::CONFLICT))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /searches/{id}/delete`.
pub async fn delete(
    State(st): State<Arc<AppState>>,
    user: CurrentUser,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    user.require(Role::Developer)?;
    let s = found(&st, &user, &id).await?;
    user.check_csrf(&f.csrf)?;
    read_only(&user, &s)?;
    st.db.delete_search(s.id).await?;
    st.alerts.reload().await.map_err(internal)?;
    Ok(Redirect::to("/searches").into_response())
}
