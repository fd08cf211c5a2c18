//! The demo's endpoints: thirteen Windows machines with the Apex One
//! Security Agent at a 14.0 build, spread over Japanese sites, two of them
//! update agents, each planted with one runbook cause. The probes run in
//! this process on Linux and read these facts from a planted host root and
//! product-state file; real endpoints run the Windows probe, which reads
//! the same facts from Apex One's registry and `.ini` files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rollcall_agent::config::{ProductConfig, ReconnectConfig};
use rollcall_agent::enroll::{EnrollParams, enroll};
use rollcall_agent::identity::IdentityStore;
use rollcall_agent::prober::LocalProber;
use rollcall_agent::runner::AgentOptions;
use rollcall_common::tls::DialOptions;

/// The Apex One Security Agent build the fleet runs, and the one rolled out.
pub const FROM: &str = "14.0.12737";
pub const TARGET: &str = "14.0.13140";

/// Windows 10 22H2 and Windows 11 23H2, as the Windows probe reports them
/// (`major.minor.build.UBR`); and Windows 10 1809, too old for the newer
/// code signing (runbook step 6).
const WINDOWS_10: &str = "ID=windows\nVERSION_ID=\"10.0.19045.3803\"\nPRETTY_NAME=\"Windows 10 Pro 22H2\"\n";
const WINDOWS_11: &str = "ID=windows\nVERSION_ID=\"10.0.22631.2861\"\nPRETTY_NAME=\"Windows 11 Pro 23H2\"\n";
const WINDOWS_1809: &str =
    "ID=windows\nVERSION_ID=\"10.0.17763.5206\"\nPRETTY_NAME=\"Windows 10 Enterprise LTSC 2019\"\n";

/// What happens to a planted cause in the story.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// Nothing: it stays a straggler and goes into the report.
    None,
    /// The admin sets "Update settings permission" to "All components".
    Permission,
    /// The admin enables "Security agent program and HotFix" for this update agent.
    ProgramAndHotfix,
    /// The admin installs the missing code-signing root.
    Certificate,
}

/// One demo endpoint and the runbook cause it is built to show.
#[derive(Debug, Clone, Copy)]
pub struct DemoHost {
    pub name: &'static str,
    pub site: &'static str,
    /// The cause code it is planted with (`completed` for the one at target).
    pub shows: &'static str,
    pub version: &'static str,
    pub role: &'static str,
    license: &'static str,
    permission: &'static str,
    /// The update agent it pulls from (its custom source), if any.
    pub pulls_from: Option<&'static str>,
    /// For update agents: "Security agent program and HotFix" enabled.
    program_and_hotfix: bool,
    /// Apex One server reachable?
    reachable: bool,
    pub os: &'static str,
    has_certificate: bool,
    /// The local update action installs the target.
    can_update: bool,
    /// Reports once, then goes away (a laptop lid closes).
    pub goes_offline: bool,
    pub fix: Fix,
}

const BASE: DemoHost = DemoHost {
    name: "",
    site: "tokyo",
    shows: "",
    version: FROM,
    role: "endpoint",
    license: "2099-03-31",
    permission: "all_components",
    pulls_from: None,
    program_and_hotfix: true,
    reachable: true,
    os: WINDOWS_10,
    has_certificate: true,
    can_update: true,
    goes_offline: false,
    fix: Fix::None,
};

pub const UPDATE_AGENT: &str = "ua-osaka-01";

