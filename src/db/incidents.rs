//! Incidents, their timelines, the letters sent about them, and the rescue
//! calls managers make (migration 0009).

use sqlx::FromRow;

use super::{Db, DbError, LostOrderRow};
use crate::notify::NewNotification;

#[derive(Debug, Clone, FromRow)]
pub struct IncidentRow {
    pub id: i64,
    pub title: String,
    pub cause: String,
    pub plain_cause: String,
    pub actions: String,
    pub assignee: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Lost orders in it (filled by the list and get queries).
    pub lost_orders: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct IncidentEvent {
    pub at: i64,
    pub what: String,
    pub detail: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct ReportRow {
    pub id: i64,
    pub incident_id: i64,
    pub created_at: i64,
    pub recipients: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub notification_id: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct RescueCall {
    pub lost_order_id: i64,
    pub at: i64,
    pub outcome: String,
    pub note: String,
}

/// What an incident is made of when created or edited.
#[derive(Debug, Clone)]
pub struct IncidentFields {
    pub title: String,
    pub cause: String,
    pub plain_cause: String,
    pub actions: String,
    pub assignee: Option<String>,
    pub status: String,
}

const INCIDENT_COLUMNS: &str = "i.id, i.title, i.cause, i.plain_cause, i.actions, i.assignee, i.status, i.created_at, \
     i.updated_at, (SELECT COUNT(*) FROM lost_orders o WHERE o.incident_id = i.id) AS lost_orders";

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

async fn event(tx: &mut Tx, incident_id: i64, at: i64, what: &str, detail: &str) -> Result<(), DbError> {
    sqlx::query("INSERT INTO incident_events (incident_id, at, what, detail) VALUES ($1, $2, $3, $4)")
        .bind(incident_id)
        .bind(at)
        .bind(what)
        .bind(detail)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Puts lost orders into an incident; every id must name a lost order.
async fn attach(tx: &mut Tx, incident_id: Option<i64>, ids: &[i64]) -> Result<(), DbError> {
    for &id in ids {
        let done = sqlx::query("UPDATE lost_orders SET incident_id = $1 WHERE id = $2")
            .bind(incident_id)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(DbError::Conflict(format!("there is no lost order {id}")));
        }
    }
    Ok(())
}

fn ids_text(ids: &[i64]) -> String {
    ids.iter().map(|i| format!("#{i}")).collect::<Vec<_>>().join(", ")
}

impl Db {
    pub async fn create_incident(&self, f: &IncidentFields, lost_orders: &[i64], now: i64) -> Result<i64, DbError> {
        let mut tx = self.begin().await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO incidents (title, cause, plain_cause, actions, assignee, status, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(&f.title)
        .bind(&f.cause)
        .bind(&f.plain_cause)
        .bind(&f.actions)
        .bind(&f.assignee)
        .bind(&f.status)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        attach(&mut tx, Some(id), lost_orders).await?;
        event(&mut tx, id, now, "created", &format!("with lost orders {}", ids_text(lost_orders))).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn update_incident(&self, id: i64, f: &IncidentFields, now: i64) -> Result<bool, DbError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE incidents SET title = $1, cause = $2, plain_cause = $3, actions = $4, assignee = $5, status = $6,
               updated_at = $7 WHERE id = $8",
        )
        .bind(&f.title)
        .bind(&f.cause)
        .bind(&f.plain_cause)
        .bind(&f.actions)
        .bind(&f.assignee)
        .bind(&f.status)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        event(&mut tx, id, now, "edited", "").await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Adds and removes lost orders; false when there is no such incident.
    pub async fn change_incident_orders(
        &self,
        id: i64,
        add: &[i64],
        remove: &[i64],
        now: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.begin().await?;
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT id FROM incidents WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
        if found.is_none() {
            return Ok(false);
        }
        attach(&mut tx, Some(id), add).await?;
        for &o in remove {
            sqlx::query("UPDATE lost_orders SET incident_id = NULL WHERE id = $1 AND incident_id = $2")
                .bind(o)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        if !add.is_empty() {
            event(&mut tx, id, now, "added", &ids_text(add)).await?;
        }
        if !remove.is_empty() {
            event(&mut tx, id, now, "removed", &ids_text(remove)).await?;
        }
        sqlx::query("UPDATE incidents SET updated_at = $1 WHERE id = $2").bind(now).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn incidents(&self, limit: i64) -> Result<Vec<IncidentRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i ORDER BY i.id DESC LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn incident(&self, id: i64) -> Result<Option<IncidentRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// An incident's lost orders, in the order they happened.
    pub async fn incident_lost_orders(&self, id: i64) -> Result<Vec<LostOrderRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM lost_orders WHERE incident_id = $1 ORDER BY at, id",
            super::orders::LOST_ORDER_COLUMNS
        )))
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Lost orders in no incident, not test orders: what incidents are suggested from.
    pub async fn lost_orders_without_incident(&self, limit: i64) -> Result<Vec<LostOrderRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM lost_orders WHERE incident_id IS NULL AND status <> 'test' ORDER BY at DESC, id DESC LIMIT $1",
            super::orders::LOST_ORDER_COLUMNS
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn incident_events(&self, id: i64) -> Result<Vec<IncidentEvent>, DbError> {
        Ok(sqlx::query_as("SELECT at, what, detail FROM incident_events WHERE incident_id = $1 ORDER BY at, id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn reports(&self, incident_id: i64) -> Result<Vec<ReportRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, incident_id, created_at, recipients, subject, text, html, notification_id FROM reports
             WHERE incident_id = $1 ORDER BY id",
        )
        .bind(incident_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Queues the letter, keeps a copy, and marks the incident and the lost
    /// orders it `named` reported, in one transaction. Returns the report's id.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_report(
        &self,
        incident_id: i64,
        named: &[i64],
        recipients: &str,
        subject: &str,
        text: &str,
        html: &str,
        letter: &NewNotification,
        now: i64,
    ) -> Result<i64, DbError> {
        let mut tx = self.begin().await?;
        let ids = super::insert_notifications(&mut tx, now, std::slice::from_ref(letter)).await?;
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO reports (incident_id, created_at, recipients, subject, text, html, notification_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(incident_id)
        .bind(now)
        .bind(recipients)
        .bind(subject)
        .bind(text)
        .bind(html)
        .bind(ids.first().copied())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE incidents SET status = 'reported', updated_at = $1 WHERE id = $2 AND status = 'open'")
            .bind(now)
            .bind(incident_id)
            .execute(&mut *tx)
            .await?;
        // Only the lost orders the letter names (one added meanwhile was not reported).
        for &o in named {
            sqlx::query(
                "UPDATE lost_orders SET status = 'reported', updated_at = $1
                 WHERE id = $2 AND incident_id = $3 AND status IN ('new', 'investigating')",
            )
            .bind(now)
            .bind(o)
            .bind(incident_id)
            .execute(&mut *tx)
            .await?;
        }
        event(&mut tx, incident_id, now, "reported", &format!("letter {id}: {subject}")).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Records a manager's call; `rescued` and `lost` also set the lost order's status.
    /// False when there is no such lost order.
    pub async fn add_rescue_call(
        &self,
        lost_order_id: i64,
        outcome: &str,
        note: &str,
        now: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.begin().await?;
        let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM lost_orders WHERE id = $1")
            .bind(lost_order_id)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Ok(false);
        }
        sqlx::query("INSERT INTO rescue_calls (lost_order_id, at, outcome, note) VALUES ($1, $2, $3, $4)")
            .bind(lost_order_id)
            .bind(now)
            .bind(outcome)
            .bind(note)
            .execute(&mut *tx)
            .await?;
        if matches!(outcome, "rescued" | "lost") {
            sqlx::query("UPDATE lost_orders SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(outcome)
                .bind(now)
                .bind(lost_order_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn rescue_calls(&self, lost_order_id: i64) -> Result<Vec<RescueCall>, DbError> {
        Ok(sqlx::query_as(
            "SELECT lost_order_id, at, outcome, note FROM rescue_calls WHERE lost_order_id = $1 ORDER BY at, id",
        )
        .bind(lost_order_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whom managers should call: lost orders not yet rescued, lost or a test, newest first.
    pub async fn rescue_queue(&self, limit: i64) -> Result<Vec<LostOrderRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM lost_orders WHERE status IN ('new', 'investigating', 'reported')
             ORDER BY at DESC, id DESC LIMIT $1",
            super::orders::LOST_ORDER_COLUMNS
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
