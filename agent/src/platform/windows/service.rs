//! The agent as a Windows service (`rollcall-agent service …`): installed
//! to start automatically as LocalSystem, stopped by the service manager
//! with the same graceful drain as SIGTERM on Linux, logging to a daily
//! rolling file beside its config (`%ProgramData%\rollcall\logs`).
//!
//! LocalSystem because the probe reads HKLM and the LocalMachine
//! certificate stores and runs the product's own update tool, which needs
//! administrator rights; it still runs only the commands its local config
//! names, never anything sent over the network.
// `define_windows_service!` expands to the FFI entry point the service
// manager calls; it is the only unsafe code in this file.
#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio_util::sync::CancellationToken;
use windows_service::service::{
    ServiceAccess, ServiceAction, ServiceActionType, ServiceControl, ServiceControlAccept, ServiceErrorControl,
    ServiceExitCode, ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo, ServiceStartType, ServiceState,
    ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

/// The service's name (`sc query rollcall-agent`).
pub const SERVICE_NAME: &str = "rollcall-agent";
const DISPLAY_NAME: &str = "rollcall agent";
const DESCRIPTION: &str = "Runs the security-agent upgrade runbook's checks on this endpoint and reports them to the rollcall coordinator over mutually authenticated TLS.";
/// How long a stop may take: the runner's drain plus margin. The service
/// manager is told, so it does not kill the agent mid-drain.
const STOP_WAIT_HINT: Duration = Duration::from_secs(20);
/// How long `service start|stop|uninstall` wait for the state to change.
const STATE_WAIT: Duration = Duration::from_secs(30);

/// The config the service runs with, handed from `service run`'s argument
/// to the service manager's callback thread.
static CONFIG: OnceLock<PathBuf> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// `service run --config FILE`: the entry the service manager starts.
/// Blocks until the service stops.
pub fn run(config: PathBuf) -> anyhow::Result<()> {
    let _ = CONFIG.set(config);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).context(
        "connect to the service manager (`service run` is for the service manager; use `rollcall-agent run` by hand)",
    )
}

fn service_main(_arguments: Vec<OsString>) {
    let Some(config) = CONFIG.get().cloned() else {
        return;
    };
    let _log_guard = init_file_logging(&config);
    super::stdio::describe();
    // A panic here would unwind into the service manager's FFI callback,
    // which aborts the process with nothing logged: log it and stop instead
    // (the service manager then applies the restart-on-failure actions).
    std::panic::set_hook(Box::new(|info| {
        tracing::error!("the service panicked: {info}");
    }));
    match std::panic::catch_unwind(|| serve(&config)) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!("the service failed: {error:#}"),
        Err(_) => tracing::error!("the service stopped after a panic (above)"),
    }
}

/// Logs to `logs\rollcall-agent.YYYY-MM-DD.log` beside the config, seven
/// days kept; stderr goes nowhere under the service manager.
fn init_file_logging(config: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = config.parent().unwrap_or(Path::new(".")).join("logs");
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("rollcall-agent")
        .filename_suffix("log")
        .max_log_files(7)
        .build(&dir)
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .try_init();
    Some(guard)
}

fn serve(config: &Path) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let handle = service_control_handler::register(SERVICE_NAME, move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown | ServiceControl::Preshutdown => {
            tracing::info!("the service manager asked the agent to stop");
            stop.cancel();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    })
    .context("register the service control handler")?;
    let status = |state: ServiceState, accept: ServiceControlAccept, exit: u32, wait: Duration| ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(exit),
        checkpoint: 0,
        wait_hint: wait,
        process_id: None,
    };
    handle
        .set_service_status(status(
            ServiceState::Running,
            ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
            0,
            Duration::ZERO,
        ))
        .context("report running")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let stopping = shutdown.clone();
    let result = runtime.block_on(async move {
        let outcome = crate::main_entry::run_daemon(config, shutdown).await;
        stopping.cancel();
        outcome
    });
    let _ = handle.set_service_status(status(
        ServiceState::StopPending,
        ServiceControlAccept::empty(),
        0,
        STOP_WAIT_HINT,
    ));
    runtime.shutdown_timeout(Duration::from_secs(2));
    let exit = match &result {
        Ok(code) if *code == ExitCode::SUCCESS => 0,
        // ERROR_BAD_CONFIGURATION for a config the agent refuses.
        Ok(_) => 1610,
        Err(_) => 1,
    };
    let _ = handle.set_service_status(status(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        exit,
        Duration::ZERO,
    ));
    result.map(|_| ())
}

