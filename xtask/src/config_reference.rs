//! The configuration reference, `docs/CONFIGURATION.md`, generated from the
//! code so that it cannot go stale.
//!
//! - Flags, their environment variables and defaults come from the clap
//!   definitions of the programs ([`ServerCli`], [`Cli`], [`AgentCli`], the
//!   benchmark simulator's [`SimCli`] and this crate's [`XtaskCli`], for the
//!   demo), each crate's library, walked through
//!   `clap::CommandFactory`: a flag added anywhere shows up here without
//!   anyone writing about it.
//! - `agent.toml` and the fleet policy are serde structs; their keys and
//!   meanings are written down once, in [`AGENT_KEYS`] and [`POLICY_KEYS`],
//!   and their defaults are computed by parsing an empty file and writing the
//!   result back. The deploy tests hold these tables to the code: every key
//!   of the fully populated examples (`deploy/examples/agent.toml`,
//!   `deploy/examples/policy.toml`) must parse and be listed here, and every
//!   key listed here must be in the examples.
//! - Environment variables read outside clap are listed in [`OTHER_ENV`];
//!   a test scans the sources for `ROLLCALL_*` names missing from the
//!   reference.
//!
//! `cargo run -p xtask -- config-reference > docs/CONFIGURATION.md` regenerates
//! the file; a test compares it with this output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use clap::CommandFactory;
use rollcall_agent::config::AgentConfig;
use rollcall_agent::main_entry::AgentCli;
use rollcall_agent::sim::SimCli;
use rollcall_common::policy::Policy;
use rollcall_common::product::{Choice, UpdatePermission, UpdateSourceKind};

use rollcall_cli::Cli;
use rollcall_server::main_entry::ServerCli;

use crate::XtaskCli;

/// The command that regenerates the committed reference.
pub const REGENERATE: &str = "cargo run -p xtask -- config-reference > docs/CONFIGURATION.md";

// === data model ===

/// One flag or positional argument of one command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagDoc {
    /// clap's id of the argument (the field name).
    pub id: String,
    /// The command it belongs to, as in [`CommandDoc::path`].
    pub command: String,
    /// As typed: `--listen <LISTEN>`, `-o, --output <OUTPUT>`, `<ID>`.
    pub usage: String,
    /// The long name without dashes, when the argument has one.
    pub long: Option<String>,
    pub env: Option<String>,
    /// The default as clap applies it; `None` when there is none.
    pub default: Option<String>,
    pub required: bool,
    pub repeatable: bool,
    pub description: String,
    /// The description comes from [`FLAG_NOTES`], not from clap.
    pub from_note: bool,
}

/// One command (the program itself for its global options) and its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandDoc {
    /// `rollcall-server serve`, `rollcall token create`, `rollcall-agent`.
    pub path: String,
    pub about: String,
    /// Options of the program itself, accepted by every subcommand.
    pub global: bool,
    pub flags: Vec<FlagDoc>,
}

/// One key of a TOML file, written down by hand; the default is computed.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    /// Dotted path; `[]` marks an array of tables (`os[].id`).
    pub key: &'static str,
    pub kind: &'static str,
    /// What applies when the key is absent and the code has no default
    /// value for it (an optional key); keys with a code default leave this
    /// `None` and the computed default is shown.
    pub absent: Option<&'static str>,
    pub description: &'static str,
    /// The allowed words, from the code.
    pub allowed: Option<fn() -> String>,
    /// The value is a free-form table (labels): its own keys are data.
    pub free_form: bool,
}

const fn key(key: &'static str, kind: &'static str, description: &'static str) -> KeyDoc {
    KeyDoc {
        key,
        kind,
        absent: None,
        description,
        allowed: None,
        free_form: false,
    }
}

const fn optional(key: &'static str, kind: &'static str, absent: &'static str, description: &'static str) -> KeyDoc {
    KeyDoc {
        key,
        kind,
        absent: Some(absent),
        description,
        allowed: None,
        free_form: false,
    }
}

