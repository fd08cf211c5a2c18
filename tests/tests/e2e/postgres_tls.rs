//! TLS to PostgreSQL (issue 17 point 5) against the local server with TLS
//! on: `.ci/postgres_tls.sh` gives it a certificate for 127.0.0.1 and
//! localhost from a test CA and prints the CA, which `.ci/run` exports as
//! `ROLLCALL_TEST_PG_TLS_ROOT`. Without that variable the tests skip (and
//! say so); under CI they fail instead.
//!
//! `verify-full` serves a real coordinator, and the server reports its
//! connections encrypted; a host name the certificate does not carry, or a
//! root that did not sign it, is refused with an error saying so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rollcall_server::store::postgres::{PgStore, parse_url};
use rollcall_server::store::postgres_scratch::{ScratchDatabase, scratch_or_skip};

use crate::harness::{Agent, Coordinator, product_state, wait_until};

const ROOT_VAR: &str = "ROLLCALL_TEST_PG_TLS_ROOT";

/// The test CA and a scratch database, or `None` when the test skips.
async fn tls_setup(test: &str) -> Option<(PathBuf, ScratchDatabase)> {
    let root = match std::env::var(ROOT_VAR) {
        Ok(path) if !path.trim().is_empty() => PathBuf::from(path),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{test}: CI is set but {ROOT_VAR} is not; .ci/run sets it up with .ci/postgres_tls.sh")
        }
        _ => {
            rollcall_server::test_skip::skip(
                &format!("{ROOT_VAR} is not set, so there is no PostgreSQL TLS root to verify against"),
                &format!(
                    "set {ROOT_VAR}=$(bash .ci/postgres_tls.sh) and ROLLCALL_TEST_DATABASE_URL, or run .ci/run, to run it"
                ),
            );
            return None;
        }
    };
    let scratch = scratch_or_skip(test).await?;
    Some((root, scratch))
}

/// The scratch database's URL with TLS options (the scratch URL has no query).
fn with_tls(scratch: &ScratchDatabase, mode: &str, root: &Path) -> String {
    let url = scratch.url();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode={mode}&sslrootcert={}", root.display())
}

