//! Developer tasks that link several of rollcall's crates, kept out of the
//! shipped binaries (so the coordinator does not link the probe):
//!
//! - [`demo`]: `cargo run --release -p xtask -- demo`, the runbook's story
//!   told by a coordinator and a small local fleet of real agents; it ends
//!   with the step-8 report.
//! - [`config_reference`]: `cargo run -p xtask -- config-reference`, which
//!   prints docs/CONFIGURATION.md from the clap definitions of the programs.

pub mod config_reference;
pub mod demo;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    about = "rollcall developer tasks: the demo and the configuration reference"
)]
pub struct XtaskCli {
    /// Log JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "ROLLCALL_LOG_JSON")]
    pub log_json: bool,
    #[command(subcommand)]
    pub command: XtaskCommand,
}

#[derive(Debug, Subcommand)]
pub enum XtaskCommand {
    /// The runbook's story on a local fleet: builds the release binaries, runs a
    /// rollout, fixes causes, prints the step-8 report and exits (see --keep-running).
    Demo(demo::DemoArgs),
    /// Print docs/CONFIGURATION.md: every flag, environment variable and config key.
    #[command(name = "config-reference", hide = true)]
    ConfigReference,
}

/// `main` of `xtask`.
pub fn main() -> ExitCode {
    let cli = XtaskCli::parse();
    let args = match cli.command {
        XtaskCommand::ConfigReference => {
            print!("{}", config_reference::render());
            return ExitCode::SUCCESS;
        }
        XtaskCommand::Demo(args) => args,
    };
    if !args.no_build
        && let Err(error) = demo::build_binaries()
    {
        eprintln!("error: {error:#}");
        return ExitCode::FAILURE;
    }
    // The demo prints its own story; coordinator INFO lines would drown it.
    rollcall_common::logging::init_with_default(cli.log_json, "warn");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(demo::run(args));
    // Do not wait for stray blocking tasks at exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
