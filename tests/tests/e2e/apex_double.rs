//! A stand-in for Apex Central's Automation API on loopback HTTPS: it
//! serves the documented `ProductAgents` answer shapes and checks every
//! request's token itself, as Trend Micro documents it — HS256 signature
//! with the application's API key (verified here with the `hmac` crate,
//! not the coordinator's code), `version` "V1", the `checksum` recomputed
//! from the request line it received (`METHOD|lowercased path and
//! query|API headers|body`), and `iat` no older than the application's
//! communication time-out (else 401). What it answers is set by the test
//! ([`Mode`]). It proves rollcall against the published algorithm, not
//! against a live Apex Central.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{KeyInit, Mac};
use sha2_011::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const APP_ID: &str = "2E28ED1BABA2-4D10BB13-F4FA-D5D4-31F3";
pub const API_KEY: &str = "test-api-key-0123456789";

/// What the double answers.
#[derive(Debug, Clone)]
pub enum Mode {
    /// `result_code` 1 with these agents (host name, IP list, MAC list).
    Agents(Vec<(String, String, String)>),
    /// A documented failure: `result_code` 0.
    ResultCode(i64, String),
    /// HTTP 500.
    ServerError,
}

#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Requests whose token checked out.
    pub accepted: u32,
    /// Requests refused with 401, with the reason.
    pub refused: Vec<String>,
    /// The request lines received.
    pub requests: Vec<String>,
}

struct Shared {
    mode: Mutex<Mode>,
    seen: Mutex<Seen>,
    /// The application's communication time-out.
    timeout_s: i64,
    /// Added to this clock (a negative value: the coordinator's clock is ahead).
    clock_offset_s: Mutex<i64>,
    /// How long each answer is held back (a slow Apex Central).
    delay: Mutex<Duration>,
}

pub struct ApexDouble {
    pub addr: SocketAddr,
    pub ca_pem: String,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApexDouble {
    pub fn start(mode: Mode) -> Self {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Apex Central test CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert.pem(), ca_key).unwrap();
        let server_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let server_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

        let certs = vec![server_cert.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            seen: Mutex::new(Seen::default()),
            timeout_s: 30,
            clock_offset_s: Mutex::new(0),
            delay: Mutex::new(Duration::ZERO),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let mut stopped = stopped;
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => {
                            let Ok((tcp, _)) = accepted else { continue };
                            let (acceptor, shared) = (acceptor.clone(), serving.clone());
                            tokio::spawn(async move {
                                if let Ok(stream) = acceptor.accept(tcp).await {
                                    let _ = tokio::time::timeout(Duration::from_secs(10), serve(stream, shared)).await;
                                }
                            });
                        }
                    }
                }
            });
        });
        ApexDouble {
            addr,
            ca_pem: ca_cert.pem(),
            shared,
            shutdown: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Moves this double's clock: `seconds` ahead makes every token stale.
    pub fn set_clock_offset(&self, seconds: i64) {
        *self.shared.clock_offset_s.lock().unwrap() = seconds;
    }

    /// Holds each answer back for `delay` (under the 10 s per-connection cap).
    pub fn set_delay(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap() = delay;
    }

    pub fn seen(&self) -> Seen {
        self.shared.seen.lock().unwrap().clone()
    }
}

impl Drop for ApexDouble {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request per connection: head, check, answer, close.
async fn serve(mut stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>, shared: Arc<Shared>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&byte[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let authorization = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.trim().to_string())
        .unwrap_or_default();
    shared.seen.lock().unwrap().requests.push(request_line.clone());
    let delay = *shared.delay.lock().unwrap();
    tokio::time::sleep(delay).await;

    let (status, body) = match check_token(&shared, method, target, &authorization) {
        Err(reason) => {
            shared.seen.lock().unwrap().refused.push(reason);
            (401, String::new())
        }
        Ok(()) => {
            shared.seen.lock().unwrap().accepted += 1;
            if method != "GET" || !target.starts_with("/WebApp/API/AgentResource/ProductAgents") {
                (404, String::new())
            } else {
                answer(&shared.mode.lock().unwrap())
            }
        }
    };
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn answer(mode: &Mode) -> (u16, String) {
    match mode {
        Mode::ServerError => (500, "{}".into()),
        Mode::ResultCode(code, description) => (
            200,
            serde_json::json!({"result_code": code, "result_description": description, "result_content": []})
                .to_string(),
        ),
        Mode::Agents(agents) => {
            let content: Vec<serde_json::Value> = agents
                .iter()
                .enumerate()
                .map(|(at, (host, ips, macs))| {
                    serde_json::json!({
                        "entity_id": format!("626dcf14-b0c3-4b00-bc76-{at:012}"),
                        "product": "SLF_PRODUCT_OFFICESCAN_CE",
                        "managing_server_id": "C22E1795-BF95-45BB-BC82-486B0F5161BE",
                        "ad_domain": "",
                        "folder_path": "Workgroup",
                        "ip_address_list": ips,
                        "mac_address_list": macs,
                        "host_name": host,
                        "isolation_status": "normal",
                        "capabilities": ["cmd_restore_isolated_agent", "cmd_isolate_agent"],
                    })
                })
                .collect();
            (
                200,
                serde_json::json!({
                    "result_code": 1,
                    "result_description": "Operation successful",
                    "result_content": content,
                })
                .to_string(),
            )
        }
    }
}

/// The documented checks, in order; the reason when one fails.
fn check_token(shared: &Shared, method: &str, target: &str, authorization: &str) -> Result<(), String> {
    let token = authorization
        .strip_prefix("Bearer ")
        .ok_or_else(|| "no bearer token".to_string())?;
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err("not a JWT".into());
    };
    let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    if header["alg"] != "HS256" || header["typ"] != "JWT" {
        return Err(format!("header {header}"));
    }
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(API_KEY.as_bytes()).unwrap();
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|e| e.to_string())?;
    mac.verify_slice(&signature).map_err(|_| "bad signature".to_string())?;
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    if payload["version"] != "V1" {
        return Err(format!("version {}", payload["version"]));
    }
    if payload["appid"] != APP_ID {
        return Err(format!("appid {}", payload["appid"]));
    }
    let expected = STANDARD.encode(Sha256::digest(
        format!("{}|{}||", method.to_uppercase(), target.to_lowercase()).as_bytes(),
    ));
    if payload["checksum"] != expected.as_str() {
        return Err(format!("checksum {} is not {expected}", payload["checksum"]));
    }
    let iat = payload["iat"].as_f64().ok_or_else(|| "no iat".to_string())?;
    let now =
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 + *shared.clock_offset_s.lock().unwrap();
    if (now as f64) - iat > shared.timeout_s as f64 {
        return Err(format!("iat {iat} is older than the {}s time-out", shared.timeout_s));
    }
    Ok(())
}
