-- rollcall schema, version 6: when the engine last sent each rollout member
-- a recheck. Runbook step 7 (overwrite install) is recommended only on a
-- check run observed after it; 0 = no recheck recorded (rows from earlier
-- versions: their next check run counts as fresh).
ALTER TABLE rollout_members ADD COLUMN rechecked_at INTEGER NOT NULL DEFAULT 0;
