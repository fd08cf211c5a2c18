//! The Apex Central source: one read-only call of the Automation API,
//! `GET /WebApp/API/AgentResource/ProductAgents?product=…`, over HTTPS
//! (TLS checked against `--apex-central-ca` or the system roots), with
//! the documented token ([`jwt`]). rollcall never calls a POST of
//! that API. See docs/ROSTER.md for the sources of every fact used here.

pub mod jwt;
pub mod source;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rollcall_common::secret::Secret;
use serde::Deserialize;

use crate::store::roster::{RosterEntry, split};

/// The product filter for Apex One Security Agents.
pub const APEX_ONE_PRODUCT: &str = "SLF_PRODUCT_OFFICESCAN_CE";
/// The documented path of the agent list.
pub const PRODUCT_AGENTS_PATH: &str = "/WebApp/API/AgentResource/ProductAgents";
/// The largest answer read (a 100,000-agent list is some 50 MB).
const MAX_ANSWER_BYTES: usize = 256 * 1024 * 1024;
/// The API key file is one line; anything bigger is not one.
const MAX_KEY_BYTES: u64 = 4096;

/// `--apex-central-*` as given.
#[derive(Debug, Clone)]
pub struct ApexCentralConfig {
    pub url: String,
    pub app_id: String,
    pub key_file: PathBuf,
    /// `None`: the system's roots.
    pub ca: Option<PathBuf>,
    pub product: String,
    /// One pass (connect, TLS, request, answer) at most.
    pub timeout: Duration,
}

/// Why a pass failed; [`FetchError::kind`] labels the metric.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("apex central refused the token (HTTP 401): check the application id, the API key and the clocks")]
    Unauthorized,
    #[error("apex central answered HTTP {0}")]
    Http(u16),
    #[error("apex central did not answer within {0:?}")]
    Timeout(Duration),
    #[error("connect to apex central: {0}")]
    Connect(String),
    #[error("TLS with apex central: {0}")]
    Tls(String),
    #[error("apex central answered result_code {code}: {description}")]
    ResultCode { code: i64, description: String },
    #[error("read the apex central answer: {0}")]
    Decode(String),
}

impl FetchError {
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Unauthorized => "unauthorized",
            FetchError::Http(_) => "http",
            FetchError::Timeout(_) => "timeout",
            FetchError::Connect(_) => "connect",
            FetchError::Tls(_) => "tls",
            FetchError::ResultCode { .. } => "result_code",
            FetchError::Decode(_) => "decode",
        }
    }
}

/// A configured, checked client.
pub struct ApexCentral {
    host: String,
    port: u16,
    /// The URL's own path (no trailing slash), before the API path.
    prefix: String,
    app_id: String,
    key: Secret,
    tls: tokio_rustls::TlsConnector,
    product: String,
    timeout: Duration,
}

impl std::fmt::Debug for ApexCentral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApexCentral")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

/// Reads the API key: refused when group or others can read the file.
pub fn read_key(path: &Path) -> anyhow::Result<Secret> {
    rollcall_common::files::ensure_owner_only(path).context("check the apex central key file")?;
    let text = rollcall_common::files::read_bounded_utf8(path, MAX_KEY_BYTES)
        .with_context(|| format!("read the apex central key file {}", path.display()))?;
    let key = text.trim();
    if key.is_empty() {
        anyhow::bail!("the apex central key file {} is empty", path.display());
    }
    Ok(Secret::new(key))
}

fn roots(ca: Option<&Path>) -> anyhow::Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let text = rollcall_common::files::read_bounded_utf8(path, 1024 * 1024)
                .with_context(|| format!("read --apex-central-ca {}", path.display()))?;
            let certs = rollcall_common::tls::certs_from_pem(&text)
                .with_context(|| format!("read certificates from --apex-central-ca {}", path.display()))?;
            for cert in certs {
                roots
                    .add(cert)
                    .with_context(|| format!("use a certificate of {} as a root", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                // One odd system certificate does not make the rest useless.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                anyhow::bail!("no system root certificates found; give --apex-central-ca");
            }
        }
    }
    Ok(roots)
}

impl ApexCentral {
    pub fn new(config: &ApexCentralConfig) -> anyhow::Result<Self> {
        let uri: http::Uri = config
            .url
            .parse()
            .with_context(|| format!("--apex-central-url {:?} is not a URL", config.url))?;
        if uri.scheme_str() != Some("https") {
            anyhow::bail!("--apex-central-url must be https://");
        }
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("--apex-central-url names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if config.app_id.trim().is_empty() {
            anyhow::bail!("--apex-central-app-id is empty");
        }
        let key = read_key(&config.key_file)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions for apex central")?
            .with_root_certificates(roots(config.ca.as_deref())?)
            .with_no_client_auth();
        Ok(ApexCentral {
            port: uri.port_u16().unwrap_or(443),
            prefix: uri.path().trim_end_matches('/').to_string(),
            host,
            app_id: config.app_id.trim().to_string(),
            key,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
            product: config.product.clone(),
            timeout: config.timeout,
        })
    }

    /// One pass at most (`--apex-central-timeout`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The path and query of the call.
    pub fn path_and_query(&self) -> String {
        format!("{}{PRODUCT_AGENTS_PATH}?product={}", self.prefix, self.product)
    }

