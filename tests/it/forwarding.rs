//! Talking to upstreams: ordered failover, EDNS and IDs on the way out, reply validation,
//! UDP→TCP on truncation, per-route in-flight limits.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::support::client::{self, udp_exchange_raw};
use crate::support::fixtures::{BIG_TXT_BYTES, consul, internet, load_ip};
use crate::support::upstream::BOGUS_IP;
use crate::support::{
    FakeUpstream, Mode, Proto, Splitdns, answer_ips, assert_rcode, query, query_with_edns,
    txt_bytes,
};

/// The default upstream is `first` then `second`, 300 ms per attempt.
const TWO_SERVERS: &str = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{first}", "{second}"]
timeout = "300ms"
"#;

fn www() -> Vec<Ipv4Addr> {
    vec!["192.0.2.10".parse().unwrap()]
}

async fn two_servers(first: Mode, second: Mode) -> (Splitdns, FakeUpstream, FakeUpstream) {
    let a = FakeUpstream::start(internet()).await;
    let b = FakeUpstream::start(internet()).await;
    a.set_mode(first);
    b.set_mode(second);
    let dns = Splitdns::start(TWO_SERVERS, &[("first", &a), ("second", &b)]).await;
    (dns, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_are_tried_in_order() {
    let (dns, first, second) = two_servers(Mode::Normal, Mode::Normal).await;

    for qname in ["www.example.", "mail.example.", "notconsul."] {
        assert_rcode(&dns.ask(qname, RecordType::A).await, ResponseCode::NoError);
    }

    assert_eq!(first.total(), 3);
    assert_eq!(second.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_server_fails_over_to_the_next() {
    let (dns, first, second) = two_servers(Mode::Dead, Mode::Normal).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply), www());
    assert_eq!(first.count("www.example.", RecordType::A), 1);
    assert_eq!(second.count("www.example.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_is_per_attempt_not_per_query() {
    let dead = [
        FakeUpstream::start(internet()).await,
        FakeUpstream::start(internet()).await,
    ];
    let alive = FakeUpstream::start(internet()).await;
    for upstream in &dead {
        upstream.set_mode(Mode::Dead);
    }
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{dead0}", "{dead1}", "{alive}"]
timeout = "300ms"
"#;
    let upstreams = [("dead0", &dead[0]), ("dead1", &dead[1]), ("alive", &alive)];
    let dns = Splitdns::start(config, &upstreams).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply), www());
    assert_eq!(dead[0].total() + dead[1].total() + alive.total(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_fails_over_to_the_next() {
    let (dns, first, second) = two_servers(Mode::ServFail, Mode::Normal).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply), www());
    assert_eq!(first.total(), 1);
    assert_eq!(second.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_fails_over_to_the_next() {
    let (dns, first, second) = two_servers(Mode::Refused, Mode::Normal).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply), www());
    assert_eq!(first.total(), 1);
    assert_eq!(second.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxdomain_is_an_answer_not_a_failure() {
    let (dns, first, second) = two_servers(Mode::Normal, Mode::Normal).await;

    let reply = dns.ask("missing.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NXDomain);
    assert_eq!(first.total(), 1);
    assert_eq!(
        second.total(),
        0,
        "NXDOMAIN must not move on to the next server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_servers_failing_gives_servfail() {
    let (dns, first, second) = two_servers(Mode::ServFail, Mode::Refused).await;

    let msg = query("www.example.", RecordType::A);
    let reply = dns.udp(&msg).await;

    assert_rcode(&reply, ResponseCode::ServFail);
    assert_eq!(reply.metadata.id, msg.metadata.id);
    assert_eq!(reply.queries, msg.queries);
    assert_eq!(first.total(), 1);
    assert_eq!(second.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_servers_dead_gives_servfail() {
    let (dns, first, second) = two_servers(Mode::Dead, Mode::Dead).await;

    let reply = dns.tcp(&query("www.example.", RecordType::A)).await;

    assert_rcode(&reply, ResponseCode::ServFail);
    assert_eq!(first.total(), 1);
    assert_eq!(second.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_route_does_not_fall_back_to_the_default_upstream() {
    let consul = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    consul.set_mode(Mode::Dead);
    let dns = Splitdns::standard(&consul, &internet).await;

    let reply = dns.ask("web.service.consul.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::ServFail);
    assert_eq!(consul.total(), 1);
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_queries_carry_edns_1232() {
    let (dns, first, _second) = two_servers(Mode::Normal, Mode::Normal).await;

    dns.ask("www.example.", RecordType::A).await;
    let plain = first.last_query();
    dns.udp(&query_with_edns("mail.example.", RecordType::A, 4096))
        .await;
    let with_edns = first.last_query();

    for sent in [plain, with_edns] {
        let edns = sent.edns.as_ref().expect("upstream query without OPT");
        assert_eq!(edns.max_payload(), 1232);
        assert_eq!(edns.version(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_query_ids_are_random() {
    let (dns, first, _second) = two_servers(Mode::Normal, Mode::Normal).await;
    const CLIENT_ID: u16 = 4242;

    for i in 0..20 {
        let mut msg = query(&format!("n{i}.load.example."), RecordType::A);
        msg.metadata.id = CLIENT_ID;
        let reply = dns.udp(&msg).await;
        assert_eq!(reply.metadata.id, CLIENT_ID);
    }

    let ids: Vec<u16> = first.queries().iter().map(|(_, m)| m.metadata.id).collect();
    assert_eq!(ids.len(), 20);
    let distinct: HashSet<u16> = ids.iter().copied().collect();
    assert!(distinct.len() >= 18, "IDs repeat: {ids:?}");
    assert!(
        ids.iter().filter(|&&id| id == CLIENT_ID).count() <= 1,
        "client ID reused: {ids:?}"
    );
    let sequential = ids
        .windows(2)
        .filter(|w| w[1] == w[0].wrapping_add(1))
        .count();
    assert!(sequential < 5, "IDs look like a counter: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_with_wrong_id_is_ignored() {
    let (dns, first, second) = two_servers(Mode::WrongId { then_right: true }, Mode::Normal).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply), www(), "bogus reply was used: {reply}");
    assert_eq!(first.total(), 1);
    assert_eq!(second.total(), 0, "the right reply came in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_with_only_a_wrong_id_moves_to_the_next_server() {
    let (dns, first, second) = two_servers(Mode::WrongId { then_right: false }, Mode::Normal).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply), www(), "bogus reply was used: {reply}");
    assert_eq!(first.total(), 1);
    assert_eq!(second.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_with_wrong_question_is_ignored() {
    let (dns, first, second) =
        two_servers(Mode::WrongQuestion { then_right: true }, Mode::Normal).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply), www(), "spoofed reply was used: {reply}");
    assert_eq!(first.total(), 1);
    assert_eq!(second.total(), 0, "the right reply came in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_with_only_a_wrong_question_moves_to_the_next_server() {
    let (dns, first, second) =
        two_servers(Mode::WrongQuestion { then_right: false }, Mode::Normal).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply), www(), "spoofed reply was used: {reply}");
    assert!(!answer_ips(&reply).contains(&BOGUS_IP.parse().unwrap()));
    assert_eq!(first.total(), 1);
    assert_eq!(second.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_udp_reply_is_retried_over_tcp() {
    let (dns, first, second) = two_servers(Mode::AlwaysTc, Mode::Normal).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert!(!reply.metadata.truncation);
    assert_eq!(answer_ips(&reply), www());
    assert_eq!(first.count_proto(Proto::Udp), 1);
    assert_eq!(
        first.count_proto(Proto::Tcp),
        1,
        "same query over TCP to the same server"
    );
    assert_eq!(second.total(), 0);
    let over_tcp = first.queries().pop().unwrap().1;
    assert_eq!(over_tcp.queries[0].name().to_ascii(), "www.example.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answer_reaches_a_large_edns_client_in_full() {
    let (dns, first, _second) = two_servers(Mode::Normal, Mode::Normal).await;

    let msg = query_with_edns("big.example.", RecordType::TXT, 4096);
    let raw = udp_exchange_raw(dns.addr(), &client::encode(&msg), msg.metadata.id).await;
    let reply = client::decode(&raw);

    assert_rcode(&reply, ResponseCode::NoError);
    assert!(!reply.metadata.truncation);
    assert_eq!(txt_bytes(&reply), BIG_TXT_BYTES);
    assert!(raw.len() <= 4096);
    assert!(
        first.count_proto(Proto::Tcp) >= 1,
        "the full answer needs TCP upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answer_is_truncated_for_a_small_udp_client_and_whole_over_tcp() {
    let (dns, _first, _second) = two_servers(Mode::Normal, Mode::Normal).await;

    for (msg, limit) in [
        (query("big.example.", RecordType::TXT), 512),
        (query_with_edns("big.example.", RecordType::TXT, 1232), 1232),
    ] {
        let raw = udp_exchange_raw(dns.addr(), &client::encode(&msg), msg.metadata.id).await;
        let reply = client::decode(&raw);
        assert!(reply.metadata.truncation, "TC=1 expected: {reply}");
        assert!(
            raw.len() <= limit,
            "{} bytes over a {limit}-byte limit",
            raw.len()
        );
        assert_eq!(reply.queries, msg.queries);
    }
    let whole = dns.tcp(&query("big.example.", RecordType::TXT)).await;
    assert_rcode(&whole, ResponseCode::NoError);
    assert!(!whole.metadata.truncation);
    assert_eq!(txt_bytes(&whole), BIG_TXT_BYTES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_qtype_is_forwarded() {
    let (dns, first, _second) = two_servers(Mode::Normal, Mode::Normal).await;
    let private = RecordType::Unknown(65280);

    let reply = dns.ask("private.example.", private).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(first.count("private.example.", private), 1);
    assert_eq!(reply.answers.len(), 1, "{reply}");
    assert_eq!(reply.answers[0].record_type(), private);
    match &reply.answers[0].data {
        RData::Unknown { rdata, .. } => {
            assert_eq!(rdata.anything, [0xde, 0xad, 0xbe, 0xef]);
        }
        other => panic!("unexpected rdata {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_answers_have_aa_clear_and_ra_set() {
    let consul = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let dns = Splitdns::standard(&consul, &internet).await;

    // Consul sets AA=1 on everything it answers.
    for qname in ["web.service.consul.", "nope.service.consul."] {
        let reply = dns.ask(qname, RecordType::A).await;
        assert!(!reply.metadata.authoritative, "AA must be 0: {reply}");
        assert!(reply.metadata.recursion_available, "RA must be 1: {reply}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_past_max_inflight_get_servfail() {
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
timeout = "3s"
max_inflight = 2
"#;
    let (dns, _consul, internet) = Splitdns::with_fakes(config).await;
    internet.set_mode(Mode::Slow(Duration::from_millis(800)));
    let addr = dns.addr();

    let first_two: Vec<_> = (0..2)
        .map(|i| {
            let msg = query(&format!("n{i}.load.example."), RecordType::A);
            tokio::spawn(async move { client::udp(addr, &msg).await })
        })
        .collect();
    // Give the first two time to reach the slow upstream.
    let reached = async {
        while internet.total() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), reached)
        .await
        .expect("the first two queries never reached the upstream");
    for i in 2..5 {
        let reply = dns.ask(&format!("n{i}.load.example."), RecordType::A).await;
        assert_rcode(&reply, ResponseCode::ServFail);
    }
    for task in first_two {
        assert_rcode(&task.await.unwrap(), ResponseCode::NoError);
    }
    assert_eq!(
        internet.total(),
        2,
        "queries past the limit must not be forwarded"
    );
}

/// RFC 5452 §9.1: a reply is accepted only when it answers the query in
/// flight, by ID and question; §9.2: every query from a port of its own. An
/// upstream that sends every reply twice leaves a copy behind each query, on
/// the socket splitdns asked from, which it uses again for the next query.
/// 300 misses asked one after another by one client (so one UDP thread, one
/// socket after another of its table) each come back with the address of
/// their own name (`n<i>.load.example.` resolves to a different address for
/// every i), and the upstream is asked each name once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_twice_is_not_taken_for_the_next_query() {
    let upstream = FakeUpstream::start(internet()).await;
    upstream.set_mode(Mode::Twice);
    let config = "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"{up}\"]\n";
    let dns = Splitdns::start(config, &[("up", &upstream)]).await;
    for i in 0..300 {
        let name = format!("n{i}.load.example.");
        let reply = dns.ask(&name, RecordType::A).await;
        assert_rcode(&reply, ResponseCode::NoError);
        assert_eq!(answer_ips(&reply), vec![load_ip(i)], "{name}");
        assert_eq!(upstream.count(&name, RecordType::A), 1, "{name}");
    }
}

/// RFC 768 and RFC 1035 §4.2.1: a reply goes back from the address the query
/// was sent to; a client that connected its socket (glibc's resolver does)
/// hears nothing from any other. Two listen addresses served by one UDP
/// thread share its table of upstream queries: 100 misses asked on both at
/// once, from connected sockets, with the upstream slow enough that they are
/// all in flight together, are each answered, from the address asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_on_two_listen_addresses_are_answered_from_the_address_asked() {
    let upstream = FakeUpstream::start(internet()).await;
    upstream.set_mode(Mode::Slow(Duration::from_millis(100)));
    let config = "[server]\nlisten = [\"127.0.0.1:0\", \"127.0.0.2:0\"]\nthreads = 1\n\
                  [upstream]\nservers = [\"{up}\"]\n";
    let dns = Splitdns::start(config, &[("up", &upstream)]).await;
    let addrs = dns.addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    let mut asking = tokio::task::JoinSet::new();
    for i in 0..100u32 {
        let server = addrs[i as usize % 2];
        asking.spawn(async move {
            let name = format!("n{i}.load.example.");
            let reply = client::udp_connected(server, &query(&name, RecordType::A)).await;
            assert_eq!(answer_ips(&reply), vec![load_ip(i)], "{name}");
        });
    }
    while let Some(done) = asking.join_next().await {
        done.unwrap();
    }
}
