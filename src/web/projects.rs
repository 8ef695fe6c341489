//! `GET /api/v1/projects` (admin token): the Sentry projects and the DSN to
//! configure each SDK with, `[{"id": 1, "name": "default", "dsn": "..."}]`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::web::AppState;
use crate::web::auth::{Api, Dev};
use crate::web::error::ApiError;

#[derive(Serialize, serde::Deserialize, Debug, PartialEq, Eq)]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    pub dsn: String,
}

pub async fn list(State(st): State<Arc<AppState>>, _api: Api<Dev>) -> Result<Json<Vec<ProjectView>>, ApiError> {
    let all = st.db.projects().await?;
    Ok(Json(
        all.into_iter().map(|p| ProjectView { dsn: p.dsn(&st.public_url), id: p.id, name: p.name }).collect(),
    ))
}
