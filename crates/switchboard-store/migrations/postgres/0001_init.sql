-- Switchboard store, PostgreSQL schema 1.
-- Key columns use the "C" collation so names sort by bytes, as they do in SQLite.

-- Servers and groups share one namespace per tenant: each name is claimed here first,
-- so the primary key turns a clash between a server and a group into a unique violation.
CREATE TABLE names (
    tenant TEXT COLLATE "C" NOT NULL,
    name   TEXT COLLATE "C" NOT NULL,
    kind   TEXT NOT NULL CHECK (kind IN ('server', 'group')),
    PRIMARY KEY (tenant, name)
);

CREATE TABLE servers (
    tenant       TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('stdio', 'streamable-http', 'sse')),
    url          TEXT,
    command      TEXT,
    args_json    TEXT,
    cwd          TEXT,
    env_enc      TEXT,   -- sealed JSON object (v1:<hex>)
    headers_enc  TEXT,   -- sealed JSON object (v1:<hex>)
    enabled      BOOLEAN NOT NULL,
    timeout_secs DOUBLE PRECISION NOT NULL,
    session_mode TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL, -- Unix milliseconds
    updated_by   TEXT NOT NULL,
    updated_at   BIGINT NOT NULL, -- Unix milliseconds
    PRIMARY KEY (tenant, name),
    FOREIGN KEY (tenant, name) REFERENCES names (tenant, name)
);

CREATE TABLE groups (
    tenant       TEXT COLLATE "C" NOT NULL,
    name         TEXT COLLATE "C" NOT NULL,
    members_json TEXT NOT NULL,
    tools_json   TEXT,
    PRIMARY KEY (tenant, name),
    FOREIGN KEY (tenant, name) REFERENCES names (tenant, name)
);

CREATE TABLE item_settings (
    tenant      TEXT COLLATE "C" NOT NULL,
    server      TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('tool', 'prompt')),
    name        TEXT COLLATE "C" NOT NULL,
    enabled     BOOLEAN NOT NULL,
    description TEXT,
    "rename"    TEXT,
    PRIMARY KEY (tenant, server, kind, name),
    FOREIGN KEY (tenant, server) REFERENCES servers (tenant, name) ON DELETE CASCADE
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row, bumped by every write transaction (its row lock also serialises writers).
CREATE TABLE revision (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);
