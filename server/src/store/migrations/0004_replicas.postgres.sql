-- rollcall schema, PostgreSQL only: what several replicas need and a single
-- SQLite process does not. Applied after the numbered versions above.
-- Which replica holds each agent's stream, so a replica that restarts
-- clears only its own agents' `connected` flags.
ALTER TABLE agents ADD COLUMN replica TEXT NOT NULL DEFAULT '';

-- Scheduled work runs under a lease: one holder at a time, until expires_at
-- (the database's clock, in ms), renewed every engine tick.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

-- Wake-ups deliver undelivered commands for the agents a replica holds.
CREATE INDEX commands_undelivered ON commands(created_at) WHERE delivered_at IS NULL AND NOT expired;
