-- rollcall schema (PostgreSQL), version 9, as SQLite version 9: runbook step 8's log
-- bundles. Kept in the database, not as files in the data dir, so that with
-- several replicas (PostgreSQL) the admin downloads a bundle from whichever
-- replica it asks, whichever one held the agent's stream. A bundle is a row
-- of metadata plus its chunks in arrival order; only an agent's newest
-- bundle is kept (bounded: the agent caps its size, the coordinator too).
CREATE TABLE bundles (
    command_id      TEXT PRIMARY KEY,
    agent_id        TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    completed_at    BIGINT,
    chunks          BIGINT NOT NULL DEFAULT 0,
    bytes           BIGINT NOT NULL DEFAULT 0,
    files           BIGINT NOT NULL DEFAULT 0,
    skipped         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX bundles_agent ON bundles(agent_id);
CREATE TABLE bundle_chunks (
    command_id TEXT NOT NULL,
    idx        BIGINT NOT NULL,
    data       BYTEA NOT NULL,
    PRIMARY KEY (command_id, idx)
);