/// Environment variables read outside clap, documented together.
#[derive(Debug, Clone, Copy)]
pub struct EnvDoc {
    pub names: &'static [&'static str],
    pub read_by: &'static str,
    pub description: &'static str,
}

// === hand-written meanings ===

/// Every key of `agent.toml` (`rollcall_agent::config::AgentConfig`).
pub const AGENT_KEYS: &[KeyDoc] = &[
    optional(
        "coordinator",
        "URL or array of URLs",
        "none; `run` refuses to start",
        "Coordinator URL (`https://host:port`), or a list tried in order on failure. Written by `rollcall-agent enroll`.",
    ),
    optional(
        "data_dir",
        "path",
        "none; `run` refuses to start",
        "The agent's own directory: identity, spool of unacknowledged reports, last policy (`policy.toml`), `inbox/` of local update-now outcomes. Written by `enroll`.",
    ),
    optional(
        "identity.ca",
        "path",
        "`DATA_DIR/identity/ca.pem`",
        "The coordinator's CA certificate. The `[identity]` table is all or nothing: set `ca`, `cert` and `key` together.",
    ),
    optional(
        "identity.cert",
        "path",
        "`DATA_DIR/identity/cert.pem`",
        "This agent's certificate, renewed by the agent at about half its lifetime.",
    ),
    optional(
        "identity.key",
        "path",
        "`DATA_DIR/identity/key.pem`",
        "This agent's private key (written 0600).",
    ),
    optional(
        "hostname",
        "string",
        "the system host name",
        "The name the coordinator shows for this endpoint.",
    ),
    KeyDoc {
        free_form: true,
        ..key(
            "labels",
            "table of strings",
            "Labels of this endpoint (`site = \"osaka\"`): matched by the policy's `update_source.expected[].match` and by admin selectors. Labels given to the enrollment token are added at enroll time.",
        )
    },
    key(
        "host_root",
        "path",
        "Where host facts (os-release, memory, free disk, trust store) are read, like node_exporter's `--path.rootfs`; `/host` in a container with the host's `/` mounted there.",
    ),
    key(
        "check_interval",
        "duration",
        "How often the probe runs its checks on its own (at least `1s`); the coordinator can also ask for a recheck at any time.",
    ),
    optional(
        "product.adapter",
        "`file`, `command` or `apex-one`",
        "the adapter `state_file` or `state_command` implies",
        "Where the product state comes from: `file` (`state_file`), `command` (`state_command`), or `apex-one`: the Trend Micro Apex One Security Agent's registry values, `.ini` files and Windows uninstall entry, located by `mapping`. Check what it reads with `rollcall-agent product show`.",
    ),
    optional(
        "product.mapping",
        "path",
        "none; required with `adapter = \"apex-one\"`, refused otherwise",
        "The Apex One mapping file: for each product-state field, the registry value, `.ini` key, uninstall entry or fixed value it comes from, and whether that source is verified. Example: [deploy/examples/apex-one.toml](../deploy/examples/apex-one.toml). Not together with `state_file` or `state_command`.",
    ),
    optional(
        "product.state_file",
        "path",
        "none; the product checks report the state as unreadable",
        "The managed product's state document (TOML or JSON), re-read at every check. Not together with `state_command`.",
    ),
    optional(
        "product.state_command",
        "array of strings (argv)",
        "none",
        "A fixed argv, never a shell string, that prints the same document. Not together with `state_file`.",
    ),
    optional(
        "product.update_command",
        "array of strings (argv)",
        "none; `update_now` commands are refused",
        "The local \"Update Now\" action the coordinator may ask for: the only program the coordinator can make the agent run.",
    ),
    key(
        "product.state_timeout",
        "duration",
        "Bound on reading the product state: `state_file`, `state_command`, or the `apex-one` adapter's registry and file reads.",
    ),
    key("product.update_timeout", "duration", "Bound on `update_command`."),
    key(
        "product.install_path",
        "path",
        "Where the product is installed, relative to `host_root`; free disk is measured there.",
    ),
    key(
        "spool.max_reports",
        "integer",
        "Unacknowledged reports kept on disk at most; the oldest go first.",
    ),
    key(
        "spool.max_bytes",
        "integer (bytes)",
        "Bytes of unacknowledged reports kept on disk at most.",
    ),
    key(
        "reconnect.initial",
        "duration",
        "First reconnect delay; grows by 1.6 with ±20% jitter.",
    ),
    key("reconnect.max", "duration", "Longest reconnect delay."),
    key(
        "reconnect.keepalive",
        "duration",
        "HTTP/2 keepalive ping interval on the stream, so a network that stalls silently is noticed (at least `200ms`).",
    ),
    key(
        "reconnect.keepalive_timeout",
        "duration",
        "How long a keepalive ping may go unanswered before the agent reconnects.",
    ),
    key(
        "collect.paths",
        "array of absolute paths",
        "Runbook step 8: the log files a coordinator `collect` command (`rollcall collect`) may gather, and the only ones: the command names no file. `*` and `?` are allowed in the file name (e.g. `C:\\...\\Security Agent\\*.log`). Empty: collect commands are refused.",
    ),
    key(
        "collect.max_bundle_bytes",
        "integer (bytes)",
        "File bytes in one bundle at most (1 to 33554432): newest files first by modification time, whole files only; a file that would pass the cap is left out and named in the bundle's MANIFEST.txt.",
    ),
];

