//! The one way a test says it could not run here, and why (issue 29,
//! point 3): every skip site (no PostgreSQL URL, no PostgreSQL TLS root, no
//! Windows `.exe` or Wine, no packaging tools, no chromium, no root, no
//! file ACLs under Wine) calls [`skip`], so a plain `cargo test --workspace`
//! names each test that did not run and what turns it on, in its normal
//! output. It lives in common so that common's own tests can use it too;
//! the server re-exports it (`rollcall_server::test_skip`) for its tests
//! and the end-to-end ones.
//!
//! libtest captures only what the `print!`/`eprint!` macros write; this
//! writes straight to the process's stderr (`std::io::stderr()`), so the
//! line shows without `--nocapture`.

use std::io::Write;

/// The running test's name: libtest names each test's thread after it.
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .unwrap_or("a test")
        .to_string()
}

/// Says, on the process's stderr, that the running test was skipped:
/// `SKIPPED <test>: <reason> (<enable>)`. `enable` says what makes it
/// run, e.g. "set ROLLCALL_TEST_DATABASE_URL=… to run it".
pub fn skip(reason: &str, enable: &str) {
    say(&format!("SKIPPED {}: {reason} ({enable})\n", current_test()));
}

/// [`skip`] for a part of a test that otherwise runs.
pub fn skip_part(part: &str, reason: &str, enable: &str) {
    say(&format!("SKIPPED {} ({part}): {reason} ({enable})\n", current_test()));
}

fn say(line: &str) {
    let mut stderr = std::io::stderr().lock();
    // Nothing to do if stderr is gone: the test still returns early.
    let _ = stderr.write_all(line.as_bytes());
    let _ = stderr.flush();
}
