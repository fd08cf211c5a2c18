//! The web dashboard and `/metrics` against a real coordinator with a
//! seeded fleet of real agents: who may look (no certificate 401, agent
//! 403, viewer 200, a revoked admin refused), the rollout page with its
//! completion chart and stragglers table, agent data escaped, `/metrics`
//! parsed with a Prometheus text-format parser, and the pages loaded in
//! headless Chromium through a loopback forwarder that adds the admin
//! client certificate (Chromium cannot be handed one headless).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Agent, Coordinator, SERVER, free_port, wait_until};

const TARGET: &str = "14.0.2";
const BEHIND: &str = "14.0.1";
/// An agent chooses its own hostname; this one tries to inject markup.
const HOSTILE: &str = "<img src=x onerror=alert(1)>";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Endpoint {
    name: &'static str,
    site: &'static str,
    version: &'static str,
    license: &'static str,
    permission: &'static str,
    /// "standard", or the custom source address.
    source: &'static str,
    update_agent: bool,
}

const fn endpoint(name: &'static str, site: &'static str) -> Endpoint {
    Endpoint {
        name,
        site,
        version: BEHIND,
        license: "2099-12-31",
        permission: "all_components",
        source: "standard",
        update_agent: false,
    }
}

impl Endpoint {
    fn state(&self, server: &str, version: &str) -> String {
        let (source, address) = if self.source == "standard" {
            ("standard", String::new())
        } else {
            ("custom", format!("source_address = \"{}\"\n", self.source))
        };
        let (role, update_agent) = if self.update_agent {
            (
                "update_agent",
                "[update_agent]\nprogram_and_hotfix = true\naddress = \"ua-1.example:8080\"\n",
            )
        } else {
            ("endpoint", "")
        };
        format!(
            "version = \"{version}\"\nrole = \"{role}\"\n[license]\nexpires = \"{}\"\n[update]\npermission = \"{}\"\n\
source = \"{source}\"\n{address}[server]\naddress = \"{server}\"\n{update_agent}",
            self.license, self.permission
        )
    }
}

fn fleet() -> Vec<Endpoint> {
    vec![
        Endpoint {
            version: TARGET,
            ..endpoint("osaka-01", "osaka")
        },
        endpoint("osaka-02", "osaka"),
        Endpoint {
            license: "2020-01-01",
            ..endpoint("osaka-03", "osaka")
        },
        Endpoint {
            permission: "pattern_files",
            ..endpoint("kyoto-01", "kyoto")
        },
        endpoint("kyoto-02", "kyoto"),
        Endpoint {
            update_agent: true,
            ..endpoint("ua-branch", "dc")
        },
        Endpoint {
            source: "ua-1.example:8080",
            ..endpoint("branch-01", "branch")
        },
        Endpoint {
            source: "ua-1.example:8080",
            ..endpoint("branch-02", "branch")
        },
        endpoint(HOSTILE, "<b>lab</b>"),
    ]
}

const POLICY: &str = r#"offline_after = "30s"
[[update_source.expected]]
match = { site = "branch" }
source = "custom"
address = "ua-1.example:8080"
[[update_source.expected]]
source = "standard"
"#;

/// Stragglers the seeded rollout ends with, by hostname.
fn expected_causes() -> BTreeMap<String, String> {
    [
        ("osaka-03", "license"),
        ("kyoto-01", "update_permission"),
        ("ua-branch", "unknown"),
        ("branch-01", "update_agent"),
        ("branch-02", "update_agent"),
        (HOSTILE, "unknown"),
    ]
    .iter()
    .map(|(host, cause)| (host.to_string(), cause.to_string()))
    .collect()
}

struct Seeded {
    coordinator: Coordinator,
    dashboard_port: u16,
    agents: Vec<Agent>,
}

impl Seeded {
    fn agent(&self, hostname: &str) -> &Agent {
        self.agents.iter().find(|agent| agent.hostname == hostname).unwrap()
    }
}

