-- rollcall schema (PostgreSQL), version 8, as SQLite version 8: observed_at
-- on the coordinator's clock, the agent's latest clock skew, and when its
-- latest check run was received (what the engine reads new runs by).
ALTER TABLE agents ADD COLUMN clock_skew_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN checks_received_at BIGINT NOT NULL DEFAULT 0;
UPDATE agents a SET checks_received_at = r.received_at
    FROM reports r WHERE r.agent_id = a.id AND r.seq = a.checks_seq;
CREATE INDEX reports_received ON reports(received_at);
