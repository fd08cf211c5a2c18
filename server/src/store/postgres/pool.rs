//! The PostgreSQL connection pool: at most [`POOL_SIZE`] connections per
//! replica, a caller waits at most [`POOL_WAIT`] for one and then gets
//! `Unavailable`; connections that broke while idle are dropped, and every
//! connection task ends when the store closes. Also where a database URL
//! is parsed into a [`PgTarget`] (TLS: [`crate::store::postgres_tls`]).

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_util::sync::CancellationToken;

use super::PgStore;
use super::errors::{describe, map_err};
use crate::store::{StoreError, StoreResult};

/// Connections per replica (besides the one that listens for wake-ups).
pub const POOL_SIZE: usize = 16;
/// How long a caller waits for a pooled connection before `Unavailable`.
pub const POOL_WAIT: Duration = Duration::from_secs(30);

pub(super) struct Pool {
    pub(super) target: PgTarget,
    pub(super) idle: Mutex<Vec<Client>>,
    pub(super) permits: Semaphore,
    /// Cancelled when the store is dropped: ends every connection task.
    pub(super) closed: CancellationToken,
}

/// A pooled connection; goes back to the pool on drop unless it broke.
pub(super) struct Pooled<'a> {
    pool: &'a Pool,
    client: Option<Client>,
    _permit: SemaphorePermit<'a>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        // Set in `Pool::get`, taken only in `drop`.
        self.client
            .as_ref()
            .unwrap_or_else(|| unreachable!("pooled client taken before drop"))
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .unwrap_or_else(|| unreachable!("pooled client taken before drop"))
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take()
            && !client.is_closed()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(client);
        }
    }
}

pub(super) async fn connect_client(target: &PgTarget, closed: &CancellationToken) -> StoreResult<Client> {
    let (client, connection) = target.config.connect(target.tls.clone()).await.map_err(map_err)?;
    let closed = closed.clone();
    tokio::spawn(async move {
        tokio::select! {
            result = connection => {
                if let Err(error) = result {
                    tracing::debug!(error = describe(&error), "database connection ended");
                }
            }
            () = closed.cancelled() => {}
        }
    });
    Ok(client)
}

impl Pool {
    pub(super) async fn get(&self) -> StoreResult<Pooled<'_>> {
        let permit = tokio::time::timeout(POOL_WAIT, self.permits.acquire())
            .await
            .map_err(|_| StoreError::Unavailable("no free database connection within 30s".into()))?
            .map_err(|_| StoreError::Unavailable("database pool closed".into()))?;
        let reused = self.idle.lock().ok().and_then(|mut idle| {
            // Drop connections that broke while idle (server restart).
            idle.retain(|client| !client.is_closed());
            idle.pop()
        });
        let client = match reused {
            Some(client) => client,
            None => connect_client(&self.target, &self.closed).await?,
        };
        Ok(Pooled {
            pool: self,
            client: Some(client),
            _permit: permit,
        })
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.pool.closed.cancel();
    }
}

/// Where and how to connect: the parsed URL and the TLS its `sslmode` asks for.
#[derive(Clone)]
pub struct PgTarget {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
    /// The TLS the URL asked for, its mode defaulted by host.
    pub tls_options: crate::store::postgres_tls::TlsOptions,
}

/// Parses a database URL (or key=value string) and fills in what rollcall
/// needs; errors never echo the URL (it may hold a password).
pub fn parse_url(url: &str, replica: &str) -> anyhow::Result<PgTarget> {
    let (url, tls_options) = crate::store::postgres_tls::split_tls_options(url)?;
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|error| anyhow::anyhow!("parse the database URL: {error}"))?;
    let tls_options = crate::store::postgres_tls::with_default_mode(tls_options, &config);
    config.ssl_mode(tls_options.mode.negotiation());
    let tls = crate::store::postgres_tls::connector(&tls_options)?;
    if config.get_dbname().is_none() {
        anyhow::bail!("the database URL names no database (postgres://user@host:5432/DATABASE)");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name(format!("rollcall-{replica}"));
    }
    // Notice a dead peer on idle connections (the listener is idle most of the time).
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    Ok(PgTarget {
        config,
        tls,
        tls_options,
    })
}

/// Where the URL points, without credentials (for logs and errors).
pub fn describe_target(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_without_echoing_them() {
        let error = parse_url("postgres://u:secret@db/x?sslmode=verify-full", "r1")
            .err()
            .unwrap();
        assert!(error.to_string().contains("sslrootcert"), "{error}");
        assert!(!error.to_string().contains("secret"));
        let error = parse_url("postgres://u:secret@db", "r1").err().unwrap();
        assert!(error.to_string().contains("names no database"), "{error}");
        let target = parse_url("postgres://u:secret@db:6543/fleet?sslmode=require", "r1").unwrap();
        assert_eq!(describe_target(&target.config), "db:6543/fleet");
        assert_eq!(target.config.get_application_name(), Some("rollcall-r1"));
        assert_eq!(target.config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    }
}
