//! The README's Docker recipes against a real Docker daemon (Debian's `docker.io`), real
//! containers and real resolvers (musl's and busybox's), root only: each test runs dockerd
//! in a network namespace of its own ([`Dockerd`]), with splitdns on that namespace's docker0
//! and loopback and the fake Consul agent and internet behind it. Nothing leaves the
//! namespace: its default route is a blackhole and no image is pulled.

use std::time::{Duration, Instant};

use crate::support::daemon::{self, Daemon};
use crate::support::dockerd::{self, Dockerd, Probe};
use crate::support::netns::Netns;
use crate::support::{FakeUpstream, fixtures, prereq};

/// splitdns on loopback and docker0, with the built-in `allow` (loopback and the subnets of
/// docker0), `consul` to the agent's port and everything else to "the internet".
const CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:53", "docker0:53"]

[upstream]
servers = ["127.0.0.1:5300"]

[[route]]
zones = ["consul"]
servers = ["127.0.0.1:8600"]

[log]
queries = true
"#;
/// Where the fake upstreams listen inside the namespace: the agent where the packaged config
/// sends `consul`, the internet on a port of its own.
const CONSUL: &str = "127.0.0.1:8600";
const INTERNET: &str = "127.0.0.1:5300";
/// How long splitdns may take to follow docker0, or to log a query.
const FOLLOW_WAIT: Duration = Duration::from_secs(10);

/// The commands a container runs, and what they must print.
const RESOLV_CONF: &str = "cat /etc/resolv.conf";
const MUSL_WEB: &str = "lookup addr web.service.consul";
const BUSYBOX_WEB: &str = "nslookup web.service.consul";
const BUSYBOX_SRV: &str = "nslookup -type=srv web.service.consul";
const MUSL_SRV: &str = "lookup query _web._tcp.service.consul 33";
const MUSL_WWW: &str = "lookup addr www.example";

/// A namespace holding the fake Consul agent and internet, where dockerd and splitdns run.
struct Host {
    ns: Netns,
    _consul: FakeUpstream,
    _internet: FakeUpstream,
}

impl Host {
    fn new(tag: &str) -> Self {
        let ns = Netns::new(tag);
        let (udp, tcp) = ns.udp_tcp(CONSUL.parse().unwrap());
        let consul = FakeUpstream::start_on(fixtures::consul(), udp, tcp);
        let (udp, tcp) = ns.udp_tcp(INTERNET.parse().unwrap());
        let internet = FakeUpstream::start_on(fixtures::internet(), udp, tcp);
        Self {
            ns,
            _consul: consul,
            _internet: internet,
        }
    }

    /// The namespace with dockerd started in it on `daemon_json`; `None` when dockerd cannot
    /// run here and `SPLITDNS_SKIP` names `docker` (it panics with the reason otherwise).
    fn with_dockerd(test: &str, tag: &str, daemon_json: &str) -> Option<(Self, Dockerd)> {
        if dockerd::skip(test) {
            return None;
        }
        let host = Self::new(tag);
        let docker = host.dockerd(test, daemon_json)?;
        Some((host, docker))
    }

    /// dockerd in this namespace; `None` when it cannot start here and `SPLITDNS_SKIP`
    /// names `docker` (it panics with the reason otherwise).
    fn dockerd(&self, test: &str, daemon_json: &str) -> Option<Dockerd> {
        match Dockerd::start(&self.ns, daemon_json) {
            Ok(dockerd) => Some(dockerd),
            Err(reason) => {
                prereq::skip(test, "docker", Some(reason));
                None
            }
        }
    }
}

#[track_caller]
fn assert_ok(probe: &Probe, needles: &[&str]) {
    assert_eq!(probe.status, 0, "{probe:#?}");
    for needle in needles {
        assert!(probe.output.contains(needle), "{needle:?} in {probe:#?}");
    }
}

/// busybox's `nslookup` failed, saying REFUSED (musl's resolver ignores a REFUSED answer
/// and would wait out its timeout).
#[track_caller]
fn assert_refused(probe: &Probe) {
    assert_ne!(probe.status, 0, "{probe:#?}");
    assert!(probe.output.contains("REFUSED"), "{probe:#?}");
}

/// web.service.consul's two addresses, by musl's getaddrinfo and by busybox; its SRV records
/// by busybox and, as `_web._tcp`, by musl's res_query; www.example by musl.
#[track_caller]
fn assert_consul_and_internet(probes: &[Probe]) {
    let [musl, busybox, srv, musl_srv, www] = probes else {
        panic!("{probes:#?}")
    };
    assert_ok(musl, &[]);
    assert_eq!(musl.sorted_lines(), ["10.0.0.1", "10.0.1.2"], "{musl:#?}");
    assert_ok(busybox, &["Address: 10.0.0.1", "Address: 10.0.1.2"]);
    assert_ok(
        srv,
        &[
            "service = 1 1 8080 node-a.node.dc1.consul",
            "service = 1 1 8081 0a000102.addr.dc1.consul",
        ],
    );
    assert_ok(musl_srv, &["rcode 0 answers 2"]);
    assert_ok(www, &[]);
    assert_eq!(
        www.sorted_lines(),
        ["192.0.2.10", "2001:db8::10"],
        "{www:#?}"
    );
}

