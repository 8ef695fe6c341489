-- The dashboard's people: users with a role and a language, their login
-- sessions (only a hash of the cookie's token is kept), failed and successful
-- logins (rate limiting survives restarts), and the audit log of who read
-- customer data.
CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,        -- argon2id PHC string
    role           TEXT NOT NULL,        -- admin | developer | manager
    lang           TEXT NOT NULL,        -- en | ru
    created_at     BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,        -- hex sha256 of the cookie's 256-bit token
    user_id     BIGINT NOT NULL,
    csrf        TEXT NOT NULL,           -- the session's CSRF token, put in every form
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL          -- the absolute end (idle expiry is last_seen + idle)
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_attempts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         BIGINT NOT NULL,
    username   TEXT NOT NULL,
    client_ip  TEXT NOT NULL,
    ok         BIGINT NOT NULL           -- 1 success, 0 failure
);
CREATE INDEX login_attempts_user ON login_attempts (username, at);
CREATE INDEX login_attempts_ip ON login_attempts (client_ip, at);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      BIGINT NOT NULL,
    who     TEXT NOT NULL,               -- a user's name, or "api-token"
    action  TEXT NOT NULL,               -- e.g. read_customer_data
    object  TEXT NOT NULL                -- e.g. lost_order:12
);
CREATE INDEX audit_log_at ON audit_log (at);
