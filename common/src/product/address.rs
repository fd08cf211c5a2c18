//! Addresses of the product server and update sources, as the product and the
//! policy write them: `host:port` (spoken to over TLS), or a URL
//! `https://host[:port][/path]` / `http://host[:port][/path]`, because an
//! update agent or custom source may serve plain HTTP.

use std::fmt;

/// A parsed service address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAddress {
    /// Host name or IP literal, lowercase, without brackets.
    pub host: String,
    pub port: u16,
    /// Whether the service speaks TLS (`host:port` and `https://` do).
    pub tls: bool,
}

/// Why an address could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not host:port or an http(s) URL: {reason}")]
pub struct AddressError {
    pub input: String,
    pub reason: &'static str,
}

impl ServiceAddress {
    pub fn parse(input: &str) -> Result<ServiceAddress, AddressError> {
        let error = |reason| AddressError {
            input: input.to_string(),
            reason,
        };
        let trimmed = input.trim();
        let lowercase = trimmed.to_ascii_lowercase();
        let (rest, tls, default_port) = if let Some(rest) = lowercase.strip_prefix("https://") {
            (rest, true, Some(443))
        } else if let Some(rest) = lowercase.strip_prefix("http://") {
            (rest, false, Some(80))
        } else if lowercase.contains("://") {
            return Err(error("the only schemes are http and https"));
        } else {
            (lowercase.as_str(), true, None)
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(error("user names are not allowed"));
        }
        let (host, port_text) = split_host_port(authority).ok_or_else(|| error("bad host"))?;
        if host.is_empty() {
            return Err(error("the host is empty"));
        }
        if host.chars().any(|character| character.is_whitespace()) {
            return Err(error("the host contains white space"));
        }
        let port = match (port_text, default_port) {
            (Some(text), _) => text
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| error("the port is not a number from 1 to 65535"))?,
            (None, Some(port)) => port,
            (None, None) => return Err(error("the port is missing")),
        };
        Ok(ServiceAddress {
            host: host.to_string(),
            port,
            tls,
        })
    }

    /// `host:port` for dialing (IPv6 literals bracketed).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ServiceAddress {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tls {
            formatter.write_str(&self.authority())
        } else {
            write!(formatter, "http://{}", self.authority())
        }
    }
}

/// Splits `host[:port]` or `[v6][:port]`; `None` when brackets are unbalanced.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 literal has several colons and no port.
        Some((host, _)) if host.contains(':') => None,
        Some((host, port)) => Some((host, Some(port))),
        None => Some((authority, None)),
    }
}

/// True when two addresses name the same service. Unparsable ones compare as
/// trimmed, case-insensitive text, so a typo still reads as "different".
pub fn same_address(left: &str, right: &str) -> bool {
    match (ServiceAddress::parse(left), ServiceAddress::parse(right)) {
        (Ok(left), Ok(right)) => left == right,
        _ => left.trim().eq_ignore_ascii_case(right.trim()),
    }
}

/// The key that links a client to its update agent: `host:port` with the
/// host lowercased, the scheme, user-visible path and trailing slash dropped,
/// and the scheme's default port written out (`http` 80, `https` 443; a bare
/// `host:port` must name its port). Both sides — the update agent's own
/// `address` and a client's `source_address` — go through this one function,
/// so `http://UA-1.example:8080/` and `ua-1.example:8080` are one update agent.
/// The scheme is ignored on purpose: the product writes the same update agent
/// with or without it, and a client cannot pull from two services on one port.
/// Unparsable text gives its trimmed, lowercased self without trailing
/// slashes, so it still links only to the same spelling.
pub fn address_key(input: &str) -> String {
    match ServiceAddress::parse(input) {
        Ok(address) => address.authority(),
        Err(_) => input.trim().trim_end_matches('/').to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(input: &str) -> ServiceAddress {
        ServiceAddress::parse(input).expect(input)
    }

    #[test]
    fn host_port_is_tls() {
        let address = parsed(" UA-Osaka-01.example:8080 ");
        assert_eq!(address.host, "ua-osaka-01.example");
        assert_eq!(address.port, 8080);
        assert!(address.tls);
        assert_eq!(address.to_string(), "ua-osaka-01.example:8080");
    }

    #[test]
    fn urls_give_scheme_and_default_port() {
        let address = parsed("http://ua.example/officescan/download");
        assert_eq!((address.port, address.tls), (80, false));
        assert_eq!(address.to_string(), "http://ua.example:80");
        let address = parsed("https://[::1]:4343/x");
        assert_eq!((address.host.as_str(), address.port, address.tls), ("::1", 4343, true));
        assert_eq!(address.authority(), "[::1]:4343");
    }

    #[test]
    fn bad_addresses_are_refused_with_the_input() {
        for bad in [
            "server.example",
            ":443",
            "server:0",
            "server:99999",
            "server:https",
            "ftp://server:21",
            "https://user@server",
            "[::1",
            "::1",
            "a b:1",
            "",
        ] {
            let error = ServiceAddress::parse(bad).expect_err(bad);
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
    }

    #[test]
    fn sameness_ignores_case_and_spelling_of_the_default_port() {
        assert!(same_address("UA.example:8080", "ua.example:8080"));
        assert!(same_address("https://server.example", "server.example:443"));
        assert!(!same_address("http://ua.example:8080", "ua.example:8080"));
        assert!(!same_address("ua.example:8080", "ua.example:8081"));
        assert!(same_address("Not An Address", "not an address"));
    }

    #[test]
    fn address_keys_ignore_case_scheme_default_port_and_path() {
        let key = "ua-1.example:8080";
        for spelling in [
            "UA-1.example:8080",
            "http://ua-1.example:8080/",
            "https://UA-1.EXAMPLE:8080/officescan/download",
            " ua-1.example:8080 ",
        ] {
            assert_eq!(address_key(spelling), key, "{spelling}");
        }
        assert_eq!(address_key("http://ua.example"), "ua.example:80");
        assert_eq!(address_key("https://ua.example/"), "ua.example:443");
        assert_eq!(address_key("ua.example:443"), address_key("https://ua.example"));
        assert_ne!(address_key("ua.example:8081"), key);
        assert_eq!(address_key("https://[::1]:4343/x"), "[::1]:4343");
        assert_eq!(address_key(" Not An Address/ "), "not an address");
    }
}
