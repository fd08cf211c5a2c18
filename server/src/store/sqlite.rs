//! The embedded store: one SQLite file under the data dir, WAL mode.
//!
//! One writer connection (SQLite allows one writer at a time anyway) behind a
//! mutex, plus a small pool of reader connections so admin queries never wait
//! behind ingest. Every call runs on tokio's blocking pool: SQLite calls block.
//!
//! Agents connecting and disconnecting are written by group commit: callers
//! queue their change and wait; whichever job next holds the writer commits
//! everything queued by then in one transaction (one fsync), so thousands of
//! agents reconnecting at once do not each wait for the disk in turn. The
//! queue is bounded by the streams themselves: each holds at most one entry
//! while it waits for its answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use prost::Message;
use rollcall_common::proto;
use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{self, labels_from_json, labels_json};
use super::traits::*;
use super::{
    AdminCertRow, AgentRow, AuditRow, CheckRunRow, CommandRow, Connected, HelloRecord, MemberRow, NewAgent, NewToken,
    PolicyRow, ReceiptRecord, ReportMeta, ReportRecord, RetentionBatch, RetentionKeep, RevokedSets, RolloutRow,
    Settled, StoreError, StoreResult, TokenRow, TransitionRow,
};

/// Schema migrations, applied in order; the index + 1 is the schema version.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_sqlite.sql"),
    include_str!("schema_sqlite_2.sql"),
    include_str!("schema_sqlite_3.sql"),
    include_str!("schema_sqlite_4.sql"),
    include_str!("schema_sqlite_5.sql"),
    include_str!("schema_sqlite_6.sql"),
    include_str!("schema_sqlite_7.sql"),
    include_str!("schema_sqlite_8.sql"),
    include_str!("schema_sqlite_9.sql"),
    include_str!("schema_sqlite_10.sql"),
    include_str!("schema_sqlite_11.sql"),
    include_str!("schema_sqlite_12.sql"),
];

const READER_POOL: usize = 4;

#[path = "sqlite_bundles.rs"]
mod bundles;
#[path = "sqlite_roster.rs"]
mod roster;

pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// One permit per pooled reader: more concurrent reads wait here rather
    /// than each opening (and parsing the schema of) a fresh connection on
    /// its own blocking thread, which is what a reconnect storm asks for.
    read_permits: Arc<tokio::sync::Semaphore>,
    presence: Arc<Mutex<Vec<PresenceJob>>>,
    /// Its own connection: a passive checkpoint runs beside the writer.
    checkpointer: Arc<Mutex<Option<Connection>>>,
}

/// A connect or disconnect waiting for the next group commit.
enum PresenceJob {
    Connected(Box<HelloRecord>, tokio::sync::oneshot::Sender<StoreResult<Connected>>),
    Disconnected(String, i64, tokio::sync::oneshot::Sender<StoreResult<()>>),
}

/// A job's outcome, sent only once the transaction holding it committed.
enum PresenceReply {
    Connected(
        tokio::sync::oneshot::Sender<StoreResult<Connected>>,
        StoreResult<Connected>,
    ),
    Disconnected(tokio::sync::oneshot::Sender<StoreResult<()>>, StoreResult<()>),
}