/// Every key of the fleet policy (`rollcall_common::policy`).
pub const POLICY_KEYS: &[KeyDoc] = &[
    key(
        "offline_after",
        "duration",
        "The coordinator calls an agent offline after this long without contact (runbook step 5). At least `1s`.",
    ),
    key(
        "clock_skew_warn",
        "duration",
        "An agent whose clock is off the coordinator's by more than this is flagged (`clock_skew_flagged` in `rollcall agent`, listed in the step-8 report). Its reports are placed in time by the coordinator's clock either way. At least `1s`.",
    ),
    key(
        "update_now_window",
        "duration",
        "Step 8: an Update Now (agent-side or server-side) counts as having helped when a report from that agent shows the target version within this long after it. Between `1s` and `7d`.",
    ),
    key(
        "license.warn_days",
        "integer (days)",
        "Step 1: warn this many days before the license expires (at most 3650); fail once it has.",
    ),
    KeyDoc {
        allowed: Some(UpdatePermission::allowed),
        ..key(
            "update_permission.required",
            "word",
            "Step 2: the update-settings permission every endpoint must have.",
        )
    },
    KeyDoc {
        free_form: true,
        ..optional(
            "update_source.expected[].match",
            "table of strings",
            "matches every endpoint",
            "Step 3: labels an endpoint must carry for this entry to apply. The first matching entry wins; nothing may follow an entry without `match`.",
        )
    },
    KeyDoc {
        allowed: Some(UpdateSourceKind::allowed),
        ..optional(
            "update_source.expected[].source",
            "word",
            "required in each entry",
            "Step 3: the update source the matching endpoints must use.",
        )
    },
    optional(
        "update_source.expected[].address",
        "host:port or URL",
        "any custom source is accepted",
        "Step 3: with `source = \"custom\"`, the update agent the endpoints must point at.",
    ),
    optional(
        "certificates.store",
        "path",
        "`etc/ssl/certs`, then `etc/pki/tls/certs`",
        "Step 4: the trust store, relative to the agent's `host_root` (no `..`).",
    ),
    optional(
        "certificates.required[].name",
        "string",
        "required in each entry",
        "Step 4: the certificate's name, as reports show it.",
    ),
    optional(
        "certificates.required[].sha256",
        "hex SHA-256",
        "this or `sha1` in each entry",
        "Step 4: the fingerprint of the certificate's DER encoding (colons optional, any case).",
    ),
    optional(
        "certificates.required[].sha1",
        "hex SHA-1",
        "this or `sha256` in each entry",
        "Step 4: the thumbprint Windows' certificate manager shows (SHA-1 of the DER; spaces or colons allowed).",
    ),
    key(
        "connectivity.timeout",
        "duration",
        "Step 5: bound on resolving, connecting and the TLS handshake per target (100ms to 60s).",
    ),
    optional(
        "system_requirements.arch",
        "array of strings",
        "any architecture",
        "Step 6: allowed architectures (`amd64`/`x64` mean `x86_64`, `arm64` means `aarch64`).",
    ),
    optional(
        "system_requirements.min_free_disk_mb",
        "integer (MiB)",
        "no minimum",
        "Step 6: free disk under the product's `install_path`.",
    ),
    optional(
        "system_requirements.min_memory_mb",
        "integer (MiB)",
        "no minimum",
        "Step 6: total memory.",
    ),
    optional(
        "system_requirements.os[].id",
        "string",
        "any operating system",
        "Step 6: an allowed os-release `ID` (lowercase).",
    ),
    optional(
        "system_requirements.os[].min_version",
        "dotted number",
        "any version",
        "Step 6: the lowest os-release `VERSION_ID` for that `id` (Windows: `major.minor.build.UBR`).",
    ),
    optional(
        "system_requirements.os[].min_build",
        "integer",
        "any build",
        "Step 6: the lowest OS build number for that `id` (Windows' `CurrentBuildNumber`: 19045 is Windows 10 22H2, 17763 Server 2019).",
    ),
    key(
        "diagnosis.pattern_window",
        "duration",
        "Step 2 (inferred): a pattern date or last update this recent, on an agent behind the target whose update permission no one states, makes its cause `update_permission`, inferred (1h to 365d; default 7d).",
    ),
    optional(
        "diagnosis.server_certificate_sha256",
        "hex SHA-256",
        "the fleet's strict majority",
        "Step 5: the server certificate (Apex One's OfcNTCer.dat) agents must hold; an agent holding another is `connectivity`.",
    ),
    KeyDoc {
        free_form: true,
        ..optional(
            "server_facts[].match",
            "table of strings",
            "matches every endpoint",
            "Steps 1 and 2: labels an endpoint must carry for this entry's facts to apply; the first matching entry wins.",
        )
    },
    optional(
        "server_facts[].license_expires",
        "date (YYYY-MM-DD)",
        "not stated",
        "Step 1: the license's last valid day as the product server's console shows it, for endpoints whose product state lacks `license.expires` (what an endpoint reports wins; the check's evidence `source` names this entry).",
    ),
    KeyDoc {
        allowed: Some(UpdatePermission::allowed),
        ..optional(
            "server_facts[].update_permission",
            "word",
            "not stated",
            "Step 2: the console's update-settings permission, for endpoints whose product state lacks `update.permission`.",
        )
    },
];

