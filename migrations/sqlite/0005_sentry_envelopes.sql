-- Every Sentry envelope (and legacy /store/ body) as received, decompressed,
-- stored before the SDK is answered: processing (parsing, grouping, lost-order
-- detection) reads from here and can always be run again.
CREATE TABLE sentry_envelopes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id    BIGINT NOT NULL,
    received_at   BIGINT NOT NULL,
    event_id      TEXT,
    client_ip     TEXT NOT NULL,
    body          BLOB NOT NULL,
    processed_at  BIGINT,
    attempts      BIGINT NOT NULL DEFAULT 0,   -- failed processing attempts
    last_error    TEXT
);
CREATE INDEX sentry_envelopes_processed ON sentry_envelopes (processed_at);
