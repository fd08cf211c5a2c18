//! The PostgreSQL store's PresenceStore: presence: agents connecting, disconnecting, heartbeats.

use super::*;

#[async_trait]
impl PresenceStore for PgStore {
    async fn agent_connected(&self, hello: HelloRecord) -> StoreResult<Connected> {
        // Bound labels win (jsonb `||` keeps the right-hand value); the bound
        // set comes back so the hello labels it overrode can be reported.
        let row = self
            .client()
            .await?
            .query_opt(
                "UPDATE agents SET hostname = $2, agent_version = $3, role = $4,
                    labels = ($5::text::jsonb || bound_labels::jsonb)::text,
                    product = $6, host = $7, version = $8, last_seen = $9, connected = true, replica = $10
                 WHERE id = $1 AND revoked_at IS NULL
                 RETURNING last_seq, bound_labels",
                &[
                    &hello.agent_id,
                    &hello.hostname,
                    &hello.agent_version,
                    &i64::from(hello.role),
                    &labels_json(&hello.labels),
                    &hello.product.encode_to_vec(),
                    &hello.host.encode_to_vec(),
                    &hello.product.version,
                    &hello.at_ms,
                    &self.replica,
                ],
            )
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("agent {}", hello.agent_id)));
        };
        let bound = labels_from_json(row.try_get(1).map_err(map_err)?);
        let (_, ignored_labels) = crate::domain::bound_labels::merge(&bound, &hello.labels);
        let retired = self
            .client()
            .await?
            .query(
                "UPDATE certificates SET revoked = true
                 WHERE agent_id = $1 AND NOT revoked AND serial <> $2
                   AND not_after <= (SELECT not_after FROM certificates WHERE serial = $2 AND agent_id = $1)
                 RETURNING serial",
                &[&hello.agent_id, &hello.cert_serial],
            )
            .await
            .map_err(map_err)?;
        let retired_serials = retired
            .iter()
            .map(|row| row.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(map_err)?;
        Ok(Connected {
            last_seq: u64_of(row.try_get(0).map_err(map_err)?),
            ignored_labels,
            retired_serials,
        })
    }

    async fn agent_disconnected(&self, agent_id: &str, at_ms: i64) -> StoreResult<()> {
        // Only the holder clears the flag: the agent may already be on
        // another replica when this stream's end is noticed.
        self.execute(
            "UPDATE agents SET connected = (connected AND replica <> $3), last_seen = GREATEST(last_seen, $2)
             WHERE id = $1",
            &[&agent_id, &at_ms, &self.replica],
        )
        .await?;
        Ok(())
    }

    async fn reset_connections(&self) -> StoreResult<()> {
        // Other replicas' agents stay connected: they hold their streams.
        self.execute(
            "UPDATE agents SET connected = false WHERE connected AND replica = $1",
            &[&self.replica],
        )
        .await?;
        Ok(())
    }

    async fn touch_agents(&self, seen: Vec<(String, i64)>) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let (ids, times): (Vec<String>, Vec<i64>) = seen.into_iter().unzip();
        // SKIP LOCKED: a row an ingest transaction holds is skipped, never
        // waited for. Waiting here, while that transaction waits for a row
        // this statement already locked, was a deadlock; and the ingest
        // moves `last_seen` forward itself.
        self.execute(
            "UPDATE agents a SET last_seen = GREATEST(a.last_seen, u.at)
             FROM UNNEST($1::text[], $2::bigint[]) AS u(id, at)
             WHERE a.id = u.id
               AND a.id IN (SELECT id FROM agents WHERE id = ANY($1) FOR UPDATE SKIP LOCKED)",
            &[&ids, &times],
        )
        .await?;
        Ok(())
    }

    async fn reassert_presence(&self, held: Vec<String>) -> StoreResult<u64> {
        if held.is_empty() {
            return Ok(0);
        }
        // SKIP LOCKED, as for heartbeats: never wait for a row ingest holds.
        self.execute(
            "UPDATE agents SET connected = true, replica = $2
             WHERE id IN (SELECT id FROM agents
                          WHERE id = ANY($1) AND (NOT connected OR replica <> $2)
                          FOR UPDATE SKIP LOCKED)",
            &[&held, &self.replica],
        )
        .await
    }
}
