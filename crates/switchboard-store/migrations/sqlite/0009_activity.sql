-- The activity log: one row per MCP operation that reached an upstream or was refused by the
-- hub (who, what, which server and tool, outcome, duration, sizes, trace id). Arguments and
-- results only with --log-payloads (truncated and redacted). Listed newest first per tenant
-- (by id), filtered by server, tool and status; retention deletes by time.

CREATE TABLE activity_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    tenant      TEXT NOT NULL,
    principal   TEXT,
    endpoint    TEXT NOT NULL,
    session     TEXT,
    server      TEXT,
    method      TEXT NOT NULL,
    target      TEXT,
    status      TEXT NOT NULL,
    error_type  TEXT,
    error       TEXT,
    duration_us INTEGER NOT NULL,
    bytes_in    INTEGER NOT NULL,
    bytes_out   INTEGER NOT NULL,
    trace_id    TEXT,
    protocol    TEXT,
    request     TEXT,
    response    TEXT
);
CREATE INDEX activity_by_tenant ON activity_log (tenant, id);
CREATE INDEX activity_by_tenant_time ON activity_log (tenant, at);
CREATE INDEX activity_by_server ON activity_log (tenant, server, id);
CREATE INDEX activity_by_tool ON activity_log (tenant, target, id);
CREATE INDEX activity_by_status ON activity_log (tenant, status, id);
CREATE INDEX activity_by_time ON activity_log (at);
