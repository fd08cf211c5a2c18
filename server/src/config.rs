//! The coordinator's run-time settings, checked before anything binds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

/// Settings of `rollcall-server serve`. Every limit is explicit so a
/// hostile or broken peer meets a wall, not a resource leak.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    /// Lifetime of agent certificates; agents renew at about half of it.
    pub agent_cert_lifetime: Duration,
    /// How often agents send a heartbeat.
    pub heartbeat_interval: Duration,
    /// HTTP/2 keepalive pings on every connection, and how long one may go
    /// unanswered before the connection is dropped.
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    /// Largest gRPC message accepted from a peer, and sent to one.
    pub max_message_bytes: usize,
    /// TLS handshakes in progress at once; more wait at most the first-byte
    /// timeout for a slot, then are closed (the agent retries with backoff).
    pub max_pending_handshakes: usize,
    pub handshake_timeout: Duration,
    /// Established connections at once; beyond it new ones are closed.
    pub max_connections: usize,
    /// Messages (reports, receipts, renewal requests) per agent per second
    /// (sustained), with a burst allowance; kept per agent id, so a
    /// reconnect does not refill it (see [`crate::agents::budget`]).
    pub report_rate_per_sec: f64,
    pub report_burst: f64,
    /// Bytes of those messages per agent per second, with a burst allowance
    /// (at least one message of `max_message_bytes`).
    pub report_bytes_per_sec: f64,
    pub report_bytes_burst: f64,
    /// At most one certificate renewal per agent within this time (capped
    /// at a quarter of the certificate lifetime).
    pub renewal_interval: Duration,
    /// New streams per agent per minute (sustained) and their burst; see
    /// [`crate::agents::budget::BudgetLimits::connects_per_min`].
    pub connect_rate_per_min: f64,
    pub connect_burst: f64,
    /// Reports received longer ago than this are deleted, except what
    /// diagnosis needs (see [`crate::retention`]); `None` keeps them forever.
    pub retain_reports: Option<Duration>,
    /// How often the retention pass runs.
    pub retention_interval: Duration,
    /// Bound on the graceful drain at shutdown.
    pub shutdown_grace: Duration,
    /// Default lifetime of an enrollment token.
    pub token_default_ttl: Duration,
    /// Reports stored per transaction at most.
    pub ingest_batch: usize,
    /// How often the rollout engine evaluates active rollouts.
    pub engine_interval: Duration,
    /// Commands the engine sends per tick at most (one wave).
    pub max_commands_per_tick: usize,
    /// Where the HTTPS dashboard and `/metrics` listen; off when `None`.
    pub dashboard_listen: Option<SocketAddr>,
    /// PostgreSQL URL of the store several replicas share; `None`: the
    /// embedded SQLite store in the data dir. May hold a password: never log it.
    pub database_url: Option<String>,
    /// This replica's name: on the agent rows it holds and the engine lease.
    pub replica_id: String,
    /// How long the engine lease lasts unrenewed: a dead replica's scheduled
    /// work resumes on another one after at most this.
    pub engine_lease_ttl: Duration,
    /// What a peer may cost before it has authenticated.
    pub edge: EdgeLimits,
    /// The Apex Central roster source; `None`: imports only.
    pub apex_central: Option<crate::apex_central::ApexCentralConfig>,
    /// How often the Apex Central roster is read again.
    pub roster_refresh: Duration,
}

