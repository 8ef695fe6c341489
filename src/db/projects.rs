//! Sentry projects: ids, names and the public keys their DSNs carry.

use sqlx::FromRow;

use super::{Db, DbError};

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub public_key: String,
}

impl Project {
    /// The DSN an SDK is configured with: `http(s)://<key>@<host>[/prefix]/<id>`,
    /// from the address people reach orderwatch at.
    pub fn dsn(&self, public_url: &str) -> String {
        match reqwest::Url::parse(public_url) {
            Ok(mut u) => {
                let _ = u.set_username(&self.public_key);
                let path = format!("{}/{}", u.path().trim_end_matches('/'), self.id);
                u.set_path(&path);
                u.set_query(None);
                u.set_fragment(None);
                u.into()
            }
            Err(_) => format!("http://{}@{}/{}", self.public_key, public_url, self.id),
        }
    }
}

impl Db {
    pub async fn projects(&self) -> Result<Vec<Project>, DbError> {
        Ok(sqlx::query_as("SELECT id, name, public_key FROM projects ORDER BY id").fetch_all(&self.pool).await?)
    }

    /// Makes sure there is a project: with none, project 1 `default` with the
    /// key `make_key()` gives (kept, so the DSN stays the same across restarts).
    pub async fn ensure_default_project(&self, make_key: impl FnOnce() -> String, now: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO projects (id, name, public_key, created_at)
             SELECT 1, 'default', $1, $2 WHERE NOT EXISTS (SELECT 1 FROM projects)",
        )
        .bind(make_key())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The project a public key belongs to.
    pub async fn project_by_key(&self, key: &str) -> Result<Option<Project>, DbError> {
        Ok(sqlx::query_as("SELECT id, name, public_key FROM projects WHERE public_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_forms() {
        let p = Project { id: 1, name: "default".into(), public_key: "0123456789abcdef0123456789abcdef".into() };
        assert_eq!(p.dsn("http://127.0.0.1:8080"), "http://0123456789abcdef0123456789abcdef@127.0.0.1:8080/1");
        assert_eq!(
            p.dsn("https://shop.example/orderwatch/"),
            "https://0123456789abcdef0123456789abcdef@shop.example/orderwatch/1"
        );
    }

    #[tokio::test]
    async fn the_default_project_is_made_once_and_keeps_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let db = Db::open_sqlite(&path).await.unwrap();
        db.ensure_default_project(|| "k1".into(), 0).await.unwrap();
        db.ensure_default_project(|| "k2".into(), 1).await.unwrap();
        db.close().await;
        let db = Db::open_sqlite(&path).await.unwrap();
        db.ensure_default_project(|| "k3".into(), 2).await.unwrap();
        assert_eq!(db.projects().await.unwrap(), vec![Project { id: 1, name: "default".into(), public_key: "k1".into() }]);
    

}

}
