//! TLS to PostgreSQL: rustls (ring provider) under tokio-postgres, chosen
//! with libpq's `sslmode` and `sslrootcert` in the database URL.
//!
//! | `sslmode` | encrypted | server checked |
//! |---|---|---|
//! | `disable` | no | — |
//! | `prefer` (default for loopback and Unix sockets) | when the server offers TLS, else plain | no |
//! | `require` | yes | no, unless `sslrootcert` is given (then as `verify-ca`, as libpq does) |
//! | `verify-ca` | yes | chain to `sslrootcert` |
//! | `verify-full` (default for any other host) | yes | chain to `sslrootcert` (default: the system's roots) and the host name |
//!
//! `prefer` and `require` without a root certificate stop a passive
//! eavesdropper but not an active man in the middle, so a URL without
//! `sslmode` to a host that is not loopback (a name other than `localhost`,
//! an address outside 127.0.0.0/8 and ::1, in `host` or `hostaddr`) means
//! `verify-full` (issue 24 point 9): a server without TLS is then refused
//! with an error saying so, never spoken to in plain text. tokio-postgres itself parses only
//! `disable`, `prefer` and `require` and no `sslrootcert`, so both are
//! taken out of the URL here before it sees it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> anyhow::Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            // `allow` would try plain text first: nothing rollcall wants.
            other => bail!(
                "the database URL's sslmode={other:?} is not one of disable, prefer, require, verify-ca, verify-full"
            ),
        })
    }

    /// What tokio-postgres is told: it negotiates, rustls checks.
    pub fn negotiation(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        }
    }
}

/// The TLS options of a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
    /// The URL named no `sslmode`: [`with_default_mode`] picks it by host.
    pub defaulted: bool,
}

/// Takes `sslmode` and `sslrootcert` out of a database URL (URL or
/// `key=value` form); returns the rest and the options. Errors never echo
/// the URL (it may hold a password).
pub fn split_tls_options(url: &str) -> anyhow::Result<(String, TlsOptions)> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> anyhow::Result<bool> {
        match key {
            "sslmode" => mode = Some(SslMode::parse(value)?),
            "sslrootcert" => root_cert = Some(PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_string(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&').filter(|pair| !pair.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    let value = percent_decode(value).context("decode the database URL's query")?;
                    if !take(key, &value)? {
                        kept.push(pair);
                    }
                }
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for (key, value, raw) in key_values(url)? {
            if !take(&key, &value)? {
                kept.push(raw);
            }
        }
        kept.join(" ")
    };
    let options = TlsOptions {
        defaulted: mode.is_none(),
        mode: mode.unwrap_or(SslMode::Prefer),
        root_cert,
    };
    if matches!(options.mode, SslMode::VerifyCa | SslMode::VerifyFull) && options.root_cert.is_none() {
        bail!(
            "the database URL asks for sslmode={} but names no sslrootcert=/path/to/ca.pem \
             (the CA that signed the database server's certificate)",
            if options.mode == SslMode::VerifyCa {
                "verify-ca"
            } else {
                "verify-full"
            }
        );
    }
    Ok((rest, options))
}

/// The mode a URL without `sslmode` gets: `verify-full` when any host it
/// names is not loopback (a name other than `localhost`, an address outside
/// loopback, in `host` or `hostaddr`), else `prefer` (a Unix socket, or
/// loopback, never leaves the machine).
pub fn default_mode(config: &tokio_postgres::Config) -> SslMode {
    let loopback_name = |name: &str| {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        name.eq_ignore_ascii_case("localhost")
            || bare
                .parse::<std::net::IpAddr>()
                .is_ok_and(|address| address.is_loopback())
    };
    let hosts_loopback = config.get_hosts().iter().all(|host| match host {
        tokio_postgres::config::Host::Tcp(name) => loopback_name(name),
        #[cfg(unix)]
        tokio_postgres::config::Host::Unix(_) => true,
    });
    let addresses_loopback = config.get_hostaddrs().iter().all(|address| address.is_loopback());
    if hosts_loopback && addresses_loopback {
        SslMode::Prefer
    } else {
        SslMode::VerifyFull
    }
}

/// `options` with the default mode for `config`'s hosts when the URL named
/// none.
pub fn with_default_mode(options: TlsOptions, config: &tokio_postgres::Config) -> TlsOptions {
    if options.defaulted {
        TlsOptions {
            mode: default_mode(config),
            ..options
        }
    } else {
        options
    }
}

/// The hint added to a failed connection whose server offered no TLS.
pub fn no_tls_hint(options: &TlsOptions) -> &'static str {
    if options.defaulted {
        "the database server offers no TLS; a database URL without sslmode to a host that is not loopback          means sslmode=verify-full: turn TLS on in PostgreSQL (and give sslrootcert=/path/to/ca.pem unless the          system's roots sign its certificate), or add sslmode=disable only on a network you trust"
    } else {
        "the database server offers no TLS, and the database URL's sslmode requires it: turn TLS on in PostgreSQL,          or change sslmode"
    }
}

