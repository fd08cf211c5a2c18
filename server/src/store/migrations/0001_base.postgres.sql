-- rollcall schema, version 1 (PostgreSQL): the same tables and columns as
-- schema_sqlite.sql. Times are milliseconds since the epoch (BIGINT), flags
-- are BOOLEAN, protobuf bodies BYTEA.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    uses_left   BIGINT NOT NULL,
    uses_total  BIGINT NOT NULL,
    labels      TEXT NOT NULL,
    revoked     BOOLEAN NOT NULL DEFAULT false,
    created_by  TEXT NOT NULL
);

CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    hostname        TEXT NOT NULL,
    agent_version   TEXT NOT NULL DEFAULT '',
    role            BIGINT NOT NULL DEFAULT 0,
    labels          TEXT NOT NULL DEFAULT '{}',
    enrolled_at     BIGINT NOT NULL,
    last_seen       BIGINT NOT NULL DEFAULT 0,
    connected       BOOLEAN NOT NULL DEFAULT false,
    revoked_at      BIGINT,
    product         BYTEA,
    host            BYTEA,
    version         TEXT NOT NULL DEFAULT '',
    last_seq        BIGINT NOT NULL DEFAULT 0,
    last_report_at  BIGINT NOT NULL DEFAULT 0,
    dropped_reports BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE certificates (
    serial      TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL,
    not_after   BIGINT NOT NULL,
    revoked     BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX certificates_agent ON certificates(agent_id);

CREATE TABLE reports (
    agent_id     TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    kind         BIGINT NOT NULL,
    observed_at  BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    command_id   TEXT NOT NULL DEFAULT '',
    version      TEXT NOT NULL DEFAULT '',
    body         BYTEA NOT NULL,
    PRIMARY KEY (agent_id, seq)
);

-- The latest result of every check per agent.
CREATE TABLE latest_checks (
    agent_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    status       BIGINT NOT NULL,
    observed_at  BIGINT NOT NULL,
    body         BYTEA NOT NULL,
    PRIMARY KEY (agent_id, name)
);

CREATE TABLE policies (
    version     BIGINT PRIMARY KEY,
    toml        TEXT NOT NULL,
    applied_at  BIGINT NOT NULL,
    applied_by  TEXT NOT NULL
);
