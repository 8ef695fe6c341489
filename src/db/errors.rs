//! Sentry reports: the envelopes as received, and the error events and groups
//! made from them.

use sqlx::FromRow;

use super::{Db, DbError};
use crate::alerts::groups::GroupAlertKind;
use crate::notify::NewNotification;

/// A Sentry request body to keep, as received.
pub struct RawEnvelope<'a> {
    pub project_id: i64,
    pub received_at: i64,
    pub event_id: Option<&'a str>,
    pub client_ip: &'a str,
    pub body: &'a [u8],
}

/// Failed attempts after which an envelope is left aside (unprocessed, with
/// its last error; its body is kept).
pub const MAX_PROCESSING_ATTEMPTS: i64 = 10;

/// A stored envelope not yet processed.
#[derive(Debug, FromRow)]
pub struct PendingEnvelope {
    pub id: i64,
    pub project_id: i64,
    pub received_at: i64,
    pub client_ip: String,
    pub body: Vec<u8>,
}

/// An error event to record, with its group.
pub struct NewErrorEvent<'a> {
    pub project_id: i64,
    pub event_id: &'a str,
    pub envelope_id: i64,
    pub received_at: i64,
    pub body: &'a str,
    pub fingerprint: &'a str,
    pub title: &'a str,
    pub culprit: Option<&'a str>,
    /// What it says about a lost order: stored with it, in one transaction.
    pub evidence: Option<&'a crate::orders::Piece>,
}

/// What people decided about an error group. New groups are `unresolved`; a
/// `resolved` one goes back to `unresolved` when an event is received after
/// it was resolved (a regression); an `ignored` one is counted, never alerted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupStatus {
    Unresolved,
    Resolved,
    Ignored,
}

impl GroupStatus {
    pub const ALL: [GroupStatus; 3] = [GroupStatus::Unresolved, GroupStatus::Resolved, GroupStatus::Ignored];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Unresolved => "unresolved",
            GroupStatus::Resolved => "resolved",
            GroupStatus::Ignored => "ignored",
        }
    }

    pub fn parse(s: &str) -> Option<GroupStatus> {
        GroupStatus::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

impl TryFrom<String> for GroupStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        GroupStatus::parse(&s).ok_or_else(|| format!("unknown error group status {s:?}"))
    }
}

/// An envelope processing gave up on (it stays stored, and can be retried).
#[derive(Debug, Clone, FromRow)]
pub struct LeftAside {
    pub id: i64,
    pub project_id: i64,
    pub received_at: i64,
    pub event_id: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ErrorGroup {
    pub id: i64,
    pub project_id: i64,
    pub title: String,
    pub culprit: Option<String>,
    pub count: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    #[sqlx(try_from = "String")]
    pub status: GroupStatus,
    /// µs, when it was resolved (only while it is `resolved`).
    pub resolved_at: Option<i64>,
}

macro_rules! group_columns {
    () => {
        "id, project_id, title, culprit, count, first_seen, last_seen, status, resolved_at"
    };
}

/// An event that made its group worth telling people about, as
/// [`Db::record_envelope`] hands it to its `alerts` callback.
#[derive(Debug, Clone, Copy)]
pub struct GroupAlertEvent<'a> {
    pub kind: GroupAlertKind,
    /// The group as this event left it (a regression's is `unresolved` again).
    pub group: &'a ErrorGroup,
    pub event_id: &'a str,
    /// A regression: when the group had been resolved.
    pub resolved_at: Option<i64>,
}

/// What [`Db::record_envelope`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Per event: its group id and whether the group is new.
    pub groups: Vec<(i64, bool)>,
    /// Per group alert: its kind and how many notifications were stored for it.
    pub alerts: Vec<(GroupAlertKind, usize)>,
}

#[derive(Debug, Clone, FromRow)]
pub struct ErrorEventRow {
    pub project_id: i64,
    pub event_id: String,
    pub group_id: i64,
    pub received_at: i64,
    pub body: String,
}

impl Db {
    /// Stores an envelope durably (the database syncs every commit) and returns its row id.
    pub async fn store_envelope(&self, e: &RawEnvelope<'_>) -> Result<i64, DbError> {
        Ok(self.store_envelopes(std::slice::from_ref(e)).await?[0])
    }

