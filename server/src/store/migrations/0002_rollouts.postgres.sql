-- rollcall schema, version 2 (PostgreSQL; as schema_sqlite_2.sql): rollouts,
-- their members' state machine and history, and commands to agents.
CREATE TABLE rollouts (
    id               TEXT PRIMARY KEY,
    target           TEXT NOT NULL,
    grace_ms         BIGINT NOT NULL,
    recheck_every_ms BIGINT NOT NULL,
    max_attempts     BIGINT NOT NULL,
    selector         TEXT NOT NULL,
    auto_update_now  BOOLEAN NOT NULL,
    started_at       BIGINT NOT NULL,
    started_by       TEXT NOT NULL,
    cancelled_at     BIGINT
);

CREATE TABLE rollout_members (
    rollout_id      TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    state           TEXT NOT NULL,
    hard            BOOLEAN NOT NULL DEFAULT false,
    since           BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_recheck    BIGINT NOT NULL DEFAULT 0,
    cause           TEXT NOT NULL DEFAULT '',
    failing         TEXT NOT NULL DEFAULT '[]',
    update_agent    TEXT NOT NULL DEFAULT '',
    blocks          BIGINT NOT NULL DEFAULT 0,
    auto_update_for TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (rollout_id, agent_id)
);

-- `id` stands in for SQLite's rowid: insertion order among equal times.
CREATE TABLE transitions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rollout_id  TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    at          BIGINT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    cause       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX transitions_rollout ON transitions(rollout_id, at);

CREATE TABLE commands (
    id           TEXT PRIMARY KEY,
    batch_id     TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    kind         BIGINT NOT NULL,
    rollout_id   TEXT NOT NULL DEFAULT '',
    target       TEXT NOT NULL DEFAULT '',
    origin       TEXT NOT NULL,
    splay_ms     BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    delivered_at BIGINT,
    receipt      TEXT NOT NULL DEFAULT '',
    answered_at  BIGINT,
    answer_version TEXT NOT NULL DEFAULT '',
    expired      BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX commands_agent_pending ON commands(agent_id) WHERE delivered_at IS NULL AND NOT expired;
CREATE INDEX commands_batch ON commands(batch_id);