/// A coordinator with the dashboard on, nine agents, and a rollout whose
/// history has several points: one agent done from the start, two more
/// upgraded (and rechecked) one after the other, six stragglers with
/// known causes.
fn seeded() -> Seeded {
    let mut coordinator = Coordinator::init();
    let dashboard_port = free_port();
    coordinator.extra_args.extend([
        "--engine-interval".to_string(),
        "200ms".to_string(),
        "--dashboard-listen".to_string(),
        format!("127.0.0.1:{dashboard_port}"),
    ]);
    coordinator.start();
    let policy = coordinator.dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let applied = coordinator.cli(&["policy", "apply", policy.to_str().unwrap()]);
    assert!(applied.status.success(), "{}", String::from_utf8_lossy(&applied.stderr));

    let server = format!("127.0.0.1:{}", coordinator.port);
    let endpoints = fleet();
    let mut agents = Vec::new();
    for endpoint in &endpoints {
        let agent = Agent::enroll(
            &coordinator,
            endpoint.name,
            &endpoint.state(&server, endpoint.version),
            &[("site", endpoint.site)],
        );
        agents.push(agent);
    }
    for agent in &mut agents {
        agent.start();
    }
    for agent in &agents {
        assert!(
            wait_until(Duration::from_secs(30), || coordinator
                .agents_by_hostname()
                .get(&agent.hostname)
                .is_some_and(|a| a["online"] == true && !a["version"].is_null())),
            "{} never reported:\n{}",
            agent.hostname,
            agent.log()
        );
    }
    let started = coordinator.cli(&[
        "rollout",
        "start",
        "--target",
        TARGET,
        "--grace",
        "1s",
        "--recheck-every",
        "400ms",
        "--max-attempts",
        "2",
    ]);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));

    // Two agents finish one after the other, so the chart climbs in steps.
    for (hostname, completed) in [("osaka-02", 2), ("kyoto-02", 3)] {
        let agent = agents.iter().find(|agent| agent.hostname == hostname).unwrap();
        let endpoint = endpoints.iter().find(|endpoint| endpoint.name == hostname).unwrap();
        agent.set_state(&endpoint.state(&server, TARGET));
        let recheck = coordinator.cli_json(&["recheck", &agent.id, "--wait", "10s"]);
        assert_eq!(recheck["completed"], 1, "{recheck}");
        assert!(
            wait_until(
                Duration::from_secs(15),
                || coordinator.cli_json(&["status"])["completed"] == completed
            ),
            "{hostname} never counted as completed"
        );
    }
    let expected = expected_causes();
    let mut last = BTreeMap::new();
    assert!(
        wait_until(Duration::from_secs(30), || {
            last = coordinator.causes();
            last == expected
        }),
        "diagnosis mismatch:\n got      {last:?}\n expected {expected:?}\n{}",
        coordinator.log()
    );
    Seeded {
        coordinator,
        dashboard_port,
        agents,
    }
}

// === a small HTTPS client (what a browser or Prometheus does) ===

pub(crate) struct Identity {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

impl Identity {
    pub(crate) fn from_dir(dir: &Path) -> Identity {
        Identity {
            cert_pem: std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
            key_pem: std::fs::read_to_string(dir.join("key.pem")).unwrap(),
        }
    }
}

pub(crate) fn client_config(ca_pem: &str, identity: Option<&Identity>) -> Arc<rustls::ClientConfig> {
    let mut config = rollcall_common::tls::client_config(
        ca_pem,
        identity.map(|identity| (identity.cert_pem.as_str(), identity.key_pem.as_str())),
    )
    .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

pub(crate) async fn tls_connect(
    port: u16,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
}

pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_string())
        })
    }
}

/// One GET over a fresh TLS connection; `Err` when TLS itself refuses.
pub(crate) async fn get(port: u16, config: Arc<rustls::ClientConfig>, path: &str) -> std::io::Result<HttpResponse> {
    get_with(port, config, path, &[]).await
}

