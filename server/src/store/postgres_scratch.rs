//! Scratch PostgreSQL databases for tests: one fresh database per test,
//! created through the server named by `ROLLCALL_TEST_DATABASE_URL` and
//! dropped when the test ends (even when it fails), so tests run in
//! parallel without seeing each other's rows.
//!
//! Without that variable a test skips and says so; under CI (`CI` set) a
//! missing variable or an unreachable server fails the test instead: CI
//! never skips the PostgreSQL cases.

use std::time::Duration;

use anyhow::Context;
use tokio_postgres::NoTls;

/// The variable that names the test server (any database on it, e.g.
/// `postgres://postgres@127.0.0.1:5432/test`).
pub const TEST_URL_VAR: &str = "ROLLCALL_TEST_DATABASE_URL";

/// The test server's URL, or `None` after printing why the test skips.
/// Panics under CI when the variable is missing.
pub fn test_database_url(test: &str) -> Option<String> {
    match std::env::var(TEST_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{test}: CI is set but {TEST_URL_VAR} is not; CI never skips the PostgreSQL tests")
        }
        _ => {
            crate::test_skip::skip(
                &format!("{TEST_URL_VAR} is not set, so there is no PostgreSQL to test against"),
                &format!("set {TEST_URL_VAR}=postgres://postgres@127.0.0.1:5432/test, or run .ci/run, to run it"),
            );
            None
        }
    }
}

/// A database that exists for one test.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Creates `rollcall_t_<random>` on the server of `admin_url`.
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("rollcall_t_{}", uuid::Uuid::new_v4().simple());
        let client = admin_client(admin_url).await?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("create scratch database {name}"))?;
        Ok(ScratchDatabase {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        })
    }

    /// A URL for the scratch database (the admin URL with its name swapped).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

async fn admin_client(admin_url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let mut config: tokio_postgres::Config = admin_url
        .parse()
        .map_err(|error| anyhow::anyhow!("parse {TEST_URL_VAR}: {error}"))?;
    config.connect_timeout(Duration::from_secs(5));
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|error| anyhow::anyhow!("connect to the test server ({TEST_URL_VAR}): {error}"))?;
    // Ends when `client` is dropped, with the test.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        // Drop may run inside or outside a runtime: use a thread of its own.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let client = admin_client(&admin_url).await?;
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .context("drop scratch database")?;
                anyhow::Ok(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop scratch database {}: {error:#}", self.name);
        }
    }
}

/// `url` pointing at database `name` instead (URL or key=value form).
pub fn with_database(url: &str, name: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // key=value form: a later dbname wins.
        return format!("{url} dbname={name}");
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let query_at = rest.find('?').map_or(rest.len(), |index| index);
    let (before_query, query) = rest.split_at(query_at);
    let authority = match before_query.find('/') {
        Some(slash) => &before_query[..slash],
        None => before_query,
    };
    format!("{}{authority}/{name}{query}", &url[..rest_start])
}

/// Creates a scratch database for `test`, or returns `None` when the test
/// should skip (see [`test_database_url`]). Panics when the server is
/// configured but unreachable: that is a failure, not a skip.
pub async fn scratch_or_skip(test: &str) -> Option<ScratchDatabase> {
    let url = test_database_url(test)?;
    match ScratchDatabase::create(&url).await {
        Ok(scratch) => Some(scratch),
        Err(error) => panic!("{test}: {TEST_URL_VAR} is set but the server is unusable: {error:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_name_is_swapped_in_every_url_form() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/test?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5432", "x"), "postgres://h:5432/x");
        assert_eq!(with_database("host=h dbname=test", "x"), "host=h dbname=test dbname=x");
    }
}
