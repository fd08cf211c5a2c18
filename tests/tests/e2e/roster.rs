//! The roster (issue 26, docs/ROSTER.md): every endpoint Apex One lists,
//! from a console export or from Apex Central, counted with the probes.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::apex_double::{self, ApexDouble, Mode};
use crate::harness::{Agent, Coordinator, SERVER, product_state, wait_until};

const TARGET: &str = "14.0.2";

/// A console export: a title line, the documented English header, six
/// endpoints and one row without a host name (line 9).
fn export() -> String {
    [
        "Pattern/Rule Status",
        "Product Entity/Endpoint,Operating System,Product Host/Endpoint,Product/Endpoint IP,Update Agent,Domain,Managing Server Entity Display Name,Connection Status,Product,Product Version,Product Role",
        // A probe runs here, under its short name: matched by the short name.
        "PC01,Windows 10,pc01.corp.example,10.0.0.1,No,CORP,ApexOne-1,Normal,Apex One,14.0.1,Agent",
        "PC02,Windows 10,PC02,10.0.0.2,No,CORP,ApexOne-1,Normal,Apex One,14.0.1,Agent",
        // No probe: completed by the roster's version.
        "PC03,Windows 11,PC03,10.0.0.3,No,CORP,ApexOne-1,Normal,Apex One,14.0.2,Agent",
        // No probe, behind by the roster's version.
        "PC04,Windows 11,PC04,10.0.0.4,No,CORP,ApexOne-2,Offline,Apex One,14.0.1,Agent",
        // No probe, no version: no_probe.
        "PC05,Windows 11,PC05,10.0.0.5,No,CORP,ApexOne-2,Abnormal,Apex One,,Agent",
        "PC06,Windows 11,PC06,10.0.0.6,No,CORP,ApexOne-2,Normal,Apex One,-,Agent",
        ",Windows 11,,10.0.0.7,No,CORP,ApexOne-2,Normal,Apex One,14.0.1,Agent",
    ]
    .join("\r\n")
        + "\r\n"
}

