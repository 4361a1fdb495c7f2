-- Fewer activity-log indexes: every row is written to each of them, and four were never
-- used by the log's reads. Listing (tenant, newest first, optional filters that bind NULL
-- when unset) walks activity_by_tenant; statistics take the newest rows of a window
-- through activity_by_tenant_time; retention deletes through activity_by_time.
DROP INDEX activity_by_server;
DROP INDEX activity_by_tool;
DROP INDEX activity_by_status;