impl ServeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServeConfig {
            data_dir: data_dir.into(),
            agent_cert_lifetime: Duration::from_secs(7 * 24 * 3600),
            heartbeat_interval: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            max_message_bytes: 1024 * 1024,
            max_pending_handshakes: 512,
            handshake_timeout: Duration::from_secs(10),
            max_connections: 200_000,
            report_rate_per_sec: 5.0,
            report_burst: 200.0,
            report_bytes_per_sec: 16.0 * 1024.0,
            report_bytes_burst: 16.0 * 1024.0 * 1024.0,
            renewal_interval: Duration::from_secs(3600),
            connect_rate_per_min: 6.0,
            connect_burst: 10.0,
            retain_reports: Some(Duration::from_secs(30 * 24 * 3600)),
            retention_interval: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(10),
            token_default_ttl: Duration::from_secs(3600),
            ingest_batch: 4096,
            engine_interval: Duration::from_secs(2),
            max_commands_per_tick: 5000,
            dashboard_listen: None,
            database_url: None,
            replica_id: default_replica_id(),
            engine_lease_ttl: Duration::from_secs(15),
            edge: EdgeLimits::default(),
            apex_central: None,
            roster_refresh: Duration::from_secs(3600),
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.agent_cert_lifetime < Duration::from_secs(10) {
            bail!("agent certificate lifetime must be at least 10s");
        }
        if self.heartbeat_interval < Duration::from_millis(100) {
            bail!("heartbeat interval must be at least 100ms");
        }
        if self.keepalive_interval < Duration::from_secs(1) || self.keepalive_timeout < Duration::from_secs(1) {
            bail!("keepalive interval and timeout must be at least 1s");
        }
        if self.max_message_bytes < 16 * 1024 {
            bail!("max message size must be at least 16 KiB");
        }
        if self.max_pending_handshakes == 0 || self.max_connections == 0 || self.ingest_batch == 0 {
            bail!("handshake, connection and batch limits must be positive");
        }
        if self.engine_interval < Duration::from_millis(50) || self.max_commands_per_tick == 0 {
            bail!("engine interval must be at least 50ms and the wave size positive");
        }
        if self.engine_lease_ttl < self.engine_interval * 3 {
            bail!("the engine lease must last at least three engine intervals");
        }
        if self.replica_id.is_empty()
            || self.replica_id.len() > 64
            || !self
                .replica_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            bail!("the replica id must be 1-64 characters of letters, digits, '-', '_' or '.'");
        }
        if let Some(url) = &self.database_url {
            crate::store::postgres::parse_url(url, &self.replica_id)?;
        }
        if !(self.report_rate_per_sec > 0.0 && self.report_burst >= 1.0) {
            bail!("report rate must be positive and the burst at least 1");
        }
        if !(self.connect_rate_per_min > 0.0 && self.connect_burst >= 1.0) {
            bail!("the connect rate must be positive and the connect burst at least 1");
        }
        self.edge.validate()?;
        if self.roster_refresh < Duration::from_secs(1) {
            bail!("--roster-refresh must be at least 1s");
        }
        if let Some(apex_central) = &self.apex_central {
            // Reads the key file (refused when others can read it) and the CA.
            crate::apex_central::ApexCentral::new(apex_central)?;
        }
        if self.handshake_timeout < Duration::from_millis(100) {
            bail!("the handshake timeout must be at least 100ms");
        }
        if !(self.report_bytes_per_sec > 0.0 && self.report_bytes_burst >= self.max_message_bytes as f64) {
            bail!(
                "the report byte rate must be positive and the byte burst at least the max message size ({} bytes)",
                self.max_message_bytes
            );
        }
        if self
            .retain_reports
            .is_some_and(|retain| retain < Duration::from_secs(1))
            || self.retention_interval < Duration::from_millis(100)
        {
            bail!("report retention must be at least 1s (or off) and its interval at least 100ms");
        }
        Ok(())
    }

    /// The per-agent budgets these settings give.
    pub fn budget_limits(&self) -> crate::agents::budget::BudgetLimits {
        crate::agents::budget::BudgetLimits {
            messages_per_sec: self.report_rate_per_sec,
            message_burst: self.report_burst,
            bytes_per_sec: self.report_bytes_per_sec,
            byte_burst: self.report_bytes_burst,
            // Short test certificates (seconds) must still renew.
            renewal_interval: self.renewal_interval.min(self.agent_cert_lifetime / 4),
            connects_per_min: self.connect_rate_per_min,
            connect_burst: self.connect_burst,
        }
    }
}

