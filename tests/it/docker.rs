//! resolv.conf on a host, for real, in a network namespace the test creates (root only):
//! resolv.conf names port-53 servers, and only a namespace of our own has those. splitdns
//! follows the file as it changes and skips a nameserver that is its own listen address.
//! splitdns on a Docker host (docker0 as dockerd creates, renumbers and recreates it, and the
//! README's Docker recipes) is tested against a real dockerd in `dockerd.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::support::client::{decode, encode};
use crate::support::daemon::Daemon;
use crate::support::fixtures;
use crate::support::netns::{self, Netns};
use crate::support::{FakeUpstream, answer_ips, query};

/// How long a test waits for splitdns to notice a change on the host.
const FOLLOW_WAIT: Duration = Duration::from_secs(10);
/// How soon a resolv.conf change must be in use. splitdns reads the file every 2 s
/// (docs/configuration.md: "a change is in use within about 2 seconds"); the other 3.5 s are
/// for the queries that show it, asked one after another 200 ms apart, on a loaded 2-core
/// machine.
const PICKED_UP: Duration = Duration::from_millis(5500);

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

/// `[upstream] resolv_conf`: a nameserver that is splitdns's own listen address is skipped
/// (said in the log), the next one is asked; when the file changes, the new nameserver is
/// asked instead within [`PICKED_UP`], without a reload, and the old one no more.
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
        // Pacing: a query every 200 ms until one reaches the new nameserver.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        changed.elapsed() < PICKED_UP,
        "the change was in use {:?} after it was written",
        changed.elapsed()
    );
    let before = first.total();
    answered(&host, server, "n999.load.example.").await;
    assert_eq!(first.total(), before, "the old server is no longer asked");
}