#[test]
fn the_whole_fleet_is_counted_from_the_roster_with_probes_and_without() {
    let mut coordinator = Coordinator::init();
    let dashboard_port = crate::harness::free_port();
    coordinator.extra_args.extend([
        "--engine-interval".to_string(),
        "200ms".to_string(),
        "--dashboard-listen".to_string(),
        format!("127.0.0.1:{dashboard_port}"),
    ]);
    coordinator.start();
    // Before any roster: status has no roster object.
    let mut agents = Vec::new();
    for (name, version) in [("pc01", TARGET), ("pc02", "14.0.1"), ("rogue", "14.0.1")] {
        let mut agent = Agent::enroll(&coordinator, name, &product_state(version, ""), &[]);
        agent.start();
        agents.push(agent);
    }
    for agent in &agents {
        assert!(
            wait_until(Duration::from_secs(30), || coordinator.is_online(&agent.hostname)),
            "{} did not come online:\n{}",
            agent.hostname,
            agent.log()
        );
    }
    assert!(wait_until(Duration::from_secs(15), || {
        coordinator.agents_by_hostname()["pc01"]["version"] == TARGET
    }));
    coordinator.start_rollout(TARGET, "1h", &[]);
    let status = coordinator.cli_json(&["status"]);
    assert!(status.get("roster").is_none(), "no roster yet: {status}");

    // The export: six entries, the row without a host name skipped by line.
    let file = coordinator.dir.path().join("roster.csv");
    std::fs::write(&file, export()).unwrap();
    let imported = coordinator.cli_json(&["roster", "import", &file.display().to_string()]);
    assert_eq!(imported["imported"], 6, "{imported}");
    assert_eq!(imported["skipped"].as_array().unwrap().len(), 1, "{imported}");
    assert_eq!(imported["skipped"][0]["line"], 9, "{imported}");
    let roster_status = coordinator.cli_json(&["roster", "status"]);
    assert_eq!(roster_status["source"], "csv:roster.csv");
    assert_eq!(roster_status["entries"], 6);
    assert!(roster_status["refreshed_at"].is_string());
    assert!(roster_status["last_error"].is_null());

    // N of M: pc01 completed by its probe, PC03 by the roster's version;
    // pc02 (probe) and PC04 (roster) behind; PC05, PC06 unknown; rogue unlisted.
    assert!(wait_until(Duration::from_secs(20), || {
        coordinator.cli_json(&["status"])["roster"]["completed"] == 2
    }));
    let roster = coordinator.cli_json(&["status"])["roster"].clone();
    assert_eq!(roster["listed"], 6, "{roster}");
    assert_eq!(roster["probed"], 2, "{roster}");
    assert_eq!(roster["completed"], 2, "{roster}");
    assert_eq!(roster["behind"], 2, "{roster}");
    assert_eq!(roster["no_probe"], 2, "{roster}");
    assert_eq!(roster["unlisted_probes"], 1, "{roster}");
    assert!(roster["age_s"].as_u64().unwrap() < 600, "{roster}");

    // Stragglers: the probe-less ones, with what the roster knows.
    let stragglers = coordinator.stragglers();
    for host in ["PC04", "PC05", "PC06"] {
        let straggler = &stragglers[host];
        assert_eq!(straggler["probe"], false, "{straggler}");
        assert_eq!(straggler["cause"], "no_probe", "{straggler}");
    }
    assert_eq!(stragglers["PC04"]["version"], "14.0.1");
    assert!(stragglers["PC05"]["version"].is_null());
    assert_eq!(stragglers["PC04"]["connection_status"], "Offline");
    assert_eq!(stragglers["PC04"]["managing_server"], "ApexOne-2");
    assert!(
        !stragglers.contains_key("PC03"),
        "completed by the roster: {stragglers:?}"
    );
    assert!(!stragglers.contains_key("pc01"));
    assert!(
        stragglers
            .values()
            .filter(|s| s["probe"] == true)
            .all(|s| s["cause"] != "no_probe")
    );

    // Agents: matched / not listed.
    let by_host = coordinator.agents_by_hostname();
    assert_eq!(by_host["pc01"]["roster"], "matched");
    assert_eq!(by_host["pc01"]["roster_hosts"][0], "pc01.corp.example");
    assert_eq!(by_host["rogue"]["roster"], "not_listed");
    let table = coordinator.cli(&["agents"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("not listed"));
    let detail = coordinator.cli_json(&["agent", &agents[0].id]);
    assert_eq!(detail["roster"], "matched", "{detail}");

    // The step-8 report counts over the roster, in both languages.
    let report = coordinator.cli_json(&["report"]);
    assert_eq!(report["roster"]["listed"], 6, "{report}");
    assert_eq!(report["roster"]["no_probe"], 2);
    assert_eq!(report["roster"]["unlisted_probes"], 1);
    let markdown = String::from_utf8_lossy(&coordinator.cli(&["report", "--lang", "en"]).stdout).into_owned();
    assert!(markdown.contains("4 of 6 managed endpoints"), "{markdown}");
    let japanese = String::from_utf8_lossy(&coordinator.cli(&["report", "--lang", "ja"]).stdout).into_owned();
    assert!(japanese.contains("6 台のうち 4 台"), "{japanese}");

    // The dashboard shows the roster's counters.
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let admin = crate::dashboard::Identity::from_dir(&coordinator.admin_identity());
    let tls = crate::dashboard::client_config(&ca_pem, Some(&admin));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let page = runtime
        .block_on(crate::dashboard::get(dashboard_port, tls, "/"))
        .unwrap()
        .body;
    for (id, value) in [
        ("listed", 6),
        ("completed", 2),
        ("behind", 2),
        ("no-probe", 2),
        ("unlisted", 1),
    ] {
        assert!(
            page.contains(&format!("id=\"stat-roster-{id}\"><div class=\"n\">{value}</div>")),
            "{id}: {page}"
        );
    }

    // The list shows each entry's probe.
    let listed = coordinator.cli_json(&["roster", "list"]);
    let states: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["hostname"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states[0], ("pc01.corp.example", "matched"));
    assert_eq!(states[4], ("PC05", "no_probe"));

    // Nothing readable: exit 1, the roster kept.
    let empty = coordinator.dir.path().join("empty.csv");
    std::fs::write(&empty, "Product Host/Endpoint,Product Version\r\n,14.0.1\r\n").unwrap();
    let output = coordinator.cli(&["--output", "json", "roster", "import", &empty.display().to_string()]);
    assert_eq!(output.status.code(), Some(1));
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["imported"], 0);
    assert_eq!(answer["skipped"][0]["line"], 2);
    assert_eq!(coordinator.cli_json(&["roster", "status"])["entries"], 6);
    // No Apex Central source: a refresh fails with exit 1.
    assert_eq!(coordinator.cli(&["roster", "refresh"]).status.code(), Some(1));
}

