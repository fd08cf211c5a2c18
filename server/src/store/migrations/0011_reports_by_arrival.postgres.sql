-- rollcall schema (PostgreSQL), issue 17: reports by arrival time, for
-- retention (`--retain-reports`). SQLite needs no index: its report ids
-- already follow arrival. The index grows only at its right edge (receive
-- times only increase), so ingest pays one cheap append per report. Only
-- adds, so replicas of the previous release keep working during a rolling
-- upgrade.
CREATE INDEX IF NOT EXISTS reports_received ON reports(received_at);
