//! dnsmasq rule lines (`rules`, and the `*.conf` drop-in files) mean what they mean in
//! dnsmasq: `server=` and `rev-server=` send a zone to a server, `server=/x/#` to the standard
//! servers, `server=/x/` and `local=/x/` answer it here, `address=` answers a name and every
//! name below it, and splitdns's own `rewrite=` asks a zone as another. Lines for the same zone
//! accumulate, and where kinds of line meet in one zone, dnsmasq's order of precedence decides.
//!
//! Each case is pinned here as dnsmasq(8) words it (and as dnsmasq 2.90 did it when tried by
//! hand), so these run without dnsmasq; differential.rs holds the same kinds of line against
//! the dnsmasq binary itself.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use splitdns::config::RouteAction;

use crate::support::fixtures::{consul, internet};
use crate::support::harness::parse;
use crate::support::{FakeUpstream, Mode, Splitdns, answer_ips, assert_rcode, query};

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

/// A zone answered here for names without data (written both ways), an `address=` inside it.
const LOCAL_RULES: &[&str] = &[
    "server=/internal.example/",
    "local=/lan/",
    "address=/gw.lan/192.0.2.1",
];

/// `server=/consul/ADDR` sends the zone to ADDR, as a `[[route]]` table would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rule_routes_like_a_route() {
    let (dns, consul, internet) =
        Splitdns::with_fakes(&with_rules(&["server=/consul/{consul#}"])).await;

    let reply = dns.ask("web.service.consul.", RecordType::A).await;

    assert_eq!(answer_ips(&reply).len(), 2);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 0);
}

/// `rev-server=10.0.0.0/8,ADDR` sends the reverse zone of the prefix to ADDR, and only it:
/// 11.in-addr.arpa and 110.in-addr.arpa are not under 10.in-addr.arpa.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rev_server_routes_the_reverse_zone() {
    let (dns, consul, internet) =
        Splitdns::with_fakes(&with_rules(&["rev-server=10.0.0.0/8,{consul#}"])).await;

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

/// dnsmasq(8): "The special server address '#' means, 'use the standard servers'": a zone
/// below a forwarded one goes back to the default upstreams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_rule_with_hash_sends_zone_to_default_upstreams() {
    let (dns, consul, internet) = Splitdns::with_fakes(&with_rules(&[
        "server=/consul/{consul#}",
        "server=/corp.consul/#",
    ]))
    .await;

    dns.ask("host.corp.consul.", RecordType::A).await;
    dns.ask("web.service.consul.", RecordType::A).await;

    assert_eq!(internet.count("host.corp.consul.", RecordType::A), 1);
    assert_eq!(internet.total(), 1);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 1);
    assert_eq!(consul.total(), 1);
}

/// dnsmasq(8): a `-S` flag "which gives a domain but no IP address" makes the domain local, as
/// `--local` does: every name in it, of every type, is NXDOMAIN, answered here (AA=1, and RA=1
/// as on every answer) over UDP and TCP, and never forwarded. Not the zones' own names,
/// internal.example. and lan.: each is its zone's apex and owns the zone's SOA, and gw.lan
/// lies below lan., so they exist (see local.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_and_local_lines_without_an_address_answer_nxdomain_here() {
    let internet = FakeUpstream::start(internet()).await;
    let dns = Splitdns::start(&with_rules(LOCAL_RULES), &[("internet", &internet)]).await;

    for qname in [
        "host.internal.example.",
        "a.b.INTERNAL.example.",
        "printer.lan.",
        "x.printer.LAN.",
    ] {
        for qtype in [RecordType::A, RecordType::AAAA, RecordType::TXT] {
            let reply = dns.ask(qname, qtype).await;
            assert_rcode(&reply, ResponseCode::NXDomain);
            assert!(reply.metadata.authoritative, "AA=1 on local answers");
            assert!(reply.metadata.recursion_available, "RA=1 on every answer");
            assert!(reply.answers.is_empty());
        }
    }
    let tcp = dns.tcp(&query("printer.lan.", RecordType::AAAA)).await;
    assert_rcode(&tcp, ResponseCode::NXDomain);
    assert_eq!(internet.total(), 0, "local zones are never forwarded");
}

/// dnsmasq(8), `--address`: "Specify an IP address to return for any host in the given
/// domains": the name and every name below it, each answered under its own name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_rule_answers_the_name_and_every_name_below_it() {
    let internet = FakeUpstream::start(internet()).await;
    let dns = Splitdns::start(&with_rules(LOCAL_RULES), &[("internet", &internet)]).await;

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
    // Inside `local=/lan/` the address wins for gw.lan and below; the rest of lan stays local.
    let other = dns.ask("nas.lan.", RecordType::A).await;
    assert_rcode(&other, ResponseCode::NXDomain);
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
    let dns = Splitdns::start(&with_rules(LOCAL_RULES), &[("internet", &internet)]).await;

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

/// The same man page paragraph: with no zone above, the other types go to the standard
/// servers; with `local=` for the same zone, they get NODATA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_rule_alone_forwards_other_types_and_with_local_gives_nodata() {
    let internet = FakeUpstream::start(internet()).await;
    let rules = with_rules(&[
        "address=/www.example/192.0.2.1",
        "address=/nas.lan/192.0.2.2",
        "local=/nas.lan/",
    ]);
    let dns = Splitdns::start(&rules, &[("internet", &internet)]).await;

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
/// domain-match.c ranks the local "NXDOMAIN reply" last). The lines make one route, forwarded
/// to the server: rules never conflict with rules; only a `[[route]]` table does.
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
    for rules in [
        ["server=/lan/127.0.0.1#5353", "local=/lan/"],
        ["local=/lan/", "server=/lan/127.0.0.1#5353"],
    ] {
        let config = parse(&with_rules(&rules).replace("{internet}", "127.0.0.1:5300"));
        assert_eq!(config.routes.len(), 1, "{rules:?}");
        assert_eq!(
            config.routes[0].action,
            RouteAction::Forward(vec!["127.0.0.1:5353".parse().unwrap()]),
            "{rules:?}"
        );
    }
}