pub const FLEET: &[DemoHost] = &[
    DemoHost {
        name: UPDATE_AGENT,
        site: "osaka",
        shows: "update_agent_program",
        role: "update_agent",
        program_and_hotfix: false,
        os: WINDOWS_11,
        fix: Fix::ProgramAndHotfix,
        ..BASE
    },
    DemoHost {
        name: "osaka-pc-01",
        site: "osaka",
        shows: "update_agent",
        pulls_from: Some(UPDATE_AGENT),
        ..BASE
    },
    DemoHost {
        name: "osaka-pc-02",
        site: "osaka",
        shows: "update_agent",
        pulls_from: Some(UPDATE_AGENT),
        os: WINDOWS_11,
        ..BASE
    },
    DemoHost {
        name: "tokyo-pc-01",
        shows: "completed",
        version: TARGET,
        ..BASE
    },
    DemoHost {
        name: "tokyo-pc-02",
        shows: "update_permission",
        permission: "pattern_files",
        fix: Fix::Permission,
        ..BASE
    },
    DemoHost {
        name: "nagoya-pc-01",
        site: "nagoya",
        shows: "license",
        license: "2024-03-31",
        ..BASE
    },
    DemoHost {
        name: "kyoto-pc-01",
        site: "kyoto",
        shows: "update_source",
        ..BASE
    },
    DemoHost {
        name: "kobe-pc-01",
        site: "kobe",
        shows: "certificates",
        has_certificate: false,
        fix: Fix::Certificate,
        ..BASE
    },
    DemoHost {
        name: "sapporo-pc-01",
        site: "sapporo",
        shows: "connectivity",
        reachable: false,
        ..BASE
    },
    DemoHost {
        name: "sendai-pc-01",
        site: "sendai",
        shows: "offline",
        goes_offline: true,
        ..BASE
    },
    DemoHost {
        name: "fukuoka-pc-01",
        site: "fukuoka",
        shows: "system_requirements",
        os: WINDOWS_1809,
        ..BASE
    },
    DemoHost {
        name: "nara-pc-01",
        site: "nara",
        shows: "unknown",
        ..BASE
    },
    DemoHost {
        name: "kanazawa-pc-01",
        site: "kanazawa",
        shows: "unknown",
        can_update: false,
        ..BASE
    },
];

impl DemoHost {
    /// What the line in the intro says it shows.
    pub fn story(&self) -> &'static str {
        match self.name {
            UPDATE_AGENT => "update agent for osaka, \"Security agent program and HotFix\" off: blocks its clients",
            "osaka-pc-01" | "osaka-pc-02" => "pulls from ua-osaka-01: waits for it",
            "tokyo-pc-01" => "already on the target",
            "tokyo-pc-02" => "\"Update settings permission\" is \"Pattern files\" (step 2)",
            "nagoya-pc-01" => "license expired (step 1)",
            "kyoto-pc-01" => "standard update source, but kyoto should use its update agent (step 3)",
            "kobe-pc-01" => "code-signing root certificate missing (step 4)",
            "sapporo-pc-01" => "cannot reach the Apex One server (step 5)",
            "sendai-pc-01" => "reports once, then the laptop is closed (offline, step 5)",
            "fukuoka-pc-01" => "Windows 10 1809, older than the policy's minimum (step 6)",
            "nara-pc-01" => "every check passes: a manual update notification gets it done",
            "kanazawa-pc-01" => "every check passes, Update Now is not allowed: overwrite install (step 7)",
            _ => "",
        }
    }
}

/// Addresses the probes check (runbook step 5): the coordinator's own TLS
/// port stands in for the Apex One server and the update agent; a closed
/// port for the server sapporo cannot reach.
pub struct Addresses {
    pub server: String,
    pub closed: String,
    pub update_agent: String,
}

fn product_state(host: &DemoHost, addresses: &Addresses, version: &str, permission: &str, program: bool) -> String {
    let source = match host.pulls_from {
        Some(_) => format!("source = \"custom\"\nsource_address = \"{}\"\n", addresses.update_agent),
        None => "source = \"standard\"\n".to_string(),
    };
    let update_agent = if host.role == "update_agent" {
        format!(
            "[update_agent]\nprogram_and_hotfix = {program}\naddress = \"{}\"\n",
            addresses.update_agent
        )
    } else {
        String::new()
    };
    let server = if host.reachable {
        &addresses.server
    } else {
        &addresses.closed
    };
    format!(
        "# Apex One Security Agent on {name} (planted for the demo)\nversion = \"{version}\"\nrole = \"{role}\"\n[license]\nexpires = \"{license}\"\n[update]\npermission = \"{permission}\"\n{source}{update_agent}[server]\naddress = \"{server}\"\n",
        name = host.name,
        role = host.role,
        license = host.license,
    )
}

