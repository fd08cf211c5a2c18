//! The demo tells the runbook's story and ends (issue 29, point 1): the
//! real `xtask demo` (as `rct-xtask`, built with the tests, so no second
//! release build: `--no-build`) with its output in a pipe, not a terminal.
//! It must exit 0 by itself, print one line per change (a bounded line
//! count, never the whole table again), show the first causes, the admin's
//! fixes, completion rising, and end with the step-8 report in the language
//! asked for.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const XTASK: &str = env!("CARGO_BIN_EXE_rct-xtask");

/// The demo's whole output, after it ended by itself within `limit`.
fn run_demo(lang: &str, limit: Duration) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("demo.out");
    let err_path = dir.path().join("demo.err");
    let mut child = Command::new(XTASK)
        .args(["demo", "--no-build", "--listen", "127.0.0.1:0", "--lang", lang])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start the demo");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the demo did not end within {limit:?}:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stdout = String::new();
    std::fs::File::open(&out_path)
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(status.success(), "demo exited {status}\n{stdout}\n{stderr}");
    stdout
}

/// What both languages share: the story and its bounds.
fn check_story(out: &str) {
    let lines = out.lines().count();
    assert!(
        lines < 400,
        "{lines} lines: progress must be one line per change\n{out}"
    );
    // The intro says where the probes run and what they stand for.
    assert!(out.contains("The probes run here, on"), "{out}");
    assert!(out.contains("real endpoints run the Windows probe"), "{out}");
    assert!(out.contains("Trend Micro Apex One"), "{out}");
    assert!(out.contains("soft"), "{out}");
    assert!(out.contains("hard once the attempts are spent"), "{out}");
    // The first causes, as the coordinator finds them.
    for found in [
        "ua-osaka-01     pending -> straggler (soft): update_agent_program (step 3), blocks 2 clients",
        "update_permission (step 2)",
        "license (step 1)",
        "certificates (step 4)",
        "system_requirements (step 6)",
    ] {
        assert!(out.contains(found), "{found} missing\n{out}");
    }
    // The admin's fixes, each followed by completion.
    for step in [
        ">>> admin: step 2: set \"Update settings permission\" to \"All components\" (tokyo-pc-02)",
        ">>> admin: step 3: enable \"Security agent program and HotFix\" for update agent ua-osaka-01",
        ">>> admin: step 4: install the code-signing root certificate on kobe-pc-01",
        ">>> admin: rollcall update-now cause=unknown",
    ] {
        assert!(out.contains(step), "{step} missing\n{out}");
    }
    for host in [
        "tokyo-pc-02",
        "ua-osaka-01",
        "osaka-pc-01",
        "osaka-pc-02",
        "kobe-pc-01",
        "nara-pc-01",
    ] {
        assert!(
            out.contains(&format!("{host:<15} hard -> completed"))
                || out.contains(&format!("{host:<15} soft -> completed")),
            "{host} never completed\n{out}"
        );
    }
    assert!(!out.contains("still waiting"), "a step timed out\n{out}");
    // Completion rises to 7 of 13, one line per change.
    assert!(out.contains("(7/13)"), "{out}");
    let completion_lines = out.lines().filter(|line| line.contains("  completion ")).count();
    assert!(completion_lines <= 13, "{completion_lines} completion lines\n{out}");
    // A host's line appears only when it changes: no table printed again.
    let ua_lines = out.lines().filter(|line| line.starts_with("  ua-osaka-01 ")).count();
    assert!(ua_lines <= 8, "{ua_lines} lines for ua-osaka-01\n{out}");
    assert!(out.trim_end().ends_with("demo finished"), "{out}");
}

#[test]
fn the_demo_tells_the_story_and_ends_with_the_report_in_english() {
    let out = run_demo("en", Duration::from_secs(240));
    check_story(&out);
    let report = out
        .split("=== runbook step 8")
        .nth(1)
        .unwrap_or_else(|| panic!("no report\n{out}"));
    assert!(
        report.contains("# Support report: security agent upgrade not completing"),
        "{report}"
    );
    assert!(
        report.contains("The upgrade has not completed on 6 of 13 clients."),
        "{report}"
    );
    assert!(
        report.contains("### kanazawa-pc-01 — no cause found in steps 1-6 (`unknown`) (step 7, hard)"),
        "{report}"
    );
    assert!(
        report.contains("ua-osaka-01 (") && report.contains("): finished upgrading"),
        "{report}"
    );
}

#[test]
fn the_demo_ends_with_the_report_in_japanese() {
    let out = run_demo("ja", Duration::from_secs(240));
    check_story(&out);
    let report = out
        .split("=== runbook step 8")
        .nth(1)
        .unwrap_or_else(|| panic!("no report\n{out}"));
    assert!(
        report.contains("# サポート向けレポート:セキュリティエージェントのアップグレードが完了しない"),
        "{report}"
    );
    assert!(
        report.contains("全クライアント 13 台中 6 台でアップグレードが完了していません。"),
        "{report}"
    );
    assert!(!report.contains("Support report"), "{report}");
}
