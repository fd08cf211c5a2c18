//! Runs one of the product adapter's commands (`state_command`,
//! `update_command`): a fixed argv from `agent.toml`, never a shell string,
//! stdin closed, bounded in time, killed when dropped or late, and its output
//! handed to the caller chunk by chunk so the caller bounds what it keeps.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// After the command exits, how long to keep reading pipes that a child it
/// left behind may hold open; what arrives later is not waited for.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Which pipe a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error("the command is empty")]
    Empty,
    #[error("start {program:?}: {source}")]
    Spawn { program: String, source: std::io::Error },
    #[error("timed out after {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
    #[error("read its output: {0}")]
    Io(#[from] std::io::Error),
    /// The output sink refused more (too much output).
    #[error("{0}")]
    Refused(String),
}

/// Runs `argv`, feeding every output chunk to `sink`; a sink error stops and
/// kills the command. Returns the exit status.
pub(crate) async fn run<F>(argv: &[String], timeout: Duration, sink: F) -> Result<ExitStatus, RunError>
where
    F: FnMut(Stream, &[u8]) -> Result<(), String>,
{
    let Some((program, arguments)) = argv.split_first() else {
        return Err(RunError::Empty);
    };
    let mut command = tokio::process::Command::new(program);
    // Unix: a process group of its own, so the whole tree can be killed.
    #[cfg(unix)]
    command.process_group(0);
    let mut child = command
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| RunError::Spawn {
            program: program.clone(),
            source,
        })?;
    let mut tree = KillOnAbandon(crate::platform::ProcessTree::of(&child));
    let result = tokio::time::timeout(timeout, pump(&mut child, sink)).await;
    match result {
        Ok(Ok(status)) => {
            tree.disarm();
            Ok(status)
        }
        Ok(Err(error)) => {
            // Best effort: the child is killed on drop as well.
            let _ = child.start_kill();
            Err(error)
        }
        Err(_elapsed) => {
            let _ = child.start_kill();
            Err(RunError::TimedOut(timeout))
        }
    }
}

/// Kills the command's whole process tree when dropped: on a timeout, a
/// refusing sink or the caller abandoning the run. A command that exits on
/// its own is disarmed first and keeps what it deliberately left running
/// (an updater it launched).
struct KillOnAbandon(Option<crate::platform::ProcessTree>);

impl KillOnAbandon {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for KillOnAbandon {
    fn drop(&mut self) {
        if let Some(tree) = &self.0 {
            tree.kill();
        }
    }
}

async fn pump<F>(child: &mut tokio::process::Child, mut sink: F) -> Result<ExitStatus, RunError>
where
    F: FnMut(Stream, &[u8]) -> Result<(), String>,
{
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut stdout_buffer = vec![0u8; 8192];
    let mut stderr_buffer = vec![0u8; 8192];
    let mut status: Option<ExitStatus> = None;
    // Far in the future until the command exits.
    let mut drain_deadline = Instant::now() + Duration::from_secs(u32::MAX.into());
    while stdout.is_some() || stderr.is_some() {
        tokio::select! {
            read = read_chunk(&mut stdout, &mut stdout_buffer) => match read? {
                0 => stdout = None,
                count => sink(Stream::Stdout, &stdout_buffer[..count]).map_err(RunError::Refused)?,
            },
            read = read_chunk(&mut stderr, &mut stderr_buffer) => match read? {
                0 => stderr = None,
                count => sink(Stream::Stderr, &stderr_buffer[..count]).map_err(RunError::Refused)?,
            },
            exited = child.wait(), if status.is_none() => {
                status = Some(exited?);
                drain_deadline = Instant::now() + DRAIN_AFTER_EXIT;
            }
            () = tokio::time::sleep_until(drain_deadline), if status.is_some() => break,
        }
    }
    match status {
        Some(status) => Ok(status),
        None => Ok(child.wait().await?),
    }
}

/// Reads one chunk; a closed pipe (`None`) never completes.
async fn read_chunk<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buffer: &mut [u8]) -> std::io::Result<usize> {
    match pipe {
        Some(reader) => reader.read(buffer).await,
        None => std::future::pending().await,
    }
}

/// Keeps the last `keep` bytes written to it.
#[derive(Debug)]
pub(crate) struct Tail {
    keep: usize,
    bytes: Vec<u8>,
}

impl Tail {
    pub(crate) fn new(keep: usize) -> Tail {
        Tail {
            keep,
            bytes: Vec::with_capacity(keep),
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(self.keep)..];
        self.bytes.extend_from_slice(chunk);
        let excess = self.bytes.len().saturating_sub(self.keep);
        self.bytes.drain(..excess);
    }

    /// The kept bytes as text; a character cut at the front is dropped
    /// rather than shown as garbage.
    pub(crate) fn text(&self) -> String {
        let start = self
            .bytes
            .iter()
            .position(|byte| (byte & 0b1100_0000) != 0b1000_0000)
            .unwrap_or(self.bytes.len());
        String::from_utf8_lossy(&self.bytes[start..]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| word.to_string()).collect()
    }

