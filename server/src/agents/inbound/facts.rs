//! The product summary and host facts, sent in both hellos and reports.

use rollcall_common::limits::{MAX_HOST_ADDRESS_LEN, MAX_HOST_ADDRESSES};
use rollcall_common::proto;

use super::{Refused, short, text};

pub(super) fn product(product: &mut proto::ProductSummary) -> Result<(), Refused> {
    for (field, value) in [
        ("product.version", &product.version),
        ("product.update_source", &product.update_source),
        ("product.source_address", &product.source_address),
        ("product.update_agent_address", &product.update_agent_address),
        ("product.update_permission", &product.update_permission),
        ("product.license_expires", &product.license_expires),
        ("product.server_address", &product.server_address),
        ("product.pattern_version", &product.pattern_version),
        ("product.pattern_date", &product.pattern_date),
        ("product.update_last_from", &product.update_last_from),
        ("product.server_certificate_sha256", &product.server_certificate_sha256),
        ("product.restart_pending", &product.restart_pending),
        ("product.adapter", &product.adapter),
    ] {
        short(field, value)?;
    }
    super::numbers::known::<proto::Role>("product.role", product.role)?;
    // Unix seconds; 0 is unknown.
    super::numbers::time_ms("product.update_last_at", product.update_last_at.saturating_mul(1000))?;
    text("product.upgrade_refused", &mut product.upgrade_refused)?;
    if product.field_sources.len() > MAX_FIELD_SOURCES {
        return Err(Refused(format!(
            "product.field_sources has more than {MAX_FIELD_SOURCES} entries"
        )));
    }
    for (field, source) in &product.field_sources {
        short("product.field_sources key", field)?;
        short("product.field_sources value", source)?;
    }
    text("product.read_error", &mut product.read_error)
}

/// Most `field_sources` entries accepted (the probe sends at most this many).
pub(super) const MAX_FIELD_SOURCES: usize = rollcall_common::product::MAX_FIELD_SOURCES;

pub(super) fn host(host: &proto::HostFacts) -> Result<(), Refused> {
    short("host.os_id", &host.os_id)?;
    short("host.os_version", &host.os_version)?;
    short("host.arch", &host.arch)?;
    addresses("host.ip_addresses", &host.ip_addresses)?;
    addresses("host.mac_addresses", &host.mac_addresses)?;
    super::numbers::host_sizes(host)
}

