//! splitdns as a service on a host: systemd's notify protocol, SIGHUP reloads, the switch to an
//! unprivileged user, and the systemd unit itself. These run the real binary.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::client;
use crate::support::daemon::{BIN, Daemon, Journal};
use crate::support::fixtures;
use crate::support::harness::render;
use crate::support::prereq;
use crate::support::{FakeUpstream, answer_ips, assert_rcode, query};

const CONFIG: &str = fixtures::DAEMON_CONFIG;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_notified_once_listening() {
    let internet = FakeUpstream::start(fixtures::internet()).await;
    let consul = FakeUpstream::start(fixtures::consul()).await;
    let daemon = Daemon::start(
        &render(CONFIG, &[("internet", &internet), ("consul", &consul)]),
        None,
    );
    let addrs = daemon.wait_ready();
    assert_eq!(addrs.len(), 1);
    let reply = client::udp(addrs[0], &query("www.example.", RecordType::A)).await;
    assert_eq!(answer_ips(&reply).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_keeps_the_cache_of_unchanged_routes_and_drops_changed_ones() {
    let internet = FakeUpstream::start(fixtures::internet()).await;
    let consul = FakeUpstream::start(fixtures::consul()).await;
    let consul2 = FakeUpstream::start(fixtures::consul()).await;
    let upstreams = [("internet", &internet), ("consul", &consul)];
    let daemon = Daemon::start(&render(CONFIG, &upstreams), None);
    let addr = daemon.wait_ready()[0];
    for qname in ["www.example.", "web.service.consul."] {
        client::udp(addr, &query(qname, RecordType::A)).await;
    }

    daemon.rewrite_config(&render(
        CONFIG,
        &[("internet", &internet), ("consul", &consul2)],
    ));
    let after = daemon.reload();

    assert_eq!(after, vec![addr], "the literal listener is kept as it was");
    for qname in ["www.example.", "web.service.consul."] {
        let reply = client::udp(addr, &query(qname, RecordType::A)).await;
        assert_rcode(&reply, ResponseCode::NoError);
    }
    assert_eq!(
        internet.count("www.example.", RecordType::A),
        1,
        "unchanged route: a cache hit"
    );
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(
        consul2.count("web.service.consul.", RecordType::A),
        1,
        "changed route: asked anew"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_bad_config_says_what_check_says_and_keeps_serving() {
    let internet = FakeUpstream::start(fixtures::internet()).await;
    let consul = FakeUpstream::start(fixtures::consul()).await;
    let daemon = Daemon::start(
        &render(CONFIG, &[("internet", &internet), ("consul", &consul)]),
        None,
    );
    let addr = daemon.wait_ready()[0];

    daemon.rewrite_config("[upstream]\ntimeout = \"two seconds\"\n");
    let after = daemon.reload();

    let check = Command::new(BIN)
        .args(["check", "--config", daemon.config_path().to_str().unwrap()])
        .output()
        .unwrap();
    let check = String::from_utf8_lossy(&check.stderr);
    let problem = check
        .trim()
        .strip_prefix("splitdns: ")
        .expect("check's one line");
    let stderr = daemon.stderr();
    assert!(
        stderr.contains(&format!(
            "reload rejected, still serving the previous config: {problem}"
        )),
        "check said {problem:?}; the daemon said:\n{stderr}"
    );
    assert_eq!(after, vec![addr]);
    let reply = client::udp(addr, &query("web.service.consul.", RecordType::A)).await;
    assert_eq!(answer_ips(&reply).len(), 2, "the old routes still answer");
}

/// SIGHUP applies `listen`: a new entry is bound and answers by the time the reload is
/// reported (READY=1), and a removed one is closed: UDP and TCP to it are refused
/// (ECONNREFUSED) and nothing answers there, while the entry kept answers on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_binds_new_listen_entries_and_closes_removed_ones() {
    let internet = FakeUpstream::start(fixtures::internet()).await;
    let consul = FakeUpstream::start(fixtures::consul()).await;
    let upstreams = [("internet", &internet), ("consul", &consul)];
    let daemon = Daemon::start(&render(CONFIG, &upstreams), None);
    let first = daemon.wait_ready()[0];
    let answers = |addr| async move {
        let reply = client::udp(addr, &query("www.example.", RecordType::A)).await;
        assert_rcode(&reply, ResponseCode::NoError);
        assert_eq!(answer_ips(&reply).len(), 1, "{addr}: {reply}");
    };

    let two = CONFIG.replace(r#"["127.0.0.1:0"]"#, r#"["127.0.0.1:0", "127.0.0.2:0"]"#);
    daemon.rewrite_config(&render(&two, &upstreams));
    let addrs = daemon.reload();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert_eq!(addrs[0], first);
    answers(addrs[1]).await;

    let only_second = CONFIG.replace("127.0.0.1:0", "127.0.0.2:0");
    daemon.rewrite_config(&render(&only_second, &upstreams));
    let left = daemon.reload();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].ip().to_string(), "127.0.0.2");
    client::assert_refused(first).await;
    answers(left[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_as_root_it_runs_as_the_configured_user_with_one_capability() {
    if prereq::skip(
        "started_as_root_it_runs_as_the_configured_user_with_one_capability",
        "root",
        prereq::not_root(),
    ) {
        return;
    }
    let internet = FakeUpstream::start(fixtures::internet()).await;
    let consul = FakeUpstream::start(fixtures::consul()).await;
    let config = CONFIG.replace("[server]", "[server]\nuser = \"nobody\"");
    let daemon = Daemon::start(
        &render(&config, &[("internet", &internet), ("consul", &consul)]),
        None,
    );
    let addr = daemon.wait_ready()[0];
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let (uid, gid) = (nobody.uid.to_string(), nobody.gid.to_string());

    let tasks = std::fs::read_dir(format!("/proc/{}/task", daemon.pid())).unwrap();
    let mut threads = 0;
    for task in tasks {
        let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.split_whitespace().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(field("Uid:"), vec![uid.as_str(); 4], "{status}");
        assert_eq!(field("Gid:"), vec![gid.as_str(); 4], "{status}");
        assert!(field("Groups:").is_empty(), "{status}");
        // Bit 10: CAP_NET_BIND_SERVICE, and nothing else.
        for set in ["CapPrm:", "CapEff:", "CapBnd:"] {
            assert_eq!(field(set), vec!["0000000000000400"], "{set} in {status}");
        }
        assert_eq!(field("CapInh:"), vec!["0000000000000000"], "{status}");
        threads += 1;
    }
    assert!(threads > 1, "the runtime's threads were looked at too");

    let reply = client::udp(addr, &query("www.example.", RecordType::A)).await;
    assert_eq!(answer_ips(&reply).len(), 1);
    daemon.reload();
    assert!(daemon.stderr().contains("reloaded"), "{}", daemon.stderr());
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    if prereq::skip(
        "the_systemd_unit_passes_systemd_analyze_verify",
        "systemd-analyze",
        prereq::no_program("systemd-analyze"),
    ) {
        return;
    }
    let unit = include_str!("../../systemd/splitdns.service");
    assert!(unit.contains("ExecStart=/usr/bin/splitdns "), "{unit}");
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("splitdns.service");
    std::fs::write(&path, unit.replace("/usr/bin/splitdns", BIN)).unwrap();

    let out = Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .unwrap();

    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("splitdns.service"))
        .collect();
    assert!(out.status.success() && complaints.is_empty(), "{stderr}");
}

/// The unit waits for a reload's outcome (the control command, not a bare SIGHUP), gives the
/// control socket its directory, and allows more open files than the packaged config can use:
/// a TCP client each, an upstream TCP retry per query in flight, up to 16 UDP sockets per
/// upstream server, two per listen address (systemd's default soft limit is 1024).
#[test]
fn the_systemd_unit_fits_the_packaged_config() {
    let unit = include_str!("../../systemd/splitdns.service");
    assert!(
        unit.contains("\nExecReload=/usr/bin/splitdns control reload\n"),
        "{unit}"
    );
    assert!(unit.contains("\nRuntimeDirectory=splitdns\n"), "{unit}");
    let limit: usize = unit
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .expect("LimitNOFILE=")
        .parse()
        .unwrap();
    let config = splitdns::Config::from_toml(
        include_str!("../../conf/splitdns.toml"),
        std::path::Path::new("conf/splitdns.toml"),
    )
    .unwrap();
    let inflight: usize = config.upstream.max_inflight
        + config
            .routes
            .iter()
            .map(|r| r.max_inflight.unwrap_or(config.upstream.max_inflight))
            .sum::<usize>();
    // resolv.conf: counted as 3 nameservers, the most glibc uses (resolv.conf(5)).
    let servers = config.upstream.servers.len().max(3)
        + config
            .routes
            .iter()
            .map(|r| match &r.action {
                splitdns::config::RouteAction::Forward(servers) => servers.len(),
                _ => 0,
            })
            .sum::<usize>();
    let needed = config.tcp.max_connections + inflight + 16 * servers + 2 * 8 + 64;
    assert!(
        limit >= needed,
        "LimitNOFILE={limit}, the packaged config may use {needed}"
    );
}

/// The config the package installs as /etc/splitdns/splitdns.toml serves a real Consul +
/// Docker host as it is: 127.0.0.1:53 and docker0:53, consul to the local agent, metrics off
/// CoreDNS's 9153, and nothing forwarded to the documentation addresses of its examples
/// (RFC 5737), which the host cannot reach.
#[test]
fn the_packaged_config_fits_a_real_host() {
    let config = splitdns::Config::from_toml(
        include_str!("../../conf/splitdns.toml"),
        std::path::Path::new("conf/splitdns.toml"),
    )
    .unwrap();
    let listen: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, ["127.0.0.1:53", "docker0:53"]);
    let metrics = config.metrics.expect("[metrics]");
    assert!(metrics.listen.ip().is_loopback() && metrics.listen.port() != 9153);
    let documentation = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
        .map(|n| n.parse::<ipnet::IpNet>().unwrap());
    let mut forwarded = config.upstream.servers.clone();
    for route in &config.routes {
        if let splitdns::config::RouteAction::Forward(servers) = &route.action {
            forwarded.extend(servers.iter().cloned());
        }
    }
    assert!(forwarded.contains(&"127.0.0.1:8600".parse().unwrap()));
    for server in forwarded {
        assert!(
            !documentation.iter().any(|n| n.contains(&server.ip())),
            "forwards to {server}"
        );
    }
}

#[test]
fn the_nomad_job_renders_a_valid_config() {
    let text = heredoc(NOMAD_JOB, "EOT");
    let config = splitdns::Config::from_toml(&text, std::path::Path::new("nomad template"))
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(config.user.as_deref(), Some("splitdns"));
    for bridge in ["docker0:53", "nomad:53"] {
        assert!(
            config.listen.iter().any(|l| l.to_string() == bridge),
            "{bridge}"
        );
    }
}

const NOMAD_JOB: &str = include_str!("../../conf/nomad/splitdns.nomad.hcl");

/// The text of the job's `<<-MARKER` heredoc, with the common indentation stripped as HCL does.
fn heredoc(job: &str, marker: &str) -> String {
    let (_, rest) = job
        .split_once(&format!("<<-{marker}\n"))
        .unwrap_or_else(|| panic!("no <<-{marker} heredoc"));
    let lines: Vec<&str> = rest.lines().take_while(|l| l.trim() != marker).collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| format!("{}\n", l.get(indent..).unwrap_or("")))
        .collect()
}

/// Nomad's data directory is normally closed to other users (root, 0700 or 0711), so once
/// splitdns runs as its own user it cannot read the template's file in the task directory
/// again, and a reload would fail. The job's start script copies the file to /run/splitdns and
/// its change_script copies it again before the SIGHUP. Run here with the job's own scripts,
/// /run/splitdns and the binary moved into a temporary directory, and `nobody` as the user.
#[tokio::test]
async fn the_nomad_job_reloads_when_the_data_directory_is_closed() {
    if prereq::skip(
        "the_nomad_job_reloads_when_the_data_directory_is_closed",
        "root",
        prereq::not_root(),
    ) {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let group = nix::unistd::Group::from_gid(nobody.gid)
        .unwrap()
        .unwrap()
        .name;
    let tmp = tempfile::TempDir::new().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = tmp.path().join("data");
    let task_dir = data.join("alloc/0/splitdns/local");
    std::fs::create_dir_all(&task_dir).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let adapt = |script: String| {
        script
            .replace("/run/splitdns", &run.join("splitdns").display().to_string())
            .replace("/usr/bin/splitdns", BIN)
            .replace("-o splitdns -g splitdns", &format!("-o nobody -g {group}"))
    };
    let rendered = task_dir.join("splitdns.toml");
    let config = "[server]\nlisten = [\"127.0.0.1:0\"]\nuser = \"nobody\"\n\
                  [upstream]\nservers = [\"127.0.0.1:9\"]\n";
    std::fs::write(&rendered, config).unwrap();
    let closed = Command::new("runuser")
        .args(["-u", "nobody", "--", "cat"])
        .arg(&rendered)
        .output()
        .unwrap();
    assert!(
        !closed.status.success(),
        "nobody can read the task directory: no test"
    );

    let daemon = Daemon::start_script(
        &adapt(heredoc(NOMAD_JOB, "START")),
        &[("NOMAD_TASK_DIR", task_dir.as_path())],
    );
    let addr = daemon.wait_ready()[0];
    std::fs::write(
        &rendered,
        format!("rules = [\"address=/probe.lan/192.0.2.7\"]\n{config}"),
    )
    .unwrap();
    let change = Command::new("sh")
        .arg("-c")
        .arg(adapt(heredoc(NOMAD_JOB, "RELOAD")))
        .env("NOMAD_TASK_DIR", &task_dir)
        .output()
        .unwrap();
    assert!(
        change.status.success(),
        "{}",
        String::from_utf8_lossy(&change.stderr)
    );
    daemon.wait_notify("RELOADING=1");
    daemon.wait_ready();

    let reply = client::udp(addr, &query("probe.lan.", RecordType::A)).await;
    assert_eq!(
        answer_ips(&reply),
        ["192.0.2.7".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert!(!daemon.stderr().contains("rejected"), "{}", daemon.stderr());
}

/// A config that starts with one info line ("starting") and one warning (an interface that
/// does not exist yet), touching nothing outside the test.
const LOGS_A_WARNING: &str = "\
[server]
listen = [\"127.0.0.1:0\", \"nosuchif0:0\"]
[upstream]
servers = [\"127.0.0.1:9\"]
";

/// Under systemd, stderr is a stream to the journal, named by JOURNAL_STREAM (systemd.exec(5):
/// "programs may compare the device and inode numbers ... with those of stderr"). The journal
/// reads a syslog priority from a `<N>` prefix (sd-daemon(3): "<4>" SD_WARNING, "<6>" SD_INFO)
/// and stamps each line itself, so a line has the prefix and no timestamp of its own, and
/// `journalctl -p warning` shows the warning but not the info line.
#[test]
fn journal_lines_carry_a_priority_and_no_timestamp() {
    let daemon = Daemon::start_with_journal(LOGS_A_WARNING, Journal::Stderr);
    daemon.wait_ready();
    let stderr = daemon.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    let info = lines.iter().find(|l| l.contains("starting"));
    let warning = lines.iter().find(|l| l.contains("nosuchif0"));
    assert!(info.is_some_and(|l| l.starts_with("<6>")), "{stderr}");
    assert!(warning.is_some_and(|l| l.starts_with("<4>")), "{stderr}");
    for line in lines {
        let (prefix, rest) = line.split_at(3.min(line.len()));
        assert!(
            ["<3>", "<4>", "<6>", "<7>"].contains(&prefix),
            "no priority: {line}"
        );
        assert!(!rest.trim_start().starts_with("20"), "a timestamp: {line}");
    }
}

/// JOURNAL_STREAM naming another stream than stderr (a script redirected it) is not the
/// journal: lines keep their own timestamp and no `<N>` prefix.
#[test]
fn a_redirected_stderr_keeps_timestamps() {
    let daemon = Daemon::start_with_journal(LOGS_A_WARNING, Journal::Elsewhere);
    daemon.wait_ready();
    let stderr = daemon.stderr();
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with("20"), "{stderr}");
    assert!(
        !stderr.contains("<6>") && !stderr.contains("<4>"),
        "{stderr}"
    );
}

/// The line that says why splitdns stopped is an error to the journal (`<3>`), so
/// `journalctl -p err -u splitdns` shows why the unit failed.
#[test]
fn a_fatal_error_is_an_error_in_the_journal() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[server]\nlisten = []\n").unwrap();
    let stderr_path = dir.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    let stream = {
        use std::os::unix::fs::MetadataExt;
        format!("{}:{}", meta.dev(), meta.ino())
    };
    let status = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env("JOURNAL_STREAM", stream)
        .stderr(stderr)
        .status()
        .unwrap();
    assert!(!status.success());
    let text = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(text.starts_with("<3>splitdns: "), "{text}");
    assert!(text.contains("bad.toml:2: [server] listen = []"), "{text}");
}
