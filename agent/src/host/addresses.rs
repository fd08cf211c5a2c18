//! The host's own IP and MAC addresses, read under the host root like the
//! other facts, for matching the probe to the Apex One roster when its host
//! name does not match (docs/ROSTER.md, "Matching"):
//!
//! - IPv4: the `/32 host LOCAL` leaves of `proc/net/fib_trie` (the kernel's
//!   own list of local addresses; no `getifaddrs`, so no unsafe code);
//! - IPv6: `proc/net/if_inet6` (32 hex digits per address);
//! - MAC: `sys/class/net/*/address`.
//!
//! Loopback, link-local and all-zero addresses are left out ([`keep_ip`],
//! [`mac_text`]): they name no machine. Best effort: a file that cannot be
//! read gives no addresses and hides nothing else. Windows has no such
//! files: its probe asks the system (`platform::windows::addresses`) and
//! keeps the same ones.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use rollcall_common::files::read_bounded_utf8;
use rollcall_common::limits::MAX_HOST_ADDRESSES;

/// The kernel's tables are small; a bigger one is not read.
const MAX_TABLE_BYTES: u64 = 4 * 1024 * 1024;

/// What the host says its addresses are, each list sorted, at most
/// [`MAX_HOST_ADDRESSES`] long.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    pub ips: Vec<String>,
    pub macs: Vec<String>,
}

pub fn read(host_root: &Path) -> Addresses {
    let mut ips: BTreeSet<String> = BTreeSet::new();
    if let Ok(text) = read_bounded_utf8(&host_root.join("proc/net/fib_trie"), MAX_TABLE_BYTES) {
        ips.extend(local_ipv4(&text).into_iter().map(|ip| ip.to_string()));
    }
    if let Ok(text) = read_bounded_utf8(&host_root.join("proc/net/if_inet6"), MAX_TABLE_BYTES) {
        ips.extend(ipv6(&text).into_iter().map(|ip| ip.to_string()));
    }
    Addresses {
        ips: ips.into_iter().take(MAX_HOST_ADDRESSES).collect(),
        macs: macs(host_root),
    }
}

/// Whether an address names this machine: not loopback, unspecified or
/// link-local (IPv4 169.254/16, which Windows gives a cable-less adapter,
/// and IPv6 fe80::/10 repeat across machines).
pub fn keep_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => !ip.is_loopback() && !ip.is_unspecified() && !ip.is_link_local(),
        IpAddr::V6(ip) => !ip.is_loopback() && !ip.is_unspecified() && (ip.segments()[0] & 0xffc0) != 0xfe80,
    }
}

/// A six-octet (Ethernet-style) hardware address as the roster writes it,
/// `08:00:27:96:86:8e`; anything else, or all zero, is none.
pub fn mac_text(octets: &[u8]) -> Option<String> {
    if octets.len() != 6 || octets.iter().all(|octet| *octet == 0) {
        return None;
    }
    Some(
        octets
            .iter()
            .map(|octet| format!("{octet:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// `fib_trie` lists each local address as a leaf (`|-- 10.0.0.5`) followed
/// by `/32 host LOCAL`; other leaves are routes.
fn local_ipv4(text: &str) -> BTreeSet<Ipv4Addr> {
    let mut found = BTreeSet::new();
    let mut leaf: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(address) = line.strip_prefix("|-- ") {
            leaf = address.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(ip) = leaf.filter(|ip| keep_ip(IpAddr::V4(*ip))) {
                found.insert(ip);
            }
        } else if !line.starts_with('/') {
            leaf = None;
        }
    }
    found
}

/// `if_inet6`: `address ifindex prefix scope flags name`, the address as 32
/// hex digits.
fn ipv6(text: &str) -> BTreeSet<Ipv6Addr> {
    text.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|hex| hex.len() == 32)
        .filter_map(|hex| u128::from_str_radix(hex, 16).ok())
        .map(Ipv6Addr::from)
        .filter(|ip| keep_ip(IpAddr::V6(*ip)))
        .collect()
}

fn macs(host_root: &Path) -> Vec<String> {
    let Ok(interfaces) = std::fs::read_dir(host_root.join("sys/class/net")) else {
        return Vec::new();
    };
    let mut found: BTreeSet<String> = BTreeSet::new();
    for interface in interfaces.flatten() {
        if interface.file_name().to_str() == Some("lo") {
            continue;
        }
        let Ok(text) = read_bounded_utf8(&interface.path().join("address"), 1024) else {
            continue;
        };
        let mac = text.trim().to_ascii_lowercase();
        let digits = mac.chars().filter(char::is_ascii_hexdigit).count();
        // Ethernet-style addresses only (six octets), and not all zero.
        if mac.len() == 17 && digits == 12 && mac.chars().any(|c| c.is_ascii_hexdigit() && c != '0') {
            found.insert(mac);
        }
    }
    found.into_iter().take(MAX_HOST_ADDRESSES).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIB_TRIE: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.0.2.0/24 2 0 2
        +-- 10.0.2.0/28 2 0 2
           |-- 10.0.2.0
              /24 link UNICAST
           |-- 10.0.2.15
              /32 host LOCAL
        |-- 10.0.2.255
           /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
           |-- 10.0.2.15
              /32 host LOCAL
";

    #[test]
    fn local_addresses_come_from_the_kernel_tables_without_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("proc/net")).unwrap();
        std::fs::write(root.join("proc/net/fib_trie"), FIB_TRIE).unwrap();
        std::fs::write(
            root.join("proc/net/if_inet6"),
            "00000000000000000000000000000001 01 80 10 80       lo\n\
             fe800000000000000a0027fffe96868e 02 40 20 80     eth0\n\
             20010db8000000000000000000000005 02 40 00 80     eth0\n",
        )
        .unwrap();
        for (name, mac) in [("lo", "00:00:00:00:00:00"), ("eth0", "08:00:27:96:86:8E"), ("tun0", "")] {
            std::fs::create_dir_all(root.join("sys/class/net").join(name)).unwrap();
            std::fs::write(
                root.join("sys/class/net").join(name).join("address"),
                format!("{mac}\n"),
            )
            .unwrap();
        }
        let found = read(root);
        assert_eq!(found.ips, vec!["10.0.2.15".to_string(), "2001:db8::5".to_string()]);
        assert_eq!(found.macs, vec!["08:00:27:96:86:8e".to_string()]);
        // Nothing there: nothing known, no error.
        assert_eq!(read(&root.join("missing")), Addresses::default());
    }

    #[test]
    fn only_addresses_that_name_a_machine_are_kept() {
        for kept in ["10.0.2.15", "192.168.1.20", "2001:db8::5"] {
            assert!(keep_ip(kept.parse().unwrap()), "{kept}");
        }
        for dropped in [
            "127.0.0.1",
            "0.0.0.0",
            "169.254.10.1",
            "::1",
            "::",
            "fe80::a00:27ff:fe96:868e",
        ] {
            assert!(!keep_ip(dropped.parse().unwrap()), "{dropped}");
        }
        assert_eq!(
            mac_text(&[8, 0, 0x27, 0x96, 0x86, 0x8e]).as_deref(),
            Some("08:00:27:96:86:8e")
        );
        assert_eq!(mac_text(&[0; 6]), None);
        assert_eq!(mac_text(&[1, 2, 3, 4, 5, 6, 7, 8]), None, "not six octets");
        assert_eq!(mac_text(&[]), None);
    }
}
