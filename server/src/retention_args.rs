//! `serve` flags of the retention of audit entries, commands, transitions
//! and expired certificates (the reports have `--retain-reports`).

use clap::Args;

use crate::config::{Retention, RetentionAges, ServeConfig, parse_retention};

#[derive(Debug, Clone, Args)]
pub struct RetentionArgs {
    /// Delete audit entries older than this (e.g. 365d); `off` keeps them all.
    #[arg(long, env = "ROLLCALL_RETAIN_AUDIT", default_value = "365d", value_parser = parse_retention)]
    #[arg(help_heading = "Report retention")]
    pub retain_audit: Retention,
    /// Delete commands created and expired longer ago than this (e.g. 90d),
    /// except those of a rollout not cancelled; `off` keeps them all.
    #[arg(long, env = "ROLLCALL_RETAIN_COMMANDS", default_value = "90d", value_parser = parse_retention)]
    #[arg(help_heading = "Report retention")]
    pub retain_commands: Retention,
    /// Delete rollout state transitions older than this (e.g. 180d), except
    /// those of a rollout not cancelled; `off` keeps them all.
    #[arg(long, env = "ROLLCALL_RETAIN_TRANSITIONS", default_value = "180d", value_parser = parse_retention)]
    #[arg(help_heading = "Report retention")]
    pub retain_transitions: Retention,
    /// Delete agent and admin certificates (and their revocations) this long
    /// after they expired (e.g. 7d); a revocation always outlives its
    /// certificate's validity. `off` keeps them all.
    #[arg(long, env = "ROLLCALL_RETAIN_EXPIRED_CERTIFICATES", default_value = "7d", value_parser = parse_retention)]
    #[arg(help_heading = "Report retention")]
    pub retain_expired_certificates: Retention,
}

impl RetentionArgs {
    pub fn apply(&self, config: &mut ServeConfig) {
        config.retain = RetentionAges {
            audit: self.retain_audit.0,
            commands: self.retain_commands.0,
            transitions: self.retain_transitions.0,
            expired_certificates: self.retain_expired_certificates.0,
        };
    }
}
