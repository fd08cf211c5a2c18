//! The hello that opens an agent's stream.

use rollcall_common::proto;

use super::facts::{host, product};
use super::{Refused, hostname, labels, short};

/// A hello that passed the edge checks: hostname 1 to [`MAX_HOSTNAME`]
/// bytes, a short agent version, valid labels, bounded product and host
/// facts. Read through `Deref`; built only by `TryFrom`.
#[derive(Debug, Clone)]
pub struct ValidHello(proto::Hello);

impl ValidHello {
    pub fn into_inner(self) -> proto::Hello {
        self.0
    }
}

impl std::ops::Deref for ValidHello {
    type Target = proto::Hello;

    fn deref(&self) -> &proto::Hello {
        &self.0
    }
}

impl TryFrom<proto::Hello> for ValidHello {
    type Error = Refused;

    fn try_from(mut hello: proto::Hello) -> Result<Self, Refused> {
        hostname(&hello.hostname)?;
        short("agent_version", &hello.agent_version)?;
        labels::check(hello.labels.iter())?;
        super::numbers::known::<proto::Role>("role", hello.role)?;
        super::numbers::at_most("policy_version", hello.policy_version, super::MAX_POLICY_VERSION)?;
        if let Some(product_summary) = &mut hello.product {
            product(product_summary)?;
        }
        if let Some(host_facts) = &hello.host {
            host(host_facts)?;
        }
        Ok(ValidHello(hello))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::inbound::{MAX_HOSTNAME, MAX_LABELS, MAX_SHORT};

    fn hello(hostname: &str) -> proto::Hello {
        proto::Hello {
            hostname: hostname.to_string(),
            agent_version: "1.0.0".into(),
            ..Default::default()
        }
    }

    #[test]
    fn hostname_accepts_the_limit_and_refuses_one_over_or_empty() {
        assert!(ValidHello::try_from(hello(&"h".repeat(MAX_HOSTNAME))).is_ok());
        let refused = Refused("hostname must be 1-253 bytes".into());
        assert_eq!(
            ValidHello::try_from(hello(&"h".repeat(MAX_HOSTNAME + 1))).err(),
            Some(refused.clone())
        );
        assert_eq!(ValidHello::try_from(hello("")).err(), Some(refused));
    }

    #[test]
    fn agent_version_accepts_the_limit_and_refuses_one_over() {
        let mut at_limit = hello("web-1");
        at_limit.agent_version = "v".repeat(MAX_SHORT);
        assert!(ValidHello::try_from(at_limit).is_ok());
        let mut over = hello("web-1");
        over.agent_version = "v".repeat(MAX_SHORT + 1);
        assert_eq!(
            ValidHello::try_from(over).err(),
            Some(Refused(format!("agent_version is longer than {MAX_SHORT} bytes")))
        );
    }

    #[test]
    fn labels_product_and_host_are_checked() {
        let mut labels = hello("web-1");
        labels.labels = (0..=MAX_LABELS).map(|i| (format!("k{i}"), "v".into())).collect();
        assert_eq!(
            ValidHello::try_from(labels).err(),
            Some(Refused(format!("more than {MAX_LABELS} labels")))
        );
        let mut product = hello("web-1");
        product.product = Some(proto::ProductSummary {
            version: "v".repeat(MAX_SHORT + 1),
            ..Default::default()
        });
        assert!(ValidHello::try_from(product).is_err());
        let mut host = hello("web-1");
        host.host = Some(proto::HostFacts {
            arch: "a".repeat(MAX_SHORT + 1),
            ..Default::default()
        });
        assert!(ValidHello::try_from(host).is_err());
    }
}
