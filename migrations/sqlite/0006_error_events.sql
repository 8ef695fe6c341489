-- Error events read from the stored Sentry envelopes, and their groups (what
-- Sentry calls issues). The envelope stays the source: these can be rebuilt.
CREATE TABLE error_groups (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id   BIGINT NOT NULL,
    fingerprint  TEXT NOT NULL,      -- sha256 of the grouping key
    title        TEXT NOT NULL,
    culprit      TEXT,
    count        BIGINT NOT NULL,
    first_seen   BIGINT NOT NULL,
    last_seen    BIGINT NOT NULL,
    UNIQUE (project_id, fingerprint)
);
CREATE INDEX error_groups_last_seen ON error_groups (last_seen);

CREATE TABLE error_events (
    project_id   BIGINT NOT NULL,
    event_id     TEXT NOT NULL,
    group_id     BIGINT NOT NULL,
    envelope_id  BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    body         TEXT NOT NULL,      -- the event's full JSON (user.ip_address filled in)
    PRIMARY KEY (project_id, event_id)
);
CREATE INDEX error_events_group ON error_events (group_id, received_at);
CREATE INDEX error_events_event ON error_events (event_id);
