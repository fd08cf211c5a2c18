//! Coordinator URLs: `https://host:port`, nothing else.

use anyhow::{Context, bail};

/// A parsed coordinator address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorAddr {
    /// Host name or IP literal (without brackets), used for TLS server-name checks.
    pub host: String,
    pub port: u16,
}

impl CoordinatorAddr {
    /// `host:port` for dialing (IPv6 literals bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Parses `https://host[:port]` (default port 7443).
pub fn parse_coordinator_url(url: &str) -> anyhow::Result<CoordinatorAddr> {
    let uri: http::Uri = url.parse().with_context(|| format!("{url:?} is not a URL"))?;
    if uri.scheme_str() != Some("https") {
        bail!("{url:?}: the scheme must be https (rollcall always uses mutual TLS)");
    }
    let Some(authority) = uri.authority() else {
        bail!("{url:?} has no host");
    };
    if uri.path() != "/" && !uri.path().is_empty() {
        bail!("{url:?}: a coordinator URL has no path");
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("{url:?} has no host");
    }
    Ok(CoordinatorAddr {
        host: host.to_string(),
        port: authority.port_u16().unwrap_or(DEFAULT_PORT),
    })
}

/// The coordinator's default port.
pub const DEFAULT_PORT: u16 = 7443;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_and_port() {
        let addr = parse_coordinator_url("https://127.0.0.1:9000").expect("parse");
        assert_eq!(addr.host, "127.0.0.1");
        assert_eq!(addr.port, 9000);
        let addr = parse_coordinator_url("https://[::1]").expect("parse");
        assert_eq!(addr.authority(), "[::1]:7443");
    }

    #[test]
    fn refuses_plain_http_and_paths() {
        assert!(parse_coordinator_url("http://127.0.0.1:9000").is_err());
        assert!(parse_coordinator_url("https://host:1/x").is_err());
        assert!(parse_coordinator_url("not a url").is_err());
    }
}
