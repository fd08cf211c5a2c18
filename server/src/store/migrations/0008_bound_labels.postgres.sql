-- rollcall schema (PostgreSQL), version 7, as SQLite version 7: the labels
-- bound by the enrolment token (a hello may add labels, never change or
-- remove a bound one). Only adds, so replicas of the previous release keep
-- working during a rolling upgrade.
ALTER TABLE agents ADD COLUMN bound_labels TEXT NOT NULL DEFAULT '{}';
