-- rollcall schema, version 11 (issue 24 point 6): reports an agent set
-- aside because the coordinator refused them again and again (dead
-- letters), counted like dropped ones so an admin sees them in
-- `rollcall agent ID`. Only adds.
ALTER TABLE agents ADD COLUMN dead_letters INTEGER NOT NULL DEFAULT 0;
