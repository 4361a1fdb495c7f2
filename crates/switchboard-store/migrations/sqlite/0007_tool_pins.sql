-- Tool-definition pinning: the definition of each tool an operator approved (automatically
-- when the server's catalog is first fetched, then through the approve route). The hub hides
-- or flags a tool whose current definition no longer hashes to `hash`.
-- A row with an empty `tool` marks the server as approved even when it listed no tools, so
-- tools that appear later count as new rather than being trusted on first use.
-- Deleting the server deletes its pins.
CREATE TABLE tool_pins (
    tenant      TEXT    NOT NULL,
    server      TEXT    NOT NULL,
    tool        TEXT    NOT NULL,
    hash        TEXT    NOT NULL, -- hex SHA-256 of `definition`
    definition  TEXT    NOT NULL, -- canonical JSON: name, title, description, inputSchema,
                                  -- outputSchema, annotations (sorted keys)
    approved_by TEXT    NOT NULL,
    approved_at INTEGER NOT NULL, -- Unix milliseconds
    PRIMARY KEY (tenant, server, tool),
    FOREIGN KEY (tenant, server) REFERENCES servers (tenant, name) ON DELETE CASCADE
);