    /// Stores envelopes in one transaction (one fsync for all): their ids, in order.
    pub async fn store_envelopes(&self, all: &[RawEnvelope<'_>]) -> Result<Vec<i64>, DbError> {
        let mut tx = self.begin().await?;
        let mut ids = Vec::with_capacity(all.len());
        for e in all {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO sentry_envelopes (project_id, received_at, event_id, client_ip, body)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(e.project_id)
            .bind(e.received_at)
            .bind(e.event_id)
            .bind(e.client_ip)
            .bind(e.body)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// The stored envelopes of a project, oldest first: (event id, body).
    pub async fn envelopes(&self, project_id: i64) -> Result<Vec<(Option<String>, Vec<u8>)>, DbError> {
        Ok(sqlx::query_as("SELECT event_id, body FROM sentry_envelopes WHERE project_id = $1 ORDER BY id")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn unprocessed_envelopes(&self, limit: i64) -> Result<Vec<PendingEnvelope>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, project_id, received_at, client_ip, body FROM sentry_envelopes
             WHERE processed_at IS NULL AND attempts < $2 ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .bind(MAX_PROCESSING_ATTEMPTS)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records an envelope's events and marks it processed, in one
    /// transaction: an event id seen before (an SDK's retry) is not counted
    /// again. An event that creates its group, or is received after its group
    /// was resolved (the group goes back to `unresolved`), is handed to
    /// `alerts`; the notifications it returns are stored in the same
    /// transaction, so re-processing after a crash neither loses nor repeats
    /// one. Ignored groups are never handed over. Wake the notifier after.
    ///
    /// Several envelopes are recorded in one transaction (one commit for a
    /// batch); if it fails, record them one by one to find the one at fault.
    pub async fn record_envelopes(
        &self,
        batch: &[(i64, Vec<NewErrorEvent<'_>>)],
        now: i64,
        mut alerts: impl FnMut(&GroupAlertEvent<'_>) -> Vec<NewNotification>,
    ) -> Result<Recorded, DbError> {
        // Read-then-write: take the write lock from the start.
        let mut tx = self.begin().await?;
        let mut out = Recorded::default();
        for (envelope_id, events) in batch {
            record_one(&mut tx, *envelope_id, events, now, &mut alerts, &mut out).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Sets a group's status (`resolved_at` is when it was first resolved:
    /// resolving a resolved group again changes nothing). None: no such group.
    pub async fn set_group_status(
        &self,
        id: i64,
        status: GroupStatus,
        now: i64,
    ) -> Result<Option<ErrorGroup>, DbError> {
        Ok(sqlx::query_as(concat!(
            "UPDATE error_groups SET
               resolved_at = CASE WHEN $1 = 'resolved'
                             THEN COALESCE(CASE WHEN status = 'resolved' THEN resolved_at END, $2) END,
               status = $1
             WHERE id = $3 RETURNING ",
            group_columns!()
        ))
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Notes a failed attempt at processing an envelope (it stays unprocessed,
    /// and after `MAX_PROCESSING_ATTEMPTS` it is left aside with its error).
    pub async fn envelope_failed(&self, envelope_id: i64, error: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE sentry_envelopes SET attempts = attempts + 1, last_error = $1 WHERE id = $2")
            .bind(error)
            .bind(envelope_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Envelopes left aside after `MAX_PROCESSING_ATTEMPTS` failed attempts:
    /// (id, project, received_at, event id, attempts, last error), oldest first.
    pub async fn left_aside_envelopes(&self, limit: i64) -> Result<Vec<LeftAside>, DbError> {
        Ok(sqlx::query_as(
            "SELECT id, project_id, received_at, event_id, attempts, last_error FROM sentry_envelopes
             WHERE processed_at IS NULL AND attempts >= $1 ORDER BY id LIMIT $2",
        )
        .bind(MAX_PROCESSING_ATTEMPTS)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Gives an unprocessed envelope its attempts back (after a fix); false
    /// when there is no such unprocessed envelope.
    pub async fn retry_envelope(&self, id: i64) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE sentry_envelopes SET attempts = 0 WHERE id = $1 AND processed_at IS NULL")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn error_event(&self, event_id: &str) -> Result<Option<ErrorEventRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT project_id, event_id, group_id, received_at, body FROM error_events WHERE event_id = $1
             ORDER BY received_at LIMIT 1",
        )
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Groups, the most recently seen first.
    pub async fn error_groups(&self, limit: i64) -> Result<Vec<ErrorGroup>, DbError> {
        Ok(sqlx::query_as(concat!(
            "SELECT ",
            group_columns!(),
            " FROM error_groups ORDER BY last_seen DESC, id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn error_group(&self, id: i64) -> Result<Option<ErrorGroup>, DbError> {
        Ok(sqlx::query_as(concat!("SELECT ", group_columns!(), " FROM error_groups WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A group's events, newest first.
    pub async fn group_events(&self, group_id: i64, limit: i64) -> Result<Vec<ErrorEventRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT project_id, event_id, group_id, received_at, body FROM error_events WHERE group_id = $1
             ORDER BY received_at DESC LIMIT $2",
        )
        .bind(group_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// One envelope's part of [`Db::record_envelopes`].
async fn record_one(
    tx: &mut sqlx::Transaction<'static, sqlx::Sqlite>,
    envelope_id: i64,
    events: &[NewErrorEvent<'_>],
    now: i64,
    alerts: &mut impl FnMut(&GroupAlertEvent<'_>) -> Vec<NewNotification>,
    out: &mut Recorded,
) -> Result<(), DbError> {
    for e in events {
        let seen: Option<(i64,)> =
            sqlx::query_as("SELECT group_id FROM error_events WHERE project_id = $1 AND event_id = $2")
                .bind(e.project_id)
                .bind(e.event_id)
                .fetch_optional(&mut **tx)
                .await?;
        if let Some((g,)) = seen {
            out.groups.push((g, false));
            continue;
        }
        let mut group: ErrorGroup = sqlx::query_as(concat!(
            "INSERT INTO error_groups (project_id, fingerprint, title, culprit, count, first_seen, last_seen)
                 VALUES ($1, $2, $3, $4, 1, $5, $5)
                 ON CONFLICT (project_id, fingerprint) DO UPDATE SET
                   count = error_groups.count + 1,
                   last_seen = CASE WHEN excluded.last_seen > error_groups.last_seen
                               THEN excluded.last_seen ELSE error_groups.last_seen END
                 RETURNING ",
            group_columns!()
        ))
        .bind(e.project_id)
        .bind(e.fingerprint)
        .bind(e.title)
        .bind(e.culprit)
        .bind(e.received_at)
        .fetch_one(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO error_events (project_id, event_id, group_id, envelope_id, received_at, body)
                 VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.project_id)
        .bind(e.event_id)
        .bind(group.id)
        .bind(e.envelope_id)
        .bind(e.received_at)
        .bind(e.body)
        .execute(&mut **tx)
        .await?;
        if let Some(piece) = e.evidence {
            let ev =
                super::NewEvidence { piece, raw: None, project_id: Some(e.project_id), received_at: e.received_at };
            super::orders::insert_evidence(tx, &ev).await?;
        }
        let new = group.count == 1;
        out.groups.push((group.id, new));
        let (kind, resolved_at) = if new {
            (GroupAlertKind::FirstSeen, None)
        } else if group.status == GroupStatus::Resolved && group.resolved_at.is_none_or(|r| e.received_at >= r) {
            // Received after it was resolved: it is back. (An event received
            // before, and read only now, belongs to what was resolved.)
            sqlx::query("UPDATE error_groups SET status = 'unresolved', resolved_at = NULL WHERE id = $1")
                .bind(group.id)
                .execute(&mut **tx)
                .await?;
            let was = group.resolved_at.take();
            group.status = GroupStatus::Unresolved;
            (GroupAlertKind::Regression, was)
        } else {
            continue;
        };
        let notes = alerts(&GroupAlertEvent { kind, group: &group, event_id: e.event_id, resolved_at });
        let stored =
            if notes.is_empty() { 0 } else { super::insert_notifications(tx, now, &notes).await?.len() };
        out.alerts.push((kind, stored));
    }
    sqlx::query("UPDATE sentry_envelopes SET processed_at = $1 WHERE id = $2")
        .bind(now)
        .bind(envelope_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
