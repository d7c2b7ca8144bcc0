//! Rewrite routes: `*.infra.local` asked as `*.service.consul` and answered under the
//! client's name.

use std::net::Ipv4Addr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::support::fixtures::{Zone, consul, consul_with_ttl, internet};
use crate::support::harness::standard_plus;
use crate::support::{
    FakeUpstream, Splitdns, additional_ips, answer_ips, assert_rcode, name, query_with_edns,
};

/// [`STANDARD`]'s routes and `infra.local` rewritten into `target`, with no servers of its
/// own; the rewrite route is the last table, so a line added after it is its own.
///
/// [`STANDARD`]: crate::support::harness::STANDARD
fn rewrite_to(target: &str) -> String {
    standard_plus(
        "",
        &format!("[[route]]\nzones = [\"infra.local\"]\nrewrite = \"{target}\""),
    )
}

/// The Consul fake answering from `zone`, the internet fake, and splitdns on `template`
/// rendered against them.
async fn start(zone: Zone, template: &str) -> (Splitdns, FakeUpstream, FakeUpstream) {
    let consul = FakeUpstream::start(zone).await;
    let internet = FakeUpstream::start(internet()).await;
    let dns = Splitdns::start(template, &[("consul", &consul), ("internet", &internet)]).await;
    (dns, consul, internet)
}

