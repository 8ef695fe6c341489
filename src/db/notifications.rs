//! The notification outbox's SQL: insert (also inside a caller's transaction),
//! pick and claim due rows, record attempts, list for the API, retry.
//! The policy (what is due, backoff, giving up) is the notifier's; this is storage.

use sqlx::{FromRow, QueryBuilder, Sqlite, SqliteConnection};

use super::{Db, DbError};
use crate::notify::NewNotification;

/// A row the worker may attempt now. `Debug` leaves out the message (it holds secrets).
#[derive(Clone, FromRow)]
pub struct DueNotification {
    pub id: i64,
    pub created_at: i64,
    pub channel: String,
    pub target: String,
    pub destination: String,
    /// JSON of `notify::Message`.
    pub message: String,
    pub failures: i64,
    pub due_since: i64,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Sent,
    /// Transient failure: due again at `next_attempt_at`.
    Retry {
        error: String,
        next_attempt_at: i64,
    },
    /// Permanent failure, or failing for too long.
    Failed {
        error: String,
    },
}

impl AttemptOutcome {
    pub fn name(&self) -> &'static str {
        match self {
            AttemptOutcome::Sent => "sent",
            AttemptOutcome::Retry { .. } => "retry",
            AttemptOutcome::Failed { .. } => "failed",
        }
    }
}

/// A notification as the API shows it. `Debug` leaves out the message (it holds secrets).
#[derive(Clone, FromRow)]
pub struct NotificationRow {
    pub id: i64,
    pub created_at: i64,
    pub source: String,
    pub dedup_key: Option<String>,
    pub channel: String,
    pub target: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
    /// JSON of `notify::Message`, for its summary; never shown whole.
    pub message: String,
    #[sqlx(skip)]
    pub attempt_log: Vec<AttemptRow>,
}

impl std::fmt::Debug for DueNotification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DueNotification")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("target", &self.target)
            .field("destination", &self.destination)
            .field("failures", &self.failures)
            .field("due_since", &self.due_since)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for NotificationRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationRow")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("source", &self.source)
            .field("dedup_key", &self.dedup_key)
            .field("channel", &self.channel)
            .field("target", &self.target)
            .field("status", &self.status)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("last_error", &self.last_error)
            .field("sent_at", &self.sent_at)
            .field("attempt_log", &self.attempt_log)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct AttemptRow {
    pub notification_id: i64,
    pub at: i64,
    pub duration_ms: i64,
    /// None: this attempt delivered it.
    pub error: Option<String>,
}

/// Filters and paging for [`Db::list_notifications`].
#[derive(Debug, Clone, Default)]
pub struct NotificationFilter {
    pub status: Option<String>,
    pub source: Option<String>,
    /// Only ids below this (the next page of a newest-first list).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// What [`Db::retry_notification`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryResult {
    /// It is pending and due now.
    Due,
    AlreadySent,
    NotFound,
}

/// Inserts notifications through `conn`, which may be inside the caller's
/// transaction (an alert stores its notifications and moves its window cursor
/// atomically). Returns the ids of the rows inserted; an item whose
/// `dedup_key` is already stored is skipped. The rows are due at once; call
/// `Notifier::wake` after the commit so the worker sees them without waiting
/// for its poll.
pub async fn insert_notifications(
    conn: &mut SqliteConnection,
    now_us: i64,
    items: &[NewNotification],
) -> Result<Vec<i64>, DbError> {
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let message =
            serde_json::to_string(&item.message).expect("a notify::Message always serialises");
        let channel = item.message.channel();
        let id: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO notifications
               (created_at, source, dedup_key, channel, target, destination, message, status,
                attempts, failures, due_since, next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, 0, $1, $1)
             ON CONFLICT (dedup_key) DO NOTHING
             RETURNING id",
        )
        .bind(now_us)
        .bind(&item.source)
        .bind(&item.dedup_key)
        .bind(channel)
        .bind(item.message.target())
        .bind(item.message.destination())
        .bind(&message)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some((id,)) = id {
            crate::telemetry::notification_enqueued(channel);
            ids.push(id);
        }
    }
    Ok(ids)
}

const ROW_COLUMNS: &str = "id, created_at, source, dedup_key, channel, target, status, attempts, next_attempt_at, last_error, sent_at, message";

