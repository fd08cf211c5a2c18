//! Databases as earlier releases left them, upgraded by the one migration
//! list (`store/migrations/`): each test builds the old schema from the
//! first N steps of a backend ([`migrations_upto`]), plants rows, opens the
//! store and checks what the newer steps made of them.

use super::*;
use crate::store::migrations::Backend;

/// A database made before schemas 4 and 5 keeps its reports when `reports`
/// is rebuilt, its agents point at their newest report's checks (the
/// `latest_checks` copy is gone), and a re-sent seq is still stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_schema_5_keeps_reports_and_latest_checks_written_by_schema_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollcall.db");
    let old = report("a", 7, 10, "14.0.1", "");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (3);",
        )
        .unwrap();
        for migration in migrations_upto(Backend::Sqlite, 3) {
            conn.execute_batch(migration).unwrap();
        }
        conn.execute(
            "INSERT INTO agents (id, hostname, enrolled_at, last_seq) VALUES ('a', 'host-a', 1, 7)",
            [],
        )
        .unwrap();
        for (seq, observed, body) in [(6, 5, vec![0u8]), (7, 10, old.report.encode_to_vec())] {
            conn.execute(
                "INSERT INTO reports (agent_id, seq, kind, observed_at, received_at, body) VALUES ('a', ?1, 1, ?2, 11, ?3)",
                rusqlite::params![seq, observed, body],
            )
            .unwrap();
        }
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    after_schema_5(&store, &old).await;
}

/// A PostgreSQL database at schema 4 keeps working after schema 5: its
/// agents point at their newest report's checks, and a re-sent seq is
/// stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_5_points_agents_at_the_checks_of_their_newest_report() {
    let Some(scratch) = scratch_or_skip("postgres_schema_5_points_agents_at_their_newest_report").await else {
        return;
    };
    let old = report("a", 7, 10, "14.0.1", "");
    {
        let (client, connection) = tokio_postgres::connect(scratch.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        let connection = tokio::spawn(connection);
        client
            .batch_execute(
                "CREATE TABLE schema_version (version BIGINT NOT NULL); INSERT INTO schema_version VALUES (4);",
            )
            .await
            .unwrap();
        for migration in migrations_upto(Backend::Postgres, 4) {
            client.batch_execute(migration).await.unwrap();
        }
        client
            .execute(
                "INSERT INTO agents (id, hostname, enrolled_at, last_seq) VALUES ('a', 'host-a', 1, 7)",
                &[],
            )
            .await
            .unwrap();
        for (seq, observed, body) in [(6_i64, 5_i64, vec![0u8]), (7, 10, old.report.encode_to_vec())] {
            client
                .execute(
                    "INSERT INTO reports (agent_id, seq, kind, observed_at, received_at, body) VALUES ('a', $1, 1, $2, 11, $3)",
                    &[&seq, &observed, &body],
                )
                .await
                .unwrap();
        }
        drop(client);
        connection.await.unwrap().unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(scratch.url(), "replica-a").await.unwrap());
    after_schema_5(&store, &old).await;
}

/// What both stores hold after migrating to schema 5 a database where agent
/// `a` (last_seq 7) has two reports, seq 6 and the newer seq 7 (`old`).
async fn after_schema_5(store: &Arc<dyn Store>, old: &ReportRecord) {
    assert_eq!(store.count_reports(Some("a")).await.unwrap(), 2);
    let (checks, observed) = store.latest_checks("a").await.unwrap();
    assert_eq!(observed, 10, "the newest report holds the latest checks");
    assert_eq!(checks, old.report.checks);
    store
        .ingest(vec![report("a", 7, 2000, "9.9.9", "")], vec![])
        .await
        .unwrap();
    assert_eq!(
        store.count_reports(Some("a")).await.unwrap(),
        2,
        "a re-sent seq is stored once"
    );
    store
        .ingest(vec![report("a", 8, 3000, "14.0.2", "")], vec![])
        .await
        .unwrap();
    assert_eq!(store.count_reports(Some("a")).await.unwrap(), 3);
    assert_eq!(store.latest_checks("a").await.unwrap().1, 3000);
}

/// Commands of batch `b1` (agent `a`, rollout `r1`) as a database before
/// the `refused` column held them: receipt text only.
const COMMANDS_BEFORE_REFUSED_COLUMN: &str = "
    INSERT INTO agents (id, hostname, enrolled_at, last_seq) VALUES ('a', 'host-a', 1, 0);
    INSERT INTO commands (id, batch_id, agent_id, kind, rollout_id, origin, created_at, expires_at, delivered_at,
                          receipt, answered_at, answer_version)
    VALUES ('c1', 'b1', 'a', 1, 'r1', 'admin', 1, 9999999999999, 2, 'refused: busy', NULL, ''),
           ('c2', 'b1', 'a', 1, 'r1', 'admin', 2, 9999999999999, 2, 'accepted', NULL, ''),
           ('c3', 'b1', 'a', 1, 'r1', 'admin', 3, 9999999999999, 2, '', NULL, ''),
           ('c4', 'b1', 'a', 1, 'r1', 'admin', 4, 9999999999999, 2, 'refused: late', 5, '14.0.2');";