/// The fleet policy: what the checks compare the endpoints with.
pub fn policy(fingerprint: &str, update_agent: &str) -> String {
    format!(
        r#"offline_after = "6s"
update_now_window = "1m"
[[update_source.expected]]
match = {{ pulls_from = "{UPDATE_AGENT}" }}
source = "custom"
address = "{update_agent}"
[[update_source.expected]]
match = {{ site = "kyoto" }}
source = "custom"
address = "ua-kyoto-01.example:8080"
[[update_source.expected]]
source = "standard"
[certificates]
store = "etc/ssl/certs"
[[certificates.required]]
name = "Trend Micro code-signing root (demo)"
sha256 = "{fingerprint}"
[connectivity]
timeout = "1s"
[[system_requirements.os]]
id = "windows"
min_version = "10.0.19044"
"#
    )
}

/// A demo endpoint ready to run, and the files the admin's fixes change.
pub struct Prepared {
    pub options: AgentOptions,
    pub prober: Arc<LocalProber>,
    pub host: &'static DemoHost,
    state_path: PathBuf,
    fixed_state: String,
    certificate_path: PathBuf,
}

impl Prepared {
    /// The admin's fix for this host, applied to its planted facts.
    pub fn apply_fix(&self, certificate_pem: &str) -> anyhow::Result<()> {
        match self.host.fix {
            Fix::None => Ok(()),
            Fix::Permission | Fix::ProgramAndHotfix => {
                std::fs::write(&self.state_path, &self.fixed_state).context("write the fixed product state")
            }
            Fix::Certificate => {
                std::fs::write(&self.certificate_path, certificate_pem).context("install the certificate")
            }
        }
    }
}

/// Plants one endpoint's host root and product state under `base` and
/// enrolls it.
pub async fn prepare(
    host: &'static DemoHost,
    base: &Path,
    url: &str,
    ca_pem: &str,
    token: &str,
    addresses: &Addresses,
    certificate_pem: &str,
) -> anyhow::Result<Prepared> {
    let dir = base.join("agents").join(host.name);
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc/ssl/certs"))?;
    std::fs::create_dir_all(root.join("proc"))?;
    std::fs::write(root.join("etc/os-release"), host.os)?;
    std::fs::write(
        root.join("proc/meminfo"),
        "MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n",
    )?;
    let certificate_path = root.join("etc/ssl/certs/code-signing-root.pem");
    if host.has_certificate {
        std::fs::write(&certificate_path, certificate_pem)?;
    }
    let state_path = dir.join("product-state.toml");
    std::fs::write(
        &state_path,
        product_state(host, addresses, host.version, host.permission, host.program_and_hotfix),
    )?;
    let fixed_state = product_state(host, addresses, host.version, "all_components", true);
    // The local "Update Now": installs the target (copies the upgraded state in).
    let upgraded = dir.join("upgraded-state.toml");
    std::fs::write(
        &upgraded,
        product_state(host, addresses, TARGET, "all_components", true),
    )?;
    let update_command = host.can_update.then(|| {
        vec![
            "/bin/cp".to_string(),
            upgraded.display().to_string(),
            state_path.display().to_string(),
        ]
    });
    let enrolled = enroll(&EnrollParams {
        coordinator: url.to_string(),
        ca_pem: ca_pem.to_string(),
        token: token.to_string().into(),
        hostname: host.name.to_string(),
        dial: DialOptions::default(),
    })
    .await
    .with_context(|| format!("enroll demo agent {}", host.name))?;
    // Its clients carry the update agent they are meant to pull from, which
    // the policy's expected update source matches (runbook step 3).
    let mut labels: BTreeMap<String, String> = [("site".to_string(), host.site.to_string())].into();
    if let Some(update_agent) = host.pulls_from {
        labels.insert("pulls_from".to_string(), update_agent.to_string());
    }
    let options = AgentOptions {
        urls: vec![url.to_string()],
        identity: IdentityStore::Memory(Arc::new(std::sync::Mutex::new(enrolled.identity))),
        hostname: host.name.to_string(),
        labels: labels.clone(),
        check_interval: Duration::from_secs(60),
        data_dir: None,
        dial: DialOptions::default(),
        reconnect: ReconnectConfig {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(5),
            ..ReconnectConfig::default()
        },
        check_at_start: true,
        update_allowed: update_command.is_some(),
        collect: Default::default(),
    };
    let prober = Arc::new(LocalProber {
        host_root: root,
        product: ProductConfig {
            state_file: Some(state_path.clone()),
            update_command,
            ..ProductConfig::default()
        },
        labels,
    });
    Ok(Prepared {
        options,
        prober,
        host,
        state_path,
        fixed_state,
        certificate_path,
    })
}