/// A list of addresses: at most [`MAX_HOST_ADDRESSES`], each at most
/// [`MAX_HOST_ADDRESS_LEN`] bytes without control characters (the probe
/// bounds its lists the same way before it sends them).
fn addresses(field: &str, list: &[String]) -> Result<(), Refused> {
    if list.len() > MAX_HOST_ADDRESSES {
        return Err(Refused(format!("{field} has more than {MAX_HOST_ADDRESSES} entries")));
    }
    for address in list {
        if address.len() > MAX_HOST_ADDRESS_LEN {
            return Err(Refused(format!(
                "{field} holds an address longer than {MAX_HOST_ADDRESS_LEN} bytes"
            )));
        }
        super::no_steering(field, address)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::inbound::{MAX_SHORT, MAX_TEXT};

    /// Sets one string field of a product summary.
    type SetProduct = fn(&mut proto::ProductSummary, String);
    /// Sets one string field of the host facts.
    type SetHost = fn(&mut proto::HostFacts, String);

    #[test]
    fn product_fields_accept_the_limit_and_refuse_one_over() {
        let fields: [(&str, usize, SetProduct); 15] = [
            ("product.version", MAX_SHORT, |p, v| p.version = v),
            ("product.update_source", MAX_SHORT, |p, v| p.update_source = v),
            ("product.source_address", MAX_SHORT, |p, v| p.source_address = v),
            ("product.update_agent_address", MAX_SHORT, |p, v| {
                p.update_agent_address = v
            }),
            ("product.update_permission", MAX_SHORT, |p, v| p.update_permission = v),
            ("product.license_expires", MAX_SHORT, |p, v| p.license_expires = v),
            ("product.server_address", MAX_SHORT, |p, v| p.server_address = v),
            ("product.read_error", MAX_TEXT, |p, v| p.read_error = v),
            ("product.pattern_version", MAX_SHORT, |p, v| p.pattern_version = v),
            ("product.pattern_date", MAX_SHORT, |p, v| p.pattern_date = v),
            ("product.update_last_from", MAX_SHORT, |p, v| p.update_last_from = v),
            ("product.server_certificate_sha256", MAX_SHORT, |p, v| {
                p.server_certificate_sha256 = v
            }),
            ("product.restart_pending", MAX_SHORT, |p, v| p.restart_pending = v),
            ("product.adapter", MAX_SHORT, |p, v| p.adapter = v),
            ("product.upgrade_refused", MAX_TEXT, |p, v| p.upgrade_refused = v),
        ];
        for (field, limit, set) in fields {
            let mut summary = proto::ProductSummary::default();
            set(&mut summary, "x".repeat(limit));
            assert!(product(&mut summary).is_ok(), "{field}");
            set(&mut summary, "x".repeat(limit + 1));
            assert_eq!(
                product(&mut summary),
                Err(Refused(format!("{field} is longer than {limit} bytes")))
            );
        }
    }

    #[test]
    fn field_sources_are_bounded_in_count_and_length() {
        let mut summary = proto::ProductSummary::default();
        for index in 0..MAX_FIELD_SOURCES {
            summary
                .field_sources
                .insert(format!("f{index}"), "Misc.\\PatternDate".into());
        }
        assert!(product(&mut summary).is_ok());
        summary.field_sources.insert("one.more".into(), "x".into());
        assert!(product(&mut summary).is_err());
        let mut summary = proto::ProductSummary::default();
        summary
            .field_sources
            .insert("pattern.date".into(), "x".repeat(MAX_SHORT + 1));
        assert!(product(&mut summary).is_err());
    }

    #[test]
    fn host_fields_accept_the_limit_and_refuse_one_over() {
        let fields: [(&str, SetHost); 3] = [
            ("host.os_id", |h, v| h.os_id = v),
            ("host.os_version", |h, v| h.os_version = v),
            ("host.arch", |h, v| h.arch = v),
        ];
        for (field, set) in fields {
            let mut facts = proto::HostFacts::default();
            set(&mut facts, "x".repeat(MAX_SHORT));
            assert!(host(&facts).is_ok(), "{field}");
            set(&mut facts, "x".repeat(MAX_SHORT + 1));
            assert_eq!(
                host(&facts),
                Err(Refused(format!("{field} is longer than {MAX_SHORT} bytes")))
            );
        }
    }

    #[test]
    fn host_addresses_are_bounded_in_count_and_length() {
        type List = fn(&mut proto::HostFacts) -> &mut Vec<String>;
        let fields: [(&str, List); 2] = [
            ("host.ip_addresses", |h| &mut h.ip_addresses),
            ("host.mac_addresses", |h| &mut h.mac_addresses),
        ];
        for (field, list) in fields {
            let mut facts = proto::HostFacts::default();
            *list(&mut facts) = vec!["x".repeat(MAX_HOST_ADDRESS_LEN); MAX_HOST_ADDRESSES];
            assert!(host(&facts).is_ok(), "{field}");
            list(&mut facts).push("10.0.0.1".into());
            assert_eq!(
                host(&facts),
                Err(Refused(format!("{field} has more than {MAX_HOST_ADDRESSES} entries")))
            );
            *list(&mut facts) = vec!["x".repeat(MAX_HOST_ADDRESS_LEN + 1)];
            assert_eq!(
                host(&facts),
                Err(Refused(format!(
                    "{field} holds an address longer than {MAX_HOST_ADDRESS_LEN} bytes"
                )))
            );
            *list(&mut facts) = vec!["10.0.0.1\u{1b}[2J".into()];
            assert!(host(&facts).is_err(), "{field}");
        }
    }
}
