-- The catalog of sealed log chunks. The chunk files are the data; this is the
-- index a search reads to skip them by id and time. Portable types only
-- (BIGINT, TEXT) so the same schema serves PostgreSQL.
CREATE TABLE chunks (
    file_name  TEXT PRIMARY KEY,
    min_id     BIGINT NOT NULL,
    max_id     BIGINT NOT NULL,
    min_time   BIGINT NOT NULL,
    max_time   BIGINT NOT NULL,
    count      BIGINT NOT NULL,
    raw_len    BIGINT NOT NULL,
    body_len   BIGINT NOT NULL,
    body_crc   BIGINT NOT NULL,
    sealed_at  BIGINT NOT NULL
);
CREATE INDEX chunks_max_id ON chunks (max_id);

-- Generated secrets and other small state that must survive restarts.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
