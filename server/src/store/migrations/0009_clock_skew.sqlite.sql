-- rollcall schema, version 8: the agent's clock is not trusted (issue 16).
-- reports.observed_at now holds the observation on the coordinator's clock
-- (the agent's own is kept in the body); the agent row keeps the latest
-- measured skew (agent clock minus coordinator clock) and when the
-- coordinator received its latest check run, which is what the engine
-- reads new runs by. Rows from earlier versions: skew 0 (unmeasured), and
-- the receive time of the report their checks_report points at.
ALTER TABLE agents ADD COLUMN clock_skew_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN checks_received_at INTEGER NOT NULL DEFAULT 0;
UPDATE agents SET checks_received_at = coalesce((SELECT received_at FROM reports WHERE reports.id = agents.checks_report), 0);
-- Receive times only grow, so this index is appended to, not written at
-- random: what reports followed an Update Now (the step-8 report).
CREATE INDEX reports_received ON reports(received_at);
