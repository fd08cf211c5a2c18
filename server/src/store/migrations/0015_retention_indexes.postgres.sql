-- rollcall migration step 15 (issue 24, point 8): indexes retention prunes
-- by, so a batch finds the oldest rows without scanning the table. Only adds.
CREATE INDEX commands_created ON commands(created_at);
CREATE INDEX transitions_at ON transitions(at);
CREATE INDEX certificates_not_after ON certificates(not_after);
CREATE INDEX admin_certificates_not_after ON admin_certificates(not_after);