/// Environment variables read outside clap.
pub const OTHER_ENV: &[EnvDoc] = &[
    EnvDoc {
        names: &["RUST_LOG"],
        read_by: "every program",
        description: "Log filter in `tracing-subscriber` `EnvFilter` syntax (`info`, `rollcall_server=debug,info`); default `info`. Logs go to standard error.",
    },
    EnvDoc {
        names: &["NOTIFY_SOCKET"],
        read_by: "`rollcall-server serve`, `rollcall-agent run`",
        description: "Set by systemd for `Type=notify` units: the coordinator sends `READY=1` once it serves and `STOPPING=1` when it drains; the agent sends `READY=1` when its runner starts. Unset: nothing is sent.",
    },
    EnvDoc {
        names: &["LC_ALL", "LC_MESSAGES", "LANG"],
        read_by: "`rollcall`",
        description: "Without `--lang`, the first one set chooses the language: `ja…` is Japanese, anything else English.",
    },
];

/// What a flag means where its definition carries no help text, by the
/// command it belongs to (a program name covers all of its commands) and
/// the argument's id. Used only when clap has no help for the argument; a
/// test fails on a note that no longer applies anywhere.
pub const FLAG_NOTES: &[(&str, &str, &str)] = &[];

// === computed ===

/// Every command of the programs with its visible flags, in the order
/// clap declares them.
pub fn commands() -> Vec<CommandDoc> {
    let mut docs = Vec::new();
    for command in [
        ServerCli::command(),
        Cli::command(),
        AgentCli::command(),
        SimCli::command(),
        XtaskCli::command(),
    ] {
        collect(&command, command.get_name(), true, &mut docs);
    }
    docs
}

