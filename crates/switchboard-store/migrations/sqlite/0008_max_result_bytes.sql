-- Per-server limit on one message from the server, in bytes; NULL takes --max-result-bytes.
ALTER TABLE servers ADD COLUMN max_result_bytes INTEGER;
