//! Runs checks concurrently, each as its own task with its own time budget:
//! a hung check becomes an "error: timed out after …" result and a
//! panicking one an error result; neither stalls or loses the others.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rollcall_common::proto::CheckResult;
use tokio::time::Instant;

use super::finding::Finding;

/// One check, ready to run.
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) step: u32,
    pub(crate) remediation: String,
    pub(crate) budget: Duration,
    pub(crate) work: Pin<Box<dyn Future<Output = Finding> + Send + 'static>>,
}

impl Spec {
    pub(crate) fn new(
        name: &'static str,
        step: u32,
        remediation: impl Into<String>,
        budget: Duration,
        work: impl Future<Output = Finding> + Send + 'static,
    ) -> Spec {
        Spec {
            name,
            step,
            remediation: remediation.into(),
            budget,
            work: Box::pin(work),
        }
    }
}

/// Runs every spec at once; results come back in the specs' order.
pub(crate) async fn run(specs: Vec<Spec>) -> Vec<CheckResult> {
    let started = Instant::now();
    let mut running = Vec::with_capacity(specs.len());
    for spec in specs {
        let handle = tokio::spawn(async move {
            let check_started = Instant::now();
            let finding = spec.work.await;
            (finding, check_started.elapsed())
        });
        running.push((spec.name, spec.step, spec.remediation, spec.budget, handle));
    }
    let mut results = Vec::with_capacity(running.len());
    for (name, step, remediation, budget, mut handle) in running {
        // Every task started at `started`, so each deadline is absolute.
        let (finding, took) = match tokio::time::timeout_at(started + budget, &mut handle).await {
            Ok(Ok((finding, took))) => (finding, took),
            Ok(Err(join_error)) => (
                Finding::error(format!("the check failed unexpectedly: {join_error}"))
                    .code("check-crashed")
                    .param("detail", join_error),
                started.elapsed(),
            ),
            Err(_elapsed) => {
                handle.abort();
                (
                    Finding::error(format!("timed out after {}", humantime::format_duration(budget)))
                        .code("check-timed-out")
                        .param("budget", humantime::format_duration(budget)),
                    budget,
                )
            }
        };
        results.push(CheckResult {
            name: name.to_string(),
            runbook_step: step,
            status: finding.status as i32,
            message: finding.message,
            evidence: finding.evidence,
            remediation,
            duration_ms: u32::try_from(took.as_millis()).unwrap_or(u32::MAX),
            code: finding.code,
            params: finding.params.into_iter().collect(),
            // Set by the spool when it bounds the report (common/src/limits).
            truncated: false,
        });
    }
    results
}

#[cfg(test)]
mod tests {
    use rollcall_common::proto::CheckStatus;

    use super::super::finding::status_of;
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_hung_check_times_out_without_stalling_the_others() {
        let results = run(vec![
            Spec::new("hangs", 1, "wait", Duration::from_secs(5), std::future::pending()),
            Spec::new("quick", 2, "none", Duration::from_secs(5), async {
                Finding::pass("fine")
            }),
        ])
        .await;
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].name, "hangs");
        assert_eq!(status_of(&results[0]), CheckStatus::Error);
        assert_eq!(results[0].message, "timed out after 5s");
        assert_eq!(results[0].duration_ms, 5000);
        assert_eq!(results[1].name, "quick");
        assert_eq!(status_of(&results[1]), CheckStatus::Pass);
        assert_eq!(results[1].remediation, "none");
    }

    #[tokio::test]
    async fn a_panicking_check_is_an_error_result() {
        let results = run(vec![
            Spec::new("panics", 3, "", Duration::from_secs(5), async {
                let items: Vec<u8> = Vec::new();
                Finding::pass(format!("{}", items[1]))
            }),
            Spec::new("fine", 4, "", Duration::from_secs(5), async { Finding::warn("meh") }),
        ])
        .await;
        assert_eq!(status_of(&results[0]), CheckStatus::Error);
        assert!(
            results[0].message.contains("failed unexpectedly"),
            "{}",
            results[0].message
        );
        assert_eq!(status_of(&results[1]), CheckStatus::Warn);
    }
}