/// `service install --config FILE`: registers the service (automatic
/// start, LocalSystem, restarted after a crash) running this executable.
pub fn install(config: &Path) -> anyhow::Result<()> {
    let config = std::path::absolute(config).with_context(|| format!("resolve {}", config.display()))?;
    if !config.is_file() {
        bail!("{} does not exist; enroll first", config.display());
    }
    let executable = std::env::current_exe().context("find rollcall-agent.exe")?;
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .context("open the service manager (run as Administrator)")?;
    let info = ServiceInfo {
        name: OsString::from(SERVICE_NAME),
        display_name: OsString::from(DISPLAY_NAME),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: executable,
        launch_arguments: vec![
            OsString::from("service"),
            OsString::from("run"),
            OsString::from("--config"),
            config.into_os_string(),
        ],
        dependencies: vec![],
        account_name: None,
        account_password: None,
    };
    let service = manager
        .create_service(&info, ServiceAccess::CHANGE_CONFIG | ServiceAccess::QUERY_STATUS)
        .with_context(|| format!("create the service {SERVICE_NAME}"))?;
    if let Err(error) = service.set_description(DESCRIPTION) {
        tracing::warn!(%error, "could not set the service description");
    }
    if let Err(error) = recovery(&service) {
        tracing::warn!("{error:#}");
    }
    Ok(())
}

/// Restart 30 s after a failure, three times a day: for the service the
/// MSI registers (its ServiceInstall cannot say this), set by `setup`.
pub fn set_recovery() -> anyhow::Result<()> {
    let service = open(ServiceAccess::CHANGE_CONFIG | ServiceAccess::QUERY_STATUS)?;
    recovery(&service)
}

fn recovery(service: &windows_service::service::Service) -> anyhow::Result<()> {
    let restart = ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: Duration::from_secs(30),
    };
    let actions = ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(Duration::from_secs(24 * 3600)),
        reboot_msg: None,
        command: None,
        actions: Some(vec![restart.clone(), restart.clone(), restart]),
    };
    service
        .update_failure_actions(actions)
        .context("set the service's restart-on-failure actions")
}

/// ERROR_SERVICE_ALREADY_RUNNING.
const ALREADY_RUNNING: i32 = 1056;

/// `service start`: starts it and waits until it runs. Already running is
/// success (a service manager may have auto-started it).
pub fn start() -> anyhow::Result<()> {
    let service = open(ServiceAccess::START | ServiceAccess::QUERY_STATUS)?;
    match service.start::<&OsStr>(&[]) {
        Ok(()) => {}
        Err(windows_service::Error::Winapi(error)) if error.raw_os_error() == Some(ALREADY_RUNNING) => {}
        Err(error) => return Err(error).context("start the service"),
    }
    wait_for(&service, ServiceState::Running)
}

/// `service stop`: asks it to stop (graceful drain) and waits.
pub fn stop() -> anyhow::Result<()> {
    let service = open(ServiceAccess::STOP | ServiceAccess::QUERY_STATUS)?;
    if service.query_status()?.current_state != ServiceState::Stopped {
        service.stop().context("stop the service")?;
    }
    wait_for(&service, ServiceState::Stopped)
}

/// `service uninstall`: stops it if running, then deletes it. Config,
/// identity and spool under the data directory stay (uninstall.cmd says
/// how to remove them).
pub fn uninstall() -> anyhow::Result<()> {
    let service = open(ServiceAccess::STOP | ServiceAccess::QUERY_STATUS | ServiceAccess::DELETE)?;
    if service.query_status()?.current_state != ServiceState::Stopped {
        service.stop().context("stop the service")?;
        wait_for(&service, ServiceState::Stopped)?;
    }
    service.delete().context("delete the service")
}

fn open(access: ServiceAccess) -> anyhow::Result<windows_service::service::Service> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .context("open the service manager (run as Administrator)")?;
    manager
        .open_service(SERVICE_NAME, access)
        .with_context(|| format!("open the service {SERVICE_NAME} (is it installed?)"))
}

fn wait_for(service: &windows_service::service::Service, wanted: ServiceState) -> anyhow::Result<()> {
    let deadline = Instant::now() + STATE_WAIT;
    loop {
        let state = service.query_status()?.current_state;
        if state == wanted {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "the service is {state:?}, not {wanted:?}, after {}s",
                STATE_WAIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
