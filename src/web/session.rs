//! Dashboard logins: users' roles and languages, password hashing (argon2id,
//! PHC strings), sessions, CSRF and login rate limiting.
//!
//! A session is a random 256-bit token in the `ow_session` cookie
//! (`HttpOnly; SameSite=Lax; Path=/`, and `Secure` when `http.public_url`
//! is https); the database keeps only its sha256, with the user, a CSRF token,
//! and its times. It ends after `IDLE` without a request or `MAX_AGE` after
//! login, whichever comes first, or at logout.
//!
//! CSRF: every form carries the session's token in a hidden `csrf` field, and
//! scripts send it as `X-CSRF-Token`; every POST of a page and every non-GET
//! API call made with the session cookie is refused without it. (SameSite=Lax
//! already keeps other sites' POSTs from carrying the cookie; the token is the
//! second lock. Lax, not Strict, so that a link in an alert email opens the
//! page for a logged-in user: GETs only read.)
//!
//! Logins: at most `LOGIN_MAX_FAILURES` failures per user name and per client
//! address in `LOGIN_WINDOW`, counted in the database so a restart does not
//! reset them.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sha2::Digest;
use subtle::ConstantTimeEq;

use crate::db::{Db, DbError, UserRow};
use crate::event::now_micros;
use crate::web::AppState;
use crate::web::pages::PageError;

pub const COOKIE: &str = "ow_session";
const HOUR_US: i64 = 3_600_000_000;
/// A session ends after this long without a request…
pub const IDLE_US: i64 = 12 * HOUR_US;
/// …or this long after the login, whichever comes first.
pub const MAX_AGE_US: i64 = 7 * 24 * HOUR_US;
pub const LOGIN_WINDOW_US: i64 = 15 * 60 * 1_000_000;
pub const LOGIN_MAX_FAILURES: i64 = 5;
pub const MIN_PASSWORD_CHARS: usize = 10;

/// What a user may do. Each role includes the ones below it:
/// admin ⊃ developer ⊃ manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The lost orders with customer data and the rescue queue.
    Manager,
    /// Everything except user management.
    Developer,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Developer, Role::Manager];

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "developer" => Some(Role::Developer),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Manager => "manager",
        }
    }

    /// Whether this role may do what needs `need`.
    pub fn allows(self, need: Role) -> bool {
        self >= need
    }
}

/// The language pages are shown in, chosen per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    En,
    Ru,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }
}

/// The logged-in user of a page request (an axum extractor).
///
/// No session, or an ended one, is a `PageError::Login`: a 303 to
/// `/login?next=<path>` (the path only: never a query, which could hold
/// anything).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub lang: Lang,
    pub csrf: String,
}

impl CurrentUser {
    /// `Ok` when the user's role includes `need`, else a 403 page.
    pub fn require(&self, need: Role) -> Result<(), PageError> {
        if self.role.allows(need) { Ok(()) } else { Err(PageError::Forbidden(self.lang, Some(Box::new(self.clone())))) }
    }

    pub fn can(&self, need: Role) -> bool {
        self.role.allows(need)
    }

    /// Checks a form's (or a header's) CSRF token against the session's.
    pub fn check_csrf(&self, presented: &str) -> Result<(), PageError> {
        if csrf_matches(&self.csrf, presented) { Ok(()) } else { Err(PageError::Csrf(self.lang)) }
    }
}

pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

impl FromRequestParts<Arc<AppState>> for CurrentUser {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        match from_headers(&st.db, &parts.headers).await {
            Ok(Some(u)) => Ok(u),
            // Back to the page after the login; a form's POST cannot be
            // replayed as a GET, so it goes to the default page instead.
            Ok(None) => Err(PageError::Login {
                next: if parts.method == axum::http::Method::GET { parts.uri.path().to_owned() } else { String::new() },
            }),
            Err(e) => Err(PageError::Internal(Lang::En, e.into())),
        }
    }
}

/// The cookie's token, if the request carries one.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The session's user, when the request carries a live session; an ended
/// session is removed. `last_seen` moves at most once a minute.
pub async fn from_headers(db: &Db, headers: &HeaderMap) -> Result<Option<CurrentUser>, DbError> {
    let Some(token) = cookie_token(headers) else { return Ok(None) };
    let hash = sha256_hex(token);
    let Some(s) = db.session(&hash).await? else { return Ok(None) };
    let now = now_micros();
    if now >= s.expires_at || now - s.last_seen > IDLE_US {
        db.delete_session(&hash).await?;
        return Ok(None);
    }
    if now - s.last_seen > 60_000_000 {
        db.touch_session(&hash, now).await?;
    }
    let Some(role) = Role::parse(&s.role) else { return Ok(None) };
    Ok(Some(CurrentUser {
        id: s.user_id,
        name: s.name,
        role,
        lang: Lang::parse(&s.lang).unwrap_or_default(),
        csrf: s.csrf,
    }))
}

