//! `splitdns control`: the real binary as the client, against a running splitdns, each command's
//! effect checked through DNS and the fakes' query counts.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hickory_proto::rr::RecordType;
use tempfile::TempDir;

use crate::support::daemon::{BIN, Daemon};
use crate::support::harness::{parse, render};
use crate::support::{FakeUpstream, Splitdns, answer_ips, client, fixtures, query};

/// A directory for the socket, and the config naming it, rendered against the fakes.
fn config(dir: &TempDir, upstreams: &[(&str, &FakeUpstream)]) -> String {
    let config = format!(
        "{}\n[control]\nsocket = {:?}\n",
        fixtures::DAEMON_CONFIG,
        socket(dir)
    );
    render(&config, upstreams)
}

/// The internet and Consul fakes, a directory for the socket, and [`fixtures::DAEMON_CONFIG`] rendered
/// against them.
struct Setup {
    internet: FakeUpstream,
    consul: FakeUpstream,
    dir: TempDir,
    text: String,
}

impl Setup {
    async fn new() -> Self {
        let internet = FakeUpstream::start(fixtures::internet()).await;
        let consul = FakeUpstream::start(fixtures::consul()).await;
        let dir = TempDir::new().unwrap();
        let text = config(&dir, &[("internet", &internet), ("consul", &consul)]);
        Self {
            internet,
            consul,
            dir,
            text,
        }
    }
}

fn socket(dir: &TempDir) -> PathBuf {
    dir.path().join("control.sock")
}

/// Runs `splitdns ARGS` to completion (it answers within its own timeout).
fn splitdns(args: &[&str]) -> Output {
    tokio::task::block_in_place(|| Command::new(BIN).args(args).output().unwrap())
}

fn control(socket: &Path, args: &[&str]) -> Output {
    let mut all = vec!["control", "--socket", socket.to_str().unwrap()];
    all.extend_from_slice(args);
    splitdns(&all)
}

/// stdout of a command that must succeed.
#[track_caller]
fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn ask(addr: std::net::SocketAddr, qname: &str) {
    let reply = client::udp(addr, &query(qname, RecordType::A)).await;
    assert!(!answer_ips(&reply).is_empty(), "{qname}: {reply}");
}

/// Expected: "`reload`: reload and wait for the outcome; exit 0 when applied, non-zero with the
/// same message as `check` when rejected." Without `--socket` the path comes from the config's
/// `[control] socket`. The new route must be in force when the command returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_reload_waits_for_the_outcome_and_words_a_rejection_as_check_does() {
    let Setup {
        internet,
        consul: _consul,
        dir,
        text,
    } = Setup::new().await;
    let consul2 = FakeUpstream::start(fixtures::consul()).await;
    let daemon = Daemon::start(&text, None);
    let addr = daemon.wait_ready()[0];
    let path = daemon.config_path().to_str().unwrap().to_string();
    ask(addr, "web.service.consul.").await;

    daemon.rewrite_config(&config(
        &dir,
        &[("internet", &internet), ("consul", &consul2)],
    ));
    let stdout = ok(&splitdns(&["control", "--config", &path, "reload"]));

    assert!(stdout.contains("reloaded"), "{stdout}");
    ask(addr, "web.service.consul.").await;
    assert_eq!(
        consul2.count("web.service.consul.", RecordType::A),
        1,
        "the new route is in force when the command returns"
    );

    let bad = text.replace(r#"timeout = "1s""#, r#"timeout = "two seconds""#);
    daemon.rewrite_config(&bad);
    let rejected = splitdns(&["control", "--config", &path, "reload"]);
    let check = splitdns(&["check", "--config", &path]);

    assert!(!rejected.status.success());
    assert!(!check.status.success());
    assert_eq!(
        String::from_utf8_lossy(&rejected.stderr),
        String::from_utf8_lossy(&check.stderr)
    );
    ask(addr, "web.service.consul.").await;
    assert_eq!(
        consul2.count("web.service.consul.", RecordType::A),
        1,
        "the previous config still serves, from its cache"
    );
}

/// Expected: "`flush [ZONE|NAME ...]`: drop the whole cache, or the entries at and under each
/// zone; prints how many." A flushed name is asked upstream again; a kept one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_flush_drops_the_zones_named_or_everything() {
    let Setup {
        internet,
        consul,
        dir,
        text,
    } = Setup::new().await;
    let dns = Splitdns::start_config(parse(&text)).await;
    let names = [
        "www.example.",
        "web.service.consul.",
        "node-a.node.dc1.consul.",
    ];
    for qname in names {
        ask(dns.addr(), qname).await;
    }

    let stdout = ok(&control(&socket(&dir), &["flush", "service.CONSUL"]));

    assert!(stdout.starts_with("flushed 1 entries"), "{stdout}");
    for qname in names {
        ask(dns.addr(), qname).await;
    }
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 2);
    assert_eq!(consul.count("node-a.node.dc1.consul.", RecordType::A), 1);
    assert_eq!(internet.count("www.example.", RecordType::A), 1);

    let stdout = ok(&control(&socket(&dir), &["flush"]));

    assert!(stdout.starts_with("flushed 3 entries"), "{stdout}");
    ask(dns.addr(), "www.example.").await;
    assert_eq!(internet.count("www.example.", RecordType::A), 2);

    let bad = control(&socket(&dir), &["flush", "bad..name"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.starts_with("splitdns: flush \"bad..name\": "),
        "{stderr}"
    );
}

