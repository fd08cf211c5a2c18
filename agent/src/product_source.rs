//! The adapter to the managed product: reads its state document from
//! `[product] state_file` (re-read at every check) or `state_command` (run as
//! a fixed argv), and hosts the bounded command runner that the update
//! action shares.
//!
//! Failures never escape as errors: they become a [`ProductDoc`] that is
//! unreadable for a stated reason, so every check reports the reason and
//! the coordinator still hears about the endpoint.

use std::time::Duration;

use rollcall_common::files::read_bounded_utf8;
use rollcall_common::product::{MAX_DOCUMENT_BYTES, ProductDoc};

use crate::config::ProductConfig;

pub(crate) mod command;

/// How much of a failing `state_command`'s stderr is quoted.
const STDERR_TAIL_BYTES: usize = 512;

/// `agent.toml`'s default `state_timeout`, used when the configured one is
/// zero: `ProductConfig::default()` (built in code, not parsed) has zero
/// timeouts, and a zero bound would fail every read.
const FALLBACK_STATE_TIMEOUT: Duration = Duration::from_secs(10);

/// A zero timeout means "not set": use `fallback`.
pub(crate) fn effective_timeout(configured: Duration, fallback: Duration) -> Duration {
    if configured.is_zero() { fallback } else { configured }
}

/// Reads and parses the product document once.
pub async fn load(product: &ProductConfig) -> ProductDoc {
    let timeout = effective_timeout(product.state_timeout, FALLBACK_STATE_TIMEOUT);
    match (&product.state_file, &product.state_command) {
        (Some(path), _) => {
            let path = path.clone();
            // A blocking read; a file on a hung mount must not block a worker.
            let read = tokio::task::spawn_blocking(move || read_bounded_utf8(&path, MAX_DOCUMENT_BYTES as u64));
            let bounded = tokio::time::timeout(timeout, read).await;
            match bounded {
                Ok(Ok(Ok(text))) => ProductDoc::parse(&text),
                Ok(Ok(Err(error))) => ProductDoc::unreadable(format!("state_file: {error:#}")),
                Ok(Err(join_error)) => ProductDoc::unreadable(format!("state_file: reader failed: {join_error}")),
                Err(_elapsed) => ProductDoc::unreadable(format!(
                    "state_file: reading timed out after {}",
                    humantime::format_duration(timeout)
                )),
            }
        }
        (None, Some(argv)) => match run_state_command(argv, timeout).await {
            Ok(stdout) => ProductDoc::from_bytes(&stdout),
            Err(reason) => ProductDoc::unreadable(reason),
        },
        (None, None) => ProductDoc::unreadable("no [product] state_file or state_command configured"),
    }
}

/// Stdout of `state_command`, at most [`MAX_DOCUMENT_BYTES`]; more output, a
/// non-zero exit or a timeout is an error (quoting the tail of stderr).
async fn run_state_command(argv: &[String], timeout: Duration) -> Result<Vec<u8>, String> {
    let mut stdout = Vec::new();
    let mut stderr = command::Tail::new(STDERR_TAIL_BYTES);
    let status = command::run(argv, timeout, |stream, chunk| {
        match stream {
            command::Stream::Stdout => {
                if stdout.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                    return Err(format!("printed more than {MAX_DOCUMENT_BYTES} bytes"));
                }
                stdout.extend_from_slice(chunk);
            }
            command::Stream::Stderr => stderr.push(chunk),
        }
        Ok(())
    })
    .await
    .map_err(|error| format!("state_command: {error}"))?;
    if !status.success() {
        let stderr_text = one_line(&stderr.text());
        let exit = match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".to_string(),
        };
        return Err(if stderr_text.is_empty() {
            format!("state_command {exit}")
        } else {
            format!("state_command {exit}: {stderr_text}")
        });
    }
    Ok(stdout)
}

/// Collapses white space so a quoted stderr fits a one-line message.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_command(words: &[&str]) -> ProductConfig {
        ProductConfig {
            state_command: Some(words.iter().map(|word| word.to_string()).collect()),
            state_timeout: Duration::from_secs(30),
            ..ProductConfig::default()
        }
    }

    fn read_error(doc: &ProductDoc) -> String {
        doc.read_error().expect("unreadable").to_string()
    }

    #[tokio::test]
    async fn the_state_file_is_read_each_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.toml");
        let product = ProductConfig {
            state_file: Some(path.clone()),
            ..ProductConfig::default()
        };
        std::fs::write(&path, "version = \"14.0.1\"\n").expect("write");
        assert_eq!(load(&product).await.version().expect("first"), "14.0.1");
        std::fs::write(&path, "{\"version\": \"14.0.2\"}").expect("write");
        assert_eq!(load(&product).await.version().expect("second"), "14.0.2");
    }

    #[tokio::test]
    async fn a_missing_or_huge_state_file_is_unreadable_with_its_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("absent.toml");
        let product = ProductConfig {
            state_file: Some(path.clone()),
            ..ProductConfig::default()
        };
        let error = read_error(&load(&product).await);
        assert!(error.contains("absent.toml"), "{error}");
        std::fs::write(&path, vec![b'#'; MAX_DOCUMENT_BYTES + 1]).expect("write");
        let error = read_error(&load(&product).await);
        assert!(error.contains("larger than the limit"), "{error}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_state_command_output_is_the_document() {
        let doc = load(&with_command(&["printf", "version = \"14.0.3\"\\n"])).await;
        assert_eq!(doc.version().expect("version"), "14.0.3");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn no_shell_is_involved() {
        // The argument reaches printf verbatim; a shell would have expanded it.
        let doc = load(&with_command(&["printf", "version = \"$(id -u)\""])).await;
        let error = doc.version().expect_err("not a version").to_string();
        assert!(error.contains("$(id -u)"), "{error}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_failing_command_quotes_its_stderr_tail() {
        let doc = load(&with_command(&[
            "sh",
            "-c",
            "echo 'product service\n  not running' >&2; exit 4",
        ]))
        .await;
        assert_eq!(
            read_error(&doc),
            "product state could not be read: state_command exited with status 4: product service not running"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn too_much_output_is_an_error() {
        let doc = load(&with_command(&["sh", "-c", "yes 'version = 1'"])).await;
        let error = read_error(&doc);
        assert!(error.contains("printed more than"), "{error}");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_hung_command_times_out() {
        let mut product = with_command(&["sleep", "30"]);
        product.state_timeout = Duration::from_millis(200);
        let error = read_error(&load(&product).await);
        assert!(error.contains("state_command: timed out after 200ms"), "{error}");
    }

    #[tokio::test]
    async fn a_missing_program_is_named() {
        let error = read_error(&load(&with_command(&["/nonexistent/state-tool"])).await);
        assert!(error.contains("/nonexistent/state-tool"), "{error}");
    }

    #[tokio::test]
    async fn nothing_configured_is_an_error() {
        let error = read_error(&load(&ProductConfig::default()).await);
        assert!(
            error.contains("no [product] state_file or state_command configured"),
            "{error}"
        );
    }
}