/// [`get`] with extra request headers.
pub(crate) async fn get_with(
    port: u16,
    config: Arc<rustls::ClientConfig>,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let mut stream = tls_connect(port, config).await?;
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP response: {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {head:?}")))?;
    Ok(HttpResponse {
        status,
        head: head.to_string(),
        body: body.to_string(),
    })
}

// === the loopback forwarder Chromium talks to ===

/// Accepts plain HTTP on 127.0.0.1 and relays each connection over TLS to
/// the dashboard, presenting the admin certificate. It lives in `runtime`
/// and stops when it is dropped.
struct Forwarder {
    port: u16,
    _runtime: tokio::runtime::Runtime,
}

fn forwarder(dashboard_port: u16, config: Arc<rustls::ClientConfig>) -> Forwarder {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime.spawn(async move {
        loop {
            let Ok((mut plain, _)) = listener.accept().await else {
                return;
            };
            let config = config.clone();
            tokio::spawn(async move {
                if let Ok(mut secure) = tls_connect(dashboard_port, config).await {
                    let _ = tokio::io::copy_bidirectional(&mut plain, &mut secure).await;
                }
            });
        }
    });
    Forwarder {
        port,
        _runtime: runtime,
    }
}

// === headless Chromium ===

/// Runs Chromium once with `mode` (`--dump-dom` or `--screenshot=…`) and
/// returns its standard output; killed if it takes longer than a minute.
fn chromium(profile: &Path, mode: &str, url: &str) -> String {
    let stdout_path = profile.with_extension("out");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--window-size=1280,1600", "--virtual-time-budget=5000", mode, url])
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut finished = false;
    let done = wait_until(Duration::from_secs(60), || {
        finished = matches!(child.try_wait(), Ok(Some(_)));
        finished
    });
    if !done {
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromium did not finish {mode} {url} within a minute");
    }
    std::fs::read_to_string(&stdout_path).unwrap_or_default()
}

fn chromium_available() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{CHROMIUM} is missing; .ci/run installs Debian's chromium package"
    );
    rollcall_server::test_skip::skip_part(
        "the browser part",
        &format!("{CHROMIUM} is not installed"),
        "apt-get install chromium, or run .ci/run, to run it",
    );
    false
}

