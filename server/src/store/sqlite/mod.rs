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

const READER_POOL: usize = 4;

mod audit;
mod bundles;
mod commands;
mod enrolment;
mod fleet;
mod ingest;
mod policy;
mod presence;
mod replication;
mod retention;
mod rollouts;
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
    let (labels, ignored_labels) = crate::domain::bound_labels::merge(&labels_from_json(&bound), &hello.labels);
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
    for (version, sql) in
        super::migrations::pending(&super::migrations::of(super::migrations::Backend::Sqlite), current)
    {
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
