//! The dashboard's users, their sessions, login attempts and the audit log
//! (migration 0011). Passwords arrive here already hashed (`web::session`
//! hashes and verifies); a session is found by the hash of its token, so the
//! database never holds a cookie that would log anyone in.

use sqlx::FromRow;

use super::{Db, DbError};

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub password_hash: String,
    pub role: String,
    pub lang: String,
    pub created_at: i64,
}

/// A live session and its user, as the page and API extractors read them.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub user_id: i64,
    pub name: String,
    pub role: String,
    pub lang: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub at: i64,
    pub who: String,
    pub action: String,
    pub object: String,
}

impl Db {
    /// Adds a user; a name already taken is a `Conflict`.
    pub async fn create_user(
        &self,
        name: &str,
        password_hash: &str,
        role: &str,
        lang: &str,
        now: i64,
    ) -> Result<i64, DbError> {
        let r = sqlx::query(
            "INSERT INTO users (name, password_hash, role, lang, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(password_hash)
        .bind(role)
        .bind(lang)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(DbError::Conflict(format!("a user named {name:?} already exists")));
        }
        Ok(r.last_insert_rowid())
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, DbError> {
        Ok(sqlx::query_as("SELECT id, name, password_hash, role, lang, created_at FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn user_count(&self) -> Result<i64, DbError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?;
        Ok(n)
    }

    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>, DbError> {
        Ok(sqlx::query_as("SELECT id, name, password_hash, role, lang, created_at FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Removes a user and ends their sessions; false when there is no such user.
    pub async fn remove_user(&self, name: &str) -> Result<bool, DbError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = $1)")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1").bind(name).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Changes a user's password hash or role (`None`: unchanged) and ends
    /// their sessions; false when there is no such user.
    pub async fn change_user(&self, name: &str, password_hash: Option<&str>, role: Option<&str>) -> Result<bool, DbError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET password_hash = COALESCE($1, password_hash), role = COALESCE($2, role) WHERE name = $3",
        )
        .bind(password_hash)
        .bind(role)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = $1)")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_user_lang(&self, user_id: i64, lang: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE users SET lang = $1 WHERE id = $2").bind(lang).bind(user_id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_at, last_seen, expires_at)
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session with this token hash and its user, whatever its age (the caller judges expiry).
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, DbError> {
        Ok(sqlx::query_as(
            "SELECT s.user_id, u.name, u.role, u.lang, s.csrf, s.created_at, s.last_seen, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn touch_session(&self, token_hash: &str, now: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE sessions SET last_seen = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(&self.pool).await?;
        Ok(())
    }

    /// Removes sessions that ended (absolute end, or idle since `idle_before`).
    pub async fn delete_expired_sessions(&self, now: i64, idle_before: i64) -> Result<u64, DbError> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen < $2")
            .bind(now)
            .bind(idle_before)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Starts a login attempt, counted as a failure until `login_succeeded`:
    /// forgets attempts older than `since`, then, in one transaction, counts
    /// the failures since `since` for this name from this address and from
    /// this address at all, and records this attempt unless one of them is
    /// already at `max` (then `None`). Concurrent attempts cannot all see "no
    /// failures yet": each is counted before it is checked.
    pub async fn begin_login_attempt(
        &self,
        username: &str,
        client_ip: &str,
        since: i64,
        max: i64,
        at: i64,
    ) -> Result<Option<i64>, DbError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM login_attempts WHERE at < $1").bind(since).execute(&mut *tx).await?;
        let (by_user,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM login_attempts WHERE username = $1 AND client_ip = $2 AND at >= $3 AND ok = 0",
        )
        .bind(username)
        .bind(client_ip)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
        let (by_ip,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM login_attempts WHERE client_ip = $1 AND at >= $2 AND ok = 0")
                .bind(client_ip)
                .bind(since)
                .fetch_one(&mut *tx)
                .await?;
        if by_user >= max || by_ip >= max {
            tx.commit().await?;
            return Ok(None);
        }
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO login_attempts (at, username, client_ip, ok) VALUES ($1, $2, $3, 0) RETURNING id",
        )
        .bind(at)
        .bind(username)
        .bind(client_ip)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    pub async fn login_succeeded(&self, attempt: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE login_attempts SET ok = 1 WHERE id = $1").bind(attempt).execute(&self.pool).await?;
        Ok(())
    }

    /// Records that `who` did `action` to each of `objects` (one transaction).
    pub async fn audit(&self, who: &str, action: &str, objects: &[String], at: i64) -> Result<(), DbError> {
        if objects.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for o in objects {
            sqlx::query("INSERT INTO audit_log (at, who, action, object) VALUES ($1, $2, $3, $4)")
                .bind(at)
                .bind(who)
                .bind(action)
                .bind(o)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records that `who` read the customer data of these lost orders.
    pub async fn audit_customer_reads(&self, who: &str, lost_orders: &[i64], at: i64) -> Result<(), DbError> {
        let objects: Vec<String> = lost_orders.iter().map(|id| format!("lost_order:{id}")).collect();
        self.audit(who, "read_customer_data", &objects, at).await
    }

    /// Records reads of Sentry events (they may hold a customer's request and cart).
    pub async fn audit_event_reads(&self, who: &str, event_ids: &[&str], at: i64) -> Result<(), DbError> {
        let objects: Vec<String> = event_ids.iter().map(|id| format!("error_event:{id}")).collect();
        self.audit(who, "read_customer_data", &objects, at).await
    }

    /// The audit log, newest first.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditRow>, DbError> {
        Ok(sqlx::query_as("SELECT at, who, action, object FROM audit_log ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }
}
