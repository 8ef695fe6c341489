-- Saved searches and their alerts. An alert's cursor is the last log event id
-- it has accounted for: it moves in the same transaction that stores the
-- alert's notification, so a line is never reported twice nor skipped.
CREATE TABLE saved_searches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    query       TEXT NOT NULL,
    origin      TEXT NOT NULL,          -- 'api' or 'config' (config ones change only in the file)
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE alerts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    search_id     BIGINT NOT NULL REFERENCES saved_searches (id) ON DELETE CASCADE,
    position      BIGINT NOT NULL,      -- order within the search
    definition    TEXT NOT NULL,        -- JSON of alerts::AlertDef
    cursor_id     BIGINT NOT NULL,      -- events with id <= cursor_id are accounted for
    evaluated_at  BIGINT NOT NULL,      -- µs: the last evaluation (periodic windows start here)
    state         TEXT NOT NULL,        -- JSON: the engine's state of an inactivity alert
    created_at    BIGINT NOT NULL
);
CREATE INDEX alerts_search ON alerts (search_id);
