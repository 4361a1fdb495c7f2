-- The protocol era the hub speaks to a Streamable HTTP server: auto, legacy or 2026-07-28.
ALTER TABLE servers ADD COLUMN protocol TEXT NOT NULL DEFAULT 'auto';
