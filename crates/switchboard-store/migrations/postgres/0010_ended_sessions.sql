-- Client sessions their clients ended (DELETE), by the SHA-256 of the sealed session id, so
-- no replica resumes them again, including one started later. Rows older than the sealed
-- ids' lifetime are deleted.
CREATE TABLE ended_sessions (
    tenant   TEXT NOT NULL,
    id_hash  TEXT NOT NULL,
    ended_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, id_hash)
);
CREATE INDEX ended_sessions_by_time ON ended_sessions (ended_at);
