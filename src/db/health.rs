//! Order-flow health (migration 0010): request lines counted per source, the
//! last order placed, and each health alert's firing state.

use sqlx::FromRow;

use super::{Db, DbError};
use crate::notify::NewNotification;

/// Request lines of one source (`log:<program>`) for one endpoint in a span of time.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct FlowCount {
    pub endpoint: String,
    pub source: String,
    pub successes: i64,
    pub failures: i64,
}

/// Whether a health alert is firing, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, FromRow)]
pub struct HealthState {
    /// µs: when it fired; `None` while all is well.
    pub firing_since: Option<i64>,
    /// The no-orders alert: the last order placed when it fired.
    pub reference: Option<i64>,
}

impl Db {
    /// Order-endpoint request lines whose time is in `[from, to)`, per endpoint and source.
    pub async fn order_flow_counts(&self, from: i64, to: i64) -> Result<Vec<FlowCount>, DbError> {
        Ok(sqlx::query_as(
            "SELECT endpoint, source, CAST(SUM(success) AS BIGINT) AS successes,
                    CAST(COUNT(*) - SUM(success) AS BIGINT) AS failures
             FROM order_evidence WHERE kind = 'request' AND at >= $1 AND at < $2
             GROUP BY endpoint, source ORDER BY endpoint, source",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    /// When the last order was placed (the latest successful request line), µs.
    pub async fn last_order_placed(&self) -> Result<Option<i64>, DbError> {
        let (at,): (Option<i64>,) =
            sqlx::query_as("SELECT MAX(at) FROM order_evidence WHERE kind = 'request' AND success = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(at)
    }

    pub async fn order_health_state(&self, name: &str) -> Result<HealthState, DbError> {
        let row: Option<HealthState> =
            sqlx::query_as("SELECT firing_since, reference FROM order_health WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.unwrap_or_default())
    }

    /// Moves a health alert from `from` to `to` and stores its notifications,
    /// in one transaction; nothing happens (false) when the stored state is no
    /// longer `from` (another checker got there first).
    pub async fn commit_order_health(
        &self,
        name: &str,
        from: HealthState,
        to: HealthState,
        notifications: &[NewNotification],
        now: i64,
    ) -> Result<bool, DbError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO order_health (name, firing_since, reference, updated_at) VALUES ($1, NULL, NULL, $2)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "UPDATE order_health SET firing_since = $1, reference = $2, updated_at = $3
             WHERE name = $4 AND firing_since IS NOT DISTINCT FROM $5 AND reference IS NOT DISTINCT FROM $6",
        )
        .bind(to.firing_since)
        .bind(to.reference)
        .bind(now)
        .bind(name)
        .bind(from.firing_since)
        .bind(from.reference)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        super::insert_notifications(&mut tx, now, notifications).await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Destination;
    use crate::db::NewEvidence;
    use crate::notify::Message;
    use crate::orders::Piece;
    use crate::orders::evidence::Kind;

    fn line(id: u64, program: &str, status: u16, at: i64) -> Piece {
        Piece {
            kind: Kind::Request,
            reference: id.to_string(),
            source: format!("log:{program}"),
            endpoint: "POST /api/v1/orders/".into(),
            method: Some("POST".into()),
            path: Some("/api/v1/orders/".into()),
            status: Some(status),
            success: status == 201,
            client_ip: Some("10.0.0.1".into()),
            request_id: None,
            trace_id: None,
            remote_user: None,
            at,
            network_error: None,
        }
    }

    #[tokio::test]
    async fn counts_per_source_last_order_and_state_changes_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let pieces = [
            line(1, "nginx", 201, 100),
            line(2, "website-backend", 201, 100),
            line(3, "nginx", 502, 150),
            line(4, "nginx", 500, 200),
            line(5, "website-backend", 500, 200),
            line(6, "nginx", 201, 300),
        ];
        let rows: Vec<NewEvidence> = pieces
            .iter()
            .map(|p| NewEvidence { piece: p, raw: Some("x"), project_id: None, received_at: p.at })
            .collect();
        db.add_log_evidence(&rows, 6).await.unwrap();
        let counts = db.order_flow_counts(100, 300).await.unwrap();
        assert_eq!(
            counts.iter().map(|c| (c.source.as_str(), c.successes, c.failures)).collect::<Vec<_>>(),
            [("log:nginx", 1, 2), ("log:website-backend", 1, 1)]
        );
        assert_eq!(db.last_order_placed().await.unwrap(), Some(300));

        assert_eq!(db.order_health_state("failure_share").await.unwrap(), HealthState::default());
        let n = NewNotification {
            source: "order_health:failure_share".into(),
            dedup_key: Some("order_health:failure_share:7:fired:0".into()),
            message: crate::orders::render::message(
                &Destination::Webhook { url: "http://127.0.0.1:9/h".into() },
                "s",
                "t",
                || serde_json::json!({}),
            ),
        };
        assert!(matches!(n.message, Message::Webhook { .. }));
        let firing = HealthState { firing_since: Some(7), reference: None };
        assert!(
            db.commit_order_health("failure_share", HealthState::default(), firing, std::slice::from_ref(&n), 7)
                .await
                .unwrap()
        );
        // A second checker that read the old state changes nothing and stores nothing.
        assert!(!db.commit_order_health("failure_share", HealthState::default(), firing, &[n], 8).await.unwrap());
        assert_eq!(db.order_health_state("failure_share").await.unwrap(), firing);
        assert_eq!(db.notification_counts().await.unwrap().iter().map(|c| c.2).sum::<i64>(), 1);
        assert!(db.commit_order_health("failure_share", firing, HealthState::default(), &[], 9).await.unwrap());
        assert_eq!(db.order_health_state("failure_share").await.unwrap(), HealthState::default());
    }
}
