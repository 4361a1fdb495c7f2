-- Switchboard store, SQLite schema 1.

-- Servers and groups share one namespace per tenant: each name is claimed here first,
-- so the primary key turns a clash between a server and a group into a unique violation.
CREATE TABLE names (
    tenant TEXT NOT NULL,
    name   TEXT NOT NULL,
    kind   TEXT NOT NULL CHECK (kind IN ('server', 'group')),
    PRIMARY KEY (tenant, name)
);

CREATE TABLE servers (
    tenant       TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('stdio', 'streamable-http', 'sse')),
    url          TEXT,
    command      TEXT,
    args_json    TEXT,
    cwd          TEXT,
    env_enc      TEXT,   -- sealed JSON object (v1:<hex>)
    headers_enc  TEXT,   -- sealed JSON object (v1:<hex>)
    enabled      BOOLEAN NOT NULL,
    timeout_secs REAL    NOT NULL,
    session_mode TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL, -- Unix milliseconds
    updated_by   TEXT    NOT NULL,
    updated_at   INTEGER NOT NULL, -- Unix milliseconds
    PRIMARY KEY (tenant, name),
    FOREIGN KEY (tenant, name) REFERENCES names (tenant, name)
);

CREATE TABLE groups (
    tenant       TEXT NOT NULL,
    name         TEXT NOT NULL,
    members_json TEXT NOT NULL,
    tools_json   TEXT,
    PRIMARY KEY (tenant, name),
    FOREIGN KEY (tenant, name) REFERENCES names (tenant, name)
);

CREATE TABLE item_settings (
    tenant      TEXT    NOT NULL,
    server      TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('tool', 'prompt')),
    name        TEXT    NOT NULL,
    enabled     BOOLEAN NOT NULL,
    description TEXT,
    "rename"    TEXT,
    PRIMARY KEY (tenant, server, kind, name),
    FOREIGN KEY (tenant, server) REFERENCES servers (tenant, name) ON DELETE CASCADE
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- One row, bumped by every write transaction.
CREATE TABLE revision (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);