pub(crate) fn admin_identity(coordinator: &Coordinator, name: &str, role: &str) -> PathBuf {
    let out = coordinator.dir.path().join(name);
    let output = Command::new(SERVER)
        .args(["admin-cert", "--data-dir"])
        .arg(coordinator.data_dir())
        .args(["--name", name, "--role", role, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    out
}

#[test]
fn dashboard_shows_the_rollout_to_admins_only_and_metrics_parse() {
    let mut seeded = seeded();
    let coordinator = &seeded.coordinator;
    let port = seeded.dashboard_port;
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let viewer = Identity::from_dir(&admin_identity(coordinator, "vera", "viewer"));
    let viewer_tls = client_config(&ca_pem, Some(&viewer));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Who may look.
    let anonymous = runtime.block_on(get(port, client_config(&ca_pem, None), "/")).unwrap();
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let agent_identity = Identity::from_dir(&seeded.agent("osaka-01").data_dir().join("identity"));
    let as_agent = runtime
        .block_on(get(port, client_config(&ca_pem, Some(&agent_identity)), "/metrics"))
        .unwrap();
    assert_eq!(as_agent.status, 403, "{}", as_agent.body);
    let page = runtime.block_on(get(port, viewer_tls.clone(), "/")).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);

    // Headers every page carries; agent-chosen text arrives escaped.
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'nonce-"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options").as_deref(), Some("nosniff"));
    assert!(
        page.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "hostile hostname missing"
    );
    assert!(!page.body.contains(HOSTILE), "hostile hostname was not escaped");
    assert!(
        page.body.contains("site=&lt;b&gt;lab&lt;/b&gt;"),
        "hostile label missing"
    );
    assert!(!page.body.contains("<b>lab</b>"));
    assert!(page.body.contains("id=\"completion-chart\""));

    // The language: English by default, Japanese by Accept-Language, and the
    // switch's choice remembered in a cookie over the browser's preference.
    assert!(page.body.contains("<html lang=\"en\">"), "not English by default");
    let by_accept = runtime
        .block_on(get_with(
            port,
            viewer_tls.clone(),
            "/",
            &[("Accept-Language", "ja,en-US;q=0.7")],
        ))
        .unwrap();
    assert_eq!(by_accept.status, 200, "{}", by_accept.body);
    assert!(
        by_accept.body.contains("<html lang=\"ja\">"),
        "Accept-Language ja was not Japanese"
    );
    assert!(by_accept.body.contains("原因別の未完了台数"), "{}", by_accept.body);
    assert!(!by_accept.body.contains("Stragglers by cause"));
    let switched = runtime.block_on(get(port, viewer_tls.clone(), "/?setlang=ja")).unwrap();
    let cookie = switched.header("set-cookie").unwrap_or_default();
    assert!(cookie.starts_with("rollcall_lang=ja;"), "{cookie}");
    assert!(switched.body.contains("<html lang=\"ja\">"));
    let remembered = runtime
        .block_on(get_with(
            port,
            viewer_tls.clone(),
            "/",
            &[("Cookie", "rollcall_lang=en"), ("Accept-Language", "ja")],
        ))
        .unwrap();
    assert!(remembered.body.contains("<html lang=\"en\">"), "the cookie did not win");

    // Filters narrow the table; bad filters are refused.
    let filtered = runtime
        .block_on(get(
            port,
            viewer_tls.clone(),
            "/?cause=update_agent&state=&label=site%3Dbranch",
        ))
        .unwrap();
    assert_eq!(filtered.status, 200);
    assert_eq!(filtered.body.matches("data-cause=\"update_agent\"").count(), 2);
    assert!(!filtered.body.contains("data-cause=\"license\""));
    for missing in ["/nope", "/agents/not-an-agent-id"] {
        let response = runtime.block_on(get(port, viewer_tls.clone(), missing)).unwrap();
        assert_eq!(response.status, 404, "{missing}");
    }
    let bad = runtime.block_on(get(port, viewer_tls.clone(), "/?step=42")).unwrap();
    assert_eq!(bad.status, 400);
    let long = format!("/?q={}", "a".repeat(3000));
    let too_long = runtime.block_on(get(port, viewer_tls.clone(), &long)).unwrap();
    assert_eq!(too_long.status, 414);

    // The live endpoint serves the page's fragments as JSON.
    let live = runtime.block_on(get(port, viewer_tls.clone(), "/api/live")).unwrap();
    assert_eq!(live.status, 200);
    let live: serde_json::Value = serde_json::from_str(&live.body).unwrap();
    for fragment in ["summary", "chart", "causes", "labels", "stragglers"] {
        assert!(live["fragments"][fragment].is_string(), "{fragment} missing: {live}");
    }

    // The step-8 support report: rendered, and downloadable as Markdown and JSON.
    let report_page = runtime.block_on(get(port, viewer_tls.clone(), "/report")).unwrap();
    assert_eq!(report_page.status, 200, "{}", report_page.body);
    assert!(report_page.body.contains("id=\"stat-affected\""));
    assert!(report_page.body.contains("href=\"/report.md?rollout="));
    assert!(
        !report_page.body.contains(HOSTILE),
        "hostile hostname was not escaped in the report"
    );
    let markdown = runtime.block_on(get(port, viewer_tls.clone(), "/report.md")).unwrap();
    assert_eq!(markdown.status, 200, "{}", markdown.body);
    assert!(
        markdown
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/markdown")
    );
    assert!(
        markdown
            .header("content-disposition")
            .unwrap_or_default()
            .starts_with("attachment")
    );
    assert!(markdown.body.starts_with("# "), "{}", markdown.body);
    let report_json = runtime.block_on(get(port, viewer_tls.clone(), "/report.json")).unwrap();
    assert_eq!(report_json.status, 200, "{}", report_json.body);
    let report_json: serde_json::Value = serde_json::from_str(&report_json.body).unwrap();
    assert_eq!(report_json["affected"]["count"], 6, "{report_json}");
    assert_eq!(report_json["affected"]["total"], 9);

    // /metrics parses as the Prometheus text format, every name prefixed.
    let scraped = runtime.block_on(get(port, viewer_tls.clone(), "/metrics")).unwrap();
    assert_eq!(scraped.status, 200, "{}", scraped.body);
    assert!(
        scraped
            .header("content-type")
            .unwrap_or_default()
            .starts_with("text/plain")
    );
    let lines = scraped.body.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("metrics parse");
    assert!(!scrape.samples.is_empty());
    for sample in &scrape.samples {
        assert!(sample.metric.starts_with("rollcall_"), "unprefixed: {}", sample.metric);
    }
    let value = |metric: &str, label: Option<(&str, &str)>| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|sample| {
                sample.metric == metric && label.is_none_or(|(key, value)| sample.labels.get(key) == Some(value))
            })
            .unwrap_or_else(|| panic!("no sample {metric} {label:?} in\n{}", scraped.body));
        match &sample.value {
            prometheus_parse::Value::Counter(value)
            | prometheus_parse::Value::Gauge(value)
            | prometheus_parse::Value::Untyped(value) => *value,
            other => panic!("{metric} is not a number: {other:?}"),
        }
    };
    assert_eq!(value("rollcall_agents_connected", None), 9.0);
    assert!(value("rollcall_reports_ingested_total", None) >= 9.0);
    assert!(value("rollcall_commands_sent_total", Some(("kind", "recheck"))) >= 2.0);
    assert!(value("rollcall_commands_delivered_total", None) >= 2.0);
    assert!(value("rollcall_commands_acknowledged_total", Some(("result", "accepted"))) >= 2.0);
    assert_eq!(value("rollcall_stragglers", Some(("cause", "update_agent"))), 2.0);
    assert_eq!(value("rollcall_stragglers", Some(("cause", "license"))), 1.0);
    assert_eq!(value("rollcall_stragglers", Some(("cause", "certificates"))), 0.0);
    assert_eq!(
        value("rollcall_stragglers", Some(("cause", "update_agent_conflict"))),
        0.0
    );
    assert_eq!(value("rollcall_hello_labels_ignored_total", None), 0.0);
    assert_eq!(value("rollcall_rollout_agents", Some(("state", "completed"))), 3.0);
    let ratio = value("rollcall_rollout_completion_ratio", None);
    assert!((ratio - 3.0 / 9.0).abs() < 1e-9, "{ratio}");
    let latency = scrape
        .samples
        .iter()
        .find(|sample| sample.metric == "rollcall_ingest_latency_seconds")
        .expect("ingest latency histogram");
    let prometheus_parse::Value::Histogram(buckets) = &latency.value else {
        panic!("ingest latency is not a histogram: {:?}", latency.value);
    };
    assert!(buckets.iter().any(|bucket| bucket.count >= 9.0), "{buckets:?}");

    // A revoked admin is refused by the TLS handshake (the shared revocation list).
    let revoked_dir = coordinator.dir.path().join("rita");
    let issued = coordinator.cli(&[
        "admin",
        "issue",
        "--name",
        "rita",
        "--role",
        "viewer",
        "--out",
        revoked_dir.to_str().unwrap(),
    ]);
    assert!(issued.status.success(), "{}", String::from_utf8_lossy(&issued.stderr));
    let rita = client_config(&ca_pem, Some(&Identity::from_dir(&revoked_dir)));
    assert_eq!(runtime.block_on(get(port, rita.clone(), "/")).unwrap().status, 200);
    let revoked = coordinator.cli(&["admin", "revoke", "rita"]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    match runtime.block_on(get(port, rita, "/")) {
        Err(_) => {}
        Ok(response) => assert_eq!(response.status, 403, "a revoked admin was served"),
    }

    if chromium_available() {
        in_the_browser(&seeded, viewer_tls.clone());
    }

    // Shutdown drains the dashboard too, even with a connection left open.
    let idle = runtime.block_on(tls_connect(port, viewer_tls)).unwrap();
    seeded.coordinator.stop();
    drop(idle);
    let log = seeded.coordinator.log();
    assert!(log.contains("dashboard stopped"), "the dashboard did not drain:\n{log}");
    assert!(log.contains("coordinator stopped"), "{log}");
}

