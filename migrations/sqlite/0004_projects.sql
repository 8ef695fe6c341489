-- Sentry projects: what an SDK's DSN names (its public key and the project id).
CREATE TABLE projects (
    id          BIGINT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    public_key  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
