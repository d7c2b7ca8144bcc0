//! The cache, proven by upstream query counts: keys, TTL rules, negatives, bounds, coalescing.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, RecordType};

use crate::support::client;
use crate::support::fixtures::{NET_TTL, internet};
use crate::support::harness::{STANDARD, standard_plus};
use crate::support::{
    FakeUpstream, Mode, Splitdns, answer_ips, answer_ttls, assert_rcode, query, query_with_edns,
};

async fn standard() -> (Splitdns, FakeUpstream, FakeUpstream) {
    Splitdns::with_fakes(STANDARD).await
}

/// STANDARD with `min_ttl` on the Consul route and extra text appended (e.g. a [cache] table).
async fn consul_min_ttl(min_ttl: u32, extra: &str) -> (Splitdns, FakeUpstream, FakeUpstream) {
    Splitdns::with_fakes(&standard_plus(&format!("min_ttl = {min_ttl}"), extra)).await
}

/// Only [upstream] (the internet fake, 1.5 s per attempt: well above the slow modes) plus `extra`.
async fn internet_with(extra: &str) -> (Splitdns, FakeUpstream) {
    let internet = FakeUpstream::start(internet()).await;
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{{internet}}"]
timeout = "1500ms"
{extra}
"#
    );
    let dns = Splitdns::start(&config, &[("internet", &internet)]).await;
    (dns, internet)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_query_is_answered_from_cache() {
    let (dns, _consul, internet) = standard().await;

    let first = dns.ask("www.example.", RecordType::A).await;
    let second = dns.ask("www.example.", RecordType::A).await;

    assert_eq!(answer_ips(&first), answer_ips(&second));
    assert_eq!(internet.count("www.example.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_is_shared_by_udp_and_tcp() {
    let (dns, _consul, internet) = standard().await;

    dns.tcp(&query("www.example.", RecordType::A)).await;
    let second = dns.ask("www.example.", RecordType::A).await;

    assert_eq!(answer_ips(&second).len(), 1);
    assert_eq!(internet.count("www.example.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_variants_share_one_cache_entry() {
    let (dns, _consul, internet) = standard().await;

    let upper = dns.ask("WWW.example.", RecordType::A).await;
    let lower = dns.ask("www.example.", RecordType::A).await;
    let mixed = dns.ask("wWw.ExAmPlE.", RecordType::A).await;

    for reply in [&upper, &lower, &mixed] {
        assert_eq!(
            answer_ips(reply),
            ["192.0.2.10".parse::<std::net::Ipv4Addr>().unwrap()]
        );
    }
    assert_eq!(internet.count("www.example.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qtype_is_part_of_the_cache_key() {
    let (dns, _consul, internet) = standard().await;

    dns.ask("www.example.", RecordType::A).await;
    let v6 = dns.ask("www.example.", RecordType::AAAA).await;

    assert_eq!(v6.answers.len(), 1);
    assert_eq!(v6.answers[0].record_type(), RecordType::AAAA);
    assert_eq!(internet.total(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnssec_ok_bit_is_part_of_the_cache_key() {
    let (dns, _consul, internet) = standard().await;
    let mut with_do = query_with_edns("www.example.", RecordType::A, 1232);
    with_do.edns.as_mut().unwrap().set_dnssec_ok(true);

    dns.udp(&query_with_edns("www.example.", RecordType::A, 1232))
        .await;
    dns.udp(&with_do).await;
    dns.udp(&with_do).await;

    assert_eq!(internet.count("www.example.", RecordType::A), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qclass_is_part_of_the_cache_key() {
    let (dns, _consul, internet) = standard().await;
    let mut chaos = query("www.example.", RecordType::A);
    chaos.queries[0].set_query_class(DNSClass::CH);

    dns.ask("www.example.", RecordType::A).await;
    let reply = dns.udp(&chaos).await;

    // Either CH went upstream or it was answered without the cached IN records.
    let from_in_cache = internet.total() == 1 && !reply.answers.is_empty();
    assert!(
        !from_in_cache,
        "a CH query was answered from the IN entry: {reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_ttl_counts_down() {
    let (dns, _consul, internet) = standard().await;

    let first = dns.ask("hundred.example.", RecordType::A).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let later = dns.ask("hundred.example.", RecordType::A).await;

    assert_eq!(internet.count("hundred.example.", RecordType::A), 1);
    let (fresh, aged) = (
        answer_ttls(&first, RecordType::A),
        answer_ttls(&later, RecordType::A),
    );
    assert_eq!(fresh, [100], "a fresh answer keeps the upstream TTL");
    assert_eq!(aged.len(), 1);
    assert!(aged[0] <= 99, "TTL did not count down: {aged:?}");
    assert!(aged[0] >= 90, "TTL counted down too far: {aged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answer_has_aa_clear_and_the_clients_id() {
    let (dns, _consul, internet) = standard().await;

    dns.ask("www.example.", RecordType::A).await;
    let msg = query("www.example.", RecordType::A);
    let cached = dns.udp(&msg).await;

    assert_eq!(internet.total(), 1);
    assert_eq!(cached.metadata.id, msg.metadata.id);
    assert!(!cached.metadata.authoritative);
    assert!(cached.metadata.recursion_available);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_zero_is_not_cached() {
    let (dns, consul, internet) = standard().await;

    for _ in 0..2 {
        let reply = dns.ask("zero.example.", RecordType::A).await;
        assert_eq!(answer_ips(&reply).len(), 1);
        let consul_reply = dns.ask("web.service.consul.", RecordType::A).await;
        assert_eq!(answer_ips(&consul_reply).len(), 2);
    }

    assert_eq!(internet.count("zero.example.", RecordType::A), 2);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_min_ttl_lifts_ttl_zero_into_the_cache() {
    let (dns, consul, _internet) = consul_min_ttl(10, "").await;

    for _ in 0..3 {
        let reply = dns.ask("web.service.consul.", RecordType::A).await;
        assert_eq!(answer_ips(&reply).len(), 2);
    }

    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_min_ttl_applies_only_to_its_route() {
    let (dns, _consul, internet) = consul_min_ttl(10, "").await;

    dns.ask("zero.example.", RecordType::A).await;
    dns.ask("zero.example.", RecordType::A).await;

    assert_eq!(internet.count("zero.example.", RecordType::A), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nxdomain_with_soa_is_cached() {
    let (dns, _consul, internet) = standard().await;

    for _ in 0..2 {
        let reply = dns.ask("missing.example.", RecordType::A).await;
        assert_rcode(&reply, ResponseCode::NXDomain);
        assert!(reply.answers.is_empty());
        // RFC 2308 §5: a negative answer from the cache carries its SOA.
        assert_eq!(soas(&reply), 1, "{reply}");
    }

    assert_eq!(internet.count("missing.example.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodata_with_soa_is_cached() {
    let (dns, _consul, internet) = standard().await;

    for _ in 0..2 {
        let reply = dns.ask("www.example.", RecordType::MX).await;
        assert_rcode(&reply, ResponseCode::NoError);
        assert!(reply.answers.is_empty());
        assert_eq!(soas(&reply), 1, "{reply}");
    }

    assert_eq!(internet.count("www.example.", RecordType::MX), 1);
}

fn soas(reply: &hickory_proto::op::Message) -> usize {
    reply
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_answer_with_soa_minimum_zero_is_not_cached() {
    let (dns, consul, _internet) = standard().await;

    for _ in 0..2 {
        let nx = dns.ask("nope.service.consul.", RecordType::A).await;
        assert_rcode(&nx, ResponseCode::NXDomain);
        let nodata = dns.ask("web.service.consul.", RecordType::AAAA).await;
        assert_rcode(&nodata, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
    }

    assert_eq!(consul.count("nope.service.consul.", RecordType::A), 2);
    assert_eq!(consul.count("web.service.consul.", RecordType::AAAA), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_min_ttl_lifts_negative_answers_into_the_cache() {
    let (dns, consul, _internet) = consul_min_ttl(10, "").await;

    for _ in 0..2 {
        let nx = dns.ask("nope.service.consul.", RecordType::A).await;
        assert_rcode(&nx, ResponseCode::NXDomain);
        let nodata = dns.ask("web.service.consul.", RecordType::AAAA).await;
        assert_rcode(&nodata, ResponseCode::NoError);
    }

    assert_eq!(consul.count("nope.service.consul.", RecordType::A), 1);
    assert_eq!(consul.count("web.service.consul.", RecordType::AAAA), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servfail_is_never_cached() {
    let (dns, internet) = internet_with("").await;
    internet.set_mode(Mode::ServFail);

    for _ in 0..2 {
        let reply = dns.ask("www.example.", RecordType::A).await;
        assert_rcode(&reply, ResponseCode::ServFail);
    }
    assert_eq!(internet.count("www.example.", RecordType::A), 2);

    internet.set_mode(Mode::Normal);
    let healed = dns.ask("www.example.", RecordType::A).await;
    assert_rcode(&healed, ResponseCode::NoError);
    assert_eq!(answer_ips(&healed).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_servfail_is_never_cached() {
    let (dns, internet) = internet_with("").await;
    internet.set_mode(Mode::Dead);

    let reply = dns.ask("www.example.", RecordType::A).await;
    assert_rcode(&reply, ResponseCode::ServFail);

    internet.set_mode(Mode::Normal);
    let healed = dns.ask("www.example.", RecordType::A).await;
    assert_rcode(&healed, ResponseCode::NoError);
    assert_eq!(internet.count("www.example.", RecordType::A), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_ttl_caps_the_served_ttl() {
    let (dns, internet) = internet_with("[cache]\nmax_ttl = 60\n").await;

    let first = dns.ask("long.example.", RecordType::A).await;
    let cached = dns.ask("long.example.", RecordType::A).await;

    assert_eq!(internet.count("long.example.", RecordType::A), 1);
    for reply in [&first, &cached] {
        let ttls = answer_ttls(reply, RecordType::A);
        assert_eq!(ttls.len(), 1);
        assert!(ttls[0] <= 60, "TTL {} over max_ttl: {reply}", ttls[0]);
        assert!(ttls[0] >= 55, "TTL {} far below max_ttl", ttls[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_below_max_ttl_are_served_unchanged() {
    let (dns, _internet) = internet_with("[cache]\nmax_ttl = 3600\n").await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_eq!(answer_ttls(&reply, RecordType::A), [NET_TTL]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_min_ttl_lifts_ttl_zero_into_the_cache() {
    let (dns, internet) = internet_with("[cache]\nmin_ttl = 10\n").await;

    dns.ask("zero.example.", RecordType::A).await;
    dns.ask("zero.example.", RecordType::A).await;

    assert_eq!(internet.count("zero.example.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_size_zero_disables_caching() {
    let (dns, internet) = internet_with("[cache]\nsize = 0\n").await;

    for _ in 0..2 {
        let reply = dns.ask("www.example.", RecordType::A).await;
        assert_eq!(answer_ips(&reply).len(), 1);
        dns.ask("missing.example.", RecordType::A).await;
    }

    assert_eq!(internet.count("www.example.", RecordType::A), 2);
    assert_eq!(internet.count("missing.example.", RecordType::A), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_queries_are_coalesced() {
    let (dns, internet) = internet_with("").await;
    internet.set_mode(Mode::Slow(Duration::from_millis(300)));
    let addr = dns.addr();

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let msg = query("www.example.", RecordType::A);
            tokio::spawn(async move { (msg.metadata.id, client::udp(addr, &msg).await) })
        })
        .collect();

    for task in tasks {
        let (id, reply) = task.await.unwrap();
        assert_eq!(reply.metadata.id, id);
        assert_rcode(&reply, ResponseCode::NoError);
        assert_eq!(
            answer_ips(&reply),
            ["192.0.2.10".parse::<std::net::Ipv4Addr>().unwrap()]
        );
    }
    assert_eq!(internet.count("www.example.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesced_ttl_zero_queries_share_one_upstream_query() {
    let (dns, internet) = internet_with("").await;
    internet.set_mode(Mode::Slow(Duration::from_millis(300)));
    let addr = dns.addr();

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let msg = query("zero.example.", RecordType::A);
            tokio::spawn(async move { client::udp(addr, &msg).await })
        })
        .collect();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_rcode(&reply, ResponseCode::NoError);
        assert_eq!(answer_ips(&reply).len(), 1, "{reply}");
    }

    assert_eq!(internet.count("zero.example.", RecordType::A), 1);
    // ...and the answer was still not kept afterwards.
    internet.set_mode(Mode::Normal);
    dns.ask("zero.example.", RecordType::A).await;
    assert_eq!(internet.count("zero.example.", RecordType::A), 2);
}
