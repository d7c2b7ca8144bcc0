//! splitdns on a Docker host, for real, in network namespaces the tests create (root only): a
//! "host" namespace runs splitdns; docker0 appears after it starts, a "container" namespace
//! joins the bridge over a veth pair and asks 172.17.0.1:53; the bridge is deleted and created
//! again with another address, and the container's queries work again.
//! Also resolv.conf, which names port-53 servers: only a namespace of our own has those.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use crate::support::client::{decode, encode};
use crate::support::daemon::Daemon;
use crate::support::fixtures;
use crate::support::netns::{self, Netns};
use crate::support::{FakeUpstream, answer_ips, query};

/// How long a test waits for splitdns to notice a change on the host.
const FOLLOW_WAIT: Duration = Duration::from_secs(10);

/// Asks `server` from a socket inside `from`, once; `None` if no reply came in time.
async fn ask_from(from: &Netns, server: SocketAddr, qname: &str) -> Option<Message> {
    let socket = from.udp("0.0.0.0:0".parse().unwrap());
    socket
        .send_to(&encode(&query(qname, RecordType::A)), server)
        .await
        .ok()?;
    let mut buf = vec![0u8; 65535];
    let (len, _) = tokio::time::timeout(Duration::from_millis(300), socket.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(decode(&buf[..len]))
}

/// Asks until an answer comes, or panics after [`FOLLOW_WAIT`].
async fn answered(from: &Netns, server: SocketAddr, qname: &str) -> Message {
    let deadline = Instant::now() + FOLLOW_WAIT;
    while Instant::now() < deadline {
        if let Some(reply) = ask_from(from, server, qname).await {
            return reply;
        }
    }
    panic!("{server} never answered {qname} from {}", from.name());
}

/// A fake upstream listening inside `ns` on `addr`.
fn upstream_in(ns: &Netns, addr: &str, zone: fixtures::Zone) -> FakeUpstream {
    let (udp, tcp) = ns.udp_tcp(addr.parse().unwrap());
    FakeUpstream::start_on(zone, udp, tcp)
}

/// Creates docker0 with `gateway/16`, enslaves the host end of the veth, and gives the
/// container end `container/16`.
fn bridge_up(host: &Netns, container: &Netns, gateway: &str, address: &str) {
    host.ip("link add docker0 type bridge");
    host.ip(&format!("addr add {gateway}/16 dev docker0"));
    host.ip("link set docker0 up");
    host.ip("link set veth0 master docker0");
    container.ip("addr flush dev eth0");
    container.ip(&format!("addr add {address}/16 dev eth0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker0_listener_follows_the_bridge_as_it_comes_goes_and_changes_address() {
    if netns::skip("docker0_listener_follows_the_bridge") {
        return;
    }
    let host = Netns::new("host");
    let container = Netns::new("ctr");
    let consul = upstream_in(&host, "127.0.0.1:8600", fixtures::consul());
    let internet = upstream_in(&host, "127.0.0.1:5300", fixtures::internet());
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:53", "docker0:53"]

[upstream]
servers = ["{}"]

[[route]]
zones = ["consul"]
servers = ["{}"]
"#,
        internet.addr(),
        consul.addr()
    );
    let daemon = Daemon::start(&config, Some(&host));
    let addrs = daemon.wait_ready();
    assert_eq!(
        addrs,
        vec!["127.0.0.1:53".parse().unwrap()],
        "docker0 does not exist yet"
    );
    assert!(
        daemon.stderr().contains("interface docker0 does not exist"),
        "{}",
        daemon.stderr()
    );

    host.ip(&format!(
        "link add veth0 type veth peer name eth0 netns {}",
        container.name()
    ));
    host.ip("link set veth0 up");
    container.ip("link set eth0 up");
    bridge_up(&host, &container, "172.17.0.1", "172.17.0.2");

    let reply = answered(
        &container,
        "172.17.0.1:53".parse().unwrap(),
        "web.service.consul.",
    )
    .await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{reply}"
    );
    assert_eq!(answer_ips(&reply).len(), 2, "{reply}");

    host.ip("link del docker0");
    bridge_up(&host, &container, "172.18.0.1", "172.18.0.2");

    let reply = answered(&container, "172.18.0.1:53".parse().unwrap(), "www.example.").await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "{reply}"
    );
    assert_eq!(answer_ips(&reply).len(), 1, "{reply}");
    let log = daemon.stderr();
    assert!(
        log.contains("stopped listening"),
        "the old address was let go:\n{log}"
    );
    assert!(
        !log.contains("polling"),
        "netlink events, not polling:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolv_conf_changes_are_picked_up_and_our_own_address_is_skipped() {
    if netns::skip("resolv_conf_changes_are_picked_up") {
        return;
    }
    let host = Netns::new("resolv");
    let first = upstream_in(&host, "127.0.0.2:53", fixtures::internet());
    let second = upstream_in(&host, "127.0.0.3:53", fixtures::internet());
    let dir = tempfile::TempDir::new().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\nnameserver 127.0.0.2\n").unwrap();
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nresolv_conf = \"{}\"\n",
        resolv.display()
    );
    let daemon = Daemon::start(&config, Some(&host));
    let server: SocketAddr = daemon.wait_ready()[0];
    assert!(
        daemon
            .stderr()
            .contains("skipping a resolv.conf nameserver that is splitdns itself"),
        "{}",
        daemon.stderr()
    );

    let reply = answered(&host, server, "n1.load.example.").await;
    assert_eq!(answer_ips(&reply).len(), 1, "{reply}");
    assert_eq!((first.total(), second.total()), (1, 0));

    std::fs::write(&resolv, "nameserver 127.0.0.3\n").unwrap();
    let changed = Instant::now();
    let mut i = 2;
    while second.total() == 0 {
        assert!(
            changed.elapsed() < FOLLOW_WAIT,
            "resolv.conf change not picked up"
        );
        answered(&host, server, &format!("n{i}.load.example.")).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(changed.elapsed() < Duration::from_secs(5) + Duration::from_millis(500));
    let before = first.total();
    answered(&host, server, "n999.load.example.").await;
    assert_eq!(first.total(), before, "the old server is no longer asked");
}