/// `%XX` escapes of a URL query value.
fn percent_decode(value: &str) -> anyhow::Result<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = value.get(index + 1..index + 3).context("a % escape is cut short")?;
            out.push(u8::from_str_radix(hex, 16).context("a % escape is not hexadecimal")?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).context("a query value is not UTF-8")
}

/// The `key=value` pairs of a libpq connection string, each with its raw
/// text (values may be single-quoted with `\'` and `\\` escapes).
fn key_values(text: &str) -> anyhow::Result<Vec<(String, String, &str)>> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let equals = rest
            .find('=')
            .context("a database connection string entry has no '='")?;
        let key = rest[..equals].trim().to_string();
        rest = rest[equals + 1..].trim_start();
        let mut value = String::new();
        let mut consumed = 0;
        if let Some(quoted) = rest.strip_prefix('\'') {
            let mut chars = quoted.char_indices();
            let mut closed = false;
            while let Some((at, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, escaped)) => value.push(escaped),
                        None => bail!("a quoted value in the database connection string ends in '\\'"),
                    },
                    '\'' => {
                        consumed = 1 + at + 1;
                        closed = true;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                bail!("a quoted value in the database connection string is not closed");
            }
        } else {
            consumed = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..consumed].to_string();
        }
        rest = &rest[consumed..];
        let raw = start[..start.len() - rest.len()].trim();
        pairs.push((key, value, raw));
        rest = rest.trim_start();
    }
    Ok(pairs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls connector for these options (for `disable` too: it is then
/// never used).
pub fn connector(options: &TlsOptions) -> anyhow::Result<MakeRustlsConnect> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("select TLS versions for the database")?;
    let verify_chain = match options.mode {
        SslMode::VerifyCa | SslMode::VerifyFull => true,
        // libpq: with a root certificate, `require` checks the chain too.
        SslMode::Require => options.root_cert.is_some(),
        SslMode::Disable | SslMode::Prefer => false,
    };
    let root_cert = options.root_cert.as_deref();
    let verifier: Arc<dyn ServerCertVerifier> = match root_cert {
        // Only a defaulted `verify-full` has no root (an explicit one
        // without `sslrootcert` is refused above): the system's roots.
        _ if verify_chain => {
            let roots = match root_cert {
                Some(path) => load_roots(path)?,
                None => system_roots()?,
            };
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .context("build the database certificate verifier")?;
            if options.mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly { inner: webpki })
            }
        }
        // `prefer` and `require` without a root: encrypted, server unchecked.
        _ => Arc::new(rollcall_common::tls::AnyServerCertificate::new(provider)),
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn system_roots() -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // One odd system certificate does not make the rest useless.
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        bail!(
            "the database URL to a host that is not loopback means sslmode=verify-full, and no system root              certificates were found: give sslrootcert=/path/to/ca.pem"
        );
    }
    Ok(roots)
}

