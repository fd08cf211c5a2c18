//! The product summary and host facts, sent in both hellos and reports.

use rollcall_common::proto;

use super::{Refused, short, text};

pub(super) fn product(product: &proto::ProductSummary) -> Result<(), Refused> {
    for (field, value) in [
        ("product.version", &product.version),
        ("product.update_source", &product.update_source),
        ("product.source_address", &product.source_address),
        ("product.update_agent_address", &product.update_agent_address),
        ("product.update_permission", &product.update_permission),
        ("product.license_expires", &product.license_expires),
        ("product.server_address", &product.server_address),
    ] {
        short(field, value)?;
    }
    text("product.read_error", &product.read_error)
}

pub(super) fn host(host: &proto::HostFacts) -> Result<(), Refused> {
    short("host.os_id", &host.os_id)?;
    short("host.os_version", &host.os_version)?;
    short("host.arch", &host.arch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::{MAX_SHORT, MAX_TEXT};

    #[test]
    fn product_fields_accept_the_limit_and_refuse_one_over() {
        let at_limit = proto::ProductSummary {
            version: "v".repeat(MAX_SHORT),
            read_error: "e".repeat(MAX_TEXT),
            ..Default::default()
        };
        assert!(product(&at_limit).is_ok());
        let long_version = proto::ProductSummary {
            version: "v".repeat(MAX_SHORT + 1),
            ..Default::default()
        };
        assert_eq!(
            product(&long_version),
            Err(Refused(format!("product.version is longer than {MAX_SHORT} bytes")))
        );
        let long_error = proto::ProductSummary {
            read_error: "e".repeat(MAX_TEXT + 1),
            ..Default::default()
        };
        assert_eq!(
            product(&long_error),
            Err(Refused(format!("product.read_error is longer than {MAX_TEXT} bytes")))
        );
    }

    #[test]
    fn host_fields_accept_the_limit_and_refuse_one_over() {
        let at_limit = proto::HostFacts {
            arch: "a".repeat(MAX_SHORT),
            ..Default::default()
        };
        assert!(host(&at_limit).is_ok());
        let over = proto::HostFacts {
            os_id: "o".repeat(MAX_SHORT + 1),
            ..Default::default()
        };
        assert_eq!(
            host(&over),
            Err(Refused(format!("host.os_id is longer than {MAX_SHORT} bytes")))
        );
    }
}
