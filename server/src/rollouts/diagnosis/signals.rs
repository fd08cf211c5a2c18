//! Signals: what an agent reports about its product beyond the checks
//! (pattern date, last update and its source, the server certificate it
//! trusts, a refused upgrade), read by the coordinator to explain a straggler
//! the checks alone cannot (issue 25; docs/PRODUCT_STATE.md, "Signals").
//!
//! - **patterns arrive, the program does not** (runbook step 2): a pattern
//!   date or last update within `[diagnosis] pattern_window` while the
//!   version is behind and nobody states the console's update privilege
//!   (not the endpoint, not a matching `[[server_facts]]`) is
//!   `update_permission`, *inferred*. A declared privilege always wins: the
//!   `update_permission` check then decides.
//! - **an ActiveUpdate source** (step 3): `update.last_from` naming a host
//!   under `activeupdate.trendmicro.com`, which carries patterns and engines
//!   but never the agent program, is `update_source`.
//! - **an upgrade refused by the endpoint** (step 6): the newest upgrade
//!   log's refusal line is `system_requirements`.
//! - **the wrong server certificate** (step 5): a server certificate hash
//!   that differs from the policy's, or from the fleet's strict majority
//!   when the policy gives none, is `connectivity` (Trend Micro KA-0007320:
//!   such an agent shows online yet receives nothing).
//!
//! A signal read on the endpoint is evidence like a failed check; the
//! inferred one counts only when nothing read explains the straggler. Every
//! signal carries evidence strings naming the values read, as the agent
//! named their places (`Misc.\PatternDate = 20261201`).
//!
//! Pure functions: the engine, the admin API and the report call them with
//! what the store holds, so they agree.

use std::collections::{BTreeMap, HashMap};

use rollcall_common::policy::Policy;
use rollcall_common::proto;

use super::Cause;

/// Hosts (and their subdomains) of Trend Micro's ActiveUpdate service. Its
/// Apex One default is `https://osce14-p.activeupdate.trendmicro.com/activeupdate`
/// on current builds (the server's Updates > Server > Update Source page
/// shows the one in use); any host under this domain is ActiveUpdate.
pub const ACTIVEUPDATE_DOMAINS: [&str; 1] = ["activeupdate.trendmicro.com"];

/// Longest quoted log line in evidence.
pub const MAX_EVIDENCE_LINE: usize = 300;

/// What a signal names, for the report's words (`signal-CODE` in
/// `locales/*.ftl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    PatternsWithoutProgram,
    ActiveUpdateSource,
    UpgradeRefused,
    ServerCertificate,
}

impl SignalKind {
    pub fn code(self) -> &'static str {
        match self {
            SignalKind::PatternsWithoutProgram => "patterns_without_program",
            SignalKind::ActiveUpdateSource => "activeupdate_source",
            SignalKind::UpgradeRefused => "upgrade_refused",
            SignalKind::ServerCertificate => "server_certificate",
        }
    }

    pub fn cause(self) -> Cause {
        match self {
            SignalKind::PatternsWithoutProgram => Cause::UpdatePermission,
            SignalKind::ActiveUpdateSource => Cause::UpdateSource,
            SignalKind::UpgradeRefused => Cause::SystemRequirements,
            SignalKind::ServerCertificate => Cause::Connectivity,
        }
    }
}

/// One signal found on one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub kind: SignalKind,
    /// Concluded from circumstances, not read: weaker than any read cause.
    pub inferred: bool,
    pub evidence: Vec<String>,
}

/// What the signals need beyond the agent itself: the policy's window and
/// certificate, the fleet's certificate majority, the clock and the target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignalContext {
    pub now_ms: i64,
    pub target: String,
    pub pattern_window_ms: i64,
    /// The policy's server certificate hash (lowercase hex), if it gives one.
    pub policy_certificate: Option<String>,
    /// The hash most agents report, with how many do and out of how many,
    /// when it is a strict majority of those reporting one (at least two).
    pub fleet_certificate: Option<(String, usize, usize)>,
}

