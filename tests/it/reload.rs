//! Reloads while queries are answered: what a reload drops stays dropped, and a reload that is
//! rejected changes nothing. These run the real binary and reload it with SIGHUP, as systemd does.

use std::net::Ipv4Addr;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::support::client;
use crate::support::daemon::Daemon;
use crate::support::fixtures;
use crate::support::harness::render;
use crate::support::{FakeUpstream, Mode, answer_ips, query};

const MOVED: &str = r#"
[server]
listen = ["127.0.0.1:0"]

[upstream]
servers = ["{internet}"]

[[route]]
zones = ["moved.test"]
servers = ["{to}"]
timeout = "2s"
"#;

const A_IP: &str = "192.0.2.1";
const B_IP: &str = "192.0.2.2";

/// `host<round>.moved.test.`: a name of its own per round, so the racing query is a miss.
fn moved_name(round: usize) -> String {
    format!("host{round}.moved.test.")
}

async fn ask_moved(addr: std::net::SocketAddr, round: usize) -> Vec<Ipv4Addr> {
    answer_ips(&client::udp(addr, &query(&moved_name(round), RecordType::A)).await)
}

/// A query sent at once, whose reply is read later.
struct Racer(std::net::UdpSocket);

impl Racer {
    fn send(addr: std::net::SocketAddr, round: usize) -> Self {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(client::REPLY_WAIT)).unwrap();
        let packet = client::encode(&query(&moved_name(round), RecordType::A));
        socket.send_to(&packet, addr).unwrap();
        Self(socket)
    }

    /// Waits for the reply, whichever server it came from.
    fn wait(self) {
        let mut buf = [0; 512];
        self.0.recv(&mut buf).expect("the racing query is answered");
    }
}

/// A reload that moves `moved.test` from server A to server B must not leave A's answer
/// in the cache. The reload drops the cache entries of changed routes (docs/running.md, "Reloading"); an
/// answer fetched under the old table that arrives after that must not be stored, and a query
/// that comes after the reload must not be handed the answer of a fetch begun under the old
/// routes. Each round races a query against the SIGHUP (sent just before it, or just after), with
/// both servers slow enough that the racing fetch is still in flight while the reload runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_fetched_under_the_old_routes_are_not_served_after_a_reload() {
    let internet = FakeUpstream::start(fixtures::internet()).await;
    let a = FakeUpstream::start(fixtures::moved(A_IP)).await;
    let b = FakeUpstream::start(fixtures::moved(B_IP)).await;
    for server in [&a, &b] {
        server.set_mode(Mode::Slow(Duration::from_millis(60)));
    }
    let config = |to: &FakeUpstream| render(MOVED, &[("internet", &internet), ("to", to)]);
    let daemon = Daemon::start(&config(&a), None);
    let addr = daemon.wait_ready()[0];
    assert_eq!(
        ask_moved(addr, 63).await,
        [A_IP.parse::<Ipv4Addr>().unwrap()]
    );

    for round in 0..50 {
        let (to, ip) = if round % 2 == 0 {
            (&b, B_IP)
        } else {
            (&a, A_IP)
        };
        let ip: Ipv4Addr = ip.parse().unwrap();
        daemon.rewrite_config(&config(to));
        // The racing query leaves before this returns: sent before the signal, or right after it.
        let racer = if round % 4 < 2 {
            let racer = Racer::send(addr, round);
            daemon.sighup();
            racer
        } else {
            daemon.sighup();
            Racer::send(addr, round)
        };
        tokio::task::block_in_place(|| daemon.wait_reloaded());

        assert_eq!(
            ask_moved(addr, round).await,
            [ip],
            "round {round}: a query after the reload got the old server's answer"
        );
        tokio::task::block_in_place(|| racer.wait());
        assert_eq!(
            ask_moved(addr, round).await,
            [ip],
            "round {round}: the racing query's answer from the old server was cached"
        );
    }
}

const KEPT: &str = r#"
[server]
listen = ["127.0.0.1:0"]

[upstream]
servers = ["{internet}"]

[[route]]
zones = ["consul"]
servers = ["{consul}"]
min_ttl = 60
"#;

/// Expected: "A rejected reload must change nothing": the new config asks for another listen
/// address, another Consul server and a hosts file that cannot be read (a directory). The reload
/// is refused, so the listener, the routes and the cache stay exactly as they were: the same
/// address answers, nothing else is listed as answering, and both names are still cache hits
/// (no second query to either upstream, none to the new server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_reload_leaves_listeners_routes_and_cache_as_they_were() {
    let internet = FakeUpstream::start(fixtures::internet()).await;
    let consul = FakeUpstream::start(fixtures::consul()).await;
    let consul2 = FakeUpstream::start(fixtures::consul()).await;
    let upstreams = [("internet", &internet), ("consul", &consul)];
    let daemon = Daemon::start(&render(KEPT, &upstreams), None);
    let addr = daemon.wait_ready()[0];
    let names = ["www.example.", "web.service.consul."];
    for qname in names {
        assert!(!answer_ips(&client::udp(addr, &query(qname, RecordType::A)).await).is_empty());
    }

    let unreadable = daemon.dir().join("hosts.d");
    std::fs::create_dir(&unreadable).unwrap();
    let bad = KEPT.replace("127.0.0.1:0", "127.0.0.2:0")
        + &format!(
            "\n[local]\nhosts_files = [{:?}]\n",
            unreadable.display().to_string()
        );
    daemon.rewrite_config(&render(
        &bad,
        &[("internet", &internet), ("consul", &consul2)],
    ));
    let after = tokio::task::block_in_place(|| daemon.reload());

    assert!(
        daemon.stderr().contains("reload rejected"),
        "{}",
        daemon.stderr()
    );
    assert_eq!(after, vec![addr], "the listeners changed");
    for qname in names {
        let reply = client::udp(addr, &query(qname, RecordType::A)).await;
        assert!(!answer_ips(&reply).is_empty(), "{qname}: {reply}");
    }
    assert_eq!(internet.count("www.example.", RecordType::A), 1);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(consul2.total(), 0, "the new route is not in force");
}