/// A SQLite database at schema 9 gets the `refused` column backfilled from
/// its receipts' text, and the queries that now read it agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_schema_10_backfills_refused_from_the_receipt_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollcall.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (9);",
        )
        .unwrap();
        for migration in migrations_upto(Backend::Sqlite, 9)
            .into_iter()
            .chain([COMMANDS_BEFORE_REFUSED_COLUMN])
        {
            conn.execute_batch(migration).unwrap();
        }
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let refused: Vec<(String, bool)> = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mut statement = conn.prepare("SELECT id, refused FROM commands ORDER BY id").unwrap();
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(refused, backfilled());
    after_refused_column(&store).await;
}

/// The same on a PostgreSQL database at schema 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_11_backfills_refused_from_the_receipt_text() {
    let Some(scratch) = scratch_or_skip("postgres_schema_11_backfills_refused").await else {
        return;
    };
    let (client, connection) = tokio_postgres::connect(scratch.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE schema_version (version BIGINT NOT NULL); INSERT INTO schema_version VALUES (10);")
        .await
        .unwrap();
    for migration in migrations_upto(Backend::Postgres, 10)
        .into_iter()
        .chain([COMMANDS_BEFORE_REFUSED_COLUMN])
    {
        client.batch_execute(migration).await.unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(scratch.url(), "replica-a").await.unwrap());
    let refused: Vec<(String, bool)> = client
        .query("SELECT id, refused FROM commands ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(refused, backfilled());
    drop(client);
    connection.await.unwrap().unwrap();
    after_refused_column(&store).await;
}

/// `refused` after the migration of [`COMMANDS_BEFORE_REFUSED_COLUMN`].
fn backfilled() -> Vec<(String, bool)> {
    [("c1", true), ("c2", false), ("c3", false), ("c4", true)]
        .map(|(id, refused)| (id.to_string(), refused))
        .to_vec()
}

/// What both stores do with the migrated commands: the tally, the finality
/// of a refusal and an answer after a refusal all follow the column.
async fn after_refused_column(store: &Arc<dyn Store>) {
    assert_eq!(
        store.batch_tally("b1").await.unwrap(),
        BatchTally {
            answered_by_version: vec![("14.0.2".into(), 1)],
            refused: 1,
        }
    );
    let settled = store
        .ingest(
            vec![],
            vec![
                receipt("a", "c1", "refused: again"),
                receipt("a", "c3", "refused: busy"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        settled,
        [Settled {
            batch_id: "b1".into(),
            answer: None,
            was_refused: false,
        }],
        "c1's refusal was final already; c3's settles it"
    );
    assert_eq!(store.batch_tally("b1").await.unwrap().refused, 2);
    let settled = store
        .ingest(vec![report("a", 1, 1000, "14.0.2", "c1")], vec![])
        .await
        .unwrap();
    assert_eq!(
        settled,
        [Settled {
            batch_id: "b1".into(),
            answer: Some("14.0.2".into()),
            was_refused: true,
        }]
    );
    let receipts: Vec<Receipt> = store
        .rollout_commands("r1")
        .await
        .unwrap()
        .into_iter()
        .map(|command| command.receipt)
        .collect();
    assert_eq!(
        receipts,
        [
            Receipt::Refused("busy".into()),
            Receipt::Accepted,
            Receipt::Refused("busy".into()),
            Receipt::Refused("late".into()),
        ]
    );
}

/// The first `count` migrations of one backend: a database as an earlier
/// release left it (its `schema_version` is `count`).
fn migrations_upto(backend: Backend, count: usize) -> Vec<&'static str> {
    super::migrations::of(backend).into_iter().take(count).collect()
}

/// A SQLite database as the release before the one migration list left it
/// (schema_version 12, step 14) opens and keeps its rows; a newer step, when
/// there is one, is applied on top.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_database_of_the_previous_layout_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollcall.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (12);",
        )
        .unwrap();
        for migration in migrations_upto(Backend::Sqlite, 12) {
            conn.execute_batch(migration).unwrap();
        }
        conn.execute(
            "INSERT INTO agents (id, hostname, enrolled_at, last_seq) VALUES ('a', 'host-a', 1, 7)",
            [],
        )
        .unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let agents = store.list_agents().await.unwrap();
    assert_eq!(agents.iter().map(|agent| agent.id.as_str()).collect::<Vec<_>>(), ["a"]);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("SELECT version FROM schema_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(
        version,
        i64::try_from(super::migrations::of(Backend::Sqlite).len()).unwrap()
    );
}

/// The same for PostgreSQL at schema_version 13 (step 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_database_of_the_previous_layout_upgrades() {
    let Some(scratch) = scratch_or_skip("postgres_database_of_the_previous_layout_upgrades").await else {
        return;
    };
    let (client, connection) = tokio_postgres::connect(scratch.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE schema_version (version BIGINT NOT NULL); INSERT INTO schema_version VALUES (13);")
        .await
        .unwrap();
    for migration in migrations_upto(Backend::Postgres, 13) {
        client.batch_execute(migration).await.unwrap();
    }
    client
        .execute(
            "INSERT INTO agents (id, hostname, enrolled_at, last_seq) VALUES ('a', 'host-a', 1, 7)",
            &[],
        )
        .await
        .unwrap();
    let store: Arc<dyn Store> = Arc::new(PgStore::connect(scratch.url(), "replica-a").await.unwrap());
    let agents = store.list_agents().await.unwrap();
    assert_eq!(agents.iter().map(|agent| agent.id.as_str()).collect::<Vec<_>>(), ["a"]);
    let version: i64 = client
        .query_one("SELECT version FROM schema_version", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        version,
        i64::try_from(super::migrations::of(Backend::Postgres).len()).unwrap()
    );
    drop(client);
    connection.await.unwrap().unwrap();
}
