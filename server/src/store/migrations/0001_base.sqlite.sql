-- rollcall schema, version 1 (SQLite). Times are milliseconds since the epoch.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    hash        BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    uses_left   INTEGER NOT NULL,
    uses_total  INTEGER NOT NULL,
    labels      TEXT NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0,
    created_by  TEXT NOT NULL
);

CREATE TABLE agents (
    id              TEXT PRIMARY KEY,
    hostname        TEXT NOT NULL,
    agent_version   TEXT NOT NULL DEFAULT '',
    role            INTEGER NOT NULL DEFAULT 0,
    labels          TEXT NOT NULL DEFAULT '{}',
    enrolled_at     INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL DEFAULT 0,
    connected       INTEGER NOT NULL DEFAULT 0,
    revoked_at      INTEGER,
    product         BLOB,
    host            BLOB,
    version         TEXT NOT NULL DEFAULT '',
    last_seq        INTEGER NOT NULL DEFAULT 0,
    last_report_at  INTEGER NOT NULL DEFAULT 0,
    dropped_reports INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE certificates (
    serial      TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL,
    not_after   INTEGER NOT NULL,
    revoked     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX certificates_agent ON certificates(agent_id);

CREATE TABLE reports (
    agent_id     TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    kind         INTEGER NOT NULL,
    observed_at  INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    command_id   TEXT NOT NULL DEFAULT '',
    version      TEXT NOT NULL DEFAULT '',
    body         BLOB NOT NULL,
    PRIMARY KEY (agent_id, seq)
) WITHOUT ROWID;

-- The latest result of every check per agent.
CREATE TABLE latest_checks (
    agent_id     TEXT NOT NULL,
    name         TEXT NOT NULL,
    status       INTEGER NOT NULL,
    observed_at  INTEGER NOT NULL,
    body         BLOB NOT NULL,
    PRIMARY KEY (agent_id, name)
) WITHOUT ROWID;

CREATE TABLE policies (
    version     INTEGER PRIMARY KEY,
    toml        TEXT NOT NULL,
    applied_at  INTEGER NOT NULL,
    applied_by  TEXT NOT NULL
);
