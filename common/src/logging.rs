//! `tracing` set-up shared by the binaries: human-readable by default, JSON
//! lines with `--log-json`; the level from `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

pub fn init(json: bool) {
    init_with_default(json, "info");
}

/// Like [`init`], with another level when `RUST_LOG` is unset (the demo
/// keeps its own output readable with `warn`).
pub fn init_with_default(json: bool, default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // Colour only on a terminal: logs in files and journald stay plain.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    // A second init (tests calling a binary's entry twice) is harmless.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
