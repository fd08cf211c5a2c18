-- rollcall schema, version 12 (issue 26): the roster, every endpoint the
-- managed product lists (docs/ROSTER.md). Entries are written in batches
-- under a new generation; `roster_state.generation` names the current one,
-- so a refresh is seen whole or not at all. Only adds.
CREATE TABLE roster_entries (
    generation INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    host_name TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    ip_addresses TEXT NOT NULL,
    mac_addresses TEXT NOT NULL,
    version TEXT,
    connection_status TEXT,
    managing_server TEXT,
    domain TEXT,
    folder_path TEXT,
    os TEXT,
    product TEXT,
    PRIMARY KEY (generation, idx)
);
CREATE TABLE roster_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    -- 0: no roster yet.
    generation INTEGER NOT NULL,
    next_generation INTEGER NOT NULL,
    source TEXT NOT NULL,
    entries INTEGER NOT NULL,
    refreshed_at INTEGER,
    last_error TEXT,
    last_error_at INTEGER
);
INSERT INTO roster_state (id, generation, next_generation, source, entries) VALUES (1, 0, 1, '', 0);