fn connected_in(conn: &Connection, hello: &HelloRecord) -> StoreResult<Connected> {
    let known: Option<(i64, String)> = conn
        .prepare_cached("SELECT last_seq, bound_labels FROM agents WHERE id = ?1 AND revoked_at IS NULL")
        .and_then(|mut statement| {
            statement
                .query_row([&hello.agent_id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(map_err)?;
    let Some((last_seq, bound)) = known else {
        return Err(StoreError::NotFound(format!("agent {}", hello.agent_id)));
    };
    let (labels, ignored_labels) = crate::bound_labels::merge(&labels_from_json(&bound), &hello.labels);
    conn.prepare_cached(
        "UPDATE agents SET hostname = ?2, agent_version = ?3, role = ?4, labels = ?5,
            product = ?6, host = ?7, version = ?8, last_seen = ?9, connected = 1
         WHERE id = ?1",
    )
    .and_then(|mut statement| {
        statement.execute(params![
            hello.agent_id,
            hello.hostname,
            hello.agent_version,
            hello.role,
            labels_json(&labels),
            hello.product.encode_to_vec(),
            hello.host.encode_to_vec(),
            hello.product.version,
            hello.at_ms
        ])
    })
    .map_err(map_err)?;
    let retired_serials = conn
        .prepare_cached(
            "UPDATE certificates SET revoked = 1
             WHERE agent_id = ?1 AND revoked = 0 AND serial <> ?2
               AND not_after <= (SELECT not_after FROM certificates WHERE serial = ?2 AND agent_id = ?1)
             RETURNING serial",
        )
        .and_then(|mut statement| {
            statement
                .query_map(params![hello.agent_id, hello.cert_serial], |row| {
                    row.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(map_err)?;
    Ok(Connected {
        last_seq: u64::try_from(last_seq).unwrap_or(0),
        ignored_labels,
        retired_serials,
    })
}

fn disconnected_in(conn: &Connection, agent_id: &str, at_ms: i64) -> StoreResult<()> {
    conn.prepare_cached("UPDATE agents SET connected = 0, last_seen = max(last_seen, ?2) WHERE id = ?1")
        .and_then(|mut statement| statement.execute(params![agent_id, at_ms]))
        .map_err(map_err)?;
    Ok(())
}

/// Commits every queued connect and disconnect in one transaction, then
/// answers each caller.
fn flush_presence(conn: &mut Connection, jobs: Vec<PresenceJob>) {
    let failed = |jobs: Vec<PresenceJob>, error: StoreError| {
        for job in jobs {
            match job {
                PresenceJob::Connected(_, reply) => {
                    // Keep the kind: an Unavailable store must reach health.
                    let _ = reply.send(Err(error.clone()));
                }
                PresenceJob::Disconnected(_, _, reply) => {
                    // Keep the kind: an Unavailable store must reach health.
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    };
    let started = std::time::Instant::now();
    let count = jobs.len();
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(error) => return failed(jobs, map_err(error)),
    };
    let replies: Vec<PresenceReply> = jobs
        .into_iter()
        .map(|job| match job {
            PresenceJob::Connected(hello, reply) => PresenceReply::Connected(reply, connected_in(&tx, &hello)),
            PresenceJob::Disconnected(agent_id, at_ms, reply) => {
                PresenceReply::Disconnected(reply, disconnected_in(&tx, &agent_id, at_ms))
            }
        })
        .collect();
    let committed = tx.commit().map_err(map_err);
    tracing::debug!(jobs = count, took = ?started.elapsed(), "presence group committed");
    for reply in replies {
        match (reply, &committed) {
            (PresenceReply::Connected(reply, result), Ok(())) => {
                let _ = reply.send(result);
            }
            (PresenceReply::Disconnected(reply, result), Ok(())) => {
                let _ = reply.send(result);
            }
            (PresenceReply::Connected(reply, _), Err(error)) => {
                let _ = reply.send(Err(error.clone()));
            }
            (PresenceReply::Disconnected(reply, _), Err(error)) => {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

fn map_err(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::SqliteFailure(failure, _) = &error
        && matches!(
            failure.code,
            ErrorCode::DiskFull | ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure
        )
    {
        return StoreError::Unavailable(error.to_string());
    }
    StoreError::Other(error.to_string())
}

/// Page cache of the writer connection, KiB. SQLite's default (2 MiB) is
/// smaller than one fleet-wide batch touches: the writer then spilled dirty
/// pages mid-transaction and re-read pages it had just evicted (~15 % of the
/// coordinator's CPU during a recheck of 10,000 agents).
const WRITER_CACHE_KIB: i64 = 64 * 1024;
const READER_CACHE_KIB: i64 = 16 * 1024;
/// The writer's own checkpoint, a safety net only (pages of 4 KiB): the
/// checkpoint loop ([`SqliteStore::checkpoint`]) normally runs first, off
/// the commit path.
const WRITER_AUTOCHECKPOINT_PAGES: i64 = 16_384;
/// The WAL file is truncated back to this size after a checkpoint.
const JOURNAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

fn open(path: &Path, cache_kib: i64) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit is on disk before the coordinator acknowledges a report.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Negative: KiB rather than pages.
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the store file and applies migrations.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut writer =
            open(path, WRITER_CACHE_KIB).map_err(|error| anyhow::anyhow!("open store {}: {error}", path.display()))?;
        migrate(&mut writer).map_err(|error| anyhow::anyhow!("migrate store {}: {error}", path.display()))?;
        writer
            .pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
            .and_then(|()| writer.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT_BYTES))
            .map_err(|error| anyhow::anyhow!("configure store {}: {error}", path.display()))?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(Mutex::new(Vec::new())),
            read_permits: Arc::new(tokio::sync::Semaphore::new(READER_POOL)),
            presence: Arc::new(Mutex::new(Vec::new())),
            checkpointer: Arc::new(Mutex::new(None)),
        })
    }

    /// Queues a connect or disconnect for the next group commit, starting a
    /// commit job when the queue was empty (otherwise one is already waiting
    /// for the writer and will take this entry along).
    fn queue_presence(&self, job: PresenceJob) -> StoreResult<()> {
        let first = {
            let mut queue = self
                .presence
                .lock()
                .map_err(|_| StoreError::Other("store presence lock poisoned".into()))?;
            queue.push(job);
            queue.len() == 1
        };
        if first {
            let writer = self.writer.clone();
            let presence = self.presence.clone();
            tokio::task::spawn_blocking(move || {
                let Ok(mut conn) = writer.lock() else {
                    // Dropping the queued senders answers their callers with an error.
                    if let Ok(mut queue) = presence.lock() {
                        queue.clear();
                    }
                    return;
                };
                // Taken only now, holding the writer: everything queued while
                // this job waited for it shares the transaction.
                let jobs = presence
                    .lock()
                    .map(|mut queue| std::mem::take(&mut *queue))
                    .unwrap_or_default();
                if !jobs.is_empty() {
                    flush_presence(&mut conn, jobs);
                }
            });
        }
        Ok(())
    }

    async fn write<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer
                .lock()
                .map_err(|_| StoreError::Other("store writer lock poisoned".into()))?;
            job(&mut conn)
        })
        .await
        .map_err(|error| StoreError::Other(format!("store task failed: {error}")))?
    }

    async fn read<T, F>(&self, job: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let permit = self
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Other("store reader pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => open(&path, READER_CACHE_KIB).map_err(map_err)?,
            };
            let result = job(&conn);
            if let Ok(mut pool) = readers.lock()
                && pool.len() < READER_POOL
            {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|error| StoreError::Other(format!("store task failed: {error}")))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        [],
    )?;
    let current: i64 = tx
        .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
        .optional()?
        .unwrap_or(0);
    if current == 0 {
        tx.execute("INSERT INTO schema_version (version) VALUES (0)", [])?;
    }
    for (version, sql) in super::migrations::pending(MIGRATIONS, current) {
        tx.execute_batch(sql)?;
        tx.execute("UPDATE schema_version SET version = ?1", [version])?;
    }
    tx.commit()
}

fn query_all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut statement = conn.prepare_cached(sql).map_err(map_err)?;
    let rows = statement.query_map(params, map).map_err(map_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
}

fn seq_to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

#[async_trait]
impl EnrolmentStore for SqliteStore {
    async fn create_token(&self, token: NewToken) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO tokens (id, hash, created_at, expires_at, uses_left, uses_total, labels, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7)",
                params![
                    token.id,
                    token.hash.as_slice(),
                    token.created_at_ms,
                    token.expires_at_ms,
                    token.uses,
                    labels_json(&token.labels),
                    token.created_by
                ],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<TokenRow>> {
        self.read(|conn| {
            let mut statement = conn
                .prepare("SELECT id, created_at, expires_at, uses_left, uses_total, labels, revoked, created_by FROM tokens ORDER BY created_at")
                .map_err(map_err)?;
            let rows = statement
                .query_map([], |row| rows::token(row))
                .map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
        .await
    }

    async fn revoke_token(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |conn| {
            let changed = conn
                .execute("UPDATE tokens SET revoked = 1 WHERE id = ?1", [id])
                .map_err(map_err)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn check_token(&self, token_hash: [u8; 32], now_ms: i64) -> StoreResult<()> {
        self.read(move |conn| {
            let token = conn
                .query_row(
                    "SELECT expires_at, uses_left, revoked FROM tokens WHERE hash = ?1",
                    [token_hash.as_slice()],
                    |row| rows::token_state(row),
                )
                .optional()
                .map_err(map_err)?;
            let Some(token) = token else {
                return Err(StoreError::TokenUnknown);
            };
            token.usable(now_ms)
        })
        .await
    }

    async fn enroll_agent(
        &self,
        token_hash: [u8; 32],
        now_ms: i64,
        agent: NewAgent,
    ) -> StoreResult<BTreeMap<String, String>> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(map_err)?;
            let token = tx
                .query_row(
                    "SELECT id, expires_at, uses_left, revoked, labels FROM tokens WHERE hash = ?1",
                    [token_hash.as_slice()],
                    |row| {
                        Ok((
                            row.get::<_, String>("id")?,
                            rows::token_state(row)?,
                            row.get::<_, String>("labels")?,
                        ))
                    },
                )
                .optional()
                .map_err(map_err)?;
            let Some((token_id, state, labels)) = token else {
                return Err(StoreError::TokenUnknown);
            };
            state.usable(now_ms)?;
            tx.execute("UPDATE tokens SET uses_left = uses_left - 1 WHERE id = ?1", [&token_id])
                .map_err(map_err)?;
            let labels = labels_from_json(&labels);
            tx.execute(
                "INSERT INTO agents (id, hostname, labels, bound_labels, enrolled_at) VALUES (?1, ?2, ?3, ?3, ?4)",
                params![agent.id, agent.hostname, labels_json(&labels), agent.enrolled_at_ms],
            )
            .map_err(map_err)?;
            tx.execute(
                "INSERT INTO certificates (serial, agent_id, not_after) VALUES (?1, ?2, ?3)",
                params![agent.cert_serial, agent.id, agent.cert_not_after_ms],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(labels)
        })
        .await
    }

    async fn record_certificate(&self, agent_id: &str, serial: &str, not_after_ms: i64) -> StoreResult<()> {
        let (agent_id, serial) = (agent_id.to_string(), serial.to_string());
        self.write(move |conn| {
            conn.execute(
                "INSERT OR IGNORE INTO certificates (serial, agent_id, not_after) VALUES (?1, ?2, ?3)",
                params![serial, agent_id, not_after_ms],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn revoke_agent(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let changed = tx
                .execute(
                    "UPDATE agents SET revoked_at = coalesce(revoked_at, ?2), connected = 0 WHERE id = ?1",
                    params![id, at_ms],
                )
                .map_err(map_err)?;
            tx.execute("UPDATE certificates SET revoked = 1 WHERE agent_id = ?1", [&id])
                .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(changed > 0)
        })
        .await
    }

    async fn revoked(&self) -> StoreResult<RevokedSets> {
        self.read(|conn| {
            let collect = |sql: &str| -> StoreResult<Vec<String>> {
                let mut statement = conn.prepare(sql).map_err(map_err)?;
                let rows = statement
                    .query_map([], |row| row.get::<_, String>(0))
                    .map_err(map_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
            };
            Ok(RevokedSets {
                agent_ids: collect("SELECT id FROM agents WHERE revoked_at IS NOT NULL")?,
                serials: collect(
                    "SELECT serial FROM certificates WHERE revoked != 0
                     UNION SELECT serial FROM admin_certificates WHERE revoked_at IS NOT NULL",
                )?,
            })
        })
        .await
    }
}

#[async_trait]
impl PresenceStore for SqliteStore {
    async fn agent_connected(&self, hello: HelloRecord) -> StoreResult<Connected> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue_presence(PresenceJob::Connected(Box::new(hello), reply))?;
        answer
            .await
            .map_err(|_| StoreError::Other("store presence job failed".into()))?
    }

    async fn agent_disconnected(&self, agent_id: &str, at_ms: i64) -> StoreResult<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue_presence(PresenceJob::Disconnected(agent_id.to_string(), at_ms, reply))?;
        answer
            .await
            .map_err(|_| StoreError::Other("store presence job failed".into()))?
    }

    async fn reset_connections(&self) -> StoreResult<()> {
        self.write(|conn| {
            conn.execute("UPDATE agents SET connected = 0 WHERE connected != 0", [])
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn touch_agents(&self, seen: Vec<(String, i64)>) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            {
                let mut statement = tx
                    .prepare_cached("UPDATE agents SET last_seen = max(last_seen, ?2) WHERE id = ?1")
                    .map_err(map_err)?;
                for (agent_id, at_ms) in &seen {
                    statement.execute(params![agent_id, at_ms]).map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)
        })
        .await
    }
}

#[async_trait]
impl IngestStore for SqliteStore {
    async fn ingest(&self, batch: Vec<ReportRecord>, receipts: Vec<ReceiptRecord>) -> StoreResult<Vec<Settled>> {
        if batch.is_empty() && receipts.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let mut settled = Vec::new();
            {
                let mut record_receipt = tx
                    .prepare_cached(
                        "UPDATE commands SET receipt = ?3, refused = ?4
                         WHERE id = ?1 AND agent_id = ?2 AND NOT refused
                         RETURNING batch_id, answered_at IS NULL",
                    )
                    .map_err(map_err)?;
                for receipt in &receipts {
                    let updated: Option<(String, bool)> = record_receipt
                        .query_row(
                            params![
                                receipt.command_id,
                                receipt.agent_id,
                                receipt.receipt.storage(),
                                receipt.receipt.is_refused()
                            ],
                            |row| Ok((row.get(0)?, row.get(1)?)),
                        )
                        .optional()
                        .map_err(map_err)?;
                    if let Some((batch_id, true)) = updated
                        && receipt.receipt.is_refused()
                    {
                        settled.push(Settled {
                            batch_id,
                            answer: None,
                            was_refused: false,
                        });
                    }
                }
                // Acknowledgements are cumulative: a seq not above the
                // agent's highest stored one is a re-send (schema 5).
                let mut last_seq = tx
                    .prepare_cached("SELECT last_seq FROM agents WHERE id = ?1")
                    .map_err(map_err)?;
                let mut insert_report = tx
                    .prepare_cached(
                        "INSERT INTO reports (agent_id, seq, kind, observed_at, received_at, command_id, version, body)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .map_err(map_err)?;
                // The agent row holds its newest facts: newest by seq (the
                // check above keeps seqs rising), never by the agent's clock,
                // and points at the report with its newest check run. The
                // dropped count saturates: SQLite turns an integer sum that
                // overflows into a REAL, which no read of the row accepted.
                let mut update_agent = tx
                    .prepare_cached(
                        "UPDATE agents SET last_seq = max(last_seq, ?2), last_seen = max(last_seen, ?3),
                            last_report_at = max(last_report_at, ?4),
                            dropped_reports = CASE WHEN typeof(dropped_reports) <> 'integer'
                                                      OR dropped_reports > 9223372036854775807 - ?5
                                                   THEN 9223372036854775807 ELSE dropped_reports + ?5 END,
                            dead_letters = CASE WHEN typeof(dead_letters) <> 'integer'
                                                   OR dead_letters > 9223372036854775807 - ?11
                                                THEN 9223372036854775807 ELSE dead_letters + ?11 END,
                            product = ?6, host = ?7, version = ?8,
                            checks_report = coalesce(?9, checks_report),
                            checks_at = CASE WHEN ?9 IS NOT NULL THEN ?4 ELSE checks_at END,
                            checks_received_at = CASE WHEN ?9 IS NOT NULL THEN ?3 ELSE checks_received_at END,
                            clock_skew_ms = ?10
                         WHERE id = ?1",
                    )
                    .map_err(map_err)?;
                let mut answer_command = tx
                    .prepare_cached(
                        "UPDATE commands SET answered_at = ?3, answer_version = ?4
                         WHERE id = ?1 AND agent_id = ?2 AND answered_at IS NULL
                         RETURNING batch_id, refused",
                    )
                    .map_err(map_err)?;
                for record in &batch {
                    let report = &record.report;
                    let seq = seq_to_sql(report.seq);
                    let stored: Option<i64> = last_seq
                        .query_row([&record.agent_id], |row| row.get(0))
                        .optional()
                        .map_err(map_err)?;
                    if stored.is_some_and(|stored| seq <= stored) {
                        // Already stored: a re-send after a lost acknowledgement.
                        continue;
                    }
                    let clock = crate::clock_skew::reading(record);
                    insert_report
                        .execute(params![
                            record.agent_id,
                            seq,
                            report.kind,
                            clock.observed_at_ms,
                            record.received_at_ms,
                            report.command_id,
                            report.product.as_ref().map(|p| p.version.as_str()).unwrap_or(""),
                            report.encode_to_vec()
                        ])
                        .map_err(map_err)?;
                    let report_id = (!report.checks.is_empty()).then(|| tx.last_insert_rowid());
                    let product = report.product.clone().unwrap_or_default();
                    if !report.command_id.is_empty() {
                        let answered: Option<(String, bool)> = answer_command
                            .query_row(
                                params![
                                    report.command_id,
                                    record.agent_id,
                                    record.received_at_ms,
                                    product.version
                                ],
                                |row| Ok((row.get(0)?, row.get(1)?)),
                            )
                            .optional()
                            .map_err(map_err)?;
                        if let Some((batch_id, was_refused)) = answered {
                            settled.push(Settled {
                                batch_id,
                                answer: Some(product.version.clone()),
                                was_refused,
                            });
                        }
                    }
                    update_agent
                        .execute(params![
                            record.agent_id,
                            seq,
                            record.received_at_ms,
                            clock.observed_at_ms,
                            seq_to_sql(report.dropped_before),
                            product.encode_to_vec(),
                            report.host.clone().unwrap_or_default().encode_to_vec(),
                            product.version,
                            report_id,
                            clock.skew_ms,
                            seq_to_sql(report.dead_lettered_before)
                        ])
                        .map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)?;
            Ok(settled)
        })
        .await
    }

    async fn checkpoint(&self) -> StoreResult<()> {
        // PASSIVE: copies what no reader still needs from the WAL into the
        // database file without blocking the writer or readers; the writer
        // then restarts the WAL from its beginning. Done here, once a
        // second, a page rewritten by many batches is copied once, and the
        // commits that acknowledge reports no longer pay for it.
        let checkpointer = self.checkpointer.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = checkpointer
                .lock()
                .map_err(|_| StoreError::Other("store checkpoint lock poisoned".into()))?;
            let conn = match slot.as_mut() {
                Some(conn) => conn,
                None => slot.insert(open(&path, READER_CACHE_KIB).map_err(map_err)?),
            };
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                .map_err(map_err)
        })
        .await
        .map_err(|error| StoreError::Other(format!("store task failed: {error}")))?
    }
}

#[async_trait]
impl FleetStore for SqliteStore {
    async fn list_agents(&self) -> StoreResult<Vec<AgentRow>> {
        self.read(|conn| {
            let mut statement = conn
                .prepare("SELECT * FROM agents ORDER BY hostname, id")
                .map_err(map_err)?;
            let rows = statement.query_map([], |row| rows::agent(row)).map_err(map_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
        })
        .await
    }

    async fn get_agent(&self, id: &str) -> StoreResult<Option<AgentRow>> {
        let id = id.to_string();
        self.read(move |conn| {
            conn.query_row("SELECT * FROM agents WHERE id = ?1", [id], |row| rows::agent(row))
                .optional()
                .map_err(map_err)
        })
        .await
    }

    async fn latest_checks(&self, id: &str) -> StoreResult<(Vec<proto::CheckResult>, i64)> {
        let id = id.to_string();
        self.read(move |conn| {
            let found: Option<(Vec<u8>, i64)> = conn
                .query_row(
                    "SELECT r.body, a.checks_at FROM agents a JOIN reports r ON r.id = a.checks_report WHERE a.id = ?1",
                    [id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(map_err)?;
            Ok(found
                .map(|(body, observed)| (super::checks_of_report(&body), observed))
                .unwrap_or_default())
        })
        .await
    }

    async fn latest_checks_of(
        &self,
        ids: Vec<String>,
    ) -> StoreResult<std::collections::HashMap<String, Vec<proto::CheckResult>>> {
        let mut found = std::collections::HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(super::traits::LATEST_CHECKS_CHUNK) {
            // The ids travel as one JSON array: one query, whatever their count.
            let list = serde_json::to_string(chunk).map_err(|error| StoreError::Other(error.to_string()))?;
            let rows = self
                .read(move |conn| {
                    query_all(
                        conn,
                        "SELECT a.id, r.body FROM agents a JOIN reports r ON r.id = a.checks_report
                         WHERE a.id IN (SELECT value FROM json_each(?1))",
                        [list],
                        |row| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?)),
                    )
                })
                .await?;
            found.extend(rows.into_iter().map(|(id, body)| (id, super::checks_of_report(&body))));
        }
        Ok(found)
    }

    async fn reports_meta(&self, kind: i32, since_ms: i64) -> StoreResult<Vec<ReportMeta>> {
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT agent_id, seq, kind, observed_at, received_at, command_id, version, body FROM reports
                 WHERE kind = ?1 AND observed_at >= ?2 ORDER BY observed_at",
                params![kind, since_ms],
                |row| {
                    let mut meta = rows::report_meta(row)?;
                    meta.update_now_refused = super::update_now_refused(&row.get::<_, Vec<u8>>(7)?);
                    Ok(meta)
                },
            )
        })
        .await
    }

    async fn reports_received(&self, from_ms: i64, to_ms: i64) -> StoreResult<Vec<ReportMeta>> {
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT agent_id, seq, kind, observed_at, received_at, command_id, version FROM reports
                 WHERE received_at >= ?1 AND received_at <= ?2 ORDER BY received_at, id",
                params![from_ms, to_ms],
                |row| rows::report_meta(row),
            )
        })
        .await
    }

    async fn count_reports(&self, agent_id: Option<&str>) -> StoreResult<u64> {
        let agent_id = agent_id.map(str::to_string);
        self.read(move |conn| {
            let count: i64 = match agent_id {
                Some(id) => conn.query_row("SELECT count(*) FROM reports WHERE agent_id = ?1", [id], |row| {
                    row.get(0)
                }),
                None => conn.query_row("SELECT count(*) FROM reports", [], |row| row.get(0)),
            }
            .map_err(map_err)?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }
}

#[async_trait]
impl PolicyStore for SqliteStore {
    async fn put_policy(&self, toml: &str, applied_by: &str, at_ms: i64) -> StoreResult<u64> {
        let (toml, applied_by) = (toml.to_string(), applied_by.to_string());
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let next: i64 = tx
                .query_row("SELECT coalesce(max(version), 0) + 1 FROM policies", [], |row| {
                    row.get(0)
                })
                .map_err(map_err)?;
            tx.execute(
                "INSERT INTO policies (version, toml, applied_at, applied_by) VALUES (?1, ?2, ?3, ?4)",
                params![next, toml, at_ms, applied_by],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(u64::try_from(next).unwrap_or(0))
        })
        .await
    }

    async fn current_policy(&self) -> StoreResult<Option<PolicyRow>> {
        self.read(|conn| {
            conn.query_row(
                "SELECT version, toml, applied_at, applied_by FROM policies ORDER BY version DESC LIMIT 1",
                [],
                |row| rows::policy(row),
            )
            .optional()
            .map_err(map_err)
        })
        .await
    }
}

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
                    checks: super::checks_of_report(&body),
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

#[async_trait]
impl CommandStore for SqliteStore {
    async fn create_commands(&self, commands: Vec<CommandRow>) -> StoreResult<()> {
        if commands.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO commands (id, batch_id, agent_id, kind, rollout_id, target, origin, splay_ms, created_at,
                            expires_at, delivered_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )
                    .map_err(map_err)?;
                for command in &commands {
                    insert
                        .execute(params![
                            command.id,
                            command.batch_id,
                            command.agent_id,
                            command.kind,
                            command.rollout_id,
                            command.target,
                            command.origin,
                            command.splay_ms,
                            command.created_at_ms,
                            command.expires_at_ms,
                            command.delivered_at_ms
                        ])
                        .map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn undelivered_commands(&self, agent_id: &str, now_ms: i64) -> StoreResult<Vec<CommandRow>> {
        let agent_id = agent_id.to_string();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT * FROM commands WHERE agent_id = ?1 AND delivered_at IS NULL AND expired = 0 AND expires_at > ?2 ORDER BY created_at",
                params![agent_id, now_ms],
                |row| rows::command(row),
            )
        })
        .await
    }

    async fn mark_delivered(&self, ids: Vec<String>, at_ms: i64) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            {
                let mut update = tx
                    .prepare_cached("UPDATE commands SET delivered_at = ?2 WHERE id = ?1 AND delivered_at IS NULL")
                    .map_err(map_err)?;
                for id in &ids {
                    update.execute(params![id, at_ms]).map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)
        })
        .await
    }

    async fn expire_commands(&self, now_ms: i64) -> StoreResult<u64> {
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE commands SET expired = 1 WHERE delivered_at IS NULL AND expired = 0 AND expires_at <= ?1",
                    [now_ms],
                )
                .map_err(map_err)?;
            Ok(changed as u64)
        })
        .await
    }

    async fn batch_commands(&self, batch_id: &str) -> StoreResult<Vec<CommandRow>> {
        let batch_id = batch_id.to_string();
        self.read(move |conn| {
            query_all(conn, "SELECT * FROM commands WHERE batch_id = ?1", [batch_id], |row| {
                rows::command(row)
            })
        })
        .await
    }

    async fn batch_tally(&self, batch_id: &str) -> StoreResult<super::BatchTally> {
        let batch_id = batch_id.to_string();
        self.read(move |conn| {
            let mut statement = conn
                // SQLite reads `$1` as a parameter bound by position, too.
                .prepare_cached(super::BATCH_TALLY_SQL)
                .map_err(map_err)?;
            let mut rows = statement.query([batch_id]).map_err(map_err)?;
            let mut tally = super::BatchTally::default();
            while let Some(row) = rows.next().map_err(map_err)? {
                let state: String = row.get(0).map_err(map_err)?;
                tally.add(&state, row.get(1).map_err(map_err)?, row.get(2).map_err(map_err)?);
            }
            Ok(tally)
        })
        .await
    }

    async fn rollout_commands(&self, rollout_id: &str) -> StoreResult<Vec<CommandRow>> {
        let rollout_id = rollout_id.to_string();
        self.read(move |conn| {
            query_all(
                conn,
                "SELECT * FROM commands WHERE rollout_id = ?1 ORDER BY created_at",
                [rollout_id],
                |row| rows::command(row),
            )
        })
        .await
    }

    async fn undelivered_for_agents(
        &self,
        agent_ids: Option<Vec<String>>,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<CommandRow>> {
        self.read(move |conn| match agent_ids {
            None => query_all(
                conn,
                "SELECT * FROM commands WHERE delivered_at IS NULL AND expired = 0 AND expires_at > ?1
                 ORDER BY created_at, id LIMIT ?2",
                params![now_ms, limit],
                |row| rows::command(row),
            ),
            Some(ids) => query_all(
                conn,
                "SELECT * FROM commands WHERE agent_id IN (SELECT value FROM json_each(?1))
                 AND delivered_at IS NULL AND expired = 0 AND expires_at > ?2
                 ORDER BY created_at, id LIMIT ?3",
                params![
                    serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()),
                    now_ms,
                    limit
                ],
                |row| rows::command(row),
            ),
        })
        .await
    }

    async fn claim_delivery(&self, ids: Vec<String>, at_ms: i64) -> StoreResult<Vec<String>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let mut claimed = Vec::new();
            {
                let mut update = tx
                    .prepare_cached(
                        "UPDATE commands SET delivered_at = ?2 WHERE id = ?1 AND delivered_at IS NULL AND expired = 0",
                    )
                    .map_err(map_err)?;
                for id in ids {
                    if update.execute(params![id, at_ms]).map_err(map_err)? > 0 {
                        claimed.push(id);
                    }
                }
            }
            tx.commit().map_err(map_err)?;
            Ok(claimed)
        })
        .await
    }

    async fn release_delivery(&self, ids: Vec<String>) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            {
                let mut update = tx
                    .prepare_cached("UPDATE commands SET delivered_at = NULL WHERE id = ?1 AND answered_at IS NULL")
                    .map_err(map_err)?;
                for id in &ids {
                    update.execute([id]).map_err(map_err)?;
                }
            }
            tx.commit().map_err(map_err)
        })
        .await
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, row: AuditRow) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO audit (at, actor, role, action, target, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![row.at_ms, row.actor, row.role, row.action, row.target, row.result],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, limit: u32) -> StoreResult<Vec<AuditRow>> {
        self.read(move |conn| {
            let mut rows = query_all(
                conn,
                "SELECT at, actor, role, action, target, result FROM audit ORDER BY at DESC, rowid DESC LIMIT ?1",
                [limit],
                |row| rows::audit(row),
            )?;
            rows.reverse();
            Ok(rows)
        })
        .await
    }

    async fn record_admin_certificate(&self, row: AdminCertRow) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO admin_certificates (serial, name, role, issued_at, not_after, issued_by, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![row.serial, row.name, row.role, row.issued_at_ms, row.not_after_ms, row.issued_by, row.revoked_at_ms],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn list_admin_certificates(&self) -> StoreResult<Vec<AdminCertRow>> {
        self.read(|conn| {
            query_all(
                conn,
                "SELECT serial, name, role, issued_at, not_after, issued_by, revoked_at FROM admin_certificates ORDER BY name, issued_at",
                [],
                |row| rows::admin_certificate(row),
            )
        })
        .await
    }

    async fn revoke_admin_certificates(&self, name: &str, at_ms: i64) -> StoreResult<Vec<String>> {
        let name = name.to_string();
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            let serials = query_all(
                &tx,
                "SELECT serial FROM admin_certificates WHERE name = ?1 AND revoked_at IS NULL",
                [&name],
                |row| row.get::<_, String>(0),
            )?;
            tx.execute(
                "UPDATE admin_certificates SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, at_ms],
            )
            .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            Ok(serials)
        })
        .await
    }
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn delete_old_reports(
        &self,
        before_ms: i64,
        keep: RetentionKeep,
        cursor: i64,
        limit: u32,
    ) -> StoreResult<RetentionBatch> {
        let update_now_since = keep.update_now_since_ms.unwrap_or(i64::MAX);
        let update_now_kind = proto::ReportKind::UpdateNowAgent as i64;
        self.write(move |conn| {
            let tx = conn.transaction().map_err(map_err)?;
            // The batch: the next `limit` reports by id, which is arrival order.
            let (last_id, newest): (Option<i64>, Option<i64>) = tx
                .query_row(
                    "SELECT max(id), max(received_at) FROM
                        (SELECT id, received_at FROM reports WHERE id > ?1 ORDER BY id LIMIT ?2)",
                    params![cursor, limit],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(map_err)?;
            let Some(last_id) = last_id else {
                return Ok(RetentionBatch { deleted: 0, next: None });
            };
            let deleted = tx
                .execute(
                    "DELETE FROM reports WHERE id > ?1 AND id <= ?2 AND received_at < ?3
                        AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = reports.agent_id
                            AND (a.last_seq = reports.seq OR a.checks_report = reports.id))
                        AND NOT (kind = ?4 AND observed_at >= ?5)",
                    params![cursor, last_id, before_ms, update_now_kind, update_now_since],
                )
                .map_err(map_err)?;
            tx.commit().map_err(map_err)?;
            // Ids follow arrival: once a batch reaches reports received after
            // the cutoff, the rest of the table is newer still.
            let next = newest.is_some_and(|newest| newest < before_ms).then_some(last_id);
            Ok(RetentionBatch {
                deleted: deleted as u64,
                next,
            })
        })
        .await
    }

    async fn store_bytes(&self) -> StoreResult<u64> {
        let wal = PathBuf::from(format!("{}-wal", self.path.display()));
        let wal_bytes = std::fs::metadata(&wal).map(|meta| meta.len()).unwrap_or(0);
        let file_bytes = self
            .read(|conn| {
                conn.query_row(
                    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                    [],
                    |row| row.get::<_, i64>(0),
                )
                .map_err(map_err)
            })
            .await?;
        Ok(u64::try_from(file_bytes).unwrap_or(0) + wal_bytes)
    }
}

#[async_trait]
impl ReplicationStore for SqliteStore {
    async fn try_lease(&self, _name: &str, _holder: &str, _ttl_ms: i64) -> StoreResult<bool> {
        // One process owns the SQLite file: it holds every lease.
        Ok(true)
    }

    async fn release_lease(&self, _name: &str, _holder: &str) -> StoreResult<()> {
        Ok(())
    }

    async fn notify(&self, _notice: super::Notice) -> StoreResult<()> {
        Ok(())
    }

    async fn subscribe(
        &self,
        _shutdown: tokio_util::sync::CancellationToken,
    ) -> StoreResult<Option<tokio::sync::mpsc::Receiver<super::Notice>>> {
        Ok(None)
    }
}