pub fn sha256_hex(s: &str) -> String {
    hex(&sha2::Sha256::digest(s.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// 256 random bits, hex.
pub fn random_token() -> String {
    crate::web::auth::generate_token()
}

/// A readable random password for the first admin: 20 characters, about 119 bits.
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Why a password cannot be used (too short), in words that say what to do.
pub fn check_new_password(pw: &str) -> Result<(), String> {
    let n = pw.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(format!("the password has {n} characters; give at least {MIN_PASSWORD_CHARS}"));
    }
    if pw.len() > 1024 {
        return Err("the password is longer than 1024 bytes".into());
    }
    Ok(())
}

/// The password's argon2id PHC string (a fresh random salt each time).
pub fn hash_password(pw: &str) -> anyhow::Result<String> {
    use argon2::PasswordHasher;
    let h = argon2::Argon2::default()
        .hash_password(pw.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    Ok(h.to_string())
}

pub fn verify_password(pw: &str, phc: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::Argon2::default().verify_password(pw.as_bytes(), phc).is_ok()
}

/// A checked, hashed new user (the CLI and the first start use it).
pub async fn add_user(db: &Db, name: &str, password: &str, role: Role, lang: Lang) -> anyhow::Result<i64> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        anyhow::bail!("a user name is 1 to 64 characters without spaces, not {name:?}");
    }
    check_new_password(password).map_err(anyhow::Error::msg)?;
    let hash = hash_password(password)?;
    Ok(db.create_user(name, &hash, role.as_str(), lang.as_str(), now_micros()).await?)
}

/// Why a login was refused.
#[derive(Debug)]
pub enum LoginError {
    /// Wrong name or password (not saying which).
    Invalid,
    /// Too many failures for this name or from this address.
    TooMany,
    Db(DbError),
}

impl From<DbError> for LoginError {
    fn from(e: DbError) -> Self {
        LoginError::Db(e)
    }
}

/// Checks a login and opens a session: the cookie's token and the user.
pub async fn login(db: &Db, name: &str, password: &str, client_ip: &str) -> Result<(String, UserRow), LoginError> {
    let now = now_micros();
    let name = name.trim();
    // Nothing over these sizes is a user's name or password; it is not even recorded.
    if name.is_empty() || name.len() > 64 || password.len() > 1024 {
        return Err(LoginError::Invalid);
    }
    // Failures count per name from one address, and per address: a stranger
    // cannot lock a user out from elsewhere.
    let Some(attempt) = db.begin_login_attempt(name, client_ip, now - LOGIN_WINDOW_US, LOGIN_MAX_FAILURES, now).await?
    else {
        return Err(LoginError::TooMany);
    };
    // Old sessions go as logins come (nothing else would remove them).
    db.delete_expired_sessions(now, now - IDLE_US).await?;
    let user = db.user_by_name(name).await?;
    // argon2 takes tens of milliseconds of CPU and memory: off the async
    // workers, and a few at a time, so a flood of logins cannot stall ingest.
    // Logins at once wait their turn (a few seconds at most); only a flood is refused.
    let Ok(Ok(permit)) =
        tokio::time::timeout(std::time::Duration::from_secs(5), ARGON2_SLOTS.clone().acquire_owned()).await
    else {
        return Err(LoginError::TooMany);
    };
    // Hash even for an unknown name, so timing does not tell which names exist.
    let phc = user.as_ref().map_or_else(|| DUMMY_HASH.clone(), |u| u.password_hash.clone());
    let pw = password.to_owned();
    let verified = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        verify_password(&pw, &phc)
    })
    .await
    .unwrap_or(false);
    let ok = verified && user.is_some();
    if ok {
        db.login_succeeded(attempt).await?;
    }
    let Some(user) = user.filter(|_| ok) else { return Err(LoginError::Invalid) };
    let token = random_token();
    db.create_session(&sha256_hex(&token), user.id, &random_token(), now, now + MAX_AGE_US).await?;
    Ok((token, user))
}

/// Password checks running at once, at most.
static ARGON2_SLOTS: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(4)));

static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("not a password anyone has").unwrap_or_default());

pub async fn logout(db: &Db, headers: &HeaderMap) -> Result<(), DbError> {
    if let Some(t) = cookie_token(headers) {
        db.delete_session(&sha256_hex(t)).await?;
    }
    Ok(())
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{}",
        MAX_AGE_US / 1_000_000,
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn clear_cookie(secure: bool) -> String {
    format!("{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{}", if secure { "; Secure" } else { "" })
}

/// Where to go after the login: a local path only (never another site, never a query).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        // Printable ASCII only: a browser drops tabs and newlines from a URL,
        // so "/\t/evil.example" would become "//evil.example", another site.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'?')
                && n != "/login" =>
        {
            n.to_owned()
        }
        _ => "/lost-orders".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_to_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("correct horse battery", "not a phc string"));
        // A fresh salt each time.
        assert_ne!(h, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn short_passwords_are_refused_with_the_minimum() {
        assert!(check_new_password("123456789").unwrap_err().contains("at least 10"));
        assert!(check_new_password("1234567890").is_ok());
        // Characters, not bytes.
        assert!(check_new_password("пароль123").is_err());
    }

    #[test]
    fn roles_include_the_ones_below() {
        assert!(Role::Admin.allows(Role::Developer));
        assert!(Role::Developer.allows(Role::Manager));
        assert!(!Role::Manager.allows(Role::Developer));
        assert!(!Role::Developer.allows(Role::Admin));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn next_is_a_local_path_only() {
        assert_eq!(safe_next(Some("/lost-orders/5")), "/lost-orders/5");
        assert_eq!(safe_next(Some("//evil.example/")), "/lost-orders");
        assert_eq!(safe_next(Some("https://evil.example/")), "/lost-orders");
        assert_eq!(safe_next(Some("/x?phone=1")), "/lost-orders");
        assert_eq!(safe_next(None), "/lost-orders");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/lost-orders", "a browser drops the tab");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/lost-orders");
    }

    #[test]
    fn the_session_cookie_is_locked_down() {
        let c = session_cookie("abc", true);
        for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!session_cookie("abc", false).contains("Secure"));
    }
}
