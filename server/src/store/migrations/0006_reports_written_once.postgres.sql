-- rollcall schema (PostgreSQL), version 5, as SQLite version 5: the agent
-- row points at the report holding its latest check run (checks_seq,
-- checks_at; the report is (agent_id, checks_seq)) instead of ingest
-- upserting a copy of every check into latest_checks.
ALTER TABLE agents ADD COLUMN checks_seq BIGINT;
ALTER TABLE agents ADD COLUMN checks_at BIGINT NOT NULL DEFAULT 0;
-- Every report the agent sends carries its full check run.
UPDATE agents a SET checks_seq = latest.seq, checks_at = latest.observed_at
    FROM (SELECT DISTINCT ON (agent_id) agent_id, seq, observed_at FROM reports
          ORDER BY agent_id, observed_at DESC, seq DESC) AS latest
    WHERE latest.agent_id = a.id;
-- latest_checks stays: during a rolling upgrade, replicas of the previous
-- release still write and read it (migrations here only add).
