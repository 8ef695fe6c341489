//! Lost orders and their evidence (migration 0008).

use sqlx::FromRow;

use super::{Db, DbError};
use crate::notify::NewNotification;
use crate::orders::Piece;

/// A piece of evidence to store: the piece, and the raw line (log) or the project (event).
pub struct NewEvidence<'a> {
    pub piece: &'a Piece,
    pub raw: Option<&'a str>,
    pub project_id: Option<i64>,
    pub received_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct EvidenceRow {
    pub id: i64,
    pub piece: String,
    pub raw: Option<String>,
    pub project_id: Option<i64>,
    pub received_at: i64,
    pub lost_order_id: Option<i64>,
}

impl EvidenceRow {
    pub fn piece(&self) -> Result<Piece, DbError> {
        serde_json::from_str(&self.piece)
            .map_err(|e| DbError::Corrupt(format!("order evidence {} does not read back: {e}", self.id)))
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct LostOrderRow {
    pub id: i64,
    pub at: i64,
    pub detected_at: i64,
    pub updated_at: i64,
    pub endpoint: String,
    pub status_code: Option<i64>,
    pub cause: String,
    pub status: String,
    pub client_ip: Option<String>,
    pub summary: String,
    pub test_reason: Option<String>,
    pub notified_at: Option<i64>,
    pub incident_id: Option<i64>,
}

/// What the joiner found a lost order to be (the parts it owns; people own `status`).
#[derive(Debug, Clone)]
pub struct LostOrderFields {
    pub at: i64,
    pub endpoint: String,
    pub status_code: Option<u16>,
    pub cause: &'static str,
    pub client_ip: Option<String>,
    pub summary: String,
    /// Why it is a developer's own order, when it is one.
    pub test_reason: Option<String>,
}

/// One attempt as the joiner wrote it.
#[derive(Debug, Clone)]
pub struct AttemptWrite {
    pub evidence_ids: Vec<i64>,
    /// The lost order it is, or `None` when it is not a lost order.
    pub lost: Option<LostOrderFields>,
    /// The stored lost order it continues.
    pub keep_id: Option<i64>,
}

/// Filters of the lost-order list.
#[derive(Debug, Clone, Default)]
pub struct LostOrderFilter {
    pub cause: Option<String>,
    pub status: Option<String>,
    pub min_time: Option<i64>,
    pub max_time: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Failed joins after which a piece of evidence is set aside.
pub const MAX_JOIN_ATTEMPTS: i64 = 5;

pub(super) const LOST_ORDER_COLUMNS: &str = "id, at, detected_at, updated_at, endpoint, status_code, cause, status, client_ip, \
     summary, test_reason, notified_at, incident_id";

pub(super) async fn insert_evidence(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    e: &NewEvidence<'_>,
) -> Result<(), DbError> {
    let p = e.piece;
    sqlx::query(
        "INSERT INTO order_evidence (kind, reference, source, endpoint, client_ip, request_id, trace_id, status_code,
           success, at, received_at, piece, raw, project_id, lost_order_id, joined)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, NULL, 0)
         ON CONFLICT (kind, reference) DO NOTHING",
    )
    .bind(p.kind.as_str())
    .bind(&p.reference)
    .bind(&p.source)
    .bind(&p.endpoint)
    .bind(&p.client_ip)
    .bind(&p.request_id)
    .bind(&p.trace_id)
    .bind(p.status.map(i64::from))
    .bind(p.success as i64)
    .bind(p.at)
    .bind(e.received_at)
    .bind(serde_json::to_string(p).expect("a Piece always serialises"))
    .bind(e.raw)
    .bind(e.project_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Db {
    pub async fn orders_cursor(&self, name: &str) -> Result<Option<i64>, DbError> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT value FROM orders_cursor WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Stores evidence read from the log store and moves the detector's
    /// cursor past it, in one transaction (a line read twice is stored once).
    pub async fn add_log_evidence(&self, evidence: &[NewEvidence<'_>], cursor: u64) -> Result<(), DbError> {
        let mut tx = self.begin().await?;
        for e in evidence {
            insert_evidence(&mut tx, e).await?;
        }
        sqlx::query(
            "INSERT INTO orders_cursor (name, value) VALUES ('log', $1)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(cursor as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Evidence not yet joined, oldest first.
    pub async fn unjoined_evidence(&self, limit: i64) -> Result<Vec<EvidenceRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, piece, raw, project_id, received_at, lost_order_id FROM order_evidence
             WHERE joined = 0 AND join_attempts < $2 ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .bind(MAX_JOIN_ATTEMPTS)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Notes a failed join of a piece (after `MAX_JOIN_ATTEMPTS` it is set aside, with its error).
    pub async fn join_failed(&self, id: i64, error: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE order_evidence SET join_attempts = join_attempts + 1, join_error = $1 WHERE id = $2")
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The evidence that shares a request id or a trace id with `p` (any time).
    pub async fn evidence_linked(&self, p: &Piece) -> Result<Vec<EvidenceRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, piece, raw, project_id, received_at, lost_order_id FROM order_evidence
             WHERE endpoint = $1 AND (request_id = $2 OR trace_id = $3) ORDER BY id LIMIT 200",
        )
        .bind(&p.endpoint)
        .bind(&p.request_id)
        .bind(&p.trace_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The evidence that may belong to the same attempts as `p`: the same
    /// endpoint and client IP, request id or trace id, between `from` and `to`;
    /// the 500 nearest in time.
    pub async fn evidence_near(&self, p: &Piece, from: i64, to: i64) -> Result<Vec<EvidenceRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, piece, raw, project_id, received_at, lost_order_id FROM order_evidence
             WHERE endpoint = $1 AND at >= $2 AND at <= $3
               AND (client_ip = $4 OR request_id = $5 OR trace_id = $6)
             ORDER BY ABS(at - $7), id LIMIT 500",
        )
        .bind(&p.endpoint)
        .bind(from)
        .bind(to)
        .bind(&p.client_ip)
        .bind(&p.request_id)
        .bind(&p.trace_id)
        .bind(p.at)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Writes what the joiner decided, in one transaction: the attempts (new
    /// lost orders get ids); the lost orders no attempt continues, each with
    /// its heir (what people recorded on it — status, incident, calls, that it
    /// was announced — goes to the heir; without an heir, one people worked
    /// on is kept); and `joined` marked. Returns the ids of the lost orders created.
    pub async fn apply_join(
        &self,
        attempts: &[AttemptWrite],
        emptied: &[(i64, Option<i64>)],
        joined: &[i64],
        now: i64,
    ) -> Result<Vec<i64>, DbError> {
        let mut tx = self.begin().await?;
        let mut created = Vec::new();
        for a in attempts {
            let lost_id = match (&a.lost, a.keep_id) {
                (None, _) => None,
                (Some(f), Some(id)) => {
                    sqlx::query(
                        "UPDATE lost_orders SET at = $1, endpoint = $2, status_code = $3, cause = $4, client_ip = $5,
                           summary = $6, updated_at = $7,
                           test_reason = $8,
                           status = CASE WHEN status = 'new' AND $8 IS NOT NULL THEN 'test'
                                         WHEN status = 'test' AND test_reason IS NOT NULL AND $8 IS NULL THEN 'new'
                                         ELSE status END
                         WHERE id = $9",
                    )
                    .bind(f.at)
                    .bind(&f.endpoint)
                    .bind(f.status_code.map(i64::from))
                    .bind(f.cause)
                    .bind(&f.client_ip)
                    .bind(&f.summary)
                    .bind(now)
                    .bind(&f.test_reason)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    Some(id)
                }
                (Some(f), None) => {
                    let (id,): (i64,) = sqlx::query_as(
                        "INSERT INTO lost_orders (at, detected_at, updated_at, endpoint, status_code, cause, status,
                           client_ip, summary, test_reason)
                         VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                    )
                    .bind(f.at)
                    .bind(now)
                    .bind(&f.endpoint)
                    .bind(f.status_code.map(i64::from))
                    .bind(f.cause)
                    .bind(if f.test_reason.is_some() { "test" } else { "new" })
                    .bind(&f.client_ip)
                    .bind(&f.summary)
                    .bind(&f.test_reason)
                    .fetch_one(&mut *tx)
                    .await?;
                    created.push(id);
                    Some(id)
                }
            };
            for &e in &a.evidence_ids {
                sqlx::query("UPDATE order_evidence SET lost_order_id = $1 WHERE id = $2")
                    .bind(lost_id)
                    .bind(e)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for &(id, heir) in emptied {
            // Only when no evidence is left with it (some may lie outside what the joiner read).
            let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM order_evidence WHERE lost_order_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            if left > 0 {
                continue;
            }
            match heir {
                Some(heir) => {
                    sqlx::query(
                        "UPDATE lost_orders SET
                           incident_id = COALESCE(incident_id, (SELECT o.incident_id FROM lost_orders o WHERE o.id = $1)),
                           notified_at = COALESCE(notified_at, (SELECT o.notified_at FROM lost_orders o WHERE o.id = $1)),
                           status = CASE WHEN status = 'new'
                                    THEN (SELECT o.status FROM lost_orders o WHERE o.id = $1) ELSE status END
                         WHERE id = $2",
                    )
                    .bind(id)
                    .bind(heir)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("UPDATE rescue_calls SET lost_order_id = $1 WHERE lost_order_id = $2")
                        .bind(heir)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM lost_orders WHERE id = $1").bind(id).execute(&mut *tx).await?;
                }
                None => {
                    // No longer a lost order (the order was placed after all): gone,
                    // unless people already worked on it.
                    sqlx::query(
                        "DELETE FROM lost_orders WHERE id = $1 AND status IN ('new', 'test') AND incident_id IS NULL
                         AND NOT EXISTS (SELECT 1 FROM rescue_calls WHERE lost_order_id = $1)",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        for &e in joined {
            sqlx::query("UPDATE order_evidence SET joined = 1 WHERE id = $1").bind(e).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    pub async fn lost_orders(&self, f: &LostOrderFilter) -> Result<Vec<LostOrderRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LOST_ORDER_COLUMNS} FROM lost_orders
             WHERE (CAST($1 AS TEXT) IS NULL OR cause = $1) AND (CAST($2 AS TEXT) IS NULL OR status = $2)
               AND (CAST($3 AS BIGINT) IS NULL OR at >= $3) AND (CAST($4 AS BIGINT) IS NULL OR at <= $4)
               AND (CAST($5 AS BIGINT) IS NULL OR at < (SELECT b.at FROM lost_orders b WHERE b.id = $5)
                    OR (at = (SELECT b.at FROM lost_orders b WHERE b.id = $5) AND id < $5))
             ORDER BY at DESC, id DESC LIMIT $6"
        )))
        .bind(&f.cause)
        .bind(&f.status)
        .bind(f.min_time)
        .bind(f.max_time)
        .bind(f.before_id)
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn lost_order(&self, id: i64) -> Result<Option<LostOrderRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {LOST_ORDER_COLUMNS} FROM lost_orders WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A lost order and its evidence as of one moment (one read transaction:
    /// a join committing between two reads cannot pair old with new).
    pub async fn lost_order_with_evidence(&self, id: i64) -> Result<Option<(LostOrderRow, Vec<EvidenceRow>)>, DbError> {
        let mut tx = self.pool.begin().await?;
        let Some(row): Option<LostOrderRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {LOST_ORDER_COLUMNS} FROM lost_orders WHERE id = $1")))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let evidence = sqlx::query_as(
            "SELECT id, piece, raw, project_id, received_at, lost_order_id FROM order_evidence
             WHERE lost_order_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some((row, evidence)))
    }

    /// A lost order's evidence, in the order it happened.
    pub async fn lost_order_evidence(&self, id: i64) -> Result<Vec<EvidenceRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, piece, raw, project_id, received_at, lost_order_id FROM order_evidence
             WHERE lost_order_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Request lines of one source from one client IP to one endpoint between two times.
    pub async fn count_requests(
        &self,
        endpoint: &str,
        source: &str,
        client_ip: &str,
        from: i64,
        to: i64,
    ) -> Result<i64, DbError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM order_evidence
             WHERE kind = 'request' AND endpoint = $1 AND source = $2 AND client_ip = $3 AND at >= $4 AND at <= $5",
        )
        .bind(endpoint)
        .bind(source)
        .bind(client_ip)
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Changes a lost order's status; false when there is no such lost order.
    pub async fn set_lost_order_status(&self, id: i64, status: &str, now: i64) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE lost_orders SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Lost orders detected at or before `detected_before` whose alert is not queued yet.
    pub async fn unnotified_lost_orders(&self, detected_before: i64) -> Result<Vec<LostOrderRow>, DbError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {LOST_ORDER_COLUMNS} FROM lost_orders
             WHERE notified_at IS NULL AND detected_at <= $1 ORDER BY id LIMIT 100"
        )))
        .bind(detected_before)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Queues a lost order's alert and marks it announced, in one transaction.
    pub async fn announce_lost_order(
        &self,
        id: i64,
        notifications: &[NewNotification],
        now: i64,
    ) -> Result<(), DbError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE lost_orders SET notified_at = $1 WHERE id = $2 AND notified_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 1 && !notifications.is_empty() {
            super::insert_notifications(&mut tx, now, notifications).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