fn collect(command: &clap::Command, path: &str, root: bool, docs: &mut Vec<CommandDoc>) {
    let flags: Vec<FlagDoc> = command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .map(|arg| flag_doc(path, arg))
        .collect();
    let about = command
        .get_about()
        .map(|text| one_line(&text.to_string()))
        .unwrap_or_default();
    // A program whose subcommands carry all the flags has no table of its own.
    if !(root && flags.is_empty()) {
        docs.push(CommandDoc {
            path: path.to_string(),
            about,
            global: root && command.has_subcommands(),
            flags,
        });
    }
    for sub in command.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        collect(sub, &format!("{path} {}", sub.get_name()), false, docs);
    }
}

fn flag_doc(path: &str, arg: &clap::Arg) -> FlagDoc {
    let takes_value = arg.get_action().takes_values();
    let value_name = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|name| name.to_string())
        .unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    let usage = if arg.is_positional() {
        format!("<{value_name}>")
    } else {
        let mut names = Vec::new();
        if let Some(short) = arg.get_short() {
            names.push(format!("-{short}"));
        }
        if let Some(long) = arg.get_long() {
            names.push(format!("--{long}"));
        }
        let mut usage = names.join(", ");
        if takes_value {
            let _ = write!(usage, " <{value_name}>");
        }
        usage
    };
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|value| value.to_string_lossy().into_owned())
        .collect();
    let mut description = arg
        .get_help()
        .map(|text| one_line(&text.to_string()))
        .unwrap_or_default();
    let mut from_note = false;
    if description.is_empty()
        && let Some((_, _, note)) = FLAG_NOTES
            .iter()
            .find(|(command, id, _)| covers(command, path) && *id == arg.get_id().as_str())
    {
        description = note.to_string();
        from_note = true;
    }
    let is_switch = matches!(arg.get_action(), clap::ArgAction::SetTrue | clap::ArgAction::SetFalse);
    let choices: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|value| !value.is_hide_set())
        .map(|value| format!("`{}`", value.get_name()))
        .collect();
    if !is_switch && !choices.is_empty() {
        if !description.is_empty() && !description.ends_with('.') {
            description.push('.');
        }
        if !description.is_empty() {
            description.push(' ');
        }
        let _ = write!(description, "One of {}.", choices.join(", "));
    }
    // A switch is off unless given (clap fills its default in only later).
    let default = if defaults.is_empty() && is_switch {
        Some("false".to_string())
    } else {
        (!defaults.is_empty()).then(|| defaults.join(","))
    };
    FlagDoc {
        id: arg.get_id().as_str().to_string(),
        command: path.to_string(),
        usage,
        long: arg.get_long().map(str::to_string),
        env: arg.get_env().map(|name| name.to_string_lossy().into_owned()),
        default,
        required: arg.is_required_set(),
        repeatable: matches!(arg.get_action(), clap::ArgAction::Append | clap::ArgAction::Count),
        description,
        from_note,
    }
}

/// Whether a note for `command` applies to the command at `path`: the same
/// command, or a program name and one of its commands.
fn covers(command: &str, path: &str) -> bool {
    path == command || path.strip_prefix(command).is_some_and(|rest| rest.starts_with(' '))
}

