-- rollcall schema (PostgreSQL), version 12, as SQLite version 11 (issue 24
-- point 6): reports an agent set aside as dead letters, counted per agent.
ALTER TABLE agents ADD COLUMN IF NOT EXISTS dead_letters BIGINT NOT NULL DEFAULT 0;
