//! Bounding a report to the coordinator's limits before it is spooled.

use crate::printable::is_steering;
use crate::proto;

use super::{MAX_CHECKS, MAX_EVIDENCE, MAX_HOST_ADDRESS_LEN, MAX_HOST_ADDRESSES, MAX_SHORT, MAX_TEXT};

/// What a cut value ends with, so a reader sees it was cut.
pub const TRUNCATED_MARK: &str = "…[truncated]";

/// Cuts `value` to at most `max` bytes on a character boundary, ending in
/// [`TRUNCATED_MARK`]; true when it cut.
fn cut(value: &mut String, max: usize) -> bool {
    if value.len() <= max {
        return false;
    }
    let mut at = max.saturating_sub(TRUNCATED_MARK.len());
    while !value.is_char_boundary(at) {
        at -= 1;
    }
    value.truncate(at);
    value.push_str(TRUNCATED_MARK);
    true
}

/// A name: steering characters (which the coordinator refuses in names)
/// replaced by U+FFFD, then cut to [`MAX_SHORT`].
fn name(value: &mut String) -> bool {
    let mut changed = false;
    if value.chars().any(is_steering) {
        *value = value
            .chars()
            .map(|c| if is_steering(c) { '\u{fffd}' } else { c })
            .collect();
        changed = true;
    }
    cut(value, MAX_SHORT) || changed
}

fn text(value: &mut String) -> bool {
    cut(value, MAX_TEXT)
}

/// A map of names to values: keys the coordinator would refuse (too long,
/// or holding a control character) dropped, at most `max` entries kept;
/// true when anything was dropped. The values are bounded by the caller.
fn keys(map: &mut std::collections::HashMap<String, String>, max: usize) -> bool {
    let refused = |key: &String| key.len() > MAX_SHORT || key.chars().any(is_steering);
    if map.len() <= max && !map.keys().any(refused) {
        return false;
    }
    *map = std::mem::take(map)
        .into_iter()
        .filter(|(key, _)| !refused(key))
        .take(max)
        .collect();
    true
}

fn host(host: &mut proto::HostFacts) {
    for field in [&mut host.os_id, &mut host.os_version, &mut host.arch] {
        name(field);
    }
    // An address is whole or useless: one the edge would refuse is dropped,
    // not cut, and at most MAX_HOST_ADDRESSES are kept.
    for list in [&mut host.ip_addresses, &mut host.mac_addresses] {
        list.retain(|address| {
            !address.is_empty() && address.len() <= MAX_HOST_ADDRESS_LEN && !address.chars().any(is_steering)
        });
        list.truncate(MAX_HOST_ADDRESSES);
    }
}

fn product(product: &mut proto::ProductSummary) {
    for field in [
        &mut product.version,
        &mut product.update_source,
        &mut product.source_address,
        &mut product.update_agent_address,
        &mut product.update_permission,
        &mut product.license_expires,
        &mut product.server_address,
        &mut product.pattern_version,
        &mut product.pattern_date,
        &mut product.update_last_from,
        &mut product.server_certificate_sha256,
        &mut product.restart_pending,
        &mut product.adapter,
    ] {
        name(field);
    }
    text(&mut product.read_error);
    text(&mut product.upgrade_refused);
    // Which source each field came from: bounded like the edge bounds it.
    keys(&mut product.field_sources, crate::product::MAX_FIELD_SOURCES);
    for value in product.field_sources.values_mut() {
        name(value);
    }
}

/// Bounds the product and host facts a hello carries (the same facts a
/// report does) to the coordinator's limits. The hostname and labels come
/// from the agent's own config, which is checked when it is loaded.
pub fn bound_hello(hello: &mut proto::Hello) {
    name(&mut hello.agent_version);
    if let Some(summary) = &mut hello.product {
        product(summary);
    }
    if let Some(facts) = &mut hello.host {
        host(facts);
    }
}

/// Bounds every field of `report` to the limits the coordinator checks
/// (string lengths, names without control characters, at most
/// [`MAX_CHECKS`] checks of at most [`MAX_EVIDENCE`] evidence entries and
/// parameters). A check that had anything cut carries `truncated = true`;
/// a cut string ends in [`TRUNCATED_MARK`]. Numbers are the probe's own
/// and already in range.
pub fn bound_report(report: &mut proto::Report) {
    name(&mut report.command_id);
    report.checks.truncate(MAX_CHECKS);
    for check in &mut report.checks {
        let mut truncated = false;
        truncated |= name(&mut check.name);
        truncated |= name(&mut check.code);
        truncated |= text(&mut check.message);
        truncated |= text(&mut check.remediation);
        if check.evidence.len() > MAX_EVIDENCE {
            check.evidence.truncate(MAX_EVIDENCE);
            truncated = true;
        }
        for evidence in &mut check.evidence {
            truncated |= name(&mut evidence.key);
            truncated |= text(&mut evidence.value);
        }
        truncated |= keys(&mut check.params, MAX_EVIDENCE);
        for value in check.params.values_mut() {
            truncated |= text(value);
        }
        check.truncated |= truncated;
    }
    if let Some(summary) = &mut report.product {
        product(summary);
    }
    if let Some(facts) = &mut report.host {
        host(facts);
    }
    if let Some(outcome) = &mut report.update_now {
        text(&mut outcome.output_tail);
        text(&mut outcome.error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_long_fields_are_cut_with_a_mark_and_the_check_flagged() {
        let mut report = proto::Report {
            product: Some(proto::ProductSummary {
                version: "14.0.".to_string() + &"9".repeat(5000),
                ..Default::default()
            }),
            checks: vec![
                proto::CheckResult {
                    name: "version".into(),
                    message: "大".repeat(3000),
                    evidence: vec![proto::Evidence::default(); MAX_EVIDENCE + 5],
                    ..Default::default()
                },
                proto::CheckResult {
                    name: "license".into(),
                    message: "fine".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        bound_report(&mut report);
        let version = &report.product.as_ref().unwrap().version;
        assert!(version.len() <= MAX_SHORT && version.ends_with(TRUNCATED_MARK));
        let first = &report.checks[0];
        assert!(first.truncated);
        assert!(first.message.len() <= MAX_TEXT && first.message.ends_with(TRUNCATED_MARK));
        assert_eq!(first.evidence.len(), MAX_EVIDENCE);
        assert!(!report.checks[1].truncated, "an untouched check is not flagged");
    }

    #[test]
    fn names_lose_their_control_characters_and_text_keeps_its_own() {
        let mut report = proto::Report {
            host: Some(proto::HostFacts {
                os_version: "10\u{1b}[31m".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        bound_report(&mut report);
        assert_eq!(report.host.unwrap().os_version, "10\u{fffd}[31m");
    }

    #[test]
    fn host_addresses_are_bounded_in_count_and_an_over_long_one_dropped() {
        let mut ips: Vec<String> = (0..MAX_HOST_ADDRESSES + 3).map(|at| format!("10.0.0.{at}")).collect();
        ips.insert(1, "f".repeat(MAX_HOST_ADDRESS_LEN + 1));
        let mut report = proto::Report {
            host: Some(proto::HostFacts {
                ip_addresses: ips,
                mac_addresses: vec!["08:00:27:96:86:8e".into(), "08:00\u{1b}".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        bound_report(&mut report);
        let host = report.host.unwrap();
        assert_eq!(host.ip_addresses.len(), MAX_HOST_ADDRESSES);
        assert_eq!(host.ip_addresses[1], "10.0.0.1");
        assert_eq!(host.mac_addresses, vec!["08:00:27:96:86:8e".to_string()]);
    }
}
