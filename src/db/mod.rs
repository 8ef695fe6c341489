//! The one database layer: every SQL statement orderwatch runs lives here, as a
//! method of `Db`, so the rest of the code never sees a connection or a dialect.
//!
//! Today `Db` wraps SQLite (the embedded default, a file in the data
//! directory). The SQL is written to run unchanged on PostgreSQL: `$1…$N`
//! placeholders, BIGINT/TEXT columns, epoch-µs times, no SQLite-only functions,
//! and `query_as`/`FromRow` rather than the compile-time macros (which check one
//! backend only). Adding PostgreSQL means a `Postgres` arm in `Backend`, its
//! migrations in `migrations/postgres`, and running the same tests on both.

mod notifications;

pub use notifications::{
    AttemptOutcome, AttemptRow, DueNotification, NotificationFilter, NotificationRow, RetryResult, insert_notifications,
};

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use crate::logstore::chunk::ChunkMeta;

mod errors;
mod incidents;
mod health;
mod orders;
mod projects;
pub use errors::{LeftAside, 
    ErrorEventRow, ErrorGroup, GroupAlertEvent, GroupStatus, MAX_PROCESSING_ATTEMPTS, NewErrorEvent, PendingEnvelope,
    RawEnvelope, Recorded,
};
mod searches;
mod users;
pub use users::{AuditRow, SessionRow, UserRow};
pub use incidents::{IncidentEvent, IncidentFields, IncidentRow, ReportRow, RescueCall};
pub use health::{FlowCount, HealthState};
pub use orders::{AttemptWrite, EvidenceRow, LostOrderFields, LostOrderFilter, LostOrderRow, NewEvidence};
pub use projects::Project;
pub use searches::{AlertProgress, Origin, StoredAlert, StoredSearch};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A write refused because it clashes with what is stored (e.g. a name taken).
    #[error("{0}")]
    Conflict(String),
    /// A stored row orderwatch cannot read back.
    #[error("database: {0}")]
    Corrupt(String),
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: SqlitePool,
}

#[derive(FromRow)]
struct ChunkRow {
    file_name: String,
    min_id: i64,
    max_id: i64,
    min_time: i64,
    max_time: i64,
    count: i64,
    raw_len: i64,
    body_len: i64,
    body_crc: i64,
}

impl From<ChunkRow> for ChunkMeta {
    fn from(r: ChunkRow) -> Self {
        ChunkMeta {
            file_name: r.file_name,
            count: r.count as u32,
            min_id: r.min_id as u64,
            max_id: r.max_id as u64,
            min_time: r.min_time,
            max_time: r.max_time,
            raw_len: r.raw_len as u64,
            body_len: r.body_len as u64,
            body_crc: r.body_crc as u32,
        }
    }
}

impl Db {
    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to date.
    pub async fn open_sqlite(path: &Path) -> Result<Db, DbError> {
        let opts = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed row (a sealed chunk, a notification) survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Db { pool })
    }

    /// Opens an existing database for reading only (the CLI, while a server runs).
    pub async fn open_sqlite_read_only(path: &Path) -> Result<Db, DbError> {
        let opts = SqliteConnectOptions::from_str("sqlite://")?.filename(path).read_only(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?;
        Ok(Db { pool })
    }

    pub async fn chunks(&self) -> Result<Vec<ChunkMeta>, DbError> {
        let rows: Vec<ChunkRow> = sqlx::query_as(
            "SELECT file_name, min_id, max_id, min_time, max_time, count, raw_len, body_len, body_crc
             FROM chunks ORDER BY min_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(ChunkMeta::from).collect())
    }

    /// Records a sealed chunk; recording the same chunk twice is harmless (a retry after a crash).
    pub async fn insert_chunk(&self, m: &ChunkMeta, sealed_at: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO chunks (file_name, min_id, max_id, min_time, max_time, count, raw_len, body_len, body_crc, sealed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (file_name) DO UPDATE SET
               min_id = excluded.min_id, max_id = excluded.max_id, min_time = excluded.min_time,
               max_time = excluded.max_time, count = excluded.count, raw_len = excluded.raw_len,
               body_len = excluded.body_len, body_crc = excluded.body_crc",
        )
        .bind(&m.file_name)
        .bind(m.min_id as i64)
        .bind(m.max_id as i64)
        .bind(m.min_time)
        .bind(m.max_time)
        .bind(i64::from(m.count))
        .bind(m.raw_len as i64)
        .bind(m.body_len as i64)
        .bind(i64::from(m.body_crc))
        .bind(sealed_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_chunk(&self, file_name: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM chunks WHERE file_name = $1")
            .bind(file_name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn setting(&self, key: &str) -> Result<Option<String>, DbError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Returns the stored value of `key`, storing `make()` first if there is none.
    /// Used for generated secrets that must stay the same across restarts.
    pub async fn setting_or_insert(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<(String, bool), DbError> {
        if let Some(v) = self.setting(key).await? {
            return Ok((v, false));
        }
        let value = make();
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(&value)
            .execute(&self.pool)
            .await?;
        // Another process may have won the race; the stored value is the truth.
        let stored = self.setting(key).await?.unwrap_or(value.clone());
        let created = stored == value;
        Ok((stored, created))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunk_catalog_roundtrips_and_upserts() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        let mut m = ChunkMeta {
            file_name: "a.owc".into(),
            count: 3,
            min_id: 1,
            max_id: 3,
            min_time: -5,
            max_time: 7,
            raw_len: 100,
            body_len: 40,
            body_crc: u32::MAX,
        };
        db.insert_chunk(&m, 1).await.unwrap();
        m.count = 4;
        db.insert_chunk(&m, 2).await.unwrap();
        assert_eq!(db.chunks().await.unwrap(), vec![m.clone()]);
        db.delete_chunk("a.owc").await.unwrap();
        assert!(db.chunks().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn generated_settings_stay_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open_sqlite(&path).await.unwrap();
        let (a, created) = db.setting_or_insert("k", || "first".into()).await.unwrap();
        assert!(created);
        let (b, created) = db.setting_or_insert("k", || "second".into()).await.unwrap();
        assert_eq!((a.as_str(), b.as_str(), created), ("first", "first", false));
        db.close().await;
        let db = Db::open_sqlite(&path).await.unwrap();
        assert_eq!(db.setting("k").await.unwrap().as_deref(), Some("first"));
    }
}
