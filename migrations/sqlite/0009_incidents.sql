-- Incidents: lost orders of one cause, what people wrote about it, and the
-- letters sent about it (a copy of each, as sent). Rescue calls: what the
-- managers heard when they called a customer.
CREATE TABLE incidents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    title         TEXT NOT NULL,
    cause         TEXT NOT NULL,        -- a lost-order cause (rejected, rate_limited, …)
    plain_cause   TEXT NOT NULL,        -- the cause in plain words, as people wrote it
    actions       TEXT NOT NULL,        -- what was done or will be done
    assignee      TEXT,
    status        TEXT NOT NULL,        -- open | reported | closed
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE incident_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    what         TEXT NOT NULL,          -- created | edited | added | removed | reported
    detail       TEXT NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, at);

CREATE TABLE reports (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id      BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    recipients       TEXT NOT NULL,      -- JSON {"to": [...], "cc": [...]}
    subject          TEXT NOT NULL,
    text             TEXT NOT NULL,
    html             TEXT NOT NULL,
    notification_id  BIGINT              -- the outbox entry that sends it
);
CREATE INDEX reports_incident ON reports (incident_id);

CREATE TABLE rescue_calls (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    lost_order_id  BIGINT NOT NULL,
    at             BIGINT NOT NULL,
    outcome        TEXT NOT NULL,        -- rescued | lost | no_answer | call_back
    note           TEXT NOT NULL
);
CREATE INDEX rescue_calls_lost_order ON rescue_calls (lost_order_id, at);
