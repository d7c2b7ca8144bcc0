//! `rules` lines mean what they mean in dnsmasq: lines for the same zone accumulate, and
//! where kinds of line meet in one zone, dnsmasq's order of precedence decides. Each case
//! was also tried by hand against dnsmasq 2.90 with fake upstreams.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::fixtures::{consul, internet};
use crate::support::{FakeUpstream, Mode, Splitdns, answer_ips, answer_ttls, assert_rcode};

/// `rules` in front of `{internet}` as the default upstream.
fn with_rules(rules: &[&str]) -> String {
    let rules: Vec<String> = rules.iter().map(|r| format!("{r:?}")).collect();
    format!(
        "rules = [{}]\n[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"{{internet}}\"]\ntimeout = \"500ms\"\n",
        rules.join(", ")
    )
}

/// splitdns on [`with_rules`]`(rules)`, with two Consul-like servers `{first}` and
/// `{second}` and the internet-like `{internet}`.
async fn two_servers(rules: &[&str]) -> (Splitdns, FakeUpstream, FakeUpstream, FakeUpstream) {
    let first = FakeUpstream::start(consul()).await;
    let second = FakeUpstream::start(consul()).await;
    let internet = FakeUpstream::start(internet()).await;
    let upstreams = [
        ("first", &first),
        ("second", &second),
        ("internet", &internet),
    ];
    let dns = Splitdns::start(&with_rules(rules), &upstreams).await;
    (dns, first, second, internet)
}

/// dnsmasq(8), `--server`: "More than one --server flag is allowed, with repeated domain or
/// ipaddr parts as required." Two lines for `consul` are one server group, asked in order:
/// the second server answers when the first fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_server_lines_are_one_group_asked_in_order() {
    let (dns, first, second, internet) =
        two_servers(&["server=/consul/{first#}", "server=/consul/{second#}"]).await;

    let reply = dns.ask("web.service.consul.", RecordType::A).await;
    assert_eq!(answer_ips(&reply).len(), 2);
    assert_eq!(first.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(second.total(), 0, "the first server answered");

    first.set_mode(Mode::ServFail);
    let reply = dns.ask("node-a.node.consul.", RecordType::A).await;
    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(first.count("node-a.node.consul.", RecordType::A), 1);
    assert_eq!(second.count("node-a.node.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 0);
}

/// `server=/a/b/ip` gives both zones the server; a further line for one of them adds a
/// server to that zone only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_for_two_zones_and_another_for_one_of_them() {
    let (dns, first, second, _internet) = two_servers(&[
        "server=/consul/in-addr.arpa/{first#}",
        "server=/in-addr.arpa/{second#}",
    ])
    .await;
    first.set_mode(Mode::ServFail);

    dns.ask("web.service.consul.", RecordType::A).await;
    let ptr = dns.ask("1.0.0.10.in-addr.arpa.", RecordType::PTR).await;

    assert_eq!(first.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(
        second.count("web.service.consul.", RecordType::A),
        0,
        "consul has only the first server"
    );
    assert_eq!(first.count("1.0.0.10.in-addr.arpa.", RecordType::PTR), 1);
    assert_eq!(second.count("1.0.0.10.in-addr.arpa.", RecordType::PTR), 1);
    assert_eq!(ptr.answers.len(), 1);
}

/// dnsmasq(8): "The special server address '#' means, 'use the standard servers'". Next to a
/// server for the same zone, in either order, `#` wins (dnsmasq 2.90 by hand, and
/// `filter_servers` in its domain-match.c ranks "resolvconf servers" above "upstream server").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_servers_line_wins_over_a_server_for_the_same_zone() {
    for rules in [
        ["server=/consul/{consul#}", "server=/consul/#"],
        ["server=/consul/#", "server=/consul/{consul#}"],
    ] {
        let (dns, consul, internet) = Splitdns::with_fakes(&with_rules(&rules)).await;

        dns.ask("web.service.consul.", RecordType::A).await;

        assert_eq!(
            internet.count("web.service.consul.", RecordType::A),
            1,
            "{rules:?}"
        );
        assert_eq!(consul.total(), 0, "{rules:?}");
    }
}

/// dnsmasq(8): a `-S` flag "which gives a domain but no IP address" makes the domain local.
/// With a server for the same zone as well, the server is used (dnsmasq 2.90 by hand;
/// domain-match.c ranks the local "NXDOMAIN reply" last).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_line_wins_over_local_for_the_same_zone() {
    for rules in [
        ["local=/consul/", "server=/consul/{consul#}"],
        ["server=/consul/{consul#}", "server=/consul/"],
    ] {
        let (dns, consul, _internet) = Splitdns::with_fakes(&with_rules(&rules)).await;

        let reply = dns.ask("web.service.consul.", RecordType::A).await;

        assert_eq!(answer_ips(&reply).len(), 2, "{rules:?}");
        assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    }
}

/// dnsmasq(8), `--address`: "From 2.86, the query is sent upstream" for types the address
/// does not answer; under a forwarded zone that is the zone's server (dnsmasq 2.90 by hand
/// sends AAAA for x.b.consul to the consul server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_under_a_forwarded_zone_leaves_other_types_to_that_zone() {
    let (dns, consul, internet) = Splitdns::with_fakes(&with_rules(&[
        "server=/consul/{consul#}",
        "address=/b.consul/192.0.2.7",
    ]))
    .await;

    let a = dns.ask("x.b.consul.", RecordType::A).await;
    dns.ask("x.b.consul.", RecordType::AAAA).await;

    assert_eq!(
        answer_ips(&a),
        ["192.0.2.7".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(consul.count("x.b.consul.", RecordType::A), 0);
    assert_eq!(consul.count("x.b.consul.", RecordType::AAAA), 1);
    assert_eq!(internet.total(), 0);
}

/// splitdns's own `rewrite=` line takes the `server=` lines of its zone as its servers:
/// one rewrite route, not two definitions of `infra.local`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrite_takes_the_server_lines_of_its_zone() {
    let (dns, consul, internet) = Splitdns::with_fakes(&with_rules(&[
        "rewrite=/infra.local/service.consul/",
        "server=/infra.local/{consul#}",
    ]))
    .await;

    let reply = dns.ask("web.infra.local.", RecordType::A).await;

    assert_eq!(answer_ips(&reply).len(), 2, "{reply}");
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 0);
}

/// dnsmasq(8), `--rev-server`: "functionally the same as --server", so repeated lines for
/// one prefix are one server group too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rev_server_lines_accumulate() {
    let (dns, first, second, _internet) = two_servers(&[
        "rev-server=10.0.0.0/8,{first#}",
        "rev-server=10.0.0.0/8,{second#}",
    ])
    .await;
    first.set_mode(Mode::ServFail);

    let reply = dns.ask("1.0.0.10.in-addr.arpa.", RecordType::PTR).await;

    assert_eq!(reply.answers.len(), 1, "{reply}");
    assert_eq!(first.count("1.0.0.10.in-addr.arpa.", RecordType::PTR), 1);
    assert_eq!(second.count("1.0.0.10.in-addr.arpa.", RecordType::PTR), 1);
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
