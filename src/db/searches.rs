//! Saved searches, their alerts, and the alert cursors.

use sqlx::FromRow;

use super::{Db, DbError};
use crate::alerts::{AlertDef, SearchDef};
use crate::notify::NewNotification;

/// Where a saved search was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Api,
    Config,
}

impl Origin {
    fn as_str(self) -> &'static str {
        match self {
            Origin::Api => "api",
            Origin::Config => "config",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoredSearch {
    pub id: i64,
    pub name: String,
    pub query: String,
    pub origin: Origin,
    pub created_at: i64,
    pub updated_at: i64,
    pub alerts: Vec<StoredAlert>,
}

#[derive(Debug, Clone)]
pub struct StoredAlert {
    pub id: i64,
    pub search_id: i64,
    pub definition: AlertDef,
    /// Events with an id up to this one are accounted for.
    pub cursor_id: u64,
    /// µs of the last evaluation.
    pub evaluated_at: i64,
    /// The engine's own state (JSON).
    pub state: String,
}

/// An alert's progress, written after an evaluation.
#[derive(Debug, Clone)]
pub struct AlertProgress {
    pub alert_id: i64,
    pub cursor_id: u64,
    pub evaluated_at: i64,
    pub state: String,
}

#[derive(FromRow)]
struct SearchRow {
    id: i64,
    name: String,
    query: String,
    origin: String,
    created_at: i64,
    updated_at: i64,
}

#[derive(FromRow)]
struct AlertRow {
    id: i64,
    search_id: i64,
    definition: String,
    cursor_id: i64,
    evaluated_at: i64,
    state: String,
}

impl AlertRow {
    fn into_stored(self) -> Result<StoredAlert, DbError> {
        let definition = serde_json::from_str(&self.definition)
            .map_err(|e| DbError::Corrupt(format!("alert {}: definition: {e}", self.id)))?;
        Ok(StoredAlert {
            id: self.id,
            search_id: self.search_id,
            definition,
            cursor_id: self.cursor_id as u64,
            evaluated_at: self.evaluated_at,
            state: self.state,
        })
    }
}

fn unique_name(e: sqlx::Error, name: &str) -> DbError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => {
            DbError::Conflict(format!("a saved search named {name:?} already exists; choose another name"))
        }
        _ => DbError::Sqlx(e),
    }
}

macro_rules! search_columns {
    () => {
        "id, name, query, origin, created_at, updated_at"
    };
}
macro_rules! alert_columns {
    () => {
        "id, search_id, definition, cursor_id, evaluated_at, state"
    };
}