const CONSUL_AND_INTERNET: [&str; 5] = [MUSL_WEB, BUSYBOX_WEB, BUSYBOX_SRV, MUSL_SRV, MUSL_WWW];

/// One container on `options`: its resolv.conf names `nameserver`, and through it Consul and
/// the internet answer (see [`assert_consul_and_internet`]).
#[track_caller]
fn assert_answered_through(docker: &Dockerd, options: &[&str], nameserver: &str) {
    let mut commands = vec![RESOLV_CONF];
    commands.extend(CONSUL_AND_INTERNET);
    let probes = docker.run(options, &commands);
    assert_ok(&probes[0], &[nameserver]);
    assert_consul_and_internet(&probes[1..]);
}

/// One container on the user-defined network `options` names, whose embedded DNS server
/// forwards to splitdns on docker0 from the container's own address (172.18.0.0/16): the
/// built-in `allow` refuses it, and splitdns logs that.
#[track_caller]
fn assert_embedded_dns_refused(docker: &Dockerd, splitdns: &Daemon, options: &[&str]) {
    let [resolv, web] = &docker.run(options, &[RESOLV_CONF, BUSYBOX_WEB])[..] else {
        unreachable!()
    };
    assert_ok(resolv, &["nameserver 127.0.0.11"]);
    assert_refused(web);
    logged_web(splitdns, "client=172.18.0.", "rcode=REFUSED");
}

/// Waits until splitdns logs web.service.consul asked by `client` and answered `rcode`.
#[track_caller]
fn logged_web(splitdns: &Daemon, client: &str, rcode: &str) {
    logged(splitdns, &[client, "name=web.service.consul.", rcode]);
}

