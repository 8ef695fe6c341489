-- Lost orders and the evidence they are made of. Evidence rows are written
-- once, as each log line or Sentry event is read, and never changed but for
-- the lost order they belong to: lost orders are rebuilt from them.
CREATE TABLE order_evidence (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL,      -- request | client_gone | frontend | backend
    reference      TEXT NOT NULL,      -- the log event id, or the Sentry event id
    source         TEXT NOT NULL,      -- log:<program>, frontend or backend: one of each per attempt
    endpoint       TEXT NOT NULL,
    client_ip      TEXT,
    request_id     TEXT,
    trace_id       TEXT,
    status_code    BIGINT,
    success        BIGINT NOT NULL,    -- 1: a request line that placed the order
    at             BIGINT NOT NULL,    -- µs: when it happened
    received_at    BIGINT NOT NULL,
    piece          TEXT NOT NULL,      -- JSON of orders::Piece
    raw            TEXT,               -- a log line as it arrived
    project_id     BIGINT,             -- a Sentry event's project
    lost_order_id  BIGINT,
    joined         BIGINT NOT NULL,    -- 0 until the joiner has placed it
    join_attempts  BIGINT NOT NULL DEFAULT 0,   -- failed joins; set aside after 5
    join_error     TEXT,
    UNIQUE (kind, reference)
);
CREATE INDEX order_evidence_ip ON order_evidence (endpoint, client_ip, at);
CREATE INDEX order_evidence_request ON order_evidence (request_id);
CREATE INDEX order_evidence_trace ON order_evidence (trace_id);
CREATE INDEX order_evidence_unjoined ON order_evidence (joined, id);
CREATE INDEX order_evidence_lost ON order_evidence (lost_order_id);
CREATE INDEX order_evidence_at ON order_evidence (at);

CREATE TABLE lost_orders (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            BIGINT NOT NULL,     -- µs: the attempt
    detected_at   BIGINT NOT NULL,     -- µs: its first evidence was read
    updated_at    BIGINT NOT NULL,
    endpoint      TEXT NOT NULL,
    status_code   BIGINT,
    cause         TEXT NOT NULL,
    status        TEXT NOT NULL,       -- new | test | investigating | reported | rescued | lost
    client_ip     TEXT,
    summary       TEXT NOT NULL,       -- JSON: customer, address, cart, what the server answered
    test_reason   TEXT,                -- why it is a test order, when it is one
    notified_at   BIGINT,              -- its alert was queued
    incident_id   BIGINT
);
CREATE INDEX lost_orders_at ON lost_orders (at);
CREATE INDEX lost_orders_unnotified ON lost_orders (notified_at);

-- Where the detector has read the log store up to.
CREATE TABLE orders_cursor (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
