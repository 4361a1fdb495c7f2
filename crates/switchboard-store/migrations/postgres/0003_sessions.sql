-- Proxy sessions (seed 002): a caller's time-limited connection to a remote MCP server.
-- The session id itself is never stored, only its SHA-256 (hex). Headers, including the
-- Authorization header built from the caller's token, are sealed like server secrets.
-- Session writes do not bump the revision: sessions are not part of the reconciled state.
CREATE TABLE sessions (
    tenant      TEXT COLLATE "C" NOT NULL,
    id_hash     TEXT COLLATE "C" NOT NULL,
    prefix      TEXT COLLATE "C" NOT NULL,
    remote_url  TEXT NOT NULL,
    transport   TEXT NOT NULL CHECK (transport IN ('streamable-http', 'sse')),
    headers_enc TEXT NOT NULL, -- sealed JSON object (v1:<hex>)
    ttl_secs    BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL, -- Unix milliseconds
    expires_at  BIGINT NOT NULL, -- Unix milliseconds
    PRIMARY KEY (tenant, id_hash),
    UNIQUE (tenant, prefix)
);
CREATE INDEX sessions_by_expiry ON sessions (tenant, expires_at);
