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
//! line shows without `--nocapture`. Each line is also remembered, and the
//! first skip registers a process-exit hook that repeats them all after
//! libtest's own `test result:` line, so a skipped test cannot hide among a
//! few hundred `ok` lines.

use std::io::Write;
use std::sync::{Mutex, Once};

/// Every skip line this test binary printed, for the summary at exit.
static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SUMMARY_AT_EXIT: Once = Once::new();

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
    write_stderr(line);
    if let Ok(mut lines) = SKIPPED.lock() {
        lines.push(line.to_string());
    }
    SUMMARY_AT_EXIT.call_once(register_summary);
}

/// Nothing to do if stderr is gone: the test still returns early.
fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// libtest returns from `main` (all passed) or calls `process::exit`
/// (some failed); both run the C library's exit hooks, after libtest has
/// printed its result line. std has no safe exit hook, hence the one
/// `unsafe` outside the Win32 edge (called only by tests; ARCHITECTURE.md,
/// invariants). Windows (tests under Wine) keeps the per-test lines only.
#[cfg(unix)]
fn register_summary() {
    extern "C" fn at_exit() {
        print_summary();
    }
    // SAFETY: `atexit` only stores the pointer to an `extern "C" fn()` that
    // lives for the whole program; `at_exit` cannot unwind across the C
    // boundary (`print_summary` does not panic: it uses `try_lock` and
    // ignores write errors).
    #[allow(unsafe_code)]
    let registered = unsafe { libc::atexit(at_exit) };
    if registered != 0 {
        write_stderr("test_skip: no summary at exit (atexit refused)\n");
    }
}

#[cfg(not(unix))]
fn register_summary() {}

#[cfg(unix)]
fn print_summary() {
    let Ok(lines) = SKIPPED.try_lock() else { return };
    if lines.is_empty() {
        return;
    }
    let mut text = format!(
        "\n{} test(s) or part(s) of tests could not run here, and why (README.md, \"Tests that need more than a Rust toolchain\", says what turns each on):\n",
        lines.len()
    );
    for line in lines.iter() {
        text.push_str("  ");
        text.push_str(line);
    }
    write_stderr(&text);
}
