//! The installed Debian package, where CI installed it (`SPLITDNS_INSTALLED=1`, see
//! `.ci/package-test`): the binary in /usr/bin, started as root the way the Nomad job and a
//! plain supervisor start it, on the installed config with only its addresses moved to free
//! loopback ports, answers with the installed config's routes and local rules, as the
//! installed `splitdns` user.

use std::net::SocketAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::client::udp;
use crate::support::daemon::Daemon;
use crate::support::fixtures;
use crate::support::{FakeUpstream, answer_ips, assert_rcode, query};

const INSTALLED_BIN: &str = "/usr/bin/splitdns";
const INSTALLED_CONFIG: &str = "/etc/splitdns/splitdns.toml";
/// The Consul agent's DNS address, as the installed config routes `consul` to it.
const CONSUL: &str = "127.0.0.1:8600";

/// The installed config with each `listen = ...` line (the DNS listeners and the metrics
/// endpoint) moved to port 0 on loopback, and the control socket (which systemd's
/// `RuntimeDirectory=` would give a directory) moved to `socket`; nothing else changes.
fn on_free_ports(installed: &str, socket: &std::path::Path) -> String {
    let mut moved = 0;
    let text: String = installed
        .lines()
        .map(|line| {
            if line.starts_with("listen = [") {
                moved += 1;
                "listen = [\"127.0.0.1:0\"]".to_string()
            } else if line.starts_with("listen = \"") {
                moved += 1;
                "listen = \"127.0.0.1:0\"".to_string()
            } else if line.starts_with("socket = \"") {
                moved += 1;
                format!("socket = {:?}", socket.display().to_string())
            } else {
                line.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_eq!(
        moved, 3,
        "[server] listen, [metrics] listen and [control] socket in {INSTALLED_CONFIG}"
    );
    text
}

#[tokio::test]
#[ignore = "needs the package installed: .ci/package-test installs it and runs this test"]
async fn the_installed_package_answers_with_its_config() {
    assert!(
        std::env::var_os("SPLITDNS_INSTALLED").is_some(),
        "SPLITDNS_INSTALLED is not set: run .ci/package-test, which installs the package first"
    );
    let installed = std::fs::read_to_string(INSTALLED_CONFIG).unwrap();
    assert!(
        installed.contains("\"server=/consul/127.0.0.1#8600\""),
        "{installed}"
    );
    let consul_addr: SocketAddr = CONSUL.parse().unwrap();
    let consul_udp = std::net::UdpSocket::bind(consul_addr)
        .unwrap_or_else(|e| panic!("a fake Consul agent on {CONSUL}: {e}"));
    let consul_tcp = std::net::TcpListener::bind(consul_addr).unwrap();
    let consul = FakeUpstream::start_on(fixtures::consul(), consul_udp, consul_tcp);

    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("control.sock");
    let daemon = Daemon::start_binary(INSTALLED_BIN, &on_free_ports(&installed, &socket));
    let addr = daemon.wait_ready()[0];

    let reply = udp(addr, &query("web.service.consul.", RecordType::A)).await;
    assert_eq!(answer_ips(&reply).len(), 2, "{reply:?}");
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    // rev-server=10.0.0.0/8,127.0.0.1#8600: reverse lookups for 10/8 go to Consul too.
    udp(addr, &query("1.0.0.10.in-addr.arpa.", RecordType::PTR)).await;
    assert_eq!(consul.count("1.0.0.10.in-addr.arpa.", RecordType::PTR), 1);
    // domain_needed = true: a single-label name is NXDOMAIN here, never forwarded.
    let reply = udp(addr, &query("fileserver.", RecordType::A)).await;
    assert_rcode(&reply, ResponseCode::NXDomain);

    // Started as root, it runs as the user the package created ([server] user).
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    let user = nix::unistd::User::from_name("splitdns")
        .unwrap()
        .expect("the splitdns user");
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap();
    assert_eq!(
        uid.split_whitespace().next(),
        Some(user.uid.to_string().as_str()),
        "{status}"
    );
}
