//! The words a person reads for the codes that travel on the wire: a
//! runbook step, a cause, a member state, a straggler's severity, a role, a
//! check and its outcome. Every tool (the CLI, the report, the dashboard,
//! `rollcall-agent check`) says them through here, from the catalogue, so
//! no tool spells them itself (`vocabulary_tests.rs` walks every code and
//! scans the sources for the English outside the catalogue).

use crate::cause::{Cause, NO_STEP};
use crate::i18n::Catalog;
use crate::member_state::MemberState;

/// A runbook step's title; the steps a cause may lack say "no runbook step".
pub fn step(catalog: &Catalog, step: u32) -> String {
    if step == NO_STEP || step > 8 {
        catalog.tr("step-none")
    } else {
        catalog.tr(&format!("step-{step}"))
    }
}

/// A cause code's words; a code this build does not know stays as sent.
pub fn cause(catalog: &Catalog, code: &str) -> String {
    if Cause::from_code(code).is_some() || code == "no_probe" {
        catalog.tr(&format!("cause-{code}"))
    } else {
        code.to_string()
    }
}

/// What to do about a cause; empty for a code this build does not know.
pub fn remediation(catalog: &Catalog, code: &str) -> String {
    match Cause::from_code(code) {
        Some(known) => catalog.tr(&format!("remediation-{}", known.code())),
        // The roster's endpoints without a probe (docs/ROSTER.md).
        None if code == "no_probe" => catalog.tr("cause-no_probe-remediation"),
        None => String::new(),
    }
}

/// What to do about a check that did not pass: the catalogue's remediation
/// of the cause the check names, or of the version check (the runbook's
/// preamble); the probe's own text only for a check this build does not know.
pub fn check_remediation(catalog: &Catalog, check: &str, probe_text: &str) -> String {
    match (Cause::of_check(check), check) {
        (Some(cause), _) => remediation(catalog, cause.code()),
        (None, "version") => catalog.tr("remediation-version-behind"),
        _ => probe_text.to_string(),
    }
}

/// A member state (its transition word: `straggler_soft`, …).
pub fn state(catalog: &Catalog, state: MemberState) -> String {
    catalog.tr(&format!("state-{}", state.word()))
}

/// A member state given by its transition word or a straggler's severity
/// (`soft`, `hard`, as JSON carries them); unknown words stay as sent.
pub fn state_word(catalog: &Catalog, word: &str) -> String {
    if let Some(known) = MemberState::from_word(word) {
        return state(catalog, known);
    }
    match word {
        "soft" | "hard" => catalog.tr(&format!("severity-{word}")),
        "pending" | "completed" | "straggler" | "awaiting_restart" => catalog.tr(&format!("state-{word}")),
        other => other.to_string(),
    }
}

/// A straggler's severity (`soft` or `hard`).
pub fn severity(catalog: &Catalog, hard: bool) -> String {
    catalog.tr(&format!("severity-{}", crate::member_state::severity_word(hard)))
}

/// A role by its wire value.
pub fn role(catalog: &Catalog, role: i32) -> String {
    catalog.tr(&format!("role-{}", crate::proto::role_name(role)))
}

/// A role by its word (`endpoint`, `update_agent`), as JSON carries it.
pub fn role_word(catalog: &Catalog, word: &str) -> String {
    match word {
        "endpoint" | "update_agent" | "unknown" => catalog.tr(&format!("role-{word}")),
        other => other.to_string(),
    }
}

/// A check's name.
pub fn check(catalog: &Catalog, name: &str) -> String {
    if crate::checks::ALL.contains(&name) {
        catalog.tr(&format!("check-{name}"))
    } else {
        name.to_string()
    }
}

/// A check outcome by its wire value.
pub fn status(catalog: &Catalog, status: i32) -> String {
    status_word(catalog, crate::proto::status_word(status))
}

/// A check outcome by its word (`pass`, `warn`, `fail`, `error`).
pub fn status_word(catalog: &Catalog, word: &str) -> String {
    match word {
        "pass" | "warn" | "fail" | "error" => catalog.tr(&format!("status-{word}")),
        _ => catalog.tr("status-unspecified"),
    }
}

/// Whether an agent is reachable: `online`, `offline`, `disconnected`, `revoked`.
pub fn presence(catalog: &Catalog, word: &str) -> String {
    catalog.tr(&format!("presence-{word}"))
}

/// Yes or no.
pub fn yes_no(catalog: &Catalog, value: bool) -> String {
    catalog.tr(if value { "word-yes" } else { "word-no" })
}

/// A report attribute (`check:license`, `label:site`, `os`, …) and its
/// value in words: checks and their outcomes, roles and labels are said by
/// the catalogue, other values (versions, addresses) are data.
pub fn attribute(catalog: &Catalog, attribute: &str, value: &str) -> (String, String) {
    if let Some(name) = attribute.strip_prefix("check:") {
        return (check(catalog, name), status_word(catalog, value));
    }
    if let Some(key) = attribute.strip_prefix("label:") {
        return (
            catalog.tr_args("attribute-label", &[("key", key.to_string())]),
            value.to_string(),
        );
    }
    let key = format!("attribute-{attribute}");
    let name = if catalog.has(&key) {
        catalog.tr(&key)
    } else {
        attribute.to_string()
    };
    let value = match attribute {
        "role" => role_word(catalog, value),
        "online" => yes_no(catalog, value == "true"),
        "update_permission" if catalog.has(&format!("value-permission-{value}")) => {
            catalog.tr(&format!("value-permission-{value}"))
        }
        "update_source" if catalog.has(&format!("value-source-{value}")) => {
            catalog.tr(&format!("value-source-{value}"))
        }
        _ => value.to_string(),
    };
    (name, value)
}

/// An evidence item's key and value as a person reads them: known keys and
/// the probe's fixed phrases from the catalogue (`evidence-KEY`,
/// `evidence-value-…`), the rest (values the probe read) as data. `None`
/// for the value when it is data to quote as it is.
pub fn evidence(catalog: &Catalog, key: &str, value: &str) -> (String, Option<String>) {
    let key_text = {
        let id = format!("evidence-{}", key.replace('.', "-"));
        if catalog.has(&id) {
            catalog.tr(&id)
        } else {
            key.to_string()
        }
    };
    let phrase = match value {
        "endpoint product state" => Some("evidence-value-endpoint"),
        "(the product server, probed once)" => Some("evidence-value-server-probed-once"),
        "(standard: the product server)" => Some("evidence-value-standard-server"),
        "true" => Some("word-yes"),
        "false" => Some("word-no"),
        "standard" | "custom" if key == "source" => {
            return (key_text, Some(catalog.tr(&format!("value-source-{value}"))));
        }
        _ => None,
    };
    (key_text, phrase.map(|id| catalog.tr(id)))
}

/// A probe's clock skew: `+1m05s ahead` / `-3.000s behind` / `in step` in
/// English (the form rollcall always printed), `1分5秒 進んでいる` in Japanese.
pub fn clock(catalog: &Catalog, skew_ms: i64) -> String {
    if catalog.lang() == crate::i18n::Lang::En {
        return crate::clock_skew::describe(skew_ms);
    }
    let amount = crate::locale_fmt::duration(catalog.lang(), skew_ms);
    match skew_ms.signum() {
        0 => catalog.tr("word-clock-in-step"),
        1 => catalog.tr_args("word-clock-ahead", &[("amount", amount)]),
        _ => catalog.tr_args("word-clock-behind", &[("amount", amount)]),
    }
}
