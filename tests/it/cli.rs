//! The `splitdns` binary: `check` on good and bad configs, `run` end to end.

use crate::support::free_port;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use splitdns::config::Config;
use tempfile::TempDir;

use crate::support::client::{self, udp_maybe_reply};
use crate::support::fixtures::internet;
use crate::support::{FakeUpstream, answer_ips, query};

const BIN: &str = env!("CARGO_BIN_EXE_splitdns");

fn splitdns(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run splitdns")
}

fn check(path: &Path) -> Output {
    splitdns(&["check", "--config", path.to_str().unwrap()])
}

fn write(dir: &TempDir, file: &str, text: &str) -> PathBuf {
    let path = dir.path().join(file);
    std::fs::write(&path, text).unwrap();
    path
}

const GOOD: &str = r#"
rules = ["local=/lan/", "address=/gw.lan/192.0.2.1", "server=/corp.example/#"]

[server]
listen = ["127.0.0.1:0"]

[upstream]
servers = ["127.0.0.1:5300"]
timeout = "2s"

[[route]]
zones = ["consul"]
servers = ["127.0.0.1:8600"]
"#;

/// Asserts a failed `check` explained itself in one line naming the file and `what`.
#[track_caller]
fn assert_rejected(output: &Output, file: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "accepted a bad config; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected a one-line message, got:\n{stderr}"
    );
    assert!(
        lines[0].contains(file) && lines[0].contains(what),
        "message should name {file:?} and {what:?}: {stderr}"
    );
}

#[test]
fn check_accepts_every_example_config() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut checked = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let output = check(&path);
        assert!(
            output.status.success(),
            "{} rejected: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        Config::from_toml(&text, &path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        checked += 1;
    }
    assert!(checked > 0, "no .toml files in {}", dir.display());
}

#[test]
fn check_prints_the_routing_table() {
    let dir = TempDir::new().unwrap();
    let path = write(&dir, "good.toml", GOOD);

    let output = check(&path);

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let has_route = |zone: &str, server: &str| {
        stdout
            .lines()
            .any(|l| l.contains("->") && l.contains(zone) && l.contains(server))
    };
    assert!(has_route("consul", "127.0.0.1:8600"), "{stdout}");
    for zone in ["corp.example", "lan", "gw.lan"] {
        assert!(has_route(zone, ""), "no line for {zone}: {stdout}");
    }
}

#[test]
fn check_rejects_an_unknown_key() {
    let dir = TempDir::new().unwrap();
    let text = GOOD.replace("timeout = \"2s\"", "timeout = \"2s\"\ntimeuot = \"3s\"");
    let path = write(&dir, "unknown-key.toml", &text);

    assert_rejected(&check(&path), "unknown-key.toml", "timeuot");
}

#[test]
fn check_rejects_a_bad_duration() {
    let dir = TempDir::new().unwrap();
    let text = GOOD.replace("timeout = \"2s\"", "timeout = \"2 parsecs\"");
    let path = write(&dir, "bad-duration.toml", &text);

    assert_rejected(&check(&path), "bad-duration.toml", "timeout");
}

#[test]
fn check_rejects_a_duplicate_zone() {
    let dir = TempDir::new().unwrap();
    let text = GOOD.replace("rules = [", "rules = [\"server=/consul/127.0.0.1#8601\", ");
    let path = write(&dir, "duplicate.toml", &text);

    assert_rejected(&check(&path), "duplicate.toml", "consul");
}

#[test]
fn check_rejects_a_bad_rule_line() {
    let dir = TempDir::new().unwrap();
    for (i, rule) in [
        "frobnicate=/x/1.2.3.4",
        "server=/consul/not-an-address",
        "address=/gw.lan/999.0.0.1",
        "rev-server=10.0.0.0/99,127.0.0.1",
    ]
    .into_iter()
    .enumerate()
    {
        let file = format!("bad-rule-{i}.toml");
        let text = GOOD.replace("rules = [", &format!("rules = [\"{rule}\", "));
        let path = write(&dir, &file, &text);
        assert_rejected(&check(&path), &file, rule);
    }
}

#[test]
fn check_rejects_a_missing_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("nowhere.toml");

    let output = check(&path);

    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("nowhere.toml"));
}

#[test]
fn unknown_keys_are_rejected_in_every_table() {
    let cases = [
        (
            "top level",
            GOOD.replace("[server]", "colour = \"blue\"\n[server]"),
        ),
        (
            "[server]",
            GOOD.replace("[server]", "[server]\ncolour = \"blue\""),
        ),
        (
            "[upstream]",
            GOOD.replace("[upstream]", "[upstream]\ncolour = \"blue\""),
        ),
        (
            "[[route]]",
            GOOD.replace("[[route]]", "[[route]]\ncolour = \"blue\""),
        ),
        (
            "[cache]",
            format!("{GOOD}\n[cache]\nsize = 100\ncolour = \"blue\"\n"),
        ),
        ("unknown table", format!("{GOOD}\n[colour]\nblue = true\n")),
    ];
    for (table, text) in cases {
        let err = Config::from_toml(&text, Path::new("colour.toml"))
            .err()
            .unwrap_or_else(|| panic!("unknown key accepted in {table}"));
        assert!(err.to_string().contains("colour"), "{table}: {err}");
    }
    let cache = format!(
        "{GOOD}\n[cache]\nsize = 100\nmin_ttl = 0\nmax_ttl = 86400\nmax_negative_ttl = 3600\n"
    );
    Config::from_toml(&cache, Path::new("cache.toml")).unwrap_or_else(|e| panic!("{e}"));
}

