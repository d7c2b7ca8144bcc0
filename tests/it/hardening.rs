//! Holding under load and attack: TCP limits, rebind protection, RFC 8482 ANY, the
//! per-client rate limit, and replies a spoofer races in.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{MessageType, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;

use crate::support::client::{self, encode, tcp_connect, tcp_read, tcp_write};
use crate::support::fixtures::{consul, internet};
use crate::support::harness;
use crate::support::http::{value, wait_for};
use crate::support::upstream::BOGUS_IP;
use crate::support::{FakeUpstream, Mode, Splitdns, answer_ips, assert_rcode, query};

/// The Consul route and the default upstream, plus `server` lines in `[server]`.
async fn start(server: &str) -> (Splitdns, FakeUpstream, FakeUpstream) {
    let consul = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
{server}
[upstream]
servers = ["{{internet}}"]
timeout = "500ms"
[[route]]
zones = ["consul"]
servers = ["{{consul}}"]
timeout = "500ms"
"#
    );
    let dns = Splitdns::start(&config, &[("consul", &consul), ("internet", &internet)]).await;
    (dns, consul, internet)
}

fn ips(msg: &hickory_proto::op::Message) -> Vec<IpAddr> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

// ---- TCP limits ----

/// `tcp_idle_timeout` (RFC 7766 §6.2.3): a connection with no new query for that long is
/// closed, and not sooner. The time is counted from before the query is written: the server
/// starts waiting for the next one only after reading it, and a timer never fires early, so
/// the close comes at least the whole timeout later however loaded the machine is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tcp_connection_is_closed_after_the_idle_timeout() {
    let (dns, _consul, _internet) = start("tcp_idle_timeout = \"300ms\"").await;
    let mut stream = tcp_connect(dns.addr()).await;
    let waited = Instant::now();
    tcp_write(&mut stream, &encode(&query("www.example.", RecordType::A))).await;
    assert!(tcp_read(&mut stream).await.is_some());

    assert!(
        tcp_read(&mut stream).await.is_none(),
        "the idle connection was closed"
    );
    assert!(
        waited.elapsed() >= Duration::from_millis(300),
        "closed {:?} after the query, before the 300 ms idle timeout",
        waited.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_message_trickled_past_the_read_deadline_closes_the_connection() {
    let (dns, _consul, _internet) = start("tcp_read_timeout = \"300ms\"").await;
    let mut stream = tcp_connect(dns.addr()).await;
    let bytes = encode(&query("www.example.", RecordType::A));
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes[..5]);
    stream.write_all(&framed).await.unwrap();

    assert!(tcp_read(&mut stream).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connection_closes_after_its_query_quota() {
    let (dns, _consul, _internet) = start("tcp_max_queries = 3").await;
    let mut stream = tcp_connect(dns.addr()).await;
    for i in 0..4u16 {
        let mut msg = query("www.example.", RecordType::A);
        msg.metadata.id = 100 + i;
        tcp_write(&mut stream, &encode(&msg)).await;
    }

    for _ in 0..3 {
        assert!(tcp_read(&mut stream).await.is_some());
    }
    assert!(tcp_read(&mut stream).await.is_none(), "no fourth answer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_tcp_table_closes_the_connection_idle_longest() {
    let (dns, _consul, _internet) = start("tcp_max_connections = 3").await;
    let www = encode(&query("www.example.", RecordType::A));
    let mut oldest = tcp_connect(dns.addr()).await;
    let mut others = Vec::new();
    for _ in 0..2 {
        let mut stream = tcp_connect(dns.addr()).await;
        tcp_write(&mut stream, &www).await;
        assert!(tcp_read(&mut stream).await.is_some());
        others.push(stream);
    }

    let mut newcomer = tcp_connect(dns.addr()).await;
    tcp_write(&mut newcomer, &www).await;

    assert!(
        tcp_read(&mut newcomer).await.is_some(),
        "the new connection is served"
    );
    assert!(
        tcp_read(&mut oldest).await.is_none(),
        "the one idle longest was closed"
    );
    tcp_write(&mut others[0], &www).await;
    assert!(
        tcp_read(&mut others[0]).await.is_some(),
        "the others stay open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tcp_connections_and_a_slowloris_do_not_stop_udp_or_new_tcp() {
    let (dns, _consul, internet) = start("").await;
    let mut idle = Vec::new();
    for _ in 0..250 {
        idle.push(tcp_connect(dns.addr()).await);
    }
    let mut slowloris = tcp_connect(dns.addr()).await;
    slowloris.write_all(&[0]).await.unwrap();

    for i in 0..20u32 {
        let name = format!("n{i}.load.example.");
        assert_rcode(&dns.ask(&name, RecordType::A).await, ResponseCode::NoError);
    }
    let over_tcp = dns.tcp(&query("www.example.", RecordType::A)).await;

    assert_eq!(
        answer_ips(&over_tcp),
        ["192.0.2.10".parse::<Ipv4Addr>().unwrap()]
    );
    assert_eq!(internet.total(), 21);
    drop((idle, slowloris));
}

// ---- Rebind protection ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_from_the_default_upstream_are_stripped() {
    let (dns, _consul, _internet) = start("rebind_protection = true").await;

    let a = dns.ask("rebind.example.", RecordType::A).await;
    let aaaa = dns.ask("rebind.example.", RecordType::AAAA).await;
    let inside = dns.ask("inside.example.", RecordType::A).await;

    assert_eq!(ips(&a), ["192.0.2.7".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        ips(&aaaa),
        ["2001:db8::7".parse::<IpAddr>().unwrap()],
        "IPv4-mapped private goes too"
    );
    assert_rcode(&inside, ResponseCode::NoError);
    assert!(ips(&inside).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routed_zones_and_rebind_allow_zones_may_return_private_addresses() {
    let (dns, _consul, _internet) =
        start("rebind_protection = true\nrebind_allow = [\"lan\"]").await;

    let consul = dns.ask("web.service.consul.", RecordType::A).await;
    let lan = dns.ask("router.lan.", RecordType::A).await;

    assert_eq!(ips(&consul).len(), 2, "consul has its own servers: trusted");
    assert_eq!(ips(&lan), ["192.168.1.1".parse::<IpAddr>().unwrap()]);
}

/// Rebind protection is off unless asked for, as in dnsmasq (`stop-dns-rebind` is an option),
/// Unbound (`private-address` is empty by default), systemd-resolved and CoreDNS: a host whose
/// resolver is a cloud VPC resolver gets private answers for its RDS endpoints, internal load
/// balancers and private hosted zones, and must keep getting them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_from_the_default_upstream_pass_by_default() {
    let (dns, _consul, _internet) = start("").await;

    let a = dns.ask("rebind.example.", RecordType::A).await;
    let aaaa = dns.ask("rebind.example.", RecordType::AAAA).await;
    let inside = dns.ask("inside.example.", RecordType::A).await;

    assert_eq!(ips(&a).len(), 2, "{a}");
    assert_eq!(ips(&aaaa).len(), 2, "{aaaa}");
    assert_eq!(ips(&inside), ["127.0.0.1".parse::<IpAddr>().unwrap()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebind_protection_false_lets_private_addresses_pass() {
    let (dns, _consul, _internet) = start("rebind_protection = false").await;

    let a = dns.ask("rebind.example.", RecordType::A).await;

    assert_eq!(ips(&a).len(), 2);
}

// ---- ANY ----

fn assert_rfc8482(reply: &hickory_proto::op::Message) {
    assert_rcode(reply, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1, "{reply}");
    match &reply.answers[0].data {
        RData::HINFO(hinfo) => {
            assert_eq!(&*hinfo.cpu, b"RFC8482");
            assert!(hinfo.os.is_empty());
        }
        other => panic!("expected HINFO, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_is_answered_with_rfc8482_hinfo_and_never_forwarded() {
    let (dns, consul, internet) = start("").await;

    assert_rfc8482(&dns.ask("example.", RecordType::ANY).await);
    assert_rfc8482(&dns.tcp(&query("example.", RecordType::ANY)).await);
    assert_rfc8482(&dns.ask("web.service.consul.", RecordType::ANY).await);

    assert_eq!(internet.total() + consul.total(), 0);
}

// ---- Rate limit ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_past_the_rate_limit_get_refused() {
    let (dns, _consul, internet) = start("rate_limit = 5").await;

    let mut codes = Vec::new();
    for _ in 0..8 {
        codes.push(
            dns.ask("www.example.", RecordType::A)
                .await
                .metadata
                .response_code,
        );
    }

    let refused = codes
        .iter()
        .filter(|c| **c == ResponseCode::Refused)
        .count();
    assert!(refused >= 2, "{codes:?}");
    assert_eq!(codes[0], ResponseCode::NoError);
    assert_eq!(internet.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rate_limit_by_default() {
    let (dns, _consul, _internet) = start("").await;

    for _ in 0..50 {
        assert_rcode(
            &dns.ask("www.example.", RecordType::A).await,
            ResponseCode::NoError,
        );
    }
}

// ---- Spoofing ----

async fn first_spoofed(mode: Mode) -> (hickory_proto::op::Message, FakeUpstream) {
    let (dns, _consul, internet) = start("").await;
    internet.set_mode(mode);
    let reply = dns.ask("www.example.", RecordType::A).await;
    drop(dns);
    (reply, internet)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_from_the_wrong_port_is_ignored() {
    let (reply, _internet) = first_spoofed(Mode::WrongPort { then_right: true }).await;

    assert_eq!(
        answer_ips(&reply),
        ["192.0.2.10".parse::<Ipv4Addr>().unwrap()]
    );
    assert!(!answer_ips(&reply).contains(&BOGUS_IP.parse().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_reply_from_the_wrong_port_means_no_answer() {
    let (reply, _internet) = first_spoofed(Mode::WrongPort { then_right: false }).await;

    assert_rcode(&reply, ResponseCode::ServFail);
}

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`), which
/// a socket bound to port 0 draws from.
fn ephemeral_range() -> (u16, u16) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let mut bounds = text.split_whitespace().map(|b| b.parse::<u16>().unwrap());
    (bounds.next().unwrap(), bounds.next().unwrap())
}

/// Sends `count` misses (distinct names) through `clients` tasks asking one after another.
async fn misses(dns: &Splitdns, clients: u32, count: u32) {
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let addr = dns.addr();
        tasks.spawn(async move {
            for i in (client..count).step_by(clients as usize) {
                let name = format!("n{i}.load.example.");
                let reply = client::udp(addr, &query(&name, RecordType::A)).await;
                assert_rcode(&reply, ResponseCode::NoError);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

/// RFC 5452 §9.2: resolvers MUST "use an unpredictable source port for
/// outgoing queries from the range of available ports [...] that is as large as
/// possible and practicable" and "an unpredictable query ID [...] (0-65535)".
/// dnsmasq (since its DNSpooq fixes) and Unbound take a new random port for
/// every forwarded query: a port kept for several queries lets anyone who has
/// seen it spoof the next answers knowing only the 16-bit ID. 500 misses from
/// 10 clients: at least 450 ports (a fresh random port per query repeats a few
/// by chance), all in the ephemeral range and reaching into every eighth of it,
/// and the IDs random too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_query_leaves_from_its_own_random_port() {
    let (dns, _consul, internet) = start("").await;
    misses(&dns, 10, 500).await;

    let sources = internet.udp_sources();
    assert_eq!(sources.len(), 500);
    let ports: HashSet<u16> = sources.iter().map(|(a, _)| a.port()).collect();
    assert!(
        ports.len() >= 450,
        "500 upstream queries left from only {} source ports",
        ports.len()
    );
    let (low, high) = ephemeral_range();
    let width = u32::from(high - low) + 1;
    let mut eighths = [0u32; 8];
    for &port in &ports {
        assert!(
            (low..=high).contains(&port),
            "port {port} outside {low}-{high}"
        );
        eighths[(u32::from(port - low) * 8 / width) as usize] += 1;
    }
    assert!(
        eighths.iter().all(|&n| n > 0),
        "ports bunched in part of {low}-{high}: {eighths:?} per eighth"
    );
    let ids: HashSet<u16> = sources.iter().map(|(_, id)| *id).collect();
    assert!(
        ids.len() >= 480,
        "only {} distinct IDs in 500 queries",
        ids.len()
    );
}

/// An upstream on `socket` that answers nothing until `count` queries have come, then
/// answers them all (NOERROR, no records); returns each query's source address, ID and name.
async fn hold_then_answer(socket: UdpSocket, count: usize) -> Vec<(SocketAddr, u16, String)> {
    let mut held = Vec::new();
    let mut buf = vec![0u8; 65535];
    while held.len() < count {
        let (len, peer) = socket.recv_from(&mut buf).await.expect("upstream recv");
        held.push((peer, client::decode(&buf[..len])));
    }
    let mut sources = Vec::new();
    for (peer, mut msg) in held {
        sources.push((peer, msg.metadata.id, msg.queries[0].name().to_string()));
        msg.metadata.message_type = MessageType::Response;
        socket
            .send_to(&encode(&msg), peer)
            .await
            .expect("upstream send");
    }
    sources
}

/// RFC 5452 §3: a reply is accepted when its question and ID match and it
/// "comes in on the same network address, including port number, from which
/// the question was sent"; two queries in flight under one (port, ID) would
/// let one's answer be taken for the other's. 100 misses all in flight at once
/// (the upstream answers none until all 100 have come; they fit in the default
/// UDP receive buffer, so none is dropped on the way, and the 10 s timeout is
/// longer than a client waits, so none is sent twice): 100 different pairs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_two_queries_in_flight_share_a_port_and_id() {
    let socket = client::udp_socket().await;
    let upstream = socket.local_addr().unwrap();
    let holding = tokio::spawn(hold_then_answer(socket, 100));
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"{upstream}\"]\n\
         timeout = \"10s\"\n"
    );
    let dns = Splitdns::start_config(harness::parse(&config)).await;
    misses(&dns, 100, 100).await;

    let sources = holding.await.unwrap();
    let names: HashSet<&String> = sources.iter().map(|(_, _, name)| name).collect();
    assert_eq!(names.len(), 100, "each miss went upstream once");
    let pairs: HashSet<(u16, u16)> = sources.iter().map(|(a, id, _)| (a.port(), *id)).collect();
    assert_eq!(
        pairs.len(),
        100,
        "a (source port, ID) pair was in flight twice"
    );
}

/// Datagrams the UDP thread must have read from the flood before the other client asks: a
/// few hundred times what the test itself sends, so the flood is under way.
const FLOOD_UNDER_WAY: f64 = 1000.0;

/// One client flooding splitdns must not stop it answering others: a flood of
/// one cached name at one listen address, faster than splitdns can read it, while
/// another client asks a name that has to go upstream at the other address. Both
/// addresses are served by the same thread (`threads = 1`), so that thread has to
/// take turns: the miss must still be forwarded, its reply read and its answer
/// sent (RFC 1035 §7.1: a resolver multiplexes many requests at once). The other
/// client asks once `splitdns_udp_datagrams_total` shows the thread reading the flood,
/// and the thread is still reading it when the answer has come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_at_one_address_does_not_stop_answers_at_another() {
    let internet = FakeUpstream::start(internet()).await;
    let config = r#"
[server]
listen = ["127.0.0.1:0", "127.0.0.2:0"]
threads = 1
[upstream]
servers = ["{internet}"]
[metrics]
listen = "127.0.0.1:0"
"#;
    let dns = Splitdns::start(config, &[("internet", &internet)]).await;
    let (flooded, other) = (dns.addrs()[0], dns.addrs()[1]);
    let hot = encode(&query("n1.load.example.", RecordType::A));
    client::udp(flooded, &query("n1.load.example.", RecordType::A)).await;
    let read = r#"splitdns_udp_datagrams_total{thread="0"}"#;
    let before = value(&dns.scrape().await, read);

    let flooding = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flooders: Vec<_> = (0..4)
        .map(|_| {
            let (hot, flooding) = (hot.clone(), std::sync::Arc::clone(&flooding));
            tokio::spawn(async move {
                let socket = client::udp_socket().await;
                while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = socket.send_to(&hot, flooded).await;
                }
            })
        })
        .collect();
    let under_way = wait_for(dns.metrics_addr(), read, |n| n >= before + FLOOD_UNDER_WAY).await;

    let reply = client::udp(other, &query("n2.load.example.", RecordType::A)).await;

    let after = value(&dns.scrape().await, read);
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    for flooder in flooders {
        flooder.await.unwrap();
    }
    assert_eq!(answer_ips(&reply), [crate::support::fixtures::load_ip(2)]);
    assert!(
        after > under_way + 1.0,
        "the flood went on while the other address was answered: {under_way} datagrams read \
         before the query, {after} after its answer"
    );
}