/// A key=value URL that dials 127.0.0.1 but expects the server to be
/// `host` (the name TLS checks).
fn as_host(scratch: &ScratchDatabase, host: &str, mode: &str, root: &Path) -> String {
    format!(
        "host={host} hostaddr=127.0.0.1 port=5432 user=postgres dbname={} sslmode={mode} sslrootcert={}",
        scratch.name(),
        root.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_serves_over_verify_full_tls_to_postgres() {
    let Some((root, scratch)) = tls_setup("postgres_tls::a_coordinator_serves_over_verify_full").await else {
        return;
    };
    let url = with_tls(&scratch, "verify-full", &root);
    let mut coordinator = Coordinator::init();
    coordinator.extra_args.extend([
        "--database-url".into(),
        url.clone(),
        "--replica-id".into(),
        "tls-replica".into(),
    ]);
    coordinator.start();
    let mut agent = Agent::enroll(&coordinator, "over-tls", &product_state("1.0", ""), &[]);
    agent.start();
    assert!(
        wait_until(Duration::from_secs(20), || coordinator.is_online("over-tls")),
        "{}",
        coordinator.log()
    );

    // The server's own view: every connection of the coordinator is TLS.
    let target = parse_url(&url, "observer").unwrap();
    let (client, connection) = target.config.connect(target.tls.clone()).await.unwrap();
    let driver = tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.datname = $1 AND a.application_name = 'rollcall-tls-replica'",
            &[&scratch.name()],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty(), "the coordinator holds no connection to the database");
    for row in &rows {
        let ssl: bool = row.get(0);
        let version: Option<String> = row.get(1);
        assert!(ssl, "a coordinator connection is not encrypted");
        eprintln!("coordinator connection: {}", version.unwrap_or_default());
    }
    drop(client);
    let _ = driver.await;
    agent.stop();
    coordinator.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_wrong_host_name_or_root() {
    let Some((root, scratch)) = tls_setup("postgres_tls::verify_full_refuses").await else {
        return;
    };
    // The right name and root: connects.
    let store = PgStore::connect(&as_host(&scratch, "localhost", "verify-full", &root), "r1").await;
    assert!(store.is_ok(), "{:#}", store.err().unwrap());
    drop(store);

    // A name the server's certificate does not carry.
    let error = PgStore::connect(&as_host(&scratch, "db.invalid", "verify-full", &root), "r1")
        .await
        .err()
        .expect("verify-full accepted a certificate for another name");
    let text = format!("{error:#}");
    eprintln!("wrong name: {text}");
    assert!(text.contains("certificate not valid for name \"db.invalid\""), "{text}");
    // verify-ca checks the chain only, so the same server is accepted.
    let store = PgStore::connect(&as_host(&scratch, "db.invalid", "verify-ca", &root), "r1").await;
    assert!(store.is_ok(), "{:#}", store.err().unwrap());
    drop(store);

    // A root that did not sign it (the coordinator's own CA).
    let other = Coordinator::init();
    let wrong_root = other.data_dir().join("ca.pem");
    let error = PgStore::connect(&with_tls(&scratch, "verify-full", &wrong_root), "r1")
        .await
        .err()
        .expect("verify-full accepted a certificate from another CA");
    let text = format!("{error:#}");
    eprintln!("wrong root: {text}");
    assert!(
        text.contains("invalid peer certificate") && text.to_lowercase().contains("issuer"),
        "{text}"
    );

    // Without a root, verify-full is refused before any connection.
    let output = std::process::Command::new(crate::harness::SERVER)
        .args(["validate", "--data-dir"])
        .arg(other.data_dir())
        .args(["--database-url", &format!("{}?sslmode=verify-full", scratch.url())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("sslrootcert"), "{stderr}");
}

/// Issue 24 point 9: a URL without `sslmode` to a host that is not loopback
/// is verified (`verify-full`), so a man in the middle with a certificate
/// for another name is refused; to loopback the default stays `prefer`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sslmode_a_host_that_is_not_loopback_is_verified_in_full() {
    let Some((root, scratch)) = tls_setup("postgres_tls::without_sslmode_a_host_that_is_not_loopback").await else {
        return;
    };
    let without_mode = |host: &str| {
        format!(
            "host={host} hostaddr=127.0.0.1 port=5432 user=postgres dbname={} sslrootcert={}",
            scratch.name(),
            root.display()
        )
    };
    // The server's certificate names localhost, not db.invalid: verified by
    // default, so refused as a wrong name.
    let error = PgStore::connect(&without_mode("db.invalid"), "r1")
        .await
        .err()
        .expect("a URL without sslmode to db.invalid was not verified");
    let text = format!("{error:#}");
    eprintln!("default to a remote name: {text}");
    assert!(text.contains("certificate not valid for name \"db.invalid\""), "{text}");
    // Loopback keeps today's default and connects.
    let store = PgStore::connect(&without_mode("localhost"), "r1").await;
    assert!(store.is_ok(), "{:#}", store.err().unwrap());
}

/// A PostgreSQL server that offers no TLS, as one speaks the protocol: it
/// answers the client's SSLRequest with `N` (PostgreSQL's own answer when
/// `ssl = off`; the CI's server has TLS on, so this stands in for one
/// without). Returns its port; each connection gets one answer, then closes.
fn server_without_tls() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { continue };
            use std::io::{Read, Write};
            let mut request = [0u8; 8];
            // length 8, code 80877103: the SSLRequest.
            if stream.read_exact(&mut request).is_ok() && request == [0, 0, 0, 8, 4, 210, 22, 47] {
                let _ = stream.write_all(b"N");
            }
        }
    });
    port
}

/// Issue 24 point 9: to a host that is not loopback, a server offering no
/// TLS is refused (never spoken to in plain text) with an error that says
/// why and what to do; the coordinator does not start on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_server_offering_no_tls_is_refused_with_a_clear_error() {
    let port = server_without_tls();
    let coordinator = Coordinator::init();
    let root = coordinator.data_dir().join("ca.pem");
    let url = format!(
        "host=db.invalid hostaddr=127.0.0.1 port={port} user=postgres dbname=rollcall sslrootcert={}",
        root.display()
    );
    let error = PgStore::connect(&url, "r1")
        .await
        .err()
        .expect("a server without TLS was accepted");
    let text = format!("{error:#}");
    eprintln!("no TLS: {text}");
    assert!(text.contains("offers no TLS") && text.contains("verify-full"), "{text}");
    assert!(text.contains("sslmode=disable"), "{text}");

    // The coordinator refuses to serve on it and says the same.
    let mut child = std::process::Command::new(crate::harness::SERVER)
        .args(["serve", "--data-dir"])
        .arg(coordinator.data_dir())
        .args(["--listen", &format!("127.0.0.1:{}", crate::harness::free_port())])
        .args(["--database-url", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut exited = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            exited = child.try_wait().unwrap();
            exited.is_some()
        }),
        "the coordinator went on without a database"
    );
    assert!(!exited.unwrap().success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("offers no TLS"), "{stderr}");
}
