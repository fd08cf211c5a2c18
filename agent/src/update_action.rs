//! The local "Update Now" action (runbook step 8 asks whether it fixes the
//! upgrade): runs `[product] update_command`, the fixed argv the endpoint's
//! own config allows, and reports what happened. The coordinator can ask for
//! it but never says what runs; without an `update_command` nothing runs.

use std::time::Duration;

use rollcall_common::proto::UpdateNowOutcome;
use tokio::time::Instant;

use crate::config::ProductConfig;
use crate::product_source::{command, effective_timeout};

/// How much of the command's output (stdout and stderr, as they arrive) is
/// kept for the report.
pub const OUTPUT_TAIL_BYTES: usize = 4096;

/// `agent.toml`'s default `update_timeout`, used when the configured one is
/// zero (as in `ProductConfig::default()`).
const FALLBACK_UPDATE_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs the configured update command; never fails, the outcome says how it
/// went.
pub async fn run_update_command(product: &ProductConfig) -> UpdateNowOutcome {
    let Some(argv) = &product.update_command else {
        return UpdateNowOutcome {
            allowed: false,
            error: "no [product] update_command configured".to_string(),
            ..UpdateNowOutcome::default()
        };
    };
    let started = Instant::now();
    let mut tail = command::Tail::new(OUTPUT_TAIL_BYTES);
    let timeout = effective_timeout(product.update_timeout, FALLBACK_UPDATE_TIMEOUT);
    let result = command::run(argv, timeout, |_stream, chunk| {
        tail.push(chunk);
        Ok(())
    })
    .await;
    let duration_ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
    let mut outcome = UpdateNowOutcome {
        allowed: true,
        ran: true,
        exit_code: -1,
        output_tail: tail.text(),
        error: String::new(),
        duration_ms,
    };
    match result {
        Ok(status) => match status.code() {
            Some(code) => {
                outcome.exit_code = code;
                if code != 0 {
                    outcome.error = format!("update_command exited with status {code}");
                }
            }
            None => outcome.error = "update_command was killed by a signal".to_string(),
        },
        Err(error @ (command::RunError::Spawn { .. } | command::RunError::Empty)) => {
            outcome.ran = false;
            outcome.error = format!("update_command: {error}");
        }
        Err(error) => outcome.error = format!("update_command: {error}"),
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_update(words: &[&str]) -> ProductConfig {
        ProductConfig {
            update_command: Some(words.iter().map(|word| word.to_string()).collect()),
            update_timeout: Duration::from_secs(30),
            ..ProductConfig::default()
        }
    }

    #[tokio::test]
    async fn nothing_runs_without_an_update_command() {
        let outcome = run_update_command(&ProductConfig::default()).await;
        assert!(!outcome.allowed);
        assert!(!outcome.ran);
        assert!(outcome.error.contains("update_command"), "{}", outcome.error);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn success_reports_exit_code_and_output() {
        let outcome = run_update_command(&with_update(&[
            "sh",
            "-c",
            "echo downloading; echo warning >&2; exit 0",
        ]))
        .await;
        assert!(outcome.allowed && outcome.ran);
        assert_eq!(outcome.exit_code, 0);
        assert_eq!(outcome.error, "");
        assert!(outcome.output_tail.contains("downloading"));
        assert!(outcome.output_tail.contains("warning"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn failure_keeps_only_the_last_output() {
        let outcome = run_update_command(&with_update(&[
            "sh",
            "-c",
            "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; echo the end; exit 7",
        ]))
        .await;
        assert_eq!(outcome.exit_code, 7);
        assert_eq!(outcome.error, "update_command exited with status 7");
        assert!(outcome.output_tail.len() <= OUTPUT_TAIL_BYTES);
        assert!(outcome.output_tail.ends_with("the end\n"));
        assert!(!outcome.output_tail.contains("line 0\n"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_hung_update_times_out() {
        let mut product = with_update(&["sleep", "30"]);
        product.update_timeout = Duration::from_millis(200);
        let outcome = run_update_command(&product).await;
        assert!(outcome.ran);
        assert_eq!(outcome.exit_code, -1);
        assert_eq!(outcome.error, "update_command: timed out after 200ms");
    }

    #[tokio::test]
    async fn a_missing_program_did_not_run() {
        let outcome = run_update_command(&with_update(&["/nonexistent/updater"])).await;
        assert!(outcome.allowed);
        assert!(!outcome.ran);
        assert!(outcome.error.contains("/nonexistent/updater"), "{}", outcome.error);
    }
}