/// Expected: "`stats`: what SIGUSR1 logs, on stdout (cache size, hits, misses, per-server
/// queries, failures, health)."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_stats_prints_the_cache_and_every_server() {
    let Setup {
        internet,
        consul,
        dir,
        text,
    } = Setup::new().await;
    let dns = Splitdns::start_config(parse(&text)).await;
    ask(dns.addr(), "www.example.").await;
    ask(dns.addr(), "www.example.").await;

    let stdout = ok(&control(&socket(&dir), &["stats"]));

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "cache size 10000 entries 1 hits 1 misses 1 insertions 1 evictions 0"
    );
    let server = |addr: std::net::SocketAddr| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("server {addr} ")))
            .unwrap_or_else(|| panic!("no line for {addr} in:\n{stdout}"))
            .to_string()
    };
    assert!(
        server(internet.addr()).ends_with("queries 1 failed 0 health up"),
        "{stdout}"
    );
    assert!(
        server(consul.addr()).ends_with("queries 0 failed 0 health up"),
        "{stdout}"
    );
}

/// Expected: "`routes`: the routing table in force now, like `check` prints it."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_routes_prints_the_table_check_prints() {
    let Setup {
        internet: _internet,
        consul,
        dir,
        text,
    } = Setup::new().await;
    let file = dir.path().join("splitdns.toml");
    std::fs::write(&file, &text).unwrap();
    let dns = Splitdns::start_config(parse(&text)).await;

    let routes = ok(&control(&socket(&dir), &["routes"]));
    let check = ok(&splitdns(&["check", "--config", file.to_str().unwrap()]));

    let (_, table) = check.split_once('\n').expect("check's first line");
    assert_eq!(routes, table);
    assert!(
        routes.contains(&format!("consul. -> {}", consul.addr())),
        "{routes}"
    );
    drop(dns);
}

/// The socket is mode 0660 and, when splitdns starts as root and switches to
/// `[server] user`, owned by that user; a socket file left by an earlier run is replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_socket_is_0660_owned_by_the_service_user_and_replaces_a_stale_one() {
    let Setup {
        internet: _internet,
        consul: _consul,
        dir,
        mut text,
    } = Setup::new().await;
    drop(std::os::unix::net::UnixListener::bind(socket(&dir)).unwrap());
    assert!(socket(&dir).exists(), "a stale socket file is left");
    let root = nix::unistd::Uid::effective().is_root();
    if root {
        text = text.replace("[server]", "[server]\nuser = \"nobody\"");
    }
    let daemon = Daemon::start(&text, None);
    daemon.wait_ready();

    let meta = std::fs::metadata(socket(&dir)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    if root {
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        assert_eq!(meta.uid(), nobody.uid.as_raw());
        assert_eq!(meta.gid(), nobody.gid.as_raw());
    }
    let stdout = ok(&control(&socket(&dir), &["stats"]));
    assert!(stdout.starts_with("cache size"), "{stdout}");
}

/// Expected: "a second splitdns on the same socket path is a typed, worded start-up error", and
/// it leaves the first one's socket alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_splitdns_on_the_same_control_socket_does_not_start() {
    let Setup {
        internet: _internet,
        consul: _consul,
        dir,
        text,
    } = Setup::new().await;
    let first = Splitdns::start_config(parse(&text)).await;

    let second = splitdns::Server::bind(parse(&text)).await;

    let Err(error) = second else {
        panic!("a second splitdns started on the same control socket")
    };
    assert!(
        matches!(error, splitdns::StartError::Control(_)),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!(
            "[control] socket = {:?}: another splitdns answers on it; stop that one, or give \
             this one another [control] socket",
            socket(&dir)
        )
    );
    ok(&control(&socket(&dir), &["stats"]));
    drop(first);
}

/// Without a running splitdns the client says where it looked, in one line.
#[test]
fn control_without_a_server_names_the_socket() {
    let dir = TempDir::new().unwrap();
    let output = Command::new(BIN)
        .args([
            "control",
            "--socket",
            socket(&dir).to_str().unwrap(),
            "stats",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "splitdns: cannot reach splitdns at {}",
            socket(&dir).display()
        )),
        "{stderr}"
    );
}