impl SignalContext {
    /// From the policy and every agent's product summary.
    pub fn new<'a>(
        policy: &Policy,
        target: &str,
        now_ms: i64,
        products: impl IntoIterator<Item = &'a proto::ProductSummary>,
    ) -> SignalContext {
        let window = policy.diagnosis().pattern_window;
        SignalContext {
            now_ms,
            target: target.to_string(),
            pattern_window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            policy_certificate: policy.diagnosis().server_certificate_sha256.clone(),
            fleet_certificate: majority(products),
        }
    }
}

/// The strict majority of reported server certificate hashes.
fn majority<'a>(products: impl IntoIterator<Item = &'a proto::ProductSummary>) -> Option<(String, usize, usize)> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut total = 0;
    for product in products {
        if product.server_certificate_sha256.is_empty() {
            continue;
        }
        total += 1;
        *counts.entry(product.server_certificate_sha256.as_str()).or_default() += 1;
    }
    let (hash, count) = counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))?;
    (total >= 2 && count * 2 > total).then(|| (hash.to_string(), count, total))
}

/// Every signal on an agent behind the target, in runbook order.
pub fn signals(
    product: &proto::ProductSummary,
    labels: &BTreeMap<String, String>,
    policy: &Policy,
    context: &SignalContext,
) -> Vec<Signal> {
    let mut found = Vec::new();
    let activeupdate = is_activeupdate(&product.update_last_from);
    if let Some(evidence) = patterns_without_program(product, labels, policy, context, activeupdate) {
        found.push(Signal {
            kind: SignalKind::PatternsWithoutProgram,
            inferred: true,
            evidence,
        });
    }
    if activeupdate {
        found.push(Signal {
            kind: SignalKind::ActiveUpdateSource,
            inferred: false,
            evidence: vec![
                format!("{} = {}", label(product, "update.last_from"), product.update_last_from),
                "ActiveUpdate delivers patterns and engines, never the agent program or hot fixes".to_string(),
                version_evidence(product, context),
            ],
        });
    }
    if let Some(evidence) = server_certificate(product, context) {
        found.push(Signal {
            kind: SignalKind::ServerCertificate,
            inferred: false,
            evidence,
        });
    }
    if !product.upgrade_refused.trim().is_empty() {
        found.push(Signal {
            kind: SignalKind::UpgradeRefused,
            inferred: false,
            evidence: vec![format!(
                "{}: \"{}\"",
                label(product, "upgrade.refused"),
                escaped(product.upgrade_refused.trim(), MAX_EVIDENCE_LINE)
            )],
        });
    }
    found
}

/// The signal behind `cause` on this agent, if one explains it.
pub fn signal_for(
    cause: Cause,
    product: &proto::ProductSummary,
    labels: &BTreeMap<String, String>,
    policy: &Policy,
    context: &SignalContext,
) -> Option<Signal> {
    signals(product, labels, policy, context)
        .into_iter()
        .find(|signal| signal.kind.cause() == cause)
}

