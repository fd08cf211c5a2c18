-- rollcall schema, version 3 (PostgreSQL; as schema_sqlite_3.sql): the audit
-- log of state-changing admin calls, and who holds each admin certificate.
CREATE TABLE audit (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    result  TEXT NOT NULL
);
CREATE INDEX audit_at ON audit(at);

CREATE TABLE admin_certificates (
    serial     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    not_after  BIGINT NOT NULL,
    issued_by  TEXT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX admin_certificates_name ON admin_certificates(name);

CREATE INDEX reports_kind ON reports(kind, observed_at);