/// The Japanese dashboard in the browser: the header's switch sets it, the
/// browser remembers it (the agent page opened afterwards, without the
/// switch, is Japanese too), and the live refresh keeps it; then back to
/// English.
fn in_japanese(seeded: &Seeded, profile: &Path, base: &str) {
    let dom = chromium(profile, "--dump-dom", &format!("{base}/?setlang=ja"));
    assert!(dom.contains("<html lang=\"ja\">"), "no Japanese page:\n{dom}");
    for words in [
        "原因別の未完了台数",
        "未完了のエージェント",
        "アップデートエージェント",
        "「アップデート設定権限」の再確認",
        "自動更新 · ",
        "日本語",
    ] {
        assert!(dom.contains(words), "{words} missing from the Japanese page:\n{dom}");
    }
    for english in [
        "Stragglers by cause",
        "Completion over time",
        "Update settings permission",
        "live · ",
    ] {
        assert!(!dom.contains(english), "{english:?} on the Japanese page");
    }
    let license = seeded.agent("osaka-03");
    let agent_dom = chromium(profile, "--dump-dom", &format!("{base}/agents/{}", license.id));
    assert!(
        agent_dom.contains("<html lang=\"ja\">"),
        "the choice was not remembered:\n{agent_dom}"
    );
    for words in [
        "原因: license",
        "ライセンスの有効期限の確認",
        "最新のレポートのチェック",
        "失敗",
        "対処方法",
    ] {
        assert!(
            agent_dom.contains(words),
            "{words} missing from the Japanese agent page:\n{agent_dom}"
        );
    }
    assert!(!agent_dom.contains("Checks of the latest report"));
    let english = chromium(profile, "--dump-dom", &format!("{base}/?setlang=en"));
    assert!(english.contains("<html lang=\"en\">") && english.contains("Stragglers by cause"));
}