impl Db {
    /// Every saved search with its alerts, by id.
    pub async fn searches(&self) -> Result<Vec<StoredSearch>, DbError> {
        let rows: Vec<SearchRow> =
            sqlx::query_as(concat!("SELECT ", search_columns!(), " FROM saved_searches ORDER BY id"))
                .fetch_all(&self.pool)
                .await?;
        let alerts: Vec<AlertRow> =
            sqlx::query_as(concat!("SELECT ", alert_columns!(), " FROM alerts ORDER BY search_id, position, id"))
                .fetch_all(&self.pool)
                .await?;
        let mut alerts = alerts.into_iter().peekable();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut mine = Vec::new();
            while let Some(a) = alerts.next_if(|a| a.search_id <= r.id) {
                if a.search_id == r.id {
                    mine.push(a.into_stored()?);
                }
            }
            out.push(search_from_row(r, mine));
        }
        Ok(out)
    }

    pub async fn search_by_id(&self, id: i64) -> Result<Option<StoredSearch>, DbError> {
        let row: Option<SearchRow> =
            sqlx::query_as(concat!("SELECT ", search_columns!(), " FROM saved_searches WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let alerts: Vec<AlertRow> = sqlx::query_as(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE search_id = $1 ORDER BY position, id"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let alerts = alerts.into_iter().map(AlertRow::into_stored).collect::<Result<_, _>>()?;
        Ok(Some(search_from_row(row, alerts)))
    }

    pub async fn search_id_by_name(&self, name: &str) -> Result<Option<(i64, Origin)>, DbError> {
        let row: Option<(i64, String)> = sqlx::query_as("SELECT id, origin FROM saved_searches WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(id, o)| (id, origin(&o))))
    }

    /// Stores a new saved search; its alerts start after `cursor_id` (the newest stored event).
    pub async fn create_search(
        &self,
        def: &SearchDef,
        origin: Origin,
        now: i64,
        cursor_id: u64,
    ) -> Result<i64, DbError> {
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO saved_searches (name, query, origin, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
        )
        .bind(def.name.trim())
        .bind(&def.query)
        .bind(origin.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_name(e, def.name.trim()))?;
        let start = Start { cursor_id, evaluated_at: now, state: "{}".into() };
        for (pos, a) in def.alerts.iter().enumerate() {
            insert_alert(&mut tx, id, pos, a, now, &start).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces a saved search's name, query and alerts. An alert whose
    /// definition is unchanged keeps its id and cursor (so changing one alert
    /// neither repeats nor skips the others' lines); new ones start after
    /// `cursor_id`. Returns false when there is no such search.
    pub async fn update_search(&self, id: i64, def: &SearchDef, now: i64, cursor_id: u64) -> Result<bool, DbError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE saved_searches SET name = $1, query = $2, updated_at = $3 WHERE id = $4")
            .bind(def.name.trim())
            .bind(&def.query)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_name(e, def.name.trim()))?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let old: Vec<AlertRow> = sqlx::query_as(concat!(
            "SELECT ",
            alert_columns!(),
            " FROM alerts WHERE search_id = $1 ORDER BY position, id"
        ))
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        // An unchanged alert keeps its row. A changed one takes over the row's
        // place of the first (by id) unclaimed old alert of the same kind: its
        // cursor, window start and state, so the lines that alert had not yet
        // reported are reported by its successor (the engine moves its pending
        // lines over the same way). A row that no longer parses is never claimed.
        // (row, its definition, kept as it is, already taken over)
        let mut old: Vec<(AlertRow, Option<AlertDef>, bool, bool)> = old
            .into_iter()
            .map(|a| {
                let d = serde_json::from_str(&a.definition).ok();
                (a, d, false, false)
            })
            .collect();
        old.sort_by_key(|o| o.0.id);
        let mut unmatched = Vec::new();
        for (pos, a) in def.alerts.iter().enumerate() {
            match old.iter_mut().find(|(_, d, kept, _)| !*kept && d.as_ref() == Some(a)) {
                Some((row, _, kept, _)) => {
                    *kept = true;
                    sqlx::query("UPDATE alerts SET position = $1 WHERE id = $2")
                        .bind(pos as i64)
                        .bind(row.id)
                        .execute(&mut *tx)
                        .await?;
                }
                None => unmatched.push((pos, a)),
            }
        }
        for (pos, a) in unmatched {
            let heir = old
                .iter_mut()
                .find(|(_, d, kept, taken)| !*kept && !*taken && d.as_ref().is_some_and(|d| d.kind == a.kind));
            let start = match heir {
                Some((row, _, _, taken)) => {
                    *taken = true;
                    Start { cursor_id: row.cursor_id as u64, evaluated_at: row.evaluated_at, state: row.state.clone() }
                }
                None => Start { cursor_id, evaluated_at: now, state: "{}".into() },
            };
            insert_alert(&mut tx, id, pos, a, now, &start).await?;
        }
        // What is not kept was removed or replaced.
        for (gone, ..) in old.into_iter().filter(|o| !o.2) {
            sqlx::query("DELETE FROM alerts WHERE id = $1").bind(gone.id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn delete_search(&self, id: i64) -> Result<bool, DbError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM alerts WHERE search_id = $1").bind(id).execute(&mut *tx).await?;
        let done = sqlx::query("DELETE FROM saved_searches WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores an alert's notifications and moves its cursor in one
    /// transaction. Returns false (and stores nothing) when the alert was
    /// deleted meanwhile.
    pub async fn commit_alert(
        &self,
        progress: &AlertProgress,
        notifications: &[NewNotification],
        now: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE alerts SET cursor_id = $1, evaluated_at = $2, state = $3 WHERE id = $4")
            .bind(progress.cursor_id as i64)
            .bind(progress.evaluated_at)
            .bind(&progress.state)
            .bind(progress.alert_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if !notifications.is_empty() {
            super::insert_notifications(&mut tx, now, notifications).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Moves the cursors of alerts that had nothing to say (one transaction).
    pub async fn save_alert_progress(&self, all: &[AlertProgress]) -> Result<(), DbError> {
        if all.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for p in all {
            sqlx::query("UPDATE alerts SET cursor_id = $1, evaluated_at = $2, state = $3 WHERE id = $4")
                .bind(p.cursor_id as i64)
                .bind(p.evaluated_at)
                .bind(&p.state)
                .bind(p.alert_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Where a new alert row starts.
struct Start {
    cursor_id: u64,
    evaluated_at: i64,
    state: String,
}

async fn insert_alert(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    search_id: i64,
    position: usize,
    def: &AlertDef,
    now: i64,
    start: &Start,
) -> Result<(), DbError> {
    let definition = serde_json::to_string(def).expect("an AlertDef always serialises");
    sqlx::query(
        "INSERT INTO alerts (search_id, position, definition, cursor_id, evaluated_at, state, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(search_id)
    .bind(position as i64)
    .bind(definition)
    .bind(start.cursor_id as i64)
    .bind(start.evaluated_at)
    .bind(&start.state)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn origin(s: &str) -> Origin {
    if s == "config" { Origin::Config } else { Origin::Api }
}

fn search_from_row(r: SearchRow, alerts: Vec<StoredAlert>) -> StoredSearch {
    StoredSearch {
        id: r.id,
        name: r.name,
        query: r.query,
        origin: origin(&r.origin),
        created_at: r.created_at,
        updated_at: r.updated_at,
        alerts,
    }
}