    #[test]
    fn tail_keeps_the_end_and_whole_characters() {
        let mut tail = Tail::new(4);
        tail.push(b"ab");
        tail.push(b"cdef");
        assert_eq!(tail.text(), "cdef");
        tail.push("xé".as_bytes());
        // "efxé" is 5 bytes; the kept 4 are "fx" plus the two bytes of é.
        assert_eq!(tail.text(), "fxé");
        let mut tail = Tail::new(2);
        tail.push("é!".as_bytes());
        assert_eq!(tail.text(), "!");
        tail.push(&[b'z'; 100]);
        assert_eq!(tail.text(), "zz");
    }

    /// Prints "out" and "err" to the two streams and exits 3, in the
    /// platform's own shell.
    fn out_err_exit_3() -> Vec<String> {
        if cfg!(windows) {
            argv(&["cmd", "/c", "echo out& echo err 1>&2& exit /b 3"])
        } else {
            argv(&["sh", "-c", "printf out; printf err >&2; exit 3"])
        }
    }

    #[tokio::test]
    async fn streams_are_told_apart() {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let status = run(&out_err_exit_3(), Duration::from_secs(30), |stream, chunk| {
            match stream {
                Stream::Stdout => stdout.extend_from_slice(chunk),
                Stream::Stderr => stderr.extend_from_slice(chunk),
            }
            Ok(())
        })
        .await
        .expect("ran");
        assert_eq!(status.code(), Some(3));
        // cmd's echo ends its lines with " \r\n"; the words are the point.
        assert_eq!(String::from_utf8_lossy(&stdout).trim(), "out");
        assert_eq!(String::from_utf8_lossy(&stderr).trim(), "err");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_refusing_sink_stops_the_command() {
        let error = run(
            &argv(&["sh", "-c", "while :; do echo yes; done"]),
            Duration::from_secs(30),
            |_, _| Err("too much output".to_string()),
        )
        .await
        .expect_err("refused");
        assert_eq!(error.to_string(), "too much output");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_hung_command_times_out() {
        let error = run(&argv(&["sleep", "30"]), Duration::from_millis(200), |_, _| Ok(()))
            .await
            .expect_err("timeout");
        assert_eq!(error.to_string(), "timed out after 200ms");
    }

    #[tokio::test]
    async fn a_missing_program_is_named() {
        let error = run(
            &argv(&["/nonexistent/rollcall-test"]),
            Duration::from_secs(5),
            |_, _| Ok(()),
        )
        .await
        .expect_err("spawn");
        assert!(error.to_string().contains("/nonexistent/rollcall-test"), "{error}");
        assert!(matches!(
            run(&[], Duration::from_secs(1), |_, _| Ok(())).await,
            Err(RunError::Empty)
        ));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_background_child_holding_the_pipe_does_not_stall_the_result() {
        // The helper outlives the command with stdout still open; the command's
        // own exit status must come back without waiting for it.
        let status = run(
            &argv(&["sh", "-c", "sleep 5 & echo started; exit 0"]),
            Duration::from_secs(60),
            |_, _| Ok(()),
        )
        .await
        .expect("ran");
        assert!(status.success());
    }

    /// Not a test by itself: the grandchild of the kill-tree test. Writes
    /// the marker file named by its environment after a pause, unless
    /// killed first.
    #[test]
    #[ignore = "started by a_timeout_kills_the_whole_tree"]
    fn sleeper_child() {
        if let Ok(marker) = std::env::var("ROLLCALL_TEST_SLEEPER_MARKER") {
            std::thread::sleep(Duration::from_secs(4));
            std::fs::write(marker, "still alive").expect("write marker");
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        // The command's background child would write a marker after 2 s;
        // the 300 ms timeout must end it with the command.
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("marker");
        let script = format!("(sleep 2; touch '{}') & sleep 30", marker.display());
        let error = run(&argv(&["sh", "-c", &script]), Duration::from_millis(300), |_, _| Ok(()))
            .await
            .expect_err("timed out");
        assert!(matches!(error, RunError::TimedOut(_)), "{error}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!marker.exists(), "the background child outlived the timeout");
    }

    #[cfg(windows)]
    #[tokio::test]
    async fn a_timeout_kills_the_whole_tree() {
        // cmd (the command) starts this test binary (a grandchild) that
        // would write a marker after 4 s; the 1 s timeout must end both.
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("marker");
        let exe = std::env::current_exe().expect("test binary");
        let error = run(
            &argv(&[
                "cmd",
                "/c",
                &format!(
                    // Unquoted: the paths have no spaces here, and Rust's
                    // quoting of inner quotes (\") is not cmd's.
                    "set ROLLCALL_TEST_SLEEPER_MARKER={}& {} --ignored --exact product_source::command::tests::sleeper_child",
                    marker.display(),
                    exe.display()
                ),
            ]),
            Duration::from_secs(1),
            |_, _| Ok(()),
        )
        .await
        .expect_err("timed out");
        assert!(matches!(error, RunError::TimedOut(_)), "{error}");
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(!marker.exists(), "the grandchild outlived the timeout");
    }
}
