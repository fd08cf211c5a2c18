//! PROXY protocol v2 on the coordinator's listeners (issue 24 point 2), so
//! that behind a TCP load balancer (haproxy `send-proxy-v2`, a cloud load
//! balancer, Kubernetes with a proxy-protocol annotation) every per-source
//! limit, log line and audit entry sees the endpoint's own address rather
//! than the balancer's, which all endpoints would otherwise share.
//!
//! Opt-in and strict, as the header is a claim anyone can write:
//! - only connections from `--proxy-protocol-from` CIDRs may carry one,
//!   and they must: a trusted address without a header is refused;
//! - a header from any other address is refused (its claim is ignored and
//!   the connection closed), never believed;
//! - `LOCAL` (a balancer's own health check) keeps the balancer's address.
//!
//! The header is parsed by the `ppp` crate; this module only reads it off
//! the socket, bounded in size and time. Spec: haproxy's proxy-protocol.txt.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The v2 signature; v1 headers start with "PROXY ".
const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Fixed part: signature, version/command, family/protocol, length.
const FIXED: usize = 16;
/// Addresses plus what TLVs a balancer adds (its own limit is far below).
const MAX_PAYLOAD: usize = 512;

/// The addresses whose connections carry a PROXY v2 header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyTrust(Vec<IpNet>);

impl ProxyTrust {
    /// `CIDR[,CIDR…]` (a bare address is a /32 or /128); empty: none.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut nets = Vec::new();
        for part in text.split(',').map(str::trim).filter(|part| !part.is_empty()) {
            let net = match part.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => IpNet::from(
                    part.parse::<IpAddr>()
                        .map_err(|_| anyhow::anyhow!("{part:?} is not a CIDR (e.g. 10.0.0.0/8) or an address"))?,
                ),
            };
            nets.push(net.trunc());
        }
        Ok(ProxyTrust(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether the first byte a peer sent starts a PROXY header (v2's
/// signature begins with CR, v1's with "P"); a TLS ClientHello starts with
/// 0x16, so an untrusted peer's header is told apart from one byte.
pub fn starts_a_header(first: u8) -> bool {
    first == SIGNATURE[0] || first == b'P'
}

/// Reads the PROXY v2 header a trusted balancer sends first; returns the
/// client's address (`LOCAL` and unspecified families: `peer` itself).
pub async fn read_header(tcp: &mut TcpStream, peer: SocketAddr, timeout: Duration) -> Result<SocketAddr, &'static str> {
    tokio::time::timeout(timeout, read_header_now(tcp, peer))
        .await
        .map_err(|_| "proxy_header_timeout")?
}

async fn read_header_now(tcp: &mut TcpStream, peer: SocketAddr) -> Result<SocketAddr, &'static str> {
    let mut header = vec![0u8; FIXED];
    tcp.read_exact(&mut header).await.map_err(|_| "proxy_header_missing")?;
    if &header[..12] != SIGNATURE {
        return Err("proxy_header_missing");
    }
    let length = usize::from(u16::from_be_bytes([header[14], header[15]]));
    if length > MAX_PAYLOAD {
        return Err("proxy_header_invalid");
    }
    header.resize(FIXED + length, 0);
    tcp.read_exact(&mut header[FIXED..])
        .await
        .map_err(|_| "proxy_header_invalid")?;
    source_of(&header, peer)
}

/// The client address a complete v2 header names.
fn source_of(header: &[u8], peer: SocketAddr) -> Result<SocketAddr, &'static str> {
    use ppp::v2::{Addresses, Command, Header};
    let parsed = Header::try_from(header).map_err(|_| "proxy_header_invalid")?;
    if parsed.command == Command::Local {
        return Ok(peer);
    }
    Ok(match parsed.addresses {
        Addresses::IPv4(v4) => SocketAddr::from((v4.source_address, v4.source_port)),
        Addresses::IPv6(v6) => SocketAddr::from((v6.source_address, v6.source_port)),
        Addresses::Unspecified | Addresses::Unix(_) => peer,
    })
}

/// A TCP connection that reports the client's address from its PROXY
/// header (or its own peer address without one) to tonic, so
/// `Request::remote_addr` is the endpoint everywhere.
pub struct ClientTcp {
    tcp: TcpStream,
    remote: SocketAddr,
}

impl ClientTcp {
    pub fn new(tcp: TcpStream, remote: SocketAddr) -> Self {
        ClientTcp { tcp, remote }
    }
}

impl Connected for ClientTcp {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        TcpConnectInfo {
            local_addr: self.tcp.local_addr().ok(),
            remote_addr: Some(self.remote),
        }
    }
}

impl AsyncRead for ClientTcp {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ClientTcp {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::{Builder, Command, Protocol, Version};

    fn header(command: Command, source: &str) -> Vec<u8> {
        let source: SocketAddr = source.parse().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let destination: SocketAddr = if source.is_ipv4() {
            "10.0.0.1:7443".parse().unwrap_or(source)
        } else {
            "[fd00::1]:7443".parse().unwrap_or(source)
        };
        Builder::with_addresses(Version::Two | command, Protocol::Stream, (source, destination))
            .build()
            .unwrap_or_default()
    }

    #[test]
    fn trust_is_by_cidr_or_address_and_sees_through_mapped_ipv6() {
        let trust = ProxyTrust::parse("10.0.0.0/8, 192.0.2.7,fd00::/8").expect("parses");
        assert!(trust.trusts("10.1.2.3".parse().expect("ip")));
        assert!(trust.trusts("192.0.2.7".parse().expect("ip")));
        assert!(!trust.trusts("192.0.2.8".parse().expect("ip")));
        assert!(trust.trusts("::ffff:10.9.9.9".parse().expect("ip")));
        assert!(trust.trusts("fd12::1".parse().expect("ip")));
        assert!(ProxyTrust::parse("").expect("empty").is_empty());
        assert!(ProxyTrust::parse("10.0.0.0/33").is_err());
        assert!(ProxyTrust::parse("lb.example").is_err());
    }

    #[test]
    fn the_client_address_comes_from_a_proxy_header() {
        let peer: SocketAddr = "10.0.0.2:5000".parse().expect("addr");
        let v4 = header(Command::Proxy, "198.51.100.7:61000");
        assert_eq!(source_of(&v4, peer), Ok("198.51.100.7:61000".parse().expect("addr")));
        let v6 = header(Command::Proxy, "[2001:db8::7]:61000");
        assert_eq!(source_of(&v6, peer), Ok("[2001:db8::7]:61000".parse().expect("addr")));
        let local = header(Command::Local, "198.51.100.7:61000");
        assert_eq!(
            source_of(&local, peer),
            Ok(peer),
            "a health check keeps the balancer's address"
        );
        assert_eq!(
            source_of(b"\r\n\r\n\0\r\nQUIT\n\x99\x11\0\0", peer),
            Err("proxy_header_invalid")
        );
    }

    #[test]
    fn a_header_is_told_from_tls_by_its_first_byte() {
        assert!(starts_a_header(b'\r'));
        assert!(starts_a_header(b'P'));
        assert!(!starts_a_header(0x16));
        assert_eq!(header(Command::Proxy, "198.51.100.7:1")[..12], SIGNATURE[..]);
    }
}
