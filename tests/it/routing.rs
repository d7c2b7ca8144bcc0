//! Which route answers a name: `[[route]]` zones matched by the longest suffix, on label
//! boundaries (`notconsul.` is not under `consul`), letter case ignored in the question and in
//! the config, the zone's apex and the root included; a prefix written as a zone covers its
//! reverse zones; and a zone is defined once, across `[[route]]` tables and rule lines. What
//! each dnsmasq rule line means is rules.rs.

use std::path::Path;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use splitdns::config::Config;

use crate::support::fixtures::{consul, internet};
use crate::support::{FakeUpstream, Splitdns, answer_ips, answer_ttls, assert_rcode};

async fn fakes() -> (FakeUpstream, FakeUpstream) {
    (
        FakeUpstream::start(consul()).await,
        FakeUpstream::start(internet()).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_names_go_to_the_consul_route() {
    let (consul, internet) = fakes().await;
    let dns = Splitdns::standard(&consul, &internet).await;

    let reply = dns.ask("web.service.consul.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    let mut ips = answer_ips(&reply);
    ips.sort();
    assert_eq!(
        ips,
        ["10.0.0.1", "10.0.1.2"].map(|s| s.parse::<std::net::Ipv4Addr>().unwrap())
    );
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_names_go_to_the_default_upstream() {
    let (consul, internet) = fakes().await;
    let dns = Splitdns::standard(&consul, &internet).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(
        answer_ips(&reply),
        ["192.0.2.10".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(internet.count("www.example.", RecordType::A), 1);
    assert_eq!(consul.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_goes_to_the_default_upstream() {
    let (consul, internet) = fakes().await;
    let dns = Splitdns::standard(&consul, &internet).await;

    let reply = dns.ask(".", RecordType::NS).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(internet.count(".", RecordType::NS), 1);
    assert_eq!(consul.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notconsul_is_not_under_consul() {
    let (consul, internet) = fakes().await;
    let dns = Splitdns::standard(&consul, &internet).await;

    let apex = dns.ask("notconsul.", RecordType::A).await;
    let below = dns.ask("web.notconsul.", RecordType::A).await;

    assert_eq!(
        answer_ips(&apex),
        ["192.0.2.99".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(
        answer_ips(&below),
        ["192.0.2.98".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(internet.total(), 2);
    assert_eq!(consul.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_apex_goes_to_its_route() {
    let (consul, internet) = fakes().await;
    let dns = Splitdns::standard(&consul, &internet).await;

    // Consul answers NXDOMAIN for its own apex (consul-dns.md §4.1); what matters is who asked.
    dns.ask("consul.", RecordType::A).await;

    assert_eq!(consul.count("consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_ignores_letter_case() {
    let (consul, internet) = fakes().await;
    let dns = Splitdns::standard(&consul, &internet).await;

    let reply = dns.ask("WEB.Service.CONSUL.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply).len(), 2);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_names_in_config_ignore_letter_case() {
    let (consul, internet) = fakes().await;
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
[[route]]
zones = ["Consul."]
servers = ["{consul}"]
"#;
    let dns = Splitdns::start(config, &[("consul", &consul), ("internet", &internet)]).await;

    dns.ask("web.service.consul.", RecordType::A).await;

    assert_eq!(consul.total(), 1);
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_specific_zone_wins() {
    let broad = FakeUpstream::start(consul()).await;
    let narrow = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    // The narrower route comes first in the file, so order cannot explain the result.
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
[[route]]
zones = ["a.consul"]
servers = ["{narrow}"]
[[route]]
zones = ["consul"]
servers = ["{broad}"]
"#;
    let upstreams = [
        ("narrow", &narrow),
        ("broad", &broad),
        ("internet", &internet),
    ];
    let dns = Splitdns::start(config, &upstreams).await;

    for qname in ["a.consul.", "x.a.consul.", "y.x.A.consul."] {
        dns.ask(qname, RecordType::A).await;
    }
    for qname in ["b.consul.", "x.b.consul.", "xa.consul.", "consul."] {
        dns.ask(qname, RecordType::A).await;
    }

    assert_eq!(
        narrow.total(),
        3,
        "a.consul and below: {:?}",
        names(&narrow)
    );
    assert_eq!(broad.total(), 4, "the rest of consul: {:?}", names(&broad));
    assert_eq!(internet.total(), 0);
}

fn names(upstream: &FakeUpstream) -> Vec<String> {
    upstream
        .queries()
        .iter()
        .map(|(_, m)| m.queries[0].name().to_string())
        .collect()
}

/// A `[[route]]` for a prefix's reverse zones takes route options: Consul answers PTR with
/// TTL 0 (its PTR TTL is fixed), and `min_ttl` lets the answer be cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_for_a_prefix_covers_its_reverse_zone_with_options() {
    let template = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
[[route]]
zones = ["10.0.0.0/8", "fd00::/8"]
servers = ["{consul}"]
min_ttl = 30
"#;
    let (dns, consul, internet) = Splitdns::with_fakes(template).await;

    let first = dns.ask("1.0.0.10.in-addr.arpa.", RecordType::PTR).await;
    let second = dns.ask("1.0.0.10.in-addr.arpa.", RecordType::PTR).await;
    dns.ask(
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
        RecordType::PTR,
    )
    .await;

    assert_eq!(first.answers.len(), 1, "{first}");
    assert_eq!(answer_ttls(&second, RecordType::PTR).len(), 1);
    assert!(answer_ttls(&second, RecordType::PTR)[0] <= 30);
    assert_eq!(
        consul.count("1.0.0.10.in-addr.arpa.", RecordType::PTR),
        1,
        "the second answer is a cache hit"
    );
    assert_eq!(consul.total(), 2, "the ip6.arpa name went to the route too");
    assert_eq!(internet.total(), 0);
}

fn parses(text: &str) -> bool {
    Config::from_toml(text, Path::new("dup.toml")).is_ok()
}

const DUP_BASE: &str = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["127.0.0.1:5300"]
"#;

#[test]
fn distinct_zones_are_accepted() {
    let text = format!(
        "rules = [\"server=/consul/127.0.0.1#8600\"]\n{DUP_BASE}[[route]]\nzones = [\"a.consul\"]\nservers = [\"127.0.0.1:8601\"]\n"
    );
    assert!(parses(&text), "a.consul and consul are different zones");
}

#[test]
fn duplicate_zone_across_rules_and_routes_is_rejected() {
    let text = format!(
        "rules = [\"server=/consul/127.0.0.1#8600\"]\n{DUP_BASE}[[route]]\nzones = [\"consul\"]\nservers = [\"127.0.0.1:8601\"]\n"
    );
    assert!(!parses(&text));
}

#[test]
fn duplicate_zone_in_two_routes_is_rejected() {
    let route = "[[route]]\nzones = [\"consul\"]\nservers = [\"127.0.0.1:8601\"]\n";
    assert!(!parses(&format!("{DUP_BASE}{route}{route}")));
}

#[test]
fn duplicate_zone_differing_in_case_or_dot_is_rejected() {
    let text = format!(
        "rules = [\"server=/Consul./127.0.0.1#8600\"]\n{DUP_BASE}[[route]]\nzones = [\"consul\"]\nservers = [\"127.0.0.1:8601\"]\n"
    );
    assert!(!parses(&text));
}
