-- rollcall schema, version 5: each report written once, at the end of a table.
-- A fleet-wide recheck used to write three B-trees at random positions per
-- report (the (agent_id, seq) index, seven latest_checks rows, the agent
-- row); with a commit every ~100 ms each commit rewrote most of their pages,
-- ~75 MB of WAL for 10,000 reports. Now:
--   * a report whose seq is not above its agent's last_seq is a re-send
--     (acknowledgements are cumulative, so that is the protocol's own rule),
--     which makes the (agent_id, seq) index unnecessary;
--   * the agent row points at the report holding its latest check run
--     (checks_report, checks_at) instead of a copy of every check.
-- reports gets an INTEGER PRIMARY KEY so that pointer survives VACUUM.
CREATE TABLE reports_v5 (
    id           INTEGER PRIMARY KEY,
    agent_id     TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    kind         INTEGER NOT NULL,
    observed_at  INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    command_id   TEXT NOT NULL DEFAULT '',
    version      TEXT NOT NULL DEFAULT '',
    body         BLOB NOT NULL
);
INSERT INTO reports_v5 (agent_id, seq, kind, observed_at, received_at, command_id, version, body)
    SELECT agent_id, seq, kind, observed_at, received_at, command_id, version, body FROM reports ORDER BY rowid;
DROP TABLE reports;
ALTER TABLE reports_v5 RENAME TO reports;
CREATE INDEX reports_kind ON reports(kind, observed_at);

ALTER TABLE agents ADD COLUMN checks_report INTEGER;
ALTER TABLE agents ADD COLUMN checks_at INTEGER NOT NULL DEFAULT 0;
-- Every report the agent sends carries its full check run, so the newest
-- report of each agent holds its latest checks (SQLite takes `id` from the
-- row with the max()).
UPDATE agents SET checks_report = latest.id, checks_at = latest.observed_at
    FROM (SELECT agent_id, id, max(observed_at) AS observed_at FROM reports GROUP BY agent_id) AS latest
    WHERE latest.agent_id = agents.id;
DROP TABLE latest_checks;
