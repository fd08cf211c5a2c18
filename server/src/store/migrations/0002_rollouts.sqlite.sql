-- rollcall schema, version 2: rollouts, their members' state machine and
-- history, and commands to agents.
CREATE TABLE rollouts (
    id               TEXT PRIMARY KEY,
    target           TEXT NOT NULL,
    grace_ms         INTEGER NOT NULL,
    recheck_every_ms INTEGER NOT NULL,
    max_attempts     INTEGER NOT NULL,
    selector         TEXT NOT NULL,
    auto_update_now  INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    started_by       TEXT NOT NULL,
    cancelled_at     INTEGER
);

CREATE TABLE rollout_members (
    rollout_id      TEXT NOT NULL,
    agent_id        TEXT NOT NULL,
    state           TEXT NOT NULL,
    hard            INTEGER NOT NULL DEFAULT 0,
    since           INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_recheck    INTEGER NOT NULL DEFAULT 0,
    cause           TEXT NOT NULL DEFAULT '',
    failing         TEXT NOT NULL DEFAULT '[]',
    update_agent    TEXT NOT NULL DEFAULT '',
    blocks          INTEGER NOT NULL DEFAULT 0,
    auto_update_for TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (rollout_id, agent_id)
) WITHOUT ROWID;

CREATE TABLE transitions (
    rollout_id  TEXT NOT NULL,
    agent_id    TEXT NOT NULL,
    at          INTEGER NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    cause       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX transitions_rollout ON transitions(rollout_id, at);

CREATE TABLE commands (
    id           TEXT PRIMARY KEY,
    batch_id     TEXT NOT NULL,
    agent_id     TEXT NOT NULL,
    kind         INTEGER NOT NULL,
    rollout_id   TEXT NOT NULL DEFAULT '',
    target       TEXT NOT NULL DEFAULT '',
    origin       TEXT NOT NULL,
    splay_ms     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    delivered_at INTEGER,
    receipt      TEXT NOT NULL DEFAULT '',
    answered_at  INTEGER,
    answer_version TEXT NOT NULL DEFAULT '',
    expired      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX commands_agent_pending ON commands(agent_id) WHERE delivered_at IS NULL AND expired = 0;
CREATE INDEX commands_batch ON commands(batch_id);