impl Db {
    /// A transaction that holds the write lock from its first statement
    /// (`BEGIN IMMEDIATE`), so a read-then-write transaction cannot fail
    /// halfway because another connection wrote meanwhile; it waits for the
    /// busy timeout instead. Commit with `tx.commit().await`.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, Sqlite>, DbError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Stores notifications (one transaction); see [`insert_notifications`].
    pub async fn enqueue(&self, items: &[NewNotification]) -> Result<Vec<i64>, DbError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let now = crate::event::now_micros();
        let mut tx = self.begin().await?;
        let ids = insert_notifications(&mut tx, now, items).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Due, unclaimed rows, oldest due first, at most `per_destination` of each
    /// destination and `limit` in all.
    pub async fn due_notifications(
        &self,
        now_us: i64,
        per_destination: usize,
        limit: usize,
    ) -> Result<Vec<DueNotification>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, created_at, channel, target, destination, message, failures, due_since FROM (
               SELECT id, created_at, channel, target, destination, message, failures, due_since, next_attempt_at,
                      ROW_NUMBER() OVER (PARTITION BY destination ORDER BY next_attempt_at, id) AS rn
               FROM notifications
               WHERE status = 'pending' AND next_attempt_at <= $1
                 AND (claimed_until IS NULL OR claimed_until <= $1)
             ) due
             WHERE rn <= $2
             ORDER BY next_attempt_at, id
             LIMIT $3",
        )
        .bind(now_us)
        .bind(per_destination as i64)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Claims the rows among `ids` that are still due and unclaimed, until
    /// `until_us`; returns the ids claimed.
    pub async fn claim_notifications(
        &self,
        ids: &[i64],
        now_us: i64,
        until_us: i64,
    ) -> Result<Vec<i64>, DbError> {
        let mut tx = self.begin().await?;
        let mut claimed = Vec::with_capacity(ids.len());
        for &id in ids {
            let r = sqlx::query(
                "UPDATE notifications SET claimed_until = $2
                 WHERE id = $1 AND status = 'pending' AND (claimed_until IS NULL OR claimed_until <= $3)",
            )
            .bind(id)
            .bind(until_us)
            .bind(now_us)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 1 {
                claimed.push(id);
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Frees every claim: run when the (one) notifier starts, so what a
    /// stopped process had in flight is due at once. Returns how many.
    pub async fn release_notification_claims(&self) -> Result<u64, DbError> {
        let r = sqlx::query(
            "UPDATE notifications SET claimed_until = NULL WHERE claimed_until IS NOT NULL",
        )
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// When the next pending row not due yet will be.
    pub async fn next_notification_due_after(&self, now_us: i64) -> Result<Option<i64>, DbError> {
        let (t,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(next_attempt_at) FROM notifications WHERE status = 'pending' AND next_attempt_at > $1",
        )
        .bind(now_us)
        .fetch_one(&self.pool)
        .await?;
        Ok(t)
    }

    /// Records one attempt and its outcome, and frees the claim.
    pub async fn record_notification_attempt(
        &self,
        id: i64,
        at_us: i64,
        duration_ms: i64,
        outcome: &AttemptOutcome,
    ) -> Result<(), DbError> {
        let mut tx = self.begin().await?;
        let error = match outcome {
            AttemptOutcome::Sent => None,
            AttemptOutcome::Retry { error, .. } | AttemptOutcome::Failed { error } => {
                Some(error.as_str())
            }
        };
        sqlx::query("INSERT INTO notification_attempts (notification_id, at, duration_ms, error) VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(at_us)
            .bind(duration_ms)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        let done_at = at_us + duration_ms * 1000;
        match outcome {
            AttemptOutcome::Sent => {
                sqlx::query(
                    "UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = $2,
                       last_error = NULL, claimed_until = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(done_at)
                .execute(&mut *tx)
                .await?;
            }
            AttemptOutcome::Retry {
                error,
                next_attempt_at,
            } => {
                sqlx::query(
                    "UPDATE notifications SET status = 'pending', attempts = attempts + 1, failures = failures + 1,
                       last_error = $2, next_attempt_at = $3, claimed_until = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(error)
                .bind(next_attempt_at)
                .execute(&mut *tx)
                .await?;
            }
            AttemptOutcome::Failed { error } => {
                sqlx::query(
                    "UPDATE notifications SET status = 'failed', attempts = attempts + 1, failures = failures + 1,
                       last_error = $2, claimed_until = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(error)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Newest first, each with its last `attempts_each` attempts (oldest first).
    pub async fn list_notifications(
        &self,
        f: &NotificationFilter,
        attempts_each: usize,
    ) -> Result<Vec<NotificationRow>, DbError> {
        let mut rows: Vec<NotificationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ROW_COLUMNS} FROM notifications
             WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) AND (CAST($2 AS TEXT) IS NULL OR source = $2)
               AND (CAST($3 AS BIGINT) IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4"
        )))
        .bind(&f.status)
        .bind(&f.source)
        .bind(f.before_id)
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await?;
        self.attach_attempts(&mut rows, attempts_each).await?;
        Ok(rows)
    }

    /// One notification with its last `attempts_each` attempts.
    pub async fn notification(
        &self,
        id: i64,
        attempts_each: usize,
    ) -> Result<Option<NotificationRow>, DbError> {
        let row: Option<NotificationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ROW_COLUMNS} FROM notifications WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let mut rows: Vec<NotificationRow> = row.into_iter().collect();
        self.attach_attempts(&mut rows, attempts_each).await?;
        Ok(rows.pop())
    }

    async fn attach_attempts(
        &self,
        rows: &mut [NotificationRow],
        attempts_each: usize,
    ) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "SELECT notification_id, at, duration_ms, error FROM (
               SELECT notification_id, at, duration_ms, error, id,
                      ROW_NUMBER() OVER (PARTITION BY notification_id ORDER BY id DESC) AS rn
               FROM notification_attempts WHERE notification_id IN (",
        );
        let mut ids = q.separated(", ");
        for r in rows.iter() {
            ids.push_bind(r.id);
        }
        q.push(")) a WHERE rn <= ");
        q.push_bind(attempts_each as i64);
        q.push(" ORDER BY notification_id, id");
        let attempts: Vec<AttemptRow> = q.build_query_as().fetch_all(&self.pool).await?;
        let mut by_id: std::collections::HashMap<i64, Vec<AttemptRow>> =
            std::collections::HashMap::new();
        for a in attempts {
            by_id.entry(a.notification_id).or_default().push(a);
        }
        for r in rows.iter_mut() {
            r.attempt_log = by_id.remove(&r.id).unwrap_or_default();
        }
        Ok(())
    }

    /// Makes a pending or failed notification due now, with a fresh backoff
    /// and give-up horizon. A sent one is left alone.
    pub async fn retry_notification(&self, id: i64, now_us: i64) -> Result<RetryResult, DbError> {
        let r = sqlx::query(
            "UPDATE notifications SET status = 'pending', next_attempt_at = $2, due_since = $2, failures = 0
             WHERE id = $1 AND status <> 'sent'",
        )
        .bind(id)
        .bind(now_us)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 1 {
            return Ok(RetryResult::Due);
        }
        let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM notifications WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(if exists.is_some() {
            RetryResult::AlreadySent
        } else {
            RetryResult::NotFound
        })
    }

    /// How many notifications there are, by status and channel (for /metrics).
    pub async fn notification_counts(&self) -> Result<Vec<(String, String, i64)>, DbError> {
        Ok(sqlx::query_as(
            "SELECT status, channel, COUNT(*) FROM notifications GROUP BY status, channel",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::Message;

    fn slack(n: u32, key: Option<&str>, host: &str) -> NewNotification {
        NewNotification {
            source: format!("alert:{n}"),
            dedup_key: key.map(str::to_owned),
            message: Message::Slack {
                url: format!("https://{host}/services/T/B/SECRET"),
                text: format!("m{n}"),
            },
        }
    }

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn dedup_keys_are_stored_once_and_nulls_never_collide() {
        let (_d, db) = db().await;
        let ids = db
            .enqueue(&[
                slack(1, Some("k"), "a"),
                slack(2, None, "a"),
                slack(3, None, "a"),
            ])
            .await
            .unwrap();
        assert_eq!(ids.len(), 3);
        let again = db
            .enqueue(&[slack(4, Some("k"), "a"), slack(5, Some("other"), "a")])
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        let all = db
            .list_notifications(
                &NotificationFilter {
                    limit: 100,
                    ..Default::default()
                },
                10,
            )
            .await
            .unwrap();
        assert_eq!(all.len(), 4);
        assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(all[0].target, "https://a/services/…");
    }

    #[tokio::test]
    async fn inserts_join_the_callers_transaction() {
        let (_d, db) = db().await;
        let mut tx = db.begin().await.unwrap();
        let ids = insert_notifications(&mut tx, 5, &[slack(1, Some("x"), "a")])
            .await
            .unwrap();
        assert_eq!(ids.len(), 1);
        tx.rollback().await.unwrap();
        assert!(
            db.due_notifications(10, 4, 100).await.unwrap().is_empty(),
            "rolled back with the caller"
        );
        let mut tx = db.begin().await.unwrap();
        insert_notifications(&mut tx, 5, &[slack(1, Some("x"), "a")])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(db.due_notifications(10, 4, 100).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn due_rows_are_limited_per_destination_and_claims_hold() {
        let (_d, db) = db().await;
        let mut items: Vec<_> = (0..5).map(|n| slack(n, None, "slow.example")).collect();
        items.push(slack(9, None, "fast.example"));
        db.enqueue(&items).await.unwrap();
        let now = crate::event::now_micros();
        let due = db.due_notifications(now, 2, 100).await.unwrap();
        let dests: Vec<&str> = due.iter().map(|d| d.destination.as_str()).collect();
        assert_eq!(dests.iter().filter(|d| d.contains("slow")).count(), 2);
        assert_eq!(dests.iter().filter(|d| d.contains("fast")).count(), 1);

        let ids: Vec<i64> = due.iter().map(|d| d.id).collect();
        assert_eq!(
            db.claim_notifications(&ids, now, now + 1_000_000)
                .await
                .unwrap(),
            ids
        );
        assert!(
            db.claim_notifications(&ids, now, now + 1_000_000)
                .await
                .unwrap()
                .is_empty(),
            "claimed once"
        );
        let rest = db.due_notifications(now, 10, 100).await.unwrap();
        assert_eq!(rest.len(), 3);
        assert!(rest.iter().all(|r| !ids.contains(&r.id)));
        // A claim whose lease ended is free again, and a restart frees all.
        assert_eq!(
            db.due_notifications(now + 2_000_000, 10, 100)
                .await
                .unwrap()
                .len(),
            6
        );
        assert_eq!(db.release_notification_claims().await.unwrap(), 3);
    }

    #[tokio::test]
    async fn attempts_move_the_status_and_retry_makes_it_due() {
        let (_d, db) = db().await;
        let id = db.enqueue(&[slack(1, None, "a")]).await.unwrap()[0];
        db.record_notification_attempt(
            id,
            10,
            5,
            &AttemptOutcome::Retry {
                error: "503".into(),
                next_attempt_at: i64::MAX - 1,
            },
        )
        .await
        .unwrap();
        assert!(
            db.due_notifications(crate::event::now_micros(), 4, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            db.next_notification_due_after(0).await.unwrap(),
            Some(i64::MAX - 1)
        );
        db.record_notification_attempt(
            id,
            20,
            5,
            &AttemptOutcome::Failed {
                error: "404".into(),
            },
        )
        .await
        .unwrap();
        let n = db.notification(id, 10).await.unwrap().unwrap();
        assert_eq!(
            (n.status.as_str(), n.attempts, n.last_error.as_deref()),
            ("failed", 2, Some("404"))
        );
        assert_eq!(
            n.attempt_log
                .iter()
                .map(|a| a.error.clone().unwrap())
                .collect::<Vec<_>>(),
            ["503", "404"]
        );

        let now = crate::event::now_micros();
        assert_eq!(
            db.retry_notification(id, now).await.unwrap(),
            RetryResult::Due
        );
        let due = db.due_notifications(now, 4, 10).await.unwrap();
        assert_eq!((due.len(), due[0].failures, due[0].due_since), (1, 0, now));
        db.record_notification_attempt(id, 30, 5, &AttemptOutcome::Sent)
            .await
            .unwrap();
        assert_eq!(
            db.retry_notification(id, now).await.unwrap(),
            RetryResult::AlreadySent
        );
        assert_eq!(
            db.retry_notification(id + 100, now).await.unwrap(),
            RetryResult::NotFound
        );
        let n = db.notification(id, 2).await.unwrap().unwrap();
        assert_eq!(
            (n.status.as_str(), n.sent_at, n.last_error),
            ("sent", Some(30 + 5_000), None)
        );
        assert_eq!(n.attempt_log.len(), 2, "the newest two");
        assert_eq!(n.attempt_log[1].error, None);
    }
}
