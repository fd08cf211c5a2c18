-- rollcall schema (PostgreSQL), version 6, as SQLite version 6: when the
-- engine last sent each rollout member a recheck (runbook step 7 needs a
-- check run observed after it). Only adds, so replicas of the previous
-- release keep working during a rolling upgrade.
ALTER TABLE rollout_members ADD COLUMN rechecked_at BIGINT NOT NULL DEFAULT 0;
