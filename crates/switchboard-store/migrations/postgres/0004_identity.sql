-- Identity and tenancy: tenants, users, API keys, refresh tokens, per-user upstream
-- credentials and the audit log. Times are Unix milliseconds; a NULL time means "never".

CREATE TABLE tenants (
    name       TEXT COLLATE "C" PRIMARY KEY,
    created_at BIGINT NOT NULL
);
INSERT INTO tenants (name, created_at) VALUES ('default', 0);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    tenant        TEXT COLLATE "C" NOT NULL REFERENCES tenants (name),
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,          -- argon2id PHC string
    role          TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'user')),
    grants_json   TEXT NOT NULL,          -- JSON array of group/server names, or ["*"]
    disabled_at   BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX users_by_tenant ON users (tenant, username);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,        -- the public part of the key
    tenant       TEXT COLLATE "C" NOT NULL REFERENCES tenants (name),
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,           -- SHA-256 of the secret part, hex
    allow_json   TEXT,                    -- JSON array of group/server names, NULL = no limit
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX api_keys_by_user ON api_keys (user_id);

CREATE TABLE refresh_tokens (
    id          TEXT PRIMARY KEY,
    family      TEXT NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_hash TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family);

CREATE TABLE user_credentials (
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant      TEXT COLLATE "C" NOT NULL,
    server      TEXT COLLATE "C" NOT NULL,
    headers_enc TEXT NOT NULL,            -- sealed JSON object (v1:<hex>)
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, server)
);

CREATE TABLE audit_log (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    tenant  TEXT COLLATE "C" NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail  TEXT
);
CREATE INDEX audit_by_tenant ON audit_log (tenant, id);
