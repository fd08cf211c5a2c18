-- rollcall schema, version 10 (issue 18): whether the agent refused a
-- command, as a column, so the queries that settle and tally commands stop
-- matching the receipt's text (`receipt LIKE 'refused%'`). Backfilled once
-- here with that match; from now on the ingest writes it from the typed
-- receipt (`Receipt::is_refused`). Only adds, so an older coordinator keeps
-- working on this schema; a refusal such a coordinator records (it does not
-- set `refused`) counts as unanswered until the command expires.
ALTER TABLE commands ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
UPDATE commands SET refused = 1 WHERE receipt LIKE 'refused%';
