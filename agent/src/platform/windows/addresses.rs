//! The host's IP and MAC addresses on Windows, for matching the probe to
//! the Apex One roster when its host name does not match (docs/ROSTER.md,
//! "Matching"): `GetAdaptersAddresses` (iphlpapi), the one Win32 call that
//! lists every adapter with its hardware address and unicast addresses.
//! Kept are the addresses the Linux probe keeps
//! ([`keep_ip`], [`mac_text`]); the loopback adapter is skipped. Best
//! effort: a failed call gives no addresses and hides nothing else.
#![allow(unsafe_code)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rollcall_common::limits::MAX_HOST_ADDRESSES;
use windows_sys::Win32::Foundation::{ERROR_BUFFER_OVERFLOW, NO_ERROR};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_DNS_SERVER, GAA_FLAG_SKIP_MULTICAST, GetAdaptersAddresses,
    IF_TYPE_SOFTWARE_LOOPBACK, IP_ADAPTER_ADDRESSES_LH,
};
use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6, AF_UNSPEC};

use crate::host::addresses::{Addresses, keep_ip, mac_text};

/// Microsoft's advice is to start with 15 KB; the call says how much it
/// needs when that is short, and is asked again, up to this bound.
const FIRST_BUFFER_BYTES: u32 = 16 * 1024;
const MAX_BUFFER_BYTES: u32 = 1024 * 1024;

pub fn read() -> Addresses {
    let Some(buffer) = adapter_list() else {
        return Addresses::default();
    };
    let mut ips: BTreeSet<String> = BTreeSet::new();
    let mut macs: BTreeSet<String> = BTreeSet::new();
    let mut adapter = buffer.as_ptr().cast::<IP_ADAPTER_ADDRESSES_LH>();
    while !adapter.is_null() {
        // SAFETY: `adapter` is the head of, or a `Next` in, the list
        // GetAdaptersAddresses wrote into `buffer` (8-byte aligned, alive
        // until this function returns); the list's pointers stay inside it.
        let current = unsafe { &*adapter };
        if current.IfType != IF_TYPE_SOFTWARE_LOOPBACK {
            let length = usize::try_from(current.PhysicalAddressLength)
                .unwrap_or(0)
                .min(current.PhysicalAddress.len());
            if let Some(mac) = mac_text(&current.PhysicalAddress[..length]) {
                macs.insert(mac);
            }
            let mut unicast = current.FirstUnicastAddress;
            while !unicast.is_null() {
                // SAFETY: a node of the same list, inside the same buffer.
                let address = unsafe { &*unicast };
                let sockaddr = address.Address.lpSockaddr.cast::<u8>().cast_const();
                if let Ok(length) = usize::try_from(address.Address.iSockaddrLength)
                    && !sockaddr.is_null()
                {
                    // SAFETY: the system gives the socket address and its
                    // length in bytes, both inside the buffer.
                    let bytes = unsafe { std::slice::from_raw_parts(sockaddr, length) };
                    if let Some(ip) = ip_of_sockaddr(bytes).filter(|ip| keep_ip(*ip)) {
                        ips.insert(ip.to_string());
                    }
                }
                unicast = address.Next;
            }
        }
        adapter = current.Next;
    }
    Addresses {
        ips: ips.into_iter().take(MAX_HOST_ADDRESSES).collect(),
        macs: macs.into_iter().take(MAX_HOST_ADDRESSES).collect(),
    }
}

/// The adapters, as a buffer of u64 (the structures need 8-byte
/// alignment), or None when there are none or the call fails.
fn adapter_list() -> Option<Vec<u64>> {
    let mut size = FIRST_BUFFER_BYTES;
    for _ in 0..4 {
        let words = usize::try_from(size).ok()?.div_ceil(8);
        let mut buffer = vec![0u64; words];
        // SAFETY: `buffer` is writable for at least `size` bytes and
        // aligned for IP_ADAPTER_ADDRESSES_LH; `size` is in/out.
        let result = unsafe {
            GetAdaptersAddresses(
                u32::from(AF_UNSPEC),
                GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER,
                std::ptr::null(),
                buffer.as_mut_ptr().cast(),
                &mut size,
            )
        };
        match result {
            NO_ERROR => return Some(buffer),
            ERROR_BUFFER_OVERFLOW if size <= MAX_BUFFER_BYTES => continue,
            // ERROR_NO_DATA (no adapter) and real failures alike: nothing.
            _ => return None,
        }
    }
    None
}

/// A SOCKADDR_IN / SOCKADDR_IN6 as bytes: the family (native order) first,
/// the IPv4 address at 4..8, the IPv6 one at 8..24.
fn ip_of_sockaddr(bytes: &[u8]) -> Option<IpAddr> {
    let family = u16::from_ne_bytes([*bytes.first()?, *bytes.get(1)?]);
    if family == AF_INET {
        let octets: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(octets)))
    } else if family == AF_INET6 {
        let octets: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(octets)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_are_read_by_family() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&AF_INET.to_ne_bytes());
        v4[4..8].copy_from_slice(&[10, 0, 2, 15]);
        assert_eq!(ip_of_sockaddr(&v4), Some("10.0.2.15".parse().unwrap()));
        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&AF_INET6.to_ne_bytes());
        v6[8..24].copy_from_slice(&"2001:db8::5".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(ip_of_sockaddr(&v6), Some("2001:db8::5".parse().unwrap()));
        assert_eq!(ip_of_sockaddr(&v4[..6]), None, "too short for its family");
        assert_eq!(ip_of_sockaddr(&[]), None);
        let mut other = v4.clone();
        other[..2].copy_from_slice(&99u16.to_ne_bytes());
        assert_eq!(ip_of_sockaddr(&other), None);
    }

    /// Under Wine the call answers with the Linux host's adapters; what
    /// comes back is bounded and holds no loopback or link-local address.
    #[test]
    fn the_system_lists_addresses_that_name_this_machine() {
        let found = read();
        assert!(found.ips.len() <= MAX_HOST_ADDRESSES && found.macs.len() <= MAX_HOST_ADDRESSES);
        for ip in &found.ips {
            let parsed: IpAddr = ip.parse().unwrap();
            assert!(keep_ip(parsed), "{ip} names no machine");
        }
        for mac in &found.macs {
            assert_eq!(mac.len(), 17, "{mac}");
        }
    }
}