/// A `splitdns run` child process, killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `splitdns run` and waits until it answers; retries on another port if the one
/// picked was taken in between.
async fn start_run(dir: &TempDir, upstream: &FakeUpstream) -> (Running, SocketAddr) {
    start_run_with(dir, upstream, Command::new(BIN)).await
}

/// [`start_run`] with `command` (the binary, or a wrapper that execs it) given the arguments.
async fn start_run_with(
    dir: &TempDir,
    upstream: &FakeUpstream,
    mut command: Command,
) -> (Running, SocketAddr) {
    for attempt in 0..3 {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let text = format!(
            "[server]\nlisten = [\"{addr}\"]\n[upstream]\nservers = [\"{}\"]\n",
            upstream.addr()
        );
        let path = write(dir, &format!("run-{attempt}.toml"), &text);
        let child = command
            .args(["run", "--config", path.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn splitdns run");
        let mut running = Running(child);
        let packet = client::encode(&query("www.example.", RecordType::A));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if running.0.try_wait().unwrap().is_some() {
                break; // exited: most likely the port was taken; try another
            }
            if udp_maybe_reply(addr, &packet).await.is_some() {
                return (running, addr);
            }
        }
    }
    panic!("splitdns run never answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_queries() {
    let upstream = FakeUpstream::start(internet()).await;
    let dir = TempDir::new().unwrap();

    let (_running, addr) = start_run(&dir, &upstream).await;

    let msg = query("www.example.", RecordType::A);
    for reply in [client::udp(addr, &msg).await, client::tcp(addr, &msg).await] {
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answer_ips(&reply).len(), 1);
    }
}

/// `(soft, hard)` limit on open files of process `pid`, from /proc (proc(5) `limits`).
fn open_files_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut fields = line["Max open files".len()..].split_whitespace();
    (
        fields.next().unwrap().to_string(),
        fields.next().unwrap().to_string(),
    )
}

/// Each upstream query waits on a socket of its own, up to `max_inflight` (1024) per route:
/// systemd's default soft limit of 1024 open files would cap them. `splitdns run` raises the
/// soft limit to the hard one, which needs no privilege (setrlimit(2)).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_raises_the_soft_limit_on_open_files_to_the_hard_one() {
    let upstream = FakeUpstream::start(internet()).await;
    let dir = TempDir::new().unwrap();
    let (_, hard) = open_files_limit(std::process::id());
    let mut prlimit = Command::new("prlimit");
    prlimit.arg(format!("--nofile=256:{hard}")).arg(BIN);

    let (running, _) = start_run_with(&dir, &upstream, prlimit).await;

    assert_eq!(open_files_limit(running.0.id()), (hard.clone(), hard));
}

#[test]
fn run_with_a_bad_config_fails_with_one_line() {
    let dir = TempDir::new().unwrap();
    let text = GOOD.replace("[server]", "[server]\nlisten_on = []");
    let path = write(&dir, "bad-run.toml", &text);

    let output = splitdns(&["run", "--config", path.to_str().unwrap()]);

    assert_rejected(&output, "bad-run.toml", "listen_on");
}

/// `check --bind` tells whether `run` could listen: the package's postinst asks it before
/// starting the service, so that a host where dnsmasq still holds port 53 gets the migration
/// steps instead of a unit that fails in a restart loop.
#[test]
fn check_bind_names_an_address_another_program_holds() {
    // An ephemeral UDP port whose TCP twin is free too: another test may hold that one.
    let (_udp, _tcp, held) = (0..50)
        .find_map(|_| {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let held = udp.local_addr().unwrap();
            let tcp = std::net::TcpListener::bind(held).ok()?;
            Some((udp, tcp, held))
        })
        .expect("no free port for both UDP and TCP");
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "held.toml",
        &format!("[server]\nlisten = [\"{held}\"]\n[upstream]\nservers = [\"127.0.0.1:9\"]\n"),
    );
    let out = splitdns(&["check", "--bind", "--config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.starts_with("splitdns: "), "{stderr}");
    assert!(stderr.contains(&held.to_string()), "{stderr}");
    assert!(stderr.contains("another DNS server"), "{stderr}");
}

#[test]
fn check_bind_passes_where_run_could_listen() {
    let dir = TempDir::new().unwrap();
    let path = write(
        &dir,
        "free.toml",
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"127.0.0.1:9\"]\n",
    );
    let out = splitdns(&["check", "--bind", "--config", path.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("free to listen on: 127.0.0.1:0"),
        "{stdout}"
    );
}
