-- The activity log's time-bounded reads (statistics over a window, retention) find the id
-- where a time begins by bisecting the primary key instead (ids grow with time), so the two
-- indexes on `at` go: each cost every insert a B-tree insertion.
DROP INDEX activity_by_tenant_time;
DROP INDEX activity_by_time;
