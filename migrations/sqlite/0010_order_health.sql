-- Order-flow health alerts (orders/health.rs): whether each one is firing,
-- changed only in the transaction that stores its notification, so a restart
-- neither repeats nor loses an alert or its recovery.
CREATE TABLE order_health (
    name          TEXT PRIMARY KEY,    -- no_orders | failure_share
    firing_since  BIGINT,              -- µs: when it fired; NULL while all is well
    reference     BIGINT,              -- no_orders: the last order placed when it fired (µs)
    updated_at    BIGINT NOT NULL
);

-- The last order placed, found without a scan.
CREATE INDEX order_evidence_success ON order_evidence (kind, success, at);