fn ips(list: &[&str]) -> Vec<Ipv4Addr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn sorted(mut v: Vec<Ipv4Addr>) -> Vec<Ipv4Addr> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_a_is_asked_under_the_target_and_answered_under_the_asked_name() {
    let (dns, consul, internet) = start(consul(), &rewrite_to("service.consul")).await;

    let reply = dns.ask("Web.Infra.Local.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(sorted(answer_ips(&reply)), ips(&["10.0.0.1", "10.0.1.2"]));
    assert_eq!(reply.queries[0].name().to_ascii(), "Web.Infra.Local.");
    for record in &reply.answers {
        assert_eq!(record.name, name("web.infra.local."), "{reply}");
    }
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_nodata_and_nxdomain_carry_the_soa_of_the_asked_zone() {
    let (dns, consul, _internet) = start(consul(), &rewrite_to("service.consul")).await;

    let nodata = dns.ask("web.infra.local.", RecordType::AAAA).await;
    let nxdomain = dns.ask("nope.infra.local.", RecordType::A).await;

    assert_rcode(&nodata, ResponseCode::NoError);
    assert!(nodata.answers.is_empty(), "{nodata}");
    assert_rcode(&nxdomain, ResponseCode::NXDomain);
    for reply in [&nodata, &nxdomain] {
        assert_eq!(reply.authorities.len(), 1, "{reply}");
        assert_eq!(reply.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(reply.authorities[0].name, name("infra.local."));
    }
    assert_eq!(consul.count("web.service.consul.", RecordType::AAAA), 1);
    assert_eq!(consul.count("nope.service.consul.", RecordType::A), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_srv_keeps_consul_targets_and_their_additionals() {
    let (dns, consul, _internet) = start(consul(), &rewrite_to("service.consul")).await;

    let reply = dns
        .udp(&query_with_edns(
            "_web._tcp.infra.local.",
            RecordType::SRV,
            1232,
        ))
        .await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 2, "{reply}");
    let mut targets: Vec<String> = reply
        .answers
        .iter()
        .map(|r| {
            assert_eq!(r.name, name("_web._tcp.infra.local."));
            match &r.data {
                RData::SRV(srv) => srv.target.to_ascii(),
                other => panic!("not SRV: {other:?}"),
            }
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        ["0a000102.addr.dc1.consul.", "node-a.node.dc1.consul."]
    );
    assert_eq!(
        additional_ips(&reply, "node-a.node.dc1.consul."),
        ips(&["10.0.0.1"])
    );
    assert_eq!(
        additional_ips(&reply, "0a000102.addr.dc1.consul."),
        ips(&["10.0.1.2"])
    );
    assert_eq!(
        consul.count("_web._tcp.service.consul.", RecordType::SRV),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_answers_are_cached_under_the_asked_name() {
    let (dns, consul, _internet) = start(consul_with_ttl(30), &rewrite_to("service.consul")).await;

    let first = dns.ask("web.infra.local.", RecordType::A).await;
    let second = dns.ask("WEB.infra.local.", RecordType::A).await;
    let direct = dns.ask("web.service.consul.", RecordType::A).await;

    assert_eq!(sorted(answer_ips(&first)), sorted(answer_ips(&second)));
    assert_eq!(second.queries[0].name().to_ascii(), "WEB.infra.local.");
    assert_eq!(second.answers[0].name, name("web.infra.local."));
    assert_eq!(direct.answers[0].name, name("web.service.consul."));
    assert_eq!(
        consul.count("web.service.consul.", RecordType::A),
        2,
        "one fetch for the rewritten name, one for the direct name"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_rule_works_like_the_route() {
    let config = r#"
rules = ["server=/consul/{consul#}", "rewrite=/infra.local/service.consul/"]
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
"#;
    let (dns, consul, internet) = start(consul(), config).await;

    let reply = dns.ask("web.infra.local.", RecordType::A).await;

    assert_eq!(answer_ips(&reply).len(), 2, "{reply}");
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_route_with_servers_asks_them() {
    let (consul, other_agent, internet) = (
        FakeUpstream::start(consul()).await,
        FakeUpstream::start(consul()).await,
        FakeUpstream::start(internet()).await,
    );
    let config = format!(
        "{}servers = [\"{{other}}\"]\n",
        rewrite_to("service.consul")
    );
    let upstreams = [
        ("consul", &consul),
        ("other", &other_agent),
        ("internet", &internet),
    ];
    let dns = Splitdns::start(&config, &upstreams).await;

    let reply = dns.ask("web.infra.local.", RecordType::A).await;

    assert_eq!(answer_ips(&reply).len(), 2, "{reply}");
    assert_eq!(other_agent.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(consul.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_into_a_local_zone_answers_locally() {
    let internet = FakeUpstream::start(internet()).await;
    let config = r#"
rules = ["address=/gw.lan/192.0.2.1", "rewrite=/gw.example/gw.lan/"]
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
"#;
    let dns = Splitdns::start(config, &[("internet", &internet)]).await;

    let reply = dns.ask("x.gw.example.", RecordType::A).await;

    assert_eq!(answer_ips(&reply), ips(&["192.0.2.1"]));
    assert_eq!(reply.answers[0].name, name("x.gw.example."));
    assert_eq!(internet.total(), 0);
}

/// Every A and AAAA record of the additional section, as (owner, address text), sorted.
fn additional_addresses(reply: &hickory_proto::op::Message) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = reply
        .additionals
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((r.name.to_ascii(), a.0.to_string())),
            RData::AAAA(a) => Some((r.name.to_ascii(), a.0.to_string())),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

fn srv_targets(reply: &hickory_proto::op::Message) -> Vec<String> {
    let mut targets: Vec<String> = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.target.to_ascii()),
            _ => None,
        })
        .collect();
    targets.sort();
    targets
}

/// RFC 2782: the additional section carries the addresses of the SRV targets, so the owners
/// of those records are the target names, each address once. When the rewrite's target is a
/// whole zone, the SRV targets lie inside it and are mapped back into the client's zone like
/// every other name there (CoreDNS's `rewrite ... answer auto` does the same): a client that
/// then asks for a target's address asks splitdns under `infra.local`, through the same rewrite
/// route and the same servers that gave the SRV answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_zone_rewrite_maps_srv_targets_and_their_additionals_once() {
    let (dns, consul, internet) = start(consul_with_ttl(30), &rewrite_to("consul")).await;

    let reply = dns
        .udp(&query_with_edns(
            "web.service.infra.local.",
            RecordType::SRV,
            1232,
        ))
        .await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(
        srv_targets(&reply),
        [
            "0a000102.addr.dc1.infra.local.",
            "node-a.node.dc1.infra.local."
        ],
        "{reply}"
    );
    assert_eq!(
        additional_addresses(&reply),
        [
            (
                "0a000102.addr.dc1.infra.local.".to_string(),
                "10.0.1.2".to_string()
            ),
            (
                "node-a.node.dc1.infra.local.".to_string(),
                "10.0.0.1".to_string()
            ),
        ],
        "{reply}"
    );
    // The targets' addresses came with the SRV answer: the client's next question is a hit.
    let target = dns.ask("node-a.node.dc1.infra.local.", RecordType::A).await;
    assert_eq!(answer_ips(&target), ips(&["10.0.0.1"]), "{target}");
    assert_eq!(target.answers[0].name, name("node-a.node.dc1.infra.local."));
    assert_eq!(consul.count("node-a.node.dc1.consul.", RecordType::A), 0);
    assert_eq!(consul.total(), 1);
    assert_eq!(internet.total(), 0);
}

/// A target the upstream sent no address for is resolved by splitdns (SRV completion) under
/// the name the SRV answer gives it, through the rewrite route, and added once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_zone_rewrite_completes_missing_targets_under_the_mapped_name() {
    let (dns, consul, internet) = start(consul(), &rewrite_to("consul")).await;

    let reply = dns
        .udp(&query_with_edns(
            "bare.service.infra.local.",
            RecordType::SRV,
            1232,
        ))
        .await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(srv_targets(&reply), ["node-c.node.dc1.infra.local."]);
    assert_eq!(
        additional_addresses(&reply),
        [(
            "node-c.node.dc1.infra.local.".to_string(),
            "10.0.0.3".to_string()
        )],
        "{reply}"
    );
    assert_eq!(consul.count("node-c.node.dc1.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 0);
}
