//! Saved searches and their alerts: `GET/POST /api/v1/searches`,
//! `GET/PUT/DELETE /api/v1/searches/{id}` (admin token). The body is the shape
//! the config file uses (`alerts::SearchDef`); answers add `id`, `origin`, the
//! times and each alert's `id`. Searches from the config file change only there.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;

use crate::alerts::{AlertDef, SearchDef, SearchError};
use crate::db::{Origin, StoredSearch};
use crate::event::{now_micros, zoned};
use crate::web::AppState;
use crate::web::auth::{Api, Dev};
use crate::web::error::ApiError;

#[derive(Serialize)]
struct SearchView {
    id: i64,
    name: String,
    query: String,
    origin: Origin,
    created_at: String,
    updated_at: String,
    alerts: Vec<AlertView>,
}

#[derive(Serialize)]
struct AlertView {
    id: i64,
    #[serde(flatten)]
    def: AlertDef,
}

fn view(s: StoredSearch, zone: &jiff::tz::TimeZone) -> SearchView {
    let time = |t: i64| zoned(t, zone).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
    SearchView {
        id: s.id,
        created_at: time(s.created_at),
        updated_at: time(s.updated_at),
        name: s.name,
        query: s.query,
        origin: s.origin,
        alerts: s
            .alerts
            .into_iter()
            .map(|a| {
                let mut def = a.definition;
                def.destination = def.destination.masked();
                AlertView { id: a.id, def }
            })
            .collect(),
    }
}

/// Reads and checks a search definition from a request body; destinations
/// sent back masked, as the API shows them, stand for those of `stored`.
fn definition(st: &AppState, body: &[u8], stored: Option<&StoredSearch>) -> Result<SearchDef, ApiError> {
    let mut def: SearchDef = serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not a saved search ({e}); send {{\"name\": ..., \"query\": ..., \"alerts\": [...]}}"
        ))
    })?;
    if let Some(stored) = stored {
        for a in &mut def.alerts {
            a.destination.unmask_from(stored.alerts.iter().map(|s| &s.definition.destination));
        }
    }
    def.check(&st.display_zone).map_err(|e| match e {
        SearchError::Query(q) => ApiError::Query(q),
        SearchError::Invalid(m) => ApiError::BadRequest(m),
    })?;
    Ok(def)
}

async fn found(st: &AppState, id: i64) -> Result<StoredSearch, ApiError> {
    st.db.search_by_id(id).await?.ok_or_else(|| ApiError::NotFound(format!("there is no saved search {id}")))
}

pub async fn list(State(st): State<Arc<AppState>>, _api: Api<Dev>) -> Result<impl IntoResponse, ApiError> {
    let all: Vec<SearchView> = st.db.searches().await?.into_iter().map(|s| view(s, &st.display_zone)).collect();
    Ok(Json(all))
}

pub async fn get(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(view(found(&st, id).await?, &st.display_zone)))
}

pub async fn create(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let def = definition(&st, &body, None)?;
    let id = st.db.create_search(&def, Origin::Api, now_micros(), st.store.newest_id()).await?;
    st.alerts.reload().await?;
    Ok((StatusCode::CREATED, Json(view(found(&st, id).await?, &st.display_zone))))
}

pub async fn update(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let stored = found(&st, id).await?;
    refuse_config(&stored)?;
    let def = definition(&st, &body, Some(&stored))?;
    if !st.db.update_search(id, &def, now_micros(), st.store.newest_id()).await? {
        return Err(ApiError::NotFound(format!("there is no saved search {id}")));
    }
    st.alerts.reload().await?;
    Ok(Json(view(found(&st, id).await?, &st.display_zone)))
}

pub async fn delete(
    State(st): State<Arc<AppState>>,
    _api: Api<Dev>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    refuse_config(&found(&st, id).await?)?;
    st.db.delete_search(id).await?;
    st.alerts.reload().await?;
    Ok(StatusCode::NO_CONTENT)
}

fn refuse_config(s: &StoredSearch) -> Result<(), ApiError> {
    if s.origin == Origin::Config {
        return Err(ApiError::Conflict(format!(
            "the saved search {:?} is defined in the config file; change it there and restart orderwatch",
            s.name
        )));
    }
    Ok(())
}