/// Notes of [`FLAG_NOTES`] that describe no flag any more: the flag is gone,
/// renamed, or has help text of its own now.
pub fn unused_flag_notes() -> Vec<(&'static str, &'static str)> {
    let used: Vec<FlagDoc> = commands()
        .into_iter()
        .flat_map(|command| command.flags)
        .filter(|flag| flag.from_note)
        .collect();
    FLAG_NOTES
        .iter()
        .filter(|(command, id, _)| !used.iter().any(|flag| covers(command, &flag.command) && flag.id == *id))
        .map(|(command, id, _)| (*command, *id))
        .collect()
}

/// The environment variables a command reads through its flags, its
/// program's global ones included. `path` as in [`CommandDoc::path`].
pub fn flag_env_vars(path: &str) -> BTreeSet<String> {
    let program = path.split(' ').next().unwrap_or_default();
    commands()
        .into_iter()
        .filter(|command| command.path == path || (command.global && command.path == program))
        .flat_map(|command| command.flags.into_iter().filter_map(|flag| flag.env))
        .collect()
}

/// Every environment variable the reference documents.
pub fn documented_env_vars() -> BTreeSet<String> {
    commands()
        .into_iter()
        .flat_map(|command| command.flags.into_iter().filter_map(|flag| flag.env))
        .chain(
            OTHER_ENV
                .iter()
                .flat_map(|doc| doc.names.iter().map(|name| name.to_string())),
        )
        .collect()
}

/// `agent.toml` defaults, by dotted key, as the code applies them to an
/// empty file.
pub fn agent_defaults() -> anyhow::Result<BTreeMap<String, toml::Value>> {
    let config = AgentConfig::from_toml_str("")?;
    let toml::Value::Table(table) = toml::Value::try_from(&config)? else {
        anyhow::bail!("agent config did not serialize as a table");
    };
    Ok(flatten(&table, AGENT_KEYS))
}

/// Policy defaults, by dotted key: what an empty policy means.
pub fn policy_defaults() -> anyhow::Result<BTreeMap<String, toml::Value>> {
    let table: toml::Table = toml::from_str(&Policy::default().to_toml_string()?)?;
    Ok(flatten(&table, POLICY_KEYS))
}

/// Dotted keys of a TOML table: tables are entered, arrays of tables become
/// `key[]`, and the keys `docs` marks free-form are leaves.
pub fn flatten(table: &toml::Table, docs: &[KeyDoc]) -> BTreeMap<String, toml::Value> {
    let leaves: BTreeSet<&str> = docs.iter().filter(|doc| doc.free_form).map(|doc| doc.key).collect();
    let mut out = BTreeMap::new();
    flatten_into(table, "", &leaves, &mut out);
    out
}

fn flatten_into(table: &toml::Table, prefix: &str, leaves: &BTreeSet<&str>, out: &mut BTreeMap<String, toml::Value>) {
    for (name, value) in table {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) if !leaves.contains(path.as_str()) => flatten_into(inner, &path, leaves, out),
            toml::Value::Array(items) if !items.is_empty() && items.iter().all(toml::Value::is_table) => {
                let element = format!("{path}[]");
                for item in items {
                    if let toml::Value::Table(inner) = item {
                        flatten_into(inner, &element, leaves, out);
                    }
                }
            }
            _ => {
                out.insert(path, value.clone());
            }
        }
    }
}

// === rendering ===

/// The whole of `docs/CONFIGURATION.md`.
pub fn render() -> String {
    let mut out = String::new();
    out.push_str(HEADER);
    render_flags(&mut out);
    render_env(&mut out);
    out.push_str(AGENT_INTRO);
    render_keys(&mut out, AGENT_KEYS, agent_defaults());
    out.push_str(POLICY_INTRO);
    render_keys(&mut out, POLICY_KEYS, policy_defaults());
    out
}

const HEADER: &str = "# Configuration reference

<!-- Generated by `xtask config-reference`; do not edit by hand.
     Regenerate: cargo run -p xtask -- config-reference > docs/CONFIGURATION.md
     The deploy tests fail when this file and the code disagree. -->