/// Limits on peers that have not proved who they are: TCP connections
/// before and during the TLS handshake, TLS connections without a client
/// certificate (they may only enrol), and enrolment attempts. See
/// docs/SECURITY.md, "Unauthenticated peers".
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// A new connection must send its first byte (the TLS ClientHello)
    /// within this, or it is closed.
    pub first_byte_timeout: Duration,
    /// Connections one source address (IPv6: one /64) may hold while in the
    /// handshake or without a client certificate; more are closed at once.
    pub max_unauthenticated_per_source: usize,
    /// A connection without a client certificate is closed after this,
    /// whatever it does (enrolment needs one call).
    pub anonymous_connection_lifetime: Duration,
    /// Enrolment attempts per source address per minute (sustained) and
    /// the burst above it.
    pub enroll_per_minute_per_source: f64,
    pub enroll_burst_per_source: f64,
    /// Serve gRPC reflection (to authenticated callers only).
    pub reflection: bool,
    /// Load balancers whose connections start with a PROXY v2 header; the
    /// address inside is the client's for every per-source limit and log.
    pub proxy_protocol_from: crate::edge::proxy_protocol::ProxyTrust,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            first_byte_timeout: Duration::from_secs(3),
            max_unauthenticated_per_source: 64,
            anonymous_connection_lifetime: Duration::from_secs(30),
            enroll_per_minute_per_source: 600.0,
            enroll_burst_per_source: 100.0,
            reflection: false,
            proxy_protocol_from: crate::edge::proxy_protocol::ProxyTrust::default(),
        }
    }
}

impl EdgeLimits {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.first_byte_timeout < Duration::from_millis(100)
            || self.anonymous_connection_lifetime < Duration::from_secs(1)
        {
            bail!("the first-byte timeout must be at least 100ms and the anonymous connection lifetime at least 1s");
        }
        if self.max_unauthenticated_per_source == 0 {
            bail!("max unauthenticated connections per source must be positive");
        }
        if !(self.enroll_per_minute_per_source > 0.0 && self.enroll_burst_per_source >= 1.0) {
            bail!("the enrolment rate per source must be positive and its burst at least 1");
        }
        Ok(())
    }
}

/// A replica id unique to this start (a restart is a new replica; its old
/// agents' flags fade with their heartbeats).
pub fn default_replica_id() -> String {
    format!("r-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// `--retain-reports`: how long reports are kept; `None` keeps them forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(pub Option<Duration>);

/// Parses `--retain-reports`: a duration such as `30d`, or `0`/`off` to
/// keep reports forever.
pub fn parse_retention(text: &str) -> anyhow::Result<Retention> {
    match text.trim() {
        "0" | "off" | "forever" => Ok(Retention(None)),
        other => {
            let retain = humantime::parse_duration(other)
                .map_err(|error| anyhow::anyhow!("{error}; give a duration such as 30d, or off"))?;
            Ok(Retention((!retain.is_zero()).then_some(retain)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_settings_below_a_second_are_refused() {
        let mut config = ServeConfig::new("/tmp/rollcall-test");
        config.validate().unwrap();
        config.keepalive_timeout = Duration::from_millis(500);
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("keepalive"), "{error}");
        config.keepalive_timeout = Duration::from_secs(60);
        config.keepalive_interval = Duration::ZERO;
        assert!(config.validate().is_err());
        config.keepalive_interval = Duration::from_secs(120);
        config.validate().unwrap();
    }

    #[test]
    fn retention_is_a_duration_or_off() {
        assert_eq!(
            parse_retention("30d").unwrap().0,
            Some(Duration::from_secs(30 * 24 * 3600))
        );
        assert_eq!(parse_retention("off").unwrap().0, None);
        assert_eq!(parse_retention("0").unwrap().0, None);
        let error = parse_retention("soon").unwrap_err().to_string();
        assert!(error.contains("30d"), "{error}");
    }

    #[test]
    fn a_byte_burst_below_one_message_is_refused() {
        let mut config = ServeConfig::new("/tmp/rollcall-test");
        config.report_bytes_burst = 1000.0;
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("byte burst"), "{error}");
    }
}
