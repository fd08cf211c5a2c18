//! The PostgreSQL store's RolloutStore: rollouts, their members and transitions, new check runs.

use super::*;

#[async_trait]
impl RolloutStore for PgStore {
    async fn create_rollout(&self, rollout: RolloutRow) -> StoreResult<()> {
        self.execute(
            "INSERT INTO rollouts (id, target, grace_ms, recheck_every_ms, max_attempts, selector, auto_update_now,
                started_at, started_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &rollout.id,
                &rollout.target,
                &rollout.grace_ms,
                &rollout.recheck_every_ms,
                &i64::from(rollout.max_attempts),
                &rollout.selector,
                &rollout.auto_update_now,
                &rollout.started_at_ms,
                &rollout.started_by,
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_rollouts(&self) -> StoreResult<Vec<RolloutRow>> {
        let rows = self
            .query(
                &format!("SELECT * FROM rollouts ORDER BY started_at DESC, id {C} DESC"),
                &[],
            )
            .await?;
        map_rows(rows, rows::rollout)
    }

    async fn cancel_rollout(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let changed = self
            .execute(
                "UPDATE rollouts SET cancelled_at = $2 WHERE id = $1 AND cancelled_at IS NULL",
                &[&id, &at_ms],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn members(&self, rollout_id: &str) -> StoreResult<Vec<MemberRow>> {
        let rows = self
            .query("SELECT * FROM rollout_members WHERE rollout_id = $1", &[&rollout_id])
            .await?;
        map_rows(rows, rows::member)
    }

    async fn save_members(&self, members: Vec<MemberRow>, transitions: Vec<TransitionRow>) -> StoreResult<()> {
        if members.is_empty() && transitions.is_empty() {
            return Ok(());
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_err)?;
        if !members.is_empty() {
            // One row per (rollout, agent) here: the engine builds them from a map.
            let mut columns: (
                Vec<String>,
                Vec<String>,
                Vec<String>,
                Vec<bool>,
                Vec<i64>,
                Vec<i64>,
                Vec<i64>,
                Vec<String>,
                Vec<String>,
                Vec<String>,
                Vec<i64>,
                Vec<String>,
            ) = Default::default();
            // Beside the tuple: `Default` stops at twelve elements.
            let mut rechecked_at: Vec<i64> = Vec::with_capacity(members.len());
            for member in members {
                columns.0.push(member.rollout_id);
                columns.1.push(member.agent_id);
                columns.2.push(member.state.storage().to_string());
                columns.3.push(member.state.hard_flag());
                columns.4.push(member.since_ms);
                columns.5.push(i64::from(member.attempts));
                columns.6.push(member.next_recheck_ms);
                columns.7.push(member.cause);
                columns.8.push(rows::failing_json(&member.failing));
                columns.9.push(member.update_agent);
                columns.10.push(i64::from(member.blocks));
                columns.11.push(member.auto_update_for);
                rechecked_at.push(member.rechecked_at_ms);
            }
            tx.execute(
                "INSERT INTO rollout_members
                    (rollout_id, agent_id, state, hard, since, attempts, next_recheck, cause, failing, update_agent,
                     blocks, auto_update_for, rechecked_at)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[], $5::bigint[], $6::bigint[],
                                      $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[],
                                      $13::bigint[])
                 ON CONFLICT (rollout_id, agent_id) DO UPDATE SET state = excluded.state, hard = excluded.hard,
                    since = excluded.since, attempts = excluded.attempts, next_recheck = excluded.next_recheck,
                    cause = excluded.cause, failing = excluded.failing, update_agent = excluded.update_agent,
                    blocks = excluded.blocks, auto_update_for = excluded.auto_update_for,
                    rechecked_at = excluded.rechecked_at",
                &[
                    &columns.0,
                    &columns.1,
                    &columns.2,
                    &columns.3,
                    &columns.4,
                    &columns.5,
                    &columns.6,
                    &columns.7,
                    &columns.8,
                    &columns.9,
                    &columns.10,
                    &columns.11,
                    &rechecked_at,
                ],
            )
            .await
            .map_err(map_err)?;
        }
        if !transitions.is_empty() {
            let mut columns: (
                Vec<String>,
                Vec<String>,
                Vec<i64>,
                Vec<String>,
                Vec<String>,
                Vec<String>,
            ) = Default::default();
            for transition in transitions {
                columns.0.push(transition.rollout_id);
                columns.1.push(transition.agent_id);
                columns.2.push(transition.at_ms);
                columns.3.push(transition.from_state);
                columns.4.push(transition.to_state);
                columns.5.push(transition.cause);
            }
            // ORDER BY ord: ids follow the order given, as rowids do.
            tx.execute(
                "INSERT INTO transitions (rollout_id, agent_id, at, from_state, to_state, cause)
                 SELECT rollout_id, agent_id, at, from_state, to_state, cause
                 FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[])
                      WITH ORDINALITY AS u(rollout_id, agent_id, at, from_state, to_state, cause, ord)
                 ORDER BY ord",
                &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4, &columns.5],
            )
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn transitions(&self, rollout_id: &str) -> StoreResult<Vec<TransitionRow>> {
        let rows = self
            .query(
                "SELECT * FROM transitions WHERE rollout_id = $1 ORDER BY at, id",
                &[&rollout_id],
            )
            .await?;
        map_rows(rows, rows::transition)
    }

    async fn latest_checks_since(&self, after_ms: i64) -> StoreResult<Vec<CheckRunRow>> {
        let rows = self
            .query(
                "SELECT a.id, a.checks_at, a.checks_received_at, r.body FROM agents a
                 JOIN reports r ON r.agent_id = a.id AND r.seq = a.checks_seq WHERE a.checks_received_at > $1",
                &[&after_ms],
            )
            .await?;
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            let body: Vec<u8> = row.try_get(3).map_err(map_err)?;
            runs.push(CheckRunRow {
                agent_id: row.try_get(0).map_err(map_err)?,
                observed_at_ms: row.try_get(1).map_err(map_err)?,
                received_at_ms: row.try_get(2).map_err(map_err)?,
                checks: crate::store::checks_of_report(&body),
            });
        }
        Ok(runs)
    }

    async fn agent_transitions(&self, agent_id: &str) -> StoreResult<Vec<TransitionRow>> {
        let rows = self
            .query(
                "SELECT * FROM transitions WHERE agent_id = $1 ORDER BY at, id",
                &[&agent_id],
            )
            .await?;
        map_rows(rows, rows::transition)
    }
}