fn load_roots(path: &Path) -> anyhow::Result<rustls::RootCertStore> {
    let text = rollcall_common::files::read_bounded_utf8(path, 1024 * 1024)
        .with_context(|| format!("read sslrootcert {}", path.display()))?;
    let certs = rollcall_common::tls::certs_from_pem(&text)
        .with_context(|| format!("read certificates from sslrootcert {}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .with_context(|| format!("use a certificate of sslrootcert {} as a root", path.display()))?;
    }
    Ok(roots)
}

/// `verify-ca`: the chain must lead to the root; the name is not checked
/// (libpq semantics, for servers reached by an address their certificate
/// does not name).
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_taken_out_of_both_url_forms() {
        let (rest, options) =
            split_tls_options("postgres://u:p@db/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=a")
                .unwrap();
        assert_eq!(rest, "postgres://u:p@db/x?application_name=a");
        assert_eq!(options.mode, SslMode::VerifyFull);
        assert_eq!(options.root_cert, Some(PathBuf::from("/etc/ca.pem")));

        let (rest, options) = split_tls_options("postgres://u:p@db/x?sslmode=require").unwrap();
        assert_eq!(rest, "postgres://u:p@db/x");
        assert_eq!(
            options,
            TlsOptions {
                mode: SslMode::Require,
                root_cert: None,
                defaulted: false,
            }
        );

        let (rest, options) =
            split_tls_options("host=db dbname=x sslmode=verify-ca sslrootcert='/a b/ca.pem' password='it\\'s'")
                .unwrap();
        assert_eq!(rest, "host=db dbname=x password='it\\'s'");
        assert_eq!(options.mode, SslMode::VerifyCa);
        assert_eq!(options.root_cert, Some(PathBuf::from("/a b/ca.pem")));

        let (_, options) = split_tls_options("postgres://db/x").unwrap();
        assert_eq!(options.mode, SslMode::Prefer);
    }

    #[test]
    fn bad_tls_options_are_clear_errors_without_the_url() {
        let error = split_tls_options("postgres://u:secret@db/x?sslmode=verify-full")
            .unwrap_err()
            .to_string();
        assert!(error.contains("sslrootcert"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        let error = split_tls_options("postgres://u:secret@db/x?sslmode=sometimes")
            .unwrap_err()
            .to_string();
        assert!(error.contains("verify-full"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        let options = TlsOptions {
            mode: SslMode::VerifyFull,
            root_cert: Some(PathBuf::from("/nonexistent/ca.pem")),
            defaulted: false,
        };
        let error = format!("{:#}", connector(&options).err().unwrap());
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
    }

    /// The mode a URL without `sslmode` gets, for each kind of host.
    #[test]
    fn without_sslmode_a_host_that_is_not_loopback_means_verify_full() {
        let mode = |url: &str| {
            let (rest, options) = split_tls_options(url).unwrap();
            let config: tokio_postgres::Config = rest.parse().unwrap();
            with_default_mode(options, &config).mode
        };
        for loopback in [
            "postgres://postgres@127.0.0.1:5432/x",
            "postgres://postgres@localhost/x",
            "postgres://postgres@[::1]:5432/x",
            "postgres://postgres@127.0.0.2/x",
            "host=/var/run/postgresql dbname=x",
            "host=localhost hostaddr=127.0.0.1 dbname=x",
        ] {
            assert_eq!(mode(loopback), SslMode::Prefer, "{loopback}");
        }
        for remote in [
            "postgres://postgres@db.example:5432/x",
            "postgres://postgres@10.0.0.5/x",
            "postgres://postgres@[2001:db8::1]/x",
            "host=db.internal dbname=x",
            // The name TLS would check is not loopback, wherever it dials.
            "host=db.internal hostaddr=127.0.0.1 dbname=x",
            "host=localhost hostaddr=192.0.2.7 dbname=x",
            // One remote host among several is enough.
            "host=localhost,db.internal dbname=x",
        ] {
            assert_eq!(mode(remote), SslMode::VerifyFull, "{remote}");
        }
        // An explicit mode is kept whatever the host.
        assert_eq!(
            mode("postgres://postgres@db.example/x?sslmode=disable"),
            SslMode::Disable
        );
        assert_eq!(
            mode("postgres://postgres@127.0.0.1/x?sslmode=require"),
            SslMode::Require
        );
    }
}
