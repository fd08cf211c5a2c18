//! The SQLite store's RolloutStore: rollouts, their members and transitions, new check runs.

use super::*;

#[async_trait]
impl RolloutStore for SqliteStore {
    async fn create_rollout(&self, rollout: RolloutRow) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO rollouts (id, target, grace_ms, recheck_every_ms, max_attempts, selector, auto_update_now, started_at, started_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    rollout.id,
                    rollout.target,
                    rollout.grace_ms,
                    rollout.recheck_every_ms,
                    rollout.max_attempts,
                    rollout.selector,
                    rollout.auto_update_now,
                    rollout.started_at_ms,
                    rollout.started_by
                ],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_rollouts(&self) -> StoreResult<Vec<RolloutRow>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT * FROM rollouts ORDER BY started_at DESC, id DESC",
                [],
                |row| rows::rollout(row),
            )
        })
        .await
    }

    async fn cancel_rollout(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE rollouts SET cancelled_at = ?2 WHERE id = ?1 AND cancelled_at IS NULL",
                    params![id, at_ms],
                )
                .map_err(map_err)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn members(&self, rollout_id: &str) -> StoreResult<Vec<MemberRow>> {
        let rollout_id = rollout_id.to_string();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT * FROM rollout_members WHERE rollout_id = ?1",
                [rollout_id],
                |row| rows::member(row),
            )
        })
        .await
    }

    async fn save_members(&self, members: Vec<MemberRow>, transitions: Vec<TransitionRow>) -> StoreResult<()> {
        if members.is_empty() && transitions.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            {
                let mut upsert = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO rollout_members
                         (rollout_id, agent_id, state, hard, since, attempts, next_recheck, cause, failing, update_agent, blocks, auto_update_for,
                          rechecked_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    )
                    .map_err(map_err)?;
                for member in &members {
                    upsert
                        .execute(params![
                            member.rollout_id,
                            member.agent_id,
                            member.state.storage(),
                            member.state.hard_flag(),
                            member.since_ms,
                            member.attempts,
                            member.next_recheck_ms,
                            member.cause,
                            rows::failing_json(&member.failing),
                            member.update_agent,
                            member.blocks,
                            member.auto_update_for,
                            member.rechecked_at_ms
                        ])
                        .map_err(map_err)?;
                }
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO transitions (rollout_id, agent_id, at, from_state, to_state, cause) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )
                    .map_err(map_err)?;
                for transition in &transitions {
                    insert
                        .execute(params![
                            transition.rollout_id,
                            transition.agent_id,
                            transition.at_ms,
                            transition.from_state,
                            transition.to_state,
                            transition.cause
                        ])
                        .map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn transitions(&self, rollout_id: &str) -> StoreResult<Vec<TransitionRow>> {
        let rollout_id = rollout_id.to_string();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT rollout_id, agent_id, at, from_state, to_state, cause FROM transitions WHERE rollout_id = ?1 ORDER BY at, rowid",
                [rollout_id],
                |row| rows::transition(row),
            )
        })
        .await
    }

    async fn latest_checks_since(&self, after_ms: i64) -> StoreResult<Vec<CheckRunRow>> {
        self.read(move |conn| {
            let rows = query_all(
                conn,
                "SELECT a.id, a.checks_at, a.checks_received_at, r.body FROM agents a
                 JOIN reports r ON r.id = a.checks_report
                 WHERE a.checks_received_at > ?1",
                [after_ms],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                        row.get::<_, Vec<u8>>(3)?,
                    ))
                },
            )?;
            Ok(rows
                .into_iter()
                .map(|(agent_id, observed_at_ms, received_at_ms, body)| CheckRunRow {
                    agent_id,
                    observed_at_ms,
                    received_at_ms,
                    checks: crate::store::checks_of_report(&body),
                })
                .collect())
        })
        .await
    }

    async fn agent_transitions(&self, agent_id: &str) -> StoreResult<Vec<TransitionRow>> {
        let agent_id = agent_id.to_string();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT rollout_id, agent_id, at, from_state, to_state, cause FROM transitions WHERE agent_id = ?1 ORDER BY at, rowid",
                [agent_id],
                |row| rows::transition(row),
            )
        })
        .await
    }
}