/// The rollout page and an agent page in headless Chromium, through the
/// forwarder; a screenshot of the rollout page.
fn in_the_browser(seeded: &Seeded, viewer_tls: Arc<rustls::ClientConfig>) {
    let coordinator = &seeded.coordinator;
    let browser = forwarder(seeded.dashboard_port, viewer_tls);
    let base = format!("http://127.0.0.1:{}", browser.port);
    let profile = coordinator.dir.path().join("chromium");
    let dom = chromium(&profile, "--dump-dom", &format!("{base}/"));
    assert!(dom.contains("id=\"completion-chart\""), "no chart in:\n{dom}");
    let points: usize = dom
        .split("data-points=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    assert!(points >= 3, "the chart has {points} history points");
    for series in ["series-completed", "series-pending", "series-stragglers"] {
        assert!(dom.contains(series), "{series} missing");
    }
    assert!(
        dom.contains("series series-completed\" data-last=\"3\""),
        "completed line does not end at 3"
    );
    // The stragglers table: every expected straggler, the update agent first.
    let table = dom
        .split("id=\"stragglers-table\"")
        .nth(1)
        .expect("stragglers table")
        .split("</table>")
        .next()
        .unwrap();
    let ua = seeded.agent("ua-branch");
    let first_row = table.split("<tr data-agent=\"").nth(1).unwrap();
    assert!(first_row.starts_with(&ua.id), "the update agent is not first:\n{table}");
    assert!(
        first_row.contains("<strong>2</strong>"),
        "the update agent's blocks are not 2"
    );
    for (hostname, cause) in expected_causes() {
        let agent = seeded.agent(&hostname);
        assert!(
            table.contains(&format!("data-agent=\"{}\" data-cause=\"{cause}\"", agent.id)),
            "{hostname} ({cause}) missing from the table"
        );
    }
    // Agent data stayed text: no element was injected.
    assert!(!dom.contains("<img"), "an <img> element was injected");
    assert!(dom.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // The inline script ran under the CSP and refreshed the page.
    assert!(dom.contains("live · "), "the live refresh did not run");

    let license = seeded.agent("osaka-03");
    let agent_dom = chromium(&profile, "--dump-dom", &format!("{base}/agents/{}", license.id));
    assert!(agent_dom.contains("Cause: license"), "{agent_dom}");
    let license_row = agent_dom
        .split("data-check=\"license\"")
        .nth(1)
        .expect("license check row")
        .split("</tr>")
        .next()
        .unwrap();
    assert!(license_row.contains("badge fail"), "{license_row}");
    assert!(
        license_row.contains("class=\"remedy\""),
        "no remediation: {license_row}"
    );

    in_japanese(seeded, &profile, &base);

    let screenshot = coordinator.dir.path().join("dashboard.png");
    chromium(
        &profile,
        &format!("--screenshot={}", screenshot.display()),
        &format!("{base}/"),
    );
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(png.len() > 20_000, "screenshot is suspiciously small");
    // For refreshing docs/dashboard.png by hand.
    if let Some(copy) = std::env::var_os("ROLLCALL_DASHBOARD_SCREENSHOT") {
        std::fs::copy(&screenshot, copy).unwrap();
    }
}
