-- rollcall schema, version 4: reports in arrival order.
-- Clustered by (agent_id, seq), every report of a fleet-wide recheck landed
-- on a different page of the largest table (one page written, and often
-- split, per report). A rowid table appends the bodies in arrival order;
-- only the small (agent_id, seq) index is written at random.
CREATE TABLE reports_by_arrival (
    agent_id     TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    kind         INTEGER NOT NULL,
    observed_at  INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    command_id   TEXT NOT NULL DEFAULT '',
    version      TEXT NOT NULL DEFAULT '',
    body         BLOB NOT NULL
);
INSERT INTO reports_by_arrival (agent_id, seq, kind, observed_at, received_at, command_id, version, body)
    SELECT agent_id, seq, kind, observed_at, received_at, command_id, version, body FROM reports ORDER BY received_at;
DROP TABLE reports;
ALTER TABLE reports_by_arrival RENAME TO reports;
CREATE UNIQUE INDEX reports_agent_seq ON reports(agent_id, seq);
CREATE INDEX reports_kind ON reports(kind, observed_at);
