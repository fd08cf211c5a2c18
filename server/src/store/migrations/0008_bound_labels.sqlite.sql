-- rollcall schema, version 7: the labels bound by the enrolment token, kept
-- apart from `labels` (bound plus what the agent's hello added), so a hello
-- can add labels but never change or remove a bound one. Rows from earlier
-- versions bind nothing: their token labels were already mixed with hello
-- labels and cannot be told apart.
ALTER TABLE agents ADD COLUMN bound_labels TEXT NOT NULL DEFAULT '{}';