    /// One pass: the whole agent list, or why not.
    pub async fn fetch(&self, now_s: i64) -> Result<Vec<RosterEntry>, FetchError> {
        match tokio::time::timeout(self.timeout, self.fetch_inner(now_s)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn fetch_inner(&self, now_s: i64) -> Result<Vec<RosterEntry>, FetchError> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|error| FetchError::Connect(format!("{}:{}: {error}", self.host, self.port)))?;
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|error| FetchError::Tls(format!("{}: {error}", self.host)))?;
        let stream = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|error| FetchError::Tls(error.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| FetchError::Connect(error.to_string()))?;
        // The connection lives as long as this pass (the timeout above
        // drops both when it runs out).
        let driver = async move {
            let _ = connection.await;
        };
        let path = self.path_and_query();
        let token = jwt::token(&self.app_id, self.key.expose(), now_s, "GET", &path, "");
        let request = http::Request::get(path.as_str())
            .header(http::header::HOST, self.host_header())
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|error| FetchError::Connect(error.to_string()))?;
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|error| FetchError::Connect(error.to_string()))?;
            let status = response.status();
            if status == http::StatusCode::UNAUTHORIZED {
                return Err(FetchError::Unauthorized);
            }
            if !status.is_success() {
                return Err(FetchError::Http(status.as_u16()));
            }
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|error| FetchError::Decode(error.to_string()))?
                .to_bytes();
            parse(&body)
        };
        tokio::pin!(exchange);
        tokio::pin!(driver);
        tokio::select! {
            result = &mut exchange => result,
            // The server closed the connection (`Connection: close`): what it
            // sent is buffered, so the exchange still finishes, with the
            // answer or with the error of a cut-off one.
            () = &mut driver => exchange.await,
        }
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A list field: the guide shows a comma-separated string, some answers
/// carry an array.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ListField {
    Text(String),
    Items(Vec<String>),
}

impl ListField {
    fn into_list(self) -> Vec<String> {
        match self {
            ListField::Text(text) => split(&text),
            ListField::Items(items) => items.iter().flat_map(|item| split(item)).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Agent {
    #[serde(default)]
    entity_id: String,
    #[serde(default)]
    product: Option<String>,
    #[serde(default)]
    managing_server_id: Option<String>,
    #[serde(default)]
    ad_domain: Option<String>,
    #[serde(default)]
    folder_path: Option<String>,
    #[serde(default)]
    ip_address_list: Option<ListField>,
    #[serde(default)]
    mac_address_list: Option<ListField>,
    #[serde(default)]
    host_name: String,
}

#[derive(Debug, Deserialize)]
struct Answer {
    result_code: i64,
    #[serde(default)]
    result_description: String,
    #[serde(default)]
    result_content: Vec<Agent>,
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.map(|text| text.trim().to_string()).filter(|text| !text.is_empty())
}

/// The documented answer, as roster entries. The API gives no version.
pub fn parse(body: &[u8]) -> Result<Vec<RosterEntry>, FetchError> {
    let answer: Answer = serde_json::from_slice(body).map_err(|error| FetchError::Decode(error.to_string()))?;
    if answer.result_code != 1 {
        return Err(FetchError::ResultCode {
            code: answer.result_code,
            description: answer.result_description,
        });
    }
    Ok(answer
        .result_content
        .into_iter()
        .map(|agent| RosterEntry {
            host_name: agent.host_name.trim().to_string(),
            entity_id: agent.entity_id,
            ip_addresses: agent.ip_address_list.map(ListField::into_list).unwrap_or_default(),
            mac_addresses: agent.mac_address_list.map(ListField::into_list).unwrap_or_default(),
            version: None,
            connection_status: None,
            managing_server: non_empty(agent.managing_server_id),
            domain: non_empty(agent.ad_domain),
            folder_path: non_empty(agent.folder_path),
            os: None,
            product: non_empty(agent.product),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_answer_is_read_and_other_result_codes_are_errors() {
        let body = br#"{"result_code": 1, "result_description": "Operation successful", "result_content": [
            {"entity_id": "626dcf14", "product": "SLF_PRODUCT_OFFICESCAN_CE",
             "managing_server_id": "C22E1795", "ad_domain": "", "folder_path": "Workgroup",
             "ip_address_list": "10.0.2.15,10.0.2.16", "mac_address_list": "08-00-27-96-86-8E",
             "host_name": "TREND-MICRO-TES", "isolation_status": "normal",
             "capabilities": ["cmd_isolate_agent"]},
            {"entity_id": "b2", "host_name": "pc02", "ip_address_list": ["10.0.0.9"]}]}"#;
        let entries = parse(body).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].host_name, "TREND-MICRO-TES");
        assert_eq!(entries[0].ip_addresses, vec!["10.0.2.15", "10.0.2.16"]);
        assert_eq!(entries[0].domain, None);
        assert_eq!(entries[0].folder_path.as_deref(), Some("Workgroup"));
        assert_eq!(entries[1].ip_addresses, vec!["10.0.0.9"]);
        let error = parse(br#"{"result_code": 0, "result_description": "Invalid parameter"}"#).unwrap_err();
        assert_eq!(error.kind(), "result_code");
        assert!(error.to_string().contains("Invalid parameter"), "{error}");
        assert_eq!(parse(b"<html>").unwrap_err().kind(), "decode");
    }
}