/// Waits until one line of splitdns's log holds every needle; returns that line.
#[track_caller]
fn logged(splitdns: &Daemon, needles: &[&str]) -> String {
    let deadline = Instant::now() + FOLLOW_WAIT;
    loop {
        let log = splitdns.stderr();
        if let Some(line) = log
            .lines()
            .find(|line| needles.iter().all(|n| line.contains(n)))
        {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {needles:?} in:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until splitdns's log says `listening` on `addr` for the `nth` time.
#[track_caller]
fn listening(splitdns: &Daemon, addr: &str, nth: usize) {
    let needle = format!("listening (UDP and TCP) addr={addr} entry=docker0:53");
    let deadline = Instant::now() + FOLLOW_WAIT;
    while splitdns.stderr().matches(&needle).count() < nth {
        assert!(
            Instant::now() < deadline,
            "{needle:?} not {nth} time(s) in:\n{}",
            splitdns.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// docker0's interface index and IPv4 address in `ns`, if it exists.
fn docker0(ns: &Netns) -> Option<(u64, String)> {
    let out = std::process::Command::new("ip")
        .args(["-j", "-n", ns.name(), "addr", "show", "dev", "docker0"])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let links: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let link = &links[0];
    let ipv4 = link["addr_info"]
        .as_array()?
        .iter()
        .find(|a| a["family"] == "inet")?;
    Some((
        link["ifindex"].as_u64()?,
        ipv4["local"].as_str()?.to_string(),
    ))
}

/// README, "Pointing the host and Docker at it", step 4, the default bridge: Docker drops
/// the host's loopback nameserver and gives these containers Google's instead, and with
/// `--dns 172.17.0.1` they ask splitdns on the bridge, which the built-in `allow` admits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_bridge_with_dns_flag_asks_splitdns_on_docker0() {
    const TEST: &str = "default_bridge_with_dns_flag_asks_splitdns_on_docker0";
    let Some((host, docker)) = Host::with_dockerd(TEST, "dk-flag", "{}") else {
        return;
    };
    let splitdns = Daemon::start(CONFIG, Some(&host.ns));
    let addrs = splitdns.wait_ready();
    assert!(
        addrs.contains(&"172.17.0.1:53".parse().unwrap()),
        "{addrs:?}"
    );

    let [plain] = &docker.run(&["--network", "bridge"], &[RESOLV_CONF])[..] else {
        unreachable!()
    };
    assert_ok(plain, &["nameserver 8.8.8.8"]);
    assert!(!plain.output.contains("127.0.0.1"), "{plain:#?}");

    let probes = docker.run(
        &["--network", "bridge", "--dns", "172.17.0.1"],
        &CONSUL_AND_INTERNET,
    );
    assert_consul_and_internet(&probes);
    logged_web(&splitdns, "client=172.17.0.", "rcode=NOERROR");
}

/// The same for every container at once, with `daemon.json`'s `dns` and no `--dns`; and
/// what that setting does to user-defined networks: their embedded DNS server now forwards
/// to 172.17.0.1 too, from the container's own address, which the built-in `allow` refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_json_dns_points_every_container_at_docker0() {
    const TEST: &str = "daemon_json_dns_points_every_container_at_docker0";
    let Some((host, docker)) = Host::with_dockerd(TEST, "dk-json", r#"{"dns": ["172.17.0.1"]}"#)
    else {
        return;
    };
    let splitdns = Daemon::start(CONFIG, Some(&host.ns));
    splitdns.wait_ready();

    assert_answered_through(&docker, &["--network", "bridge"], "nameserver 172.17.0.1");

    docker.network_create("app");
    assert_embedded_dns_refused(&docker, &splitdns, &["--network", "app"]);
}

/// User-defined networks: without `--dns`, Docker's embedded DNS server (127.0.0.11 in the
/// container) forwards from the host's namespace to the host's `nameserver 127.0.0.1`, so
/// splitdns answers a loopback client. With `--dns 172.17.0.1`, the embedded server forwards
/// there from the container's own address (172.18.0.0/16), outside docker0's subnet: the
/// built-in `allow` refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_defined_network_reaches_splitdns_through_embedded_dns() {
    const TEST: &str = "user_defined_network_reaches_splitdns_through_embedded_dns";
    let Some((host, docker)) = Host::with_dockerd(TEST, "dk-net", "{}") else {
        return;
    };
    let splitdns = Daemon::start(CONFIG, Some(&host.ns));
    splitdns.wait_ready();
    docker.network_create("app");

    assert_answered_through(&docker, &["--network", "app"], "nameserver 127.0.0.11");
    logged_web(&splitdns, "client=127.0.0.1 ", "rcode=NOERROR");
    assert!(
        !splitdns.stderr().contains("client=172.18."),
        "{}",
        splitdns.stderr()
    );

    let options = ["--network", "app", "--dns", "172.17.0.1"];
    assert_embedded_dns_refused(&docker, &splitdns, &options);
}

/// dockerd started after splitdns: docker0 appears and splitdns binds it. Restarted with
/// another `bip`: Docker renumbers docker0 in place and splitdns follows, the new subnet
/// allowed. Stopped (docker0 stays), docker0 deleted, started again: Docker creates docker0
/// anew and splitdns binds it again. Containers are answered after each, without a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splitdns_follows_docker0_as_dockerd_starts_and_restarts() {
    const TEST: &str = "splitdns_follows_docker0_as_dockerd_starts_and_restarts";
    if dockerd::skip(TEST) {
        return;
    }
    let host = Host::new("dk-restart");
    let splitdns = Daemon::start(CONFIG, Some(&host.ns));
    assert_eq!(splitdns.wait_ready(), ["127.0.0.1:53".parse().unwrap()]);
    assert!(
        splitdns.stderr().contains(
            "interface docker0 does not exist or has no address yet: listening as soon as it has one"
        ),
        "{}",
        splitdns.stderr()
    );
    let asks = |docker: &Dockerd, server: &str| {
        let probes = docker.run(&["--network", "bridge", "--dns", server], &[MUSL_WEB]);
        assert_ok(&probes[0], &[]);
        assert_eq!(
            probes[0].sorted_lines(),
            ["10.0.0.1", "10.0.1.2"],
            "{probes:#?}"
        );
    };

    let Some(mut docker) = host.dockerd(TEST, "{}") else {
        return;
    };
    listening(&splitdns, "172.17.0.1:53", 1);
    asks(&docker, "172.17.0.1");
    let (first_index, _) = docker0(&host.ns).unwrap();

    let moved = r#"{"bip": "172.20.0.1/16"}"#;
    docker.restart(moved);
    assert_eq!(
        docker0(&host.ns),
        Some((first_index, "172.20.0.1".into())),
        "the same docker0, renumbered"
    );
    listening(&splitdns, "172.20.0.1:53", 1);
    logged(&splitdns, &["stopped listening", "addr=172.17.0.1:53"]);
    logged(&splitdns, &["clients allowed changed", "172.20.0.0/16"]);
    asks(&docker, "172.20.0.1");

    docker.stop();
    assert!(
        docker0(&host.ns).is_some(),
        "dockerd leaves docker0 when it stops"
    );
    host.ns.ip("link del docker0");
    logged(&splitdns, &["stopped listening", "addr=172.20.0.1:53"]);
    docker.restart(moved);
    let (index, address) = docker0(&host.ns).unwrap();
    assert_ne!(index, first_index, "docker0 created anew");
    assert_eq!(address, "172.20.0.1");
    listening(&splitdns, "172.20.0.1:53", 2);
    asks(&docker, "172.20.0.1");

    let log = splitdns.stderr();
    assert!(
        !log.contains("reloading") && !log.contains("reloaded"),
        "no reload: {log}"
    );
    assert!(
        !log.contains("polling"),
        "netlink events, not polling:\n{log}"
    );
}

/// conf/splitdns.toml as the package installs it, with only its default upstreams moved to
/// the fake internet (the agent's address, 127.0.0.1:8600, is where the fake listens).
fn packaged_config() -> String {
    let text = include_str!("../../conf/splitdns.toml");
    let servers = format!("servers = [\"{INTERNET}\"]");
    let mut moved = 0;
    let text: String = text
        .lines()
        .map(|line| match line {
            "servers = []" => {
                moved += 1;
                servers.clone()
            }
            _ => line.to_string(),
        })
        .map(|line| line + "\n")
        .collect();
    assert_eq!(moved, 1, "[upstream] servers = [] in conf/splitdns.toml");
    text
}

/// splitdns on `config` in `ns`, as the package runs it: started as root, switching to its
/// `splitdns` user, its control socket in /run/splitdns. In a mount namespace of its own, a
/// tmpfs on /run holds that directory, /etc/passwd and /etc/group are copies that have the
/// user (when the machine has none), and /etc/splitdns/conf.d is empty.
fn splitdns_as_packaged(ns: &Netns, config: &str) -> (Daemon, tempfile::TempDir) {
    use std::os::unix::fs::PermissionsExt;
    let etc = tempfile::TempDir::new().unwrap();
    std::fs::set_permissions(etc.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config_path = etc.path().join("splitdns.toml");
    std::fs::write(&config_path, config).unwrap();
    std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let mut group = std::fs::read_to_string("/etc/group").unwrap();
    if !passwd.lines().any(|l| l.starts_with("splitdns:")) {
        let taken = |file: &str, id: u32| {
            file.lines()
                .any(|l| l.split(':').nth(2) == Some(&id.to_string()))
        };
        let id = (64000..65000)
            .find(|&id| !taken(&passwd, id) && !taken(&group, id))
            .unwrap();
        passwd += &format!("splitdns:x:{id}:{id}:splitdns:/nonexistent:/usr/sbin/nologin\n");
        group += &format!("splitdns:x:{id}:\n");
    }
    std::fs::write(etc.path().join("passwd"), passwd).unwrap();
    std::fs::write(etc.path().join("group"), group).unwrap();
    std::fs::create_dir(etc.path().join("empty")).unwrap();
    let script = r#"exec nsenter --net="/var/run/netns/$NETNS" unshare --mount --propagation private sh -c '
mount -t tmpfs -o mode=755 splitdns-test /run && mkdir /run/splitdns &&
mount --bind "$ETC/passwd" /etc/passwd && mount --bind "$ETC/group" /etc/group &&
{ [ ! -d /etc/splitdns/conf.d ] || mount --bind "$ETC/empty" /etc/splitdns/conf.d; } &&
exec "$SPLITDNS" run --config "$ETC/splitdns.toml"'"#;
    let netns = std::path::PathBuf::from(ns.name());
    let bin = std::path::PathBuf::from(daemon::BIN);
    let splitdns = Daemon::start_script(
        script,
        &[("NETNS", &netns), ("ETC", etc.path()), ("SPLITDNS", &bin)],
    );
    (splitdns, etc)
}

/// The packaged config as it is: default-bridge containers with `--dns 172.17.0.1`,
/// user-defined networks without `--dns` (embedded DNS, loopback), and with it, which its
/// `172.16.0.0/12` in `allow` admits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_packaged_config_answers_every_docker_network() {
    const TEST: &str = "the_packaged_config_answers_every_docker_network";
    let Some((host, docker)) = Host::with_dockerd(TEST, "dk-pkg", "{}") else {
        return;
    };
    let (splitdns, _etc) = splitdns_as_packaged(&host.ns, &packaged_config());
    let addrs = splitdns.wait_ready();
    assert!(
        addrs.contains(&"172.17.0.1:53".parse().unwrap()),
        "{addrs:?}\n{}",
        splitdns.stderr()
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", splitdns.pid())).unwrap();
    let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        !uid.split_whitespace().skip(1).any(|id| id == "0"),
        "switched to its user: {uid}"
    );
    docker.network_create("app");

    for options in [
        &["--network", "bridge", "--dns", "172.17.0.1"][..],
        &["--network", "app"],
        &["--network", "app", "--dns", "172.17.0.1"],
    ] {
        let probes = docker.run(options, &CONSUL_AND_INTERNET);
        assert_consul_and_internet(&probes);
    }
}