/// Runbook step 2's inference, with its evidence; `None` when it does not apply.
fn patterns_without_program(
    product: &proto::ProductSummary,
    labels: &BTreeMap<String, String>,
    policy: &Policy,
    context: &SignalContext,
    activeupdate: bool,
) -> Option<Vec<String>> {
    // A stated privilege wins: the check decides.
    let declared_on_server = policy
        .server_facts_for(labels)
        .is_some_and(|(_, facts)| facts.update_permission.is_some());
    if !product.update_permission.is_empty() || declared_on_server || activeupdate {
        return None;
    }
    let since = context.now_ms.saturating_sub(context.pattern_window_ms);
    let recent = |at_ms: i64| at_ms >= since && at_ms <= context.now_ms.saturating_add(86_400_000);
    let pattern_ms = pattern_date_ms(&product.pattern_date);
    let update_ms = (product.update_last_at > 0).then(|| product.update_last_at.saturating_mul(1000));
    if !pattern_ms.is_some_and(recent) && !update_ms.is_some_and(recent) {
        return None;
    }
    let mut evidence = Vec::new();
    if !product.pattern_date.is_empty() {
        evidence.push(format!("{} = {}", label(product, "pattern.date"), product.pattern_date));
    }
    if let Some(at_ms) = update_ms {
        evidence.push(format!(
            "{} = {} ({})",
            label(product, "update.last_at"),
            product.update_last_at,
            rollcall_common::timefmt::rfc3339(at_ms)
        ));
    }
    evidence.push(version_evidence(product, context));
    evidence.push(
        "update.permission is not read on the endpoint nor stated by a [[server_facts]] entry: patterns arrive, the \
         program does not, as with the console's update privilege set to pattern files"
            .to_string(),
    );
    Some(evidence)
}

/// The mismatch of the server certificate, naming both hashes.
fn server_certificate(product: &proto::ProductSummary, context: &SignalContext) -> Option<Vec<String>> {
    let held = product.server_certificate_sha256.as_str();
    if held.is_empty() {
        return None;
    }
    let (reference, whose) = match (&context.policy_certificate, &context.fleet_certificate) {
        (Some(policy), _) => (policy.clone(), "policy diagnosis.server_certificate_sha256".to_string()),
        (None, Some((hash, count, total))) => (hash.clone(), format!("fleet majority ({count} of {total} agents)")),
        (None, None) => return None,
    };
    if held.eq_ignore_ascii_case(&reference) {
        return None;
    }
    Some(vec![
        format!("{} SHA-256 = {held}", label(product, "server.certificate_sha256")),
        format!("{whose} = {reference}"),
    ])
}

/// `version = 14.0.11564, target 14.0.12737`, with the place it was read.
fn version_evidence(product: &proto::ProductSummary, context: &SignalContext) -> String {
    let version = if product.version.is_empty() {
        "(unknown)"
    } else {
        product.version.as_str()
    };
    format!("{} = {version}, target {}", label(product, "version"), context.target)
}

/// How the agent named the place of `field`, else the field's own name.
fn label<'a>(product: &'a proto::ProductSummary, field: &'a str) -> &'a str {
    product
        .field_sources
        .get(field)
        .map(String::as_str)
        .filter(|source| !source.is_empty())
        .unwrap_or(field)
}

/// `YYYYMMDD` (or `YYYY-MM-DD`) as the start of that day, UTC.
fn pattern_date_ms(text: &str) -> Option<i64> {
    let compact: String = text.chars().filter(|character| *character != '-').collect();
    let date = time::Date::parse(
        compact.get(..8)?,
        time::macros::format_description!("[year][month][day]"),
    )
    .ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// True when an address or URL names a host of ActiveUpdate.
pub fn is_activeupdate(address: &str) -> bool {
    let host = host_of(address).to_ascii_lowercase();
    !host.is_empty()
        && ACTIVEUPDATE_DOMAINS
            .iter()
            .any(|domain| host == *domain || host.ends_with(&format!(".{domain}")))
}

/// The host of `https://host:port/path`, `host:port` or `host`.
fn host_of(address: &str) -> &str {
    let trimmed = address.trim();
    let without_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    let authority = without_scheme.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    host_port.split(':').next().unwrap_or("")
}

/// Text from an agent made safe for one line of evidence: control
/// characters and double quotes escaped, at most `limit` characters (the
/// probe already escaped control characters; a backslash stays as read).
pub fn escaped(text: &str, limit: usize) -> String {
    let mut out = String::new();
    for (count, character) in text.chars().enumerate() {
        if count >= limit {
            out.push('…');
            break;
        }
        match character {
            '"' => out.push_str("\\\""),
            character if character.is_control() => out.extend(character.escape_default()),
            character => out.push(character),
        }
    }
    out
}