fn agents(hosts: &[&str]) -> Mode {
    Mode::Agents(
        hosts
            .iter()
            .enumerate()
            .map(|(at, host)| {
                (
                    host.to_string(),
                    format!("10.1.0.{at}"),
                    format!("08-00-27-96-86-{at:02X}"),
                )
            })
            .collect(),
    )
}

/// A coordinator reading `double`, its key file written with `mode`.
fn apex_coordinator(double: &ApexDouble, key_mode: u32) -> Coordinator {
    let mut coordinator = Coordinator::init();
    let key = coordinator.dir.path().join("apex.key");
    std::fs::write(&key, format!("{}\n", apex_double::API_KEY)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(key_mode)).unwrap();
    let ca = coordinator.dir.path().join("apex-ca.pem");
    std::fs::write(&ca, &double.ca_pem).unwrap();
    coordinator.extra_args.extend([
        "--apex-central-url".to_string(),
        double.url(),
        "--apex-central-app-id".to_string(),
        apex_double::APP_ID.to_string(),
        "--apex-central-key-file".to_string(),
        key.display().to_string(),
        "--apex-central-ca".to_string(),
        ca.display().to_string(),
        "--roster-refresh".to_string(),
        "1h".to_string(),
    ]);
    coordinator
}

#[test]
fn apex_central_is_read_with_a_checked_token_and_a_failed_pass_keeps_the_roster() {
    let double = ApexDouble::start(agents(&["PC01", "PC02", "PC03"]));

    // A key file others can read is refused before anything serves.
    let loose = apex_coordinator(&double, 0o644);
    let mut args = vec!["validate".to_string(), "--data-dir".to_string()];
    args.push(loose.data_dir().display().to_string());
    args.extend(loose.extra_args.iter().cloned());
    let output = std::process::Command::new(SERVER).args(&args).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("readable by others"), "{stderr}");

    let mut coordinator = apex_coordinator(&double, 0o600);
    let dashboard_port = crate::harness::free_port();
    coordinator
        .extra_args
        .extend(["--dashboard-listen".to_string(), format!("127.0.0.1:{dashboard_port}")]);
    coordinator.start();
    // The first pass runs at start.
    assert!(
        wait_until(Duration::from_secs(20), || coordinator.cli_json(&["roster", "status"])
            ["entries"]
            == 3),
        "{:?}\n{}",
        double.seen(),
        coordinator.log()
    );
    let status = coordinator.cli_json(&["roster", "status"]);
    assert_eq!(status["source"], "apex_central");
    assert!(status["last_error"].is_null());
    let seen = double.seen();
    assert!(seen.accepted >= 1 && seen.refused.is_empty(), "{seen:?}");
    assert_eq!(
        seen.requests[0],
        "GET /WebApp/API/AgentResource/ProductAgents?product=SLF_PRODUCT_OFFICESCAN_CE HTTP/1.1"
    );
    let listed = coordinator.cli_json(&["roster", "list"]);
    assert_eq!(listed[0]["hostname"], "PC01");
    assert_eq!(listed[0]["ip_addresses"][0], "10.1.0.0");
    assert!(listed[0]["version"].is_null(), "the API gives no version");
    assert_eq!(listed[0]["folder_path"], "Workgroup");

    // result_code 0: the pass fails, exit 1, the roster stays.
    double.set_mode(Mode::ResultCode(0, "Invalid parameter".into()));
    let output = coordinator.cli(&["roster", "refresh"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Invalid parameter"));
    let status = coordinator.cli_json(&["roster", "status"]);
    assert_eq!(status["entries"], 3);
    assert!(
        status["last_error"].as_str().unwrap().contains("result_code 0"),
        "{status}"
    );

    // HTTP 500, then a stale token (the double's clock runs ahead of the
    // application's time-out): 401. Both kept, neither wipes the roster.
    double.set_mode(agents(&["PC09"]));
    double.set_clock_offset(3600);
    let output = coordinator.cli(&["roster", "refresh"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("401"));
    assert!(
        double.seen().refused.iter().any(|reason| reason.contains("older than")),
        "{:?}",
        double.seen()
    );
    double.set_clock_offset(0);
    double.set_mode(Mode::ServerError);
    assert_eq!(coordinator.cli(&["roster", "refresh"]).status.code(), Some(1));
    let status = coordinator.cli_json(&["roster", "status"]);
    assert_eq!(status["entries"], 3);
    assert!(status["last_error"].as_str().unwrap().contains("500"), "{status}");
    assert!(coordinator.log().contains("roster refresh from apex central failed"));
    // Counted in /metrics, by kind.
    let ca_pem = std::fs::read_to_string(coordinator.data_dir().join("ca.pem")).unwrap();
    let admin = crate::dashboard::Identity::from_dir(&coordinator.admin_identity());
    let tls = crate::dashboard::client_config(&ca_pem, Some(&admin));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let metrics = runtime
        .block_on(crate::dashboard::get(dashboard_port, tls, "/metrics"))
        .unwrap()
        .body;
    for kind in ["ok", "result_code", "unauthorized", "http"] {
        assert!(
            metrics.contains(&format!("rollcall_roster_refreshes_total{{result=\"{kind}\"}} 1")),
            "{kind}: {metrics}"
        );
    }
    assert!(metrics.contains("rollcall_roster_entries 3"), "{metrics}");

    // A good pass replaces the roster whole and clears the error.
    double.set_mode(agents(&["PC01", "PC02", "PC03", "PC04"]));
    let refreshed = coordinator.cli_json(&["roster", "refresh"]);
    assert_eq!(refreshed["entries"], 4, "{refreshed}");
    assert!(refreshed["last_error"].is_null());
    coordinator.stop();
}

/// A fake host root's addresses: `ips` as the kernel's local leaves, `mac`
/// on eth0 (read by the probe, docs/ROSTER.md "Matching").
fn write_addresses(agent: &Agent, ips: &[&str], mac: &str) {
    let root = agent.root();
    std::fs::create_dir_all(root.join("proc/net")).unwrap();
    let leaves: String = ips
        .iter()
        .map(|ip| format!("           |-- {ip}\n              /32 host LOCAL\n"))
        .collect();
    std::fs::write(
        root.join("proc/net/fib_trie"),
        format!("Local:\n  +-- 0.0.0.0/0 3 0 5\n{leaves}           |-- 127.0.0.1\n              /32 host LOCAL\n"),
    )
    .unwrap();
    let eth0 = root.join("sys/class/net/eth0");
    std::fs::create_dir_all(&eth0).unwrap();
    std::fs::write(eth0.join("address"), format!("{mac}\n")).unwrap();
}

/// Probes whose host names differ from the roster's are matched by IP, then
/// by MAC; an address two entries list is ambiguous, shown, never guessed;
/// and the rollout's history covers the whole roster at every point.
#[test]
fn probes_are_matched_by_address_when_the_name_differs_and_history_covers_the_roster() {
    let mut coordinator = Coordinator::init();
    coordinator
        .extra_args
        .extend(["--engine-interval".to_string(), "200ms".to_string()]);
    coordinator.start();
    let probes = [
        // The roster lists it as PC-RENAMED with this IP.
        ("laptop-7", TARGET, vec!["10.9.0.7"], "08:00:27:00:00:07"),
        // No IP in the roster; its MAC is PC-MAC's.
        ("laptop-8", "14.0.1", vec!["192.168.50.8"], "08:00:27:00:00:08"),
        // Its IP is listed by two entries: ambiguous.
        ("laptop-9", "14.0.1", vec!["10.9.0.9"], "08:00:27:00:00:09"),
    ];
    let mut agents = Vec::new();
    for (name, version, ips, mac) in &probes {
        let mut agent = Agent::enroll(&coordinator, name, &product_state(version, ""), &[]);
        write_addresses(&agent, ips, mac);
        agent.start();
        agents.push(agent);
    }
    for agent in &agents {
        assert!(
            wait_until(Duration::from_secs(30), || coordinator.is_online(&agent.hostname)),
            "{} did not come online:\n{}",
            agent.hostname,
            agent.log()
        );
    }
    coordinator.start_rollout(TARGET, "1h", &[]);
    let file = coordinator.dir.path().join("roster.csv");
    std::fs::write(
        &file,
        [
            "Product Host/Endpoint,Product/Endpoint IP,MAC Address,Connection Status,Product Version",
            "PC-RENAMED,\"10.9.0.7,10.9.1.7\",08-00-27-AA-AA-07,Normal,",
            "PC-MAC,10.9.0.8,08-00-27-00-00-08,Normal,",
            "PC-TWIN-A,10.9.0.9,,Normal,",
            "PC-TWIN-B,10.9.0.9,,Normal,",
            "PC-NOPROBE,10.9.0.10,,Offline,",
        ]
        .join("\r\n")
            + "\r\n",
    )
    .unwrap();
    let imported = coordinator.cli_json(&["roster", "import", &file.display().to_string()]);
    assert_eq!(imported["imported"], 5, "{imported}");

    let by_host = coordinator.agents_by_hostname();
    // The probe sent its addresses (loopback left out).
    assert_eq!(by_host["laptop-7"]["ip_addresses"], serde_json::json!(["10.9.0.7"]));
    assert_eq!(
        by_host["laptop-7"]["mac_addresses"],
        serde_json::json!(["08:00:27:00:00:07"])
    );
    assert_eq!(by_host["laptop-7"]["roster"], "matched", "{:?}", by_host["laptop-7"]);
    assert_eq!(by_host["laptop-7"]["roster_hosts"][0], "PC-RENAMED");
    assert_eq!(by_host["laptop-8"]["roster"], "matched", "{:?}", by_host["laptop-8"]);
    assert_eq!(by_host["laptop-8"]["roster_hosts"][0], "PC-MAC");
    assert_eq!(by_host["laptop-9"]["roster"], "ambiguous", "{:?}", by_host["laptop-9"]);
    let twins: Vec<&str> = by_host["laptop-9"]["roster_hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|host| host.as_str().unwrap())
        .collect();
    assert_eq!(twins, vec!["PC-TWIN-A", "PC-TWIN-B"]);

    // laptop-7 completes PC-RENAMED; PC-MAC is behind by its probe; the
    // twins and PC-NOPROBE have no probe and no version.
    assert!(
        wait_until(Duration::from_secs(20), || coordinator.cli_json(&["status"])["roster"]
            ["completed"]
            == 1),
        "{}",
        coordinator.cli_json(&["status"])
    );
    let roster = coordinator.cli_json(&["status"])["roster"].clone();
    assert_eq!(
        (
            &roster["listed"],
            &roster["probed"],
            &roster["behind"],
            &roster["no_probe"],
            &roster["ambiguous"]
        ),
        (
            &serde_json::json!(5),
            &serde_json::json!(2),
            &serde_json::json!(1),
            &serde_json::json!(3),
            &serde_json::json!(1)
        ),
        "{roster}"
    );

    // The history: every point over all five listed endpoints, once the
    // engine has taken the three probes in and laptop-7 completed.
    let history_done = |status: &serde_json::Value| {
        status["total"] == 3
            && status["history"]
                .as_array()
                .and_then(|points| points.last())
                .is_some_and(|last| last["roster"]["completed"] == 1)
    };
    assert!(
        wait_until(Duration::from_secs(30), || history_done(
            &coordinator.cli_json(&["status", "--history"])
        )),
        "{}",
        coordinator.cli_json(&["status", "--history"])
    );
    let status = coordinator.cli_json(&["status", "--history"]);
    let roster = status["roster"].clone();
    let history = status["history"].as_array().unwrap();
    assert!(!history.is_empty(), "{status}");
    for point in history {
        let r = &point["roster"];
        assert_eq!(r["listed"], 5, "{point}");
        let sum = r["completed"].as_u64().unwrap() + r["behind"].as_u64().unwrap() + r["no_probe"].as_u64().unwrap();
        assert_eq!(sum, 5, "{point}");
        assert_eq!(r["no_probe"], 3, "{point}");
    }
    let last = &history.last().unwrap()["roster"];
    assert_eq!(
        (&last["completed"], &last["behind"]),
        (&roster["completed"], &roster["behind"])
    );
    let table = String::from_utf8_lossy(&coordinator.cli(&["status", "--history"]).stdout).into_owned();
    assert!(table.contains("over the whole roster:"), "{table}");
    coordinator.stop();
}
