//! The adapter to the managed product: reads its state document from
//! `[product] state_file` (re-read at every check), `state_command` (run as
//! a fixed argv) or, with `adapter = "apex-one"`, assembles it from the
//! Windows registry and the agent's files ([`apex_one`]); and hosts the
//! bounded command runner that the update action shares.
//!
//! Failures never escape as errors: they become a [`ProductDoc`] that is
//! unreadable for a stated reason, so every check reports the reason and
//! the coordinator still hears about the endpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rollcall_common::files::read_bounded_utf8;
use rollcall_common::product::{MAX_DOCUMENT_BYTES, ProductDoc};

use crate::config::{ProductAdapter, ProductConfig};

pub mod apex_one;
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

/// `state_timeout`, or its default when zero.
pub(crate) fn state_timeout(product: &ProductConfig) -> Duration {
    effective_timeout(product.state_timeout, FALLBACK_STATE_TIMEOUT)
}

/// Reads and parses the product document once.
pub async fn load(product: &ProductConfig) -> ProductDoc {
    load_with_registry(product, apex_one::registry::system()).await
}

/// [`load`] with the registry the Apex One adapter reads (a test double in
/// tests).
pub async fn load_with_registry(product: &ProductConfig, registry: Arc<dyn apex_one::Registry>) -> ProductDoc {
    let timeout = state_timeout(product);
    if product.effective_adapter() == Some(ProductAdapter::ApexOne) {
        return match &product.mapping {
            Some(mapping) => match read_apex_one(mapping.clone(), registry, timeout).await {
                Ok(resolved) => apex_one::document(&resolved),
                Err(reason) => ProductDoc::unreadable(reason),
            },
            None => ProductDoc::unreadable("adapter = \"apex-one\" without a `mapping`"),
        };
    }
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

/// Resolves the Apex One mapping on a blocking thread (registry and file
/// reads block), bounded by `timeout`; the error is the whole document's.
pub(crate) async fn read_apex_one(
    mapping: PathBuf,
    registry: Arc<dyn apex_one::Registry>,
    timeout: Duration,
) -> Result<Vec<apex_one::Resolved>, String> {
    let read = tokio::task::spawn_blocking(move || apex_one::read(&mapping, registry.as_ref()));
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(Ok(resolved))) => Ok(resolved),
        Ok(Ok(Err(error))) => Err(format!("{error:#}")),
        Ok(Err(join_error)) => Err(format!("apex-one: reader failed: {join_error}")),
        Err(_elapsed) => Err(format!(
            "apex-one: reading the registry and files timed out after {}",
            humantime::format_duration(timeout)
        )),
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

    #[tokio::test]
    async fn the_apex_one_adapter_reads_its_mapping_through_the_registry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mapping = dir.path().join("apex-one.toml");
        let product = ProductConfig {
            adapter: Some(ProductAdapter::ApexOne),
            mapping: Some(mapping.clone()),
            ..ProductConfig::default()
        };
        let error = read_error(&load(&product).await);
        assert!(error.contains("apex-one.toml"), "{error}");
        std::fs::write(
            &mapping,
            "[version]\nregistry = { key = 'HKLM\\SOFTWARE\\T', value = \"V\" }\n",
        )
        .expect("write");
        let mut registry = apex_one::MemoryRegistry::new();
        registry.set(
            r"HKLM\SOFTWARE\T",
            "V",
            apex_one::RegValue::String("14.0.9".to_string()),
        );
        let doc = load_with_registry(&product, Arc::new(registry)).await;
        assert_eq!(doc.version().expect("version"), "14.0.9");
        #[cfg(not(windows))]
        {
            let error = load(&product).await.version().expect_err("no registry").to_string();
            assert!(
                error.ends_with("the Windows registry exists only on Windows"),
                "{error}"
            );
        }
    }
}
