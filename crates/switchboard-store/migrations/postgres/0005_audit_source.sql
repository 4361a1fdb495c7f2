-- Audit rows carry the client address they came from (NULL for older rows and for actions
-- without one); retention deletes by time, so rows are indexed by it. API keys may carry their
-- own request rate limit ({"per_second": f, "burst": n}, NULL: the hub's per-key default).

ALTER TABLE audit_log ADD COLUMN source TEXT;
CREATE INDEX audit_by_time ON audit_log (at);
ALTER TABLE api_keys ADD COLUMN rate_limit_json TEXT;
