-- Who owns a server entry: 'file' (the servers file; edits to the file apply to it, and it is
-- removed when the file drops it) or 'api' (created through an API; the file never touches it).
-- Entries imported from the servers file before this column existed were recorded with the
-- actor 'servers-file'.
ALTER TABLE servers ADD COLUMN origin TEXT NOT NULL DEFAULT 'api';
UPDATE servers SET origin = 'file' WHERE created_by = 'servers-file';
