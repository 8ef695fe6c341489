-- An error group's status: unresolved (new groups), resolved (a person said it
-- is fixed: the next event received after resolved_at reopens it and raises a
-- regression alert) or ignored (counted, never alerted on).
ALTER TABLE error_groups ADD COLUMN status TEXT NOT NULL DEFAULT 'unresolved'
    CHECK (status IN ('unresolved', 'resolved', 'ignored'));
ALTER TABLE error_groups ADD COLUMN resolved_at BIGINT;
