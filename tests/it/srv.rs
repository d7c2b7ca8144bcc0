//! SRV answers: target addresses from ADDITIONAL become cache entries of their own, and
//! missing target addresses are resolved and added.

use std::net::Ipv4Addr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::support::fixtures::{consul, consul_with_ttl, internet};
use crate::support::{
    FakeUpstream, Splitdns, additional_ips, answer_ips, assert_rcode, harness::STANDARD,
};

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

async fn start(
    consul_zone: crate::support::fixtures::Zone,
    template: &str,
) -> (Splitdns, FakeUpstream, FakeUpstream) {
    let consul = FakeUpstream::start(consul_zone).await;
    let internet = FakeUpstream::start(internet()).await;
    let dns = Splitdns::start(template, &[("consul", &consul), ("internet", &internet)]).await;
    (dns, consul, internet)
}

fn with_route_min_ttl(min_ttl: u32) -> String {
    format!("{STANDARD}min_ttl = {min_ttl}\n")
}

/// The SRV query answered, then each target asked for A: all from the cache.
async fn assert_targets_are_cache_hits(dns: &Splitdns, consul: &FakeUpstream, srv_name: &str) {
    let srv = dns.ask(srv_name, RecordType::SRV).await;
    assert_rcode(&srv, ResponseCode::NoError);
    assert_eq!(srv.answers.len(), 2, "{srv}");

    let node_a = dns.ask("node-a.node.dc1.consul.", RecordType::A).await;
    let addr = dns.ask("0a000102.addr.dc1.consul.", RecordType::A).await;

    assert_eq!(answer_ips(&node_a), [ip("10.0.0.1")]);
    assert_eq!(answer_ips(&addr), [ip("10.0.1.2")]);
    assert_eq!(consul.count("node-a.node.dc1.consul.", RecordType::A), 0);
    assert_eq!(consul.count("0a000102.addr.dc1.consul.", RecordType::A), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_answer_keeps_the_upstream_additionals() {
    let (dns, _consul, _internet) = start(consul(), STANDARD).await;

    let reply = dns.ask("web.service.consul.", RecordType::SRV).await;

    assert_rcode(&reply, ResponseCode::NoError);
    let mut ports: Vec<u16> = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.port),
            _ => None,
        })
        .collect();
    ports.sort();
    assert_eq!(ports, [8080, 8081]);
    assert_eq!(
        additional_ips(&reply, "node-a.node.dc1.consul."),
        [ip("10.0.0.1")]
    );
    assert_eq!(
        additional_ips(&reply, "0a000102.addr.dc1.consul."),
        [ip("10.0.1.2")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_targets_are_cache_hits() {
    let (dns, consul, _internet) = start(consul_with_ttl(30), STANDARD).await;

    assert_targets_are_cache_hits(&dns, &consul, "web.service.consul.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc2782_srv_targets_are_cache_hits() {
    let (dns, consul, _internet) = start(consul_with_ttl(30), STANDARD).await;

    assert_targets_are_cache_hits(&dns, &consul, "_web._tcp.service.consul.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_targets_are_cache_hits_when_route_min_ttl_lifts_ttl_zero() {
    let (dns, consul, _internet) = start(consul(), &with_route_min_ttl(10)).await;

    assert_targets_are_cache_hits(&dns, &consul, "web.service.consul.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_targets_with_ttl_zero_are_not_cached() {
    let (dns, consul, _internet) = start(consul(), STANDARD).await;

    dns.ask("web.service.consul.", RecordType::SRV).await;
    let node_a = dns.ask("node-a.node.dc1.consul.", RecordType::A).await;

    assert_eq!(answer_ips(&node_a), [ip("10.0.0.1")]);
    assert_eq!(consul.count("node-a.node.dc1.consul.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_without_target_addresses_is_completed() {
    let (dns, consul, internet) = start(consul(), STANDARD).await;

    let reply = dns.ask("bare.service.consul.", RecordType::SRV).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1, "{reply}");
    assert_eq!(
        additional_ips(&reply, "node-c.node.dc1.consul."),
        [ip("10.0.0.3")],
        "the target's A record must be added: {reply}"
    );
    assert_eq!(consul.count("node-c.node.dc1.consul.", RecordType::A), 1);
    assert_eq!(consul.count("node-c.node.dc1.consul.", RecordType::AAAA), 1);
    assert_eq!(
        internet.total(),
        0,
        "consul targets are resolved through the consul route"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_completion_resolves_targets_through_routing() {
    let (dns, consul, internet) = start(consul(), STANDARD).await;

    let reply = dns.ask("db.service.consul.", RecordType::SRV).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(
        additional_ips(&reply, "db.example.net."),
        [ip("192.0.2.53")],
        "{reply}"
    );
    assert_eq!(internet.count("db.example.net.", RecordType::A), 1);
    assert_eq!(consul.count("db.example.net.", RecordType::A), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_srv_targets_are_cache_hits() {
    let (dns, consul, _internet) = start(consul_with_ttl(30), STANDARD).await;

    dns.ask("bare.service.consul.", RecordType::SRV).await;
    let node_c = dns.ask("node-c.node.dc1.consul.", RecordType::A).await;

    assert_eq!(answer_ips(&node_c), [ip("10.0.0.3")]);
    assert_eq!(consul.count("node-c.node.dc1.consul.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_with_target_addresses_is_not_completed() {
    let (dns, consul, _internet) = start(consul(), STANDARD).await;

    dns.ask("web.service.consul.", RecordType::SRV).await;

    assert_eq!(
        consul.total(),
        1,
        "targets already had addresses: {:?}",
        consul.queries()
    );
}
