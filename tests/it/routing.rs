//! Which names go where: routes, `rules` lines, local answers, reverse zones, `allow`.

use std::path::Path;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use splitdns::config::Config;

use crate::support::fixtures::{consul, internet};
use crate::support::{FakeUpstream, Splitdns, answer_ips, assert_rcode, query};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rule_routes_like_a_route() {
    let (consul, internet) = fakes().await;
    let config = r#"
rules = ["server=/consul/{consul#}"]
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
"#;
    let dns = Splitdns::start(config, &[("consul", &consul), ("internet", &internet)]).await;

    let reply = dns.ask("web.service.consul.", RecordType::A).await;

    assert_eq!(answer_ips(&reply).len(), 2);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rule_with_hash_sends_zone_to_default_upstreams() {
    let (consul, internet) = fakes().await;
    let config = r#"
rules = ["server=/consul/{consul#}", "server=/corp.consul/#"]
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
"#;
    let dns = Splitdns::start(config, &[("consul", &consul), ("internet", &internet)]).await;

    dns.ask("host.corp.consul.", RecordType::A).await;
    dns.ask("web.service.consul.", RecordType::A).await;

    assert_eq!(internet.count("host.corp.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 1);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(consul.total(), 1);
}

const LOCAL_RULES: &str = r#"
rules = ["server=/internal.example/", "local=/lan/", "address=/gw.lan/192.0.2.1"]
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rule_without_address_answers_nxdomain_locally() {
    let internet = FakeUpstream::start(internet()).await;
    let dns = Splitdns::start(LOCAL_RULES, &[("internet", &internet)]).await;

    for qname in [
        "internal.example.",
        "host.internal.example.",
        "a.b.INTERNAL.example.",
    ] {
        for qtype in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
            let reply = dns.ask(qname, qtype).await;
            assert_rcode(&reply, ResponseCode::NXDomain);
            assert!(reply.metadata.authoritative, "AA=1 on local answers");
            assert!(reply.answers.is_empty());
        }
    }
    assert_eq!(internet.total(), 0, "local zones are never forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_rule_answers_nxdomain_locally() {
    let internet = FakeUpstream::start(internet()).await;
    let dns = Splitdns::start(LOCAL_RULES, &[("internet", &internet)]).await;

    // Not lan. itself: gw.lan lies below it, so it exists (see local.rs).
    for qname in ["printer.lan.", "x.printer.LAN."] {
        let reply = dns.ask(qname, RecordType::A).await;
        assert_rcode(&reply, ResponseCode::NXDomain);
        assert!(reply.metadata.authoritative, "AA=1 on local answers");
        assert!(reply.metadata.recursion_available, "RA=1 on every answer");
    }
    let tcp = dns.tcp(&query("printer.lan.", RecordType::AAAA)).await;
    assert_rcode(&tcp, ResponseCode::NXDomain);
    assert_eq!(internet.total(), 0, "local zones are never forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_rule_answers_the_name_and_every_name_below_it() {
    let internet = FakeUpstream::start(internet()).await;
    let dns = Splitdns::start(LOCAL_RULES, &[("internet", &internet)]).await;

    for qname in ["gw.lan.", "x.gw.lan.", "a.b.GW.lan."] {
        let reply = dns.ask(qname, RecordType::A).await;
        assert_rcode(&reply, ResponseCode::NoError);
        assert!(reply.metadata.authoritative, "AA=1 on local answers");
        assert_eq!(
            answer_ips(&reply),
            ["192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap()]
        );
        assert_eq!(
            reply.answers[0].name,
            crate::support::name(qname),
            "owner is the question name"
        );
    }
    assert_eq!(internet.total(), 0);
}

/// dnsmasq(8), `--address`: "Note that the behaviour for queries which don't match the
/// specified address literal changed in version 2.86. Previous versions [...] would return a
/// NoData answer. From 2.86, the query is sent upstream. To restore the pre-2.86 behaviour, use
/// the configuration --address=/example.com/1.2.3.4 --local=/example.com/". The other types
/// go where the zone above sends them: here `local=/lan/`, which answers them itself. gw.lan
/// exists (it has an A record), so that answer is NODATA, not the NXDOMAIN dnsmasq 2.90 gives
/// (RFC 1034 §4.3.2, RFC 8020 §2; see local.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_rule_leaves_other_types_to_the_zone_above() {
    let internet = FakeUpstream::start(internet()).await;
    let dns = Splitdns::start(LOCAL_RULES, &[("internet", &internet)]).await;

    for qtype in [
        RecordType::AAAA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::SRV,
    ] {
        let reply = dns.ask("gw.lan.", qtype).await;
        assert_rcode(&reply, ResponseCode::NoError);
        assert!(reply.answers.is_empty(), "{qtype}: {reply}");
    }
    let below = dns.ask("x.gw.lan.", RecordType::AAAA).await;
    assert_rcode(&below, ResponseCode::NoError);
    assert!(below.answers.is_empty(), "{below}");
    assert_eq!(internet.total(), 0, "lan is local: never forwarded");
}

/// The same man page paragraph: with no zone above, the other types go to the standard
/// servers; with `local=` for the same zone, they get NODATA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_rule_alone_forwards_other_types_and_with_local_gives_nodata() {
    let internet = FakeUpstream::start(internet()).await;
    let config = r#"
rules = ["address=/www.example/192.0.2.1", "address=/nas.lan/192.0.2.2", "local=/nas.lan/"]
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
"#;
    let dns = Splitdns::start(config, &[("internet", &internet)]).await;

    let a = dns.ask("www.example.", RecordType::A).await;
    let aaaa = dns.ask("www.example.", RecordType::AAAA).await;
    let nas = dns.ask("nas.lan.", RecordType::AAAA).await;

    assert_eq!(
        answer_ips(&a),
        ["192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(internet.count("www.example.", RecordType::A), 0);
    assert_rcode(&aaaa, ResponseCode::NoError);
    assert_eq!(internet.count("www.example.", RecordType::AAAA), 1);
    assert_rcode(&nas, ResponseCode::NoError);
    assert!(nas.answers.is_empty(), "NODATA: {nas}");
    assert!(nas.metadata.authoritative, "AA=1 on local answers");
    assert_eq!(internet.count("nas.lan.", RecordType::AAAA), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_rule_inside_a_local_zone_wins() {
    let internet = FakeUpstream::start(internet()).await;
    let dns = Splitdns::start(LOCAL_RULES, &[("internet", &internet)]).await;

    let gw = dns.ask("gw.lan.", RecordType::A).await;
    let other = dns.ask("nas.lan.", RecordType::A).await;

    assert_rcode(&gw, ResponseCode::NoError);
    assert_eq!(answer_ips(&gw).len(), 1);
    assert_rcode(&other, ResponseCode::NXDomain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rev_server_routes_the_reverse_zone() {
    let (consul, internet) = fakes().await;
    let config = r#"
rules = ["rev-server=10.0.0.0/8,{consul#}"]
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
"#;
    let dns = Splitdns::start(config, &[("consul", &consul), ("internet", &internet)]).await;

    let reply = dns.ask("1.0.0.10.in-addr.arpa.", RecordType::PTR).await;
    dns.ask("1.0.0.11.in-addr.arpa.", RecordType::PTR).await;
    dns.ask("1.0.0.110.in-addr.arpa.", RecordType::PTR).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1, "{reply}");
    assert_eq!(consul.count("1.0.0.10.in-addr.arpa.", RecordType::PTR), 1);
    assert_eq!(consul.total(), 1);
    assert_eq!(internet.count("1.0.0.11.in-addr.arpa.", RecordType::PTR), 1);
    assert_eq!(
        internet.count("1.0.0.110.in-addr.arpa.", RecordType::PTR),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_outside_allow_are_refused() {
    let (consul, internet) = fakes().await;
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
allow = ["10.0.0.0/8"]
[upstream]
servers = ["{internet}"]
[[route]]
zones = ["consul"]
servers = ["{consul}"]
"#;
    let dns = Splitdns::start(config, &[("consul", &consul), ("internet", &internet)]).await;

    let msg = query("www.example.", RecordType::A);
    let udp = dns.udp(&msg).await;
    let tcp = dns.tcp(&msg).await;

    for reply in [&udp, &tcp] {
        assert_rcode(reply, ResponseCode::Refused);
        assert_eq!(reply.metadata.id, msg.metadata.id);
        assert!(reply.answers.is_empty());
    }
    assert_eq!(
        internet.total() + consul.total(),
        0,
        "refused queries are not forwarded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_inside_allow_are_served() {
    let (consul, internet) = fakes().await;
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
allow = ["10.0.0.0/8", "127.0.0.0/8"]
[upstream]
servers = ["{internet}"]
"#;
    let dns = Splitdns::start(config, &[("consul", &consul), ("internet", &internet)]).await;

    let reply = dns.ask("www.example.", RecordType::A).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(answer_ips(&reply).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_allowed_by_default() {
    let (consul, internet) = fakes().await;
    let dns = Splitdns::standard(&consul, &internet).await;

    let reply = dns.tcp(&query("www.example.", RecordType::A)).await;

    assert_rcode(&reply, ResponseCode::NoError);
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

/// dnsmasq(8), `--server`: "More than one --server flag is allowed, with repeated domain or
/// ipaddr parts as required"; a zone with a server and `local=` is forwarded (dnsmasq 2.90 by
/// hand). Rules never conflict with rules; only a `[[route]]` table does.
#[test]
fn repeated_zone_in_rules_accumulates() {
    let text = format!("rules = [\"server=/lan/127.0.0.1#5353\", \"local=/lan/\"]\n{DUP_BASE}");
    let config = Config::from_toml(&text, Path::new("dup.toml")).unwrap();
    assert_eq!(config.routes.len(), 1);
    assert_eq!(
        config.routes[0].action,
        splitdns::config::RouteAction::Forward(vec!["127.0.0.1:5353".parse().unwrap()])
    );
}

#[test]
fn duplicate_zone_differing_in_case_or_dot_is_rejected() {
    let text = format!(
        "rules = [\"server=/Consul./127.0.0.1#8600\"]\n{DUP_BASE}[[route]]\nzones = [\"consul\"]\nservers = [\"127.0.0.1:8601\"]\n"
    );
    assert!(!parses(&text));
}
