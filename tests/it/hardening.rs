//! Holding under load and attack: TCP limits, rebind protection, RFC 8482 ANY, the
//! per-client rate limit, and replies a spoofer races in.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use tokio::io::AsyncWriteExt;

use crate::support::client::{self, encode, tcp_connect, tcp_read, tcp_write};
use crate::support::fixtures::{consul, internet};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tcp_connection_is_closed_after_the_idle_timeout() {
    let (dns, _consul, _internet) = start("tcp_idle_timeout = \"300ms\"").await;
    let mut stream = tcp_connect(dns.addr()).await;
    tcp_write(&mut stream, &encode(&query("www.example.", RecordType::A))).await;
    assert!(tcp_read(&mut stream).await.is_some());

    let waited = Instant::now();
    assert!(
        tcp_read(&mut stream).await.is_none(),
        "the idle connection was closed"
    );
    assert!(waited.elapsed() >= Duration::from_millis(250));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_upstream_queries_never_repeat_a_port_and_id_and_spread_over_ports() {
    let (dns, _consul, internet) = start("").await;
    let mut tasks = tokio::task::JoinSet::new();
    for batch in 0..10u32 {
        let addr = dns.addr();
        tasks.spawn(async move {
            for i in 0..100 {
                let name = format!("n{}.load.example.", batch * 100 + i);
                let reply = client::udp(addr, &query(&name, RecordType::A)).await;
                assert_rcode(&reply, ResponseCode::NoError);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    let sources = internet.udp_sources();
    assert_eq!(sources.len(), 1000);
    let pairs: HashSet<(u16, u16)> = sources.iter().map(|(a, id)| (a.port(), *id)).collect();
    assert_eq!(pairs.len(), 1000, "a (source port, ID) pair was used twice");
    let ports: HashSet<u16> = sources.iter().map(|(a, _)| a.port()).collect();
    let (low, high) = (ports.iter().min().unwrap(), ports.iter().max().unwrap());
    assert!(ports.len() >= 15, "only {} source ports", ports.len());
    assert!(
        high - low >= 1000,
        "ports {low}..{high} are bunched together"
    );
    let ids: HashSet<u16> = sources.iter().map(|(_, id)| *id).collect();
    assert!(
        ids.len() >= 950,
        "only {} distinct IDs in 1000 queries",
        ids.len()
    );
}