Every flag, environment variable and configuration key of `rollcall-server`
(the coordinator), `rollcall` (the admin CLI) and `rollcall-agent` (the
probe), with its default; `rollcall-sim`, the fleet simulator for
benchmarks, and `xtask demo` (neither packaged), come last. A flag's environment variable applies when the
flag is not given; the flag wins. Durations are written like `30s`, `15m`,
`2h`, `7d`. Every command also takes `--help`, and each program
`--version`. How the packages and units use them: [OPERATIONS.md](OPERATIONS.md).

Contents: [flags](#flags) · [environment variables](#environment-variables)
· [agent.toml](#agenttoml) · [fleet policy](#fleet-policy)

## Flags
";

const AGENT_INTRO: &str = "
## agent.toml

The probe's own file, written by `rollcall-agent enroll` into its data dir
and read by `run`, `check`, `update-now` and `validate`. Unknown keys are
refused, naming the key. A fully populated example:
[deploy/examples/agent.toml](../deploy/examples/agent.toml) (installed as
`/etc/rollcall/agent.toml.example`).

";

const POLICY_INTRO: &str = "
## Fleet policy

What the runbook checks compare each endpoint with. Applied with `rollcall
policy apply FILE`; the coordinator sends it to every agent. Every section is
optional, unknown keys are refused, and errors name the key. `[]` marks an
array of tables (`[[update_source.expected]]`). Example:
[deploy/examples/policy.toml](../deploy/examples/policy.toml); the format in
detail: [PRODUCT_STATE.md](PRODUCT_STATE.md).

";

fn render_flags(out: &mut String) {
    let mut program = String::new();
    for command in commands() {
        let this_program = command.path.split(' ').next().unwrap_or_default().to_string();
        if this_program != program {
            let _ = write!(out, "\n### `{this_program}`\n");
            program = this_program;
        }
        if command.global {
            let _ = write!(out, "\nOptions of every `{}` command:\n\n", command.path);
        } else {
            let _ = write!(out, "\n#### `{}`\n\n", command.path);
            if !command.about.is_empty() {
                let _ = write!(out, "{}\n\n", command.about);
            }
        }
        if command.flags.is_empty() {
            out.push_str("No options.\n");
            continue;
        }
        out.push_str("| Flag | Environment | Default | Description |\n|---|---|---|---|\n");
        for flag in &command.flags {
            let env = flag.env.as_deref().map(|name| format!("`{name}`")).unwrap_or_default();
            let default = match (&flag.default, flag.required) {
                (Some(value), _) => format!("`{value}`"),
                (None, true) => "required".to_string(),
                (None, false) => String::new(),
            };
            let usage = if flag.repeatable {
                format!("`{}` (repeatable)", flag.usage)
            } else {
                format!("`{}`", flag.usage)
            };
            let _ = writeln!(
                out,
                "| {} | {env} | {default} | {} |",
                cell(&usage),
                cell(&flag.description)
            );
        }
    }
}

fn render_env(out: &mut String) {
    out.push_str("\n## Environment variables\n\n");
    out.push_str("Each variable below sets the flag it names, for the commands listed.\n\n");
    out.push_str("| Variable | Sets |\n|---|---|\n");
    let mut by_env: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for command in commands() {
        for flag in command.flags {
            if let (Some(env), Some(long)) = (flag.env, flag.long) {
                let subject = if command.global {
                    format!("`{} --{long}` (every command)", command.path)
                } else {
                    format!("`{} --{long}`", command.path)
                };
                by_env.entry(env).or_default().push(subject);
            }
        }
    }
    for (env, subjects) in &by_env {
        let _ = writeln!(out, "| `{env}` | {} |", cell(&subjects.join(", ")));
    }
    out.push_str("\nRead outside the flags:\n\n| Variable | Read by | Meaning |\n|---|---|---|\n");
    for doc in OTHER_ENV {
        let names: Vec<String> = doc.names.iter().map(|name| format!("`{name}`")).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            names.join(", "),
            cell(doc.read_by),
            cell(doc.description)
        );
    }
}

fn render_keys(out: &mut String, docs: &[KeyDoc], defaults: anyhow::Result<BTreeMap<String, toml::Value>>) {
    let defaults = match defaults {
        Ok(defaults) => defaults,
        Err(error) => {
            // Shows up as a difference from the committed file, so the test
            // that compares them names the failure.
            let _ = writeln!(out, "(defaults could not be computed: {error:#})");
            BTreeMap::new()
        }
    };
    out.push_str("| Key | Type | Default | Description |\n|---|---|---|---|\n");
    for doc in docs {
        let default = match (defaults.get(doc.key), doc.absent) {
            (Some(value), _) => format!("`{}`", inline(value)),
            (None, Some(absent)) => absent.to_string(),
            (None, None) => "none".to_string(),
        };
        let mut description = doc.description.to_string();
        if let Some(allowed) = doc.allowed {
            let words: Vec<String> = allowed().split(", ").map(|word| format!("`{word}`")).collect();
            let _ = write!(description, " One of {}.", words.join(", "));
        }
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} |",
            doc.key,
            cell(doc.kind),
            cell(&default),
            cell(&description)
        );
    }
}

