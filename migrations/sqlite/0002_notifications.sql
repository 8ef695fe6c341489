-- The notification outbox: every email, webhook and chat message orderwatch
-- sends is first a row here (written in the same transaction as whatever raised
-- it), then sent by the notifier, which records each attempt. Rows are never
-- deleted by the notifier: a failed one stays visible and can be retried.
-- Portable types only (BIGINT, TEXT, epoch µs) so the same schema serves PostgreSQL.
CREATE TABLE notifications (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at       BIGINT NOT NULL,
    -- What raised it, e.g. "alert:12", "error_group:3".
    source           TEXT NOT NULL,
    -- The same key enqueued twice is stored once (NULLs never collide).
    dedup_key        TEXT UNIQUE,
    -- email | webhook | webhook_json | slack | telegram
    channel          TEXT NOT NULL,
    -- The destination for people, secrets masked.
    target           TEXT NOT NULL,
    -- What may be slow or unreachable (an SMTP relay, a webhook host): the
    -- notifier bounds how many attempts run against one destination at once.
    destination      TEXT NOT NULL,
    -- JSON of notify::Message (holds the secrets needed to send; never shown).
    message          TEXT NOT NULL,
    -- pending | sent | failed
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    -- Failed attempts since it last became due (enqueue or retry): the backoff step.
    failures         BIGINT NOT NULL DEFAULT 0,
    -- When it last became due (enqueue or retry): the give-up horizon counts from here.
    due_since        BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    -- Set while an attempt is in flight; a claim older than this is free again.
    claimed_until    BIGINT,
    last_error       TEXT,
    sent_at          BIGINT
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_source ON notifications (source, id);

CREATE TABLE notification_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id  BIGINT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    at               BIGINT NOT NULL,
    duration_ms      BIGINT NOT NULL,
    -- NULL: this attempt delivered it.
    error            TEXT
);
CREATE INDEX notification_attempts_by_notification ON notification_attempts (notification_id, id);