/// A value as it would be written on the right of `key = `.
fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::Table(table) => {
            let entries: Vec<String> = table
                .iter()
                .map(|(name, value)| format!("{name} = {}", inline(value)))
                .collect();
            if entries.is_empty() {
                "{}".to_string()
            } else {
                format!("{{ {} }}", entries.join(", "))
            }
        }
        other => other.to_string(),
    }
}

/// Text for one Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Help text on one line (clap keeps the doc comment's line breaks).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_and_its_serve_flags_are_walked() {
        let paths: Vec<String> = commands().into_iter().map(|command| command.path).collect();
        for expected in ["rollcall-server serve", "rollcall token create", "rollcall-agent run"] {
            assert!(
                paths.iter().any(|path| path == expected),
                "{expected} missing: {paths:?}"
            );
        }
        assert!(
            !paths.iter().any(|path| path.contains("config-reference")),
            "hidden commands stay out"
        );
        let serve = flag_env_vars("rollcall-server serve");
        assert!(
            serve.contains("ROLLCALL_LISTEN") && serve.contains("ROLLCALL_LOG_JSON"),
            "{serve:?}"
        );
    }

    #[test]
    fn every_flag_of_every_program_has_its_own_help() {
        let undescribed: Vec<String> = commands()
            .into_iter()
            .flat_map(|command| command.flags)
            .filter(|flag| flag.from_note || flag.description.trim().is_empty())
            .map(|flag| format!("{} {}", flag.command, flag.id))
            .collect();
        assert!(undescribed.is_empty(), "flags without help text: {undescribed:?}");
    }

    #[test]
    fn every_flag_note_still_describes_a_flag() {
        assert_eq!(unused_flag_notes(), Vec::<(&str, &str)>::new());
    }

    #[test]
    fn computed_defaults_match_the_code() {
        let agent = agent_defaults().expect("agent defaults");
        assert_eq!(agent.get("check_interval"), Some(&toml::Value::String("15m".into())));
        assert_eq!(agent.get("spool.max_reports"), Some(&toml::Value::Integer(10_000)));
        let policy = policy_defaults().expect("policy defaults");
        assert_eq!(policy.get("license.warn_days"), Some(&toml::Value::Integer(30)));
    }

    #[test]
    fn free_form_tables_and_arrays_of_tables_flatten_as_documented() {
        let table: toml::Table =
            toml::from_str("[labels]\nsite = \"osaka\"\n[[update_source.expected]]\nsource = \"standard\"\n")
                .expect("toml");
        let docs = [AGENT_KEYS, POLICY_KEYS].concat();
        let keys: Vec<String> = flatten(&table, &docs).into_keys().collect();
        assert_eq!(keys, ["labels", "update_source.expected[].source"]);
    }
}
