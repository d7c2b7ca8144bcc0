//! The fake Consul agent (`support::consul`) against what Consul itself does: its DNS answers
//! as Consul's DNS server puts them on the wire, its HTTP API as Consul's blocking queries
//! behave, and splitdns forwarding `*.consul` to it unchanged. Each test quotes the Consul
//! function or document it holds the fake to.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use crate::support::client::{self, query, query_with_edns};
use crate::support::consul::{Acl, Catalog, FakeConsul, Health, HttpReply, Node, Service, try_get};
use crate::support::fixtures::internet;
use crate::support::harness::STANDARD;
use crate::support::{FakeUpstream, Splitdns, answer_ips, assert_rcode};

/// Nodes in two datacenters, one of them IPv6-only and one failing its `serfHealth`; `web`
/// on four nodes (tags, a service address, a warning check with weights, a critical node),
/// `api6` on IPv6, `db` with a hostname address, and the `consul` servers.
fn sample() -> Catalog {
    Catalog::new()
        .with_node(Node::new("node-a", "10.0.0.1").meta("rack", "r1"))
        .with_node(Node::new("node-b", "10.0.0.2"))
        .with_node(Node::new("node-c", "10.0.0.3"))
        .with_node(Node::new("node-d", "10.0.0.4").health(Health::Critical))
        .with_node(Node::new("node-6", "2001:db8::6"))
        .with_node(Node::new("far-1", "10.9.0.1").dc("dc2"))
        .with_node(Node::new("srv1", "10.0.0.10"))
        .with_service(Service::new("consul", "srv1", 8300))
        .with_service(Service::new("web", "node-a", 8080).tags(&["primary", "v1"]))
        .with_service(
            Service::new("web", "node-b", 8081)
                .address("10.0.1.2")
                .tags(&["v1"]),
        )
        .with_service(
            Service::new("web", "node-c", 8082)
                .health(Health::Warning)
                .weights(10, 2),
        )
        .with_service(Service::new("web", "node-d", 8083))
        .with_service(Service::new("web", "far-1", 80))
        .with_service(Service::new("api6", "node-6", 9000))
        .with_service(Service::new("api6", "node-b", 9001).address("2001:db8::10"))
        .with_service(Service::new("db", "node-a", 5432).address("db.example.net"))
}

/// `big` on ten nodes of its own.
fn ten_instances() -> Catalog {
    (1..=10).fold(Catalog::new(), |catalog, i| {
        let node = format!("big-{i}");
        catalog
            .with_node(Node::new(&node, &format!("10.1.0.{i}")))
            .with_service(Service::new("big", &node, 7000))
    })
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

fn ip_set(msg: &Message) -> BTreeSet<Ipv4Addr> {
    answer_ips(msg).into_iter().collect()
}

/// Every record of a section as text, sorted, with SOA serials zeroed (they are the time).
fn texts(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let RData::SOA(soa) = &mut r.data {
                soa.serial = 0;
            }
            r.to_string()
        })
        .collect();
    out.sort();
    out
}

/// SRV answers as `(port, weight, target)`, sorted.
fn srvs(msg: &Message) -> Vec<(u16, u16, String)> {
    let mut out: Vec<_> = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => {
                assert_eq!(s.priority, 1, "{msg}");
                Some((s.port, s.weight, s.target.to_ascii()))
            }
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// Consul's SOA: `consul. 0 IN SOA ns.consul. hostmaster.consul. <now> 3600 600 86400 0`.
#[track_caller]
fn assert_consul_soa(msg: &Message) {
    assert_eq!(msg.authorities.len(), 1, "{msg}");
    let soa = &msg.authorities[0];
    assert_eq!(soa.name.to_ascii(), "consul.");
    assert_eq!(soa.ttl, 0);
    let RData::SOA(data) = &soa.data else {
        panic!("not an SOA: {soa}")
    };
    assert_eq!(data.mname.to_ascii(), "ns.consul.");
    assert_eq!(data.rname.to_ascii(), "hostmaster.consul.");
    assert_eq!(
        (data.refresh, data.retry, data.expire, data.minimum),
        (3600, 600, 86400, 0)
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - i64::from(data.serial)).abs() <= 2,
        "serial {}",
        data.serial
    );
}

/// consul-dns.md §6.1 (MS `appendResultsToDNSResponse`, QF `fetchService`): one A per healthy
/// instance, the service address over the node's, TTL 0, AA=1, nothing in AUTHORITY or
/// ADDITIONAL; the critical node's instance and the other datacenter's never appear; the
/// question comes back lower-cased (R `validateAndNormalizeRequest`); TCP answers alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_a_lists_the_healthy_instances() {
    let consul = FakeConsul::start(sample()).await;

    let reply = consul.ask("WEB.Service.CONSUL.", RecordType::A).await;
    let tcp = client::tcp(
        consul.dns_addr(),
        &query("web.service.consul.", RecordType::A),
    )
    .await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert!(reply.metadata.authoritative, "{reply}");
    assert!(!reply.metadata.recursion_available && !reply.metadata.truncation);
    assert_eq!(reply.queries[0].name().to_ascii(), "web.service.consul.");
    let expected = BTreeSet::from([ip("10.0.0.1"), ip("10.0.1.2"), ip("10.0.0.3")]);
    assert_eq!(ip_set(&reply), expected);
    assert!(reply.answers.iter().all(|r| r.ttl == 0));
    assert!(reply.authorities.is_empty() && reply.additionals.is_empty());
    assert_eq!(ip_set(&tcp), expected);
}

/// §10.1 / QF `fetchService` "Perform a random shuffle": the same question gets the answers
/// in more than one order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_shuffled_per_query() {
    let consul = FakeConsul::start(sample()).await;

    let mut orders = BTreeSet::new();
    for _ in 0..30 {
        orders.insert(answer_ips(
            &consul.ask("web.service.consul.", RecordType::A).await,
        ));
    }

    assert!(orders.len() > 1, "always the same order: {orders:?}");
}

/// §6.2 (MS `getAnswerExtrasForIP`, QF `findWeight`, MS `shouldAppendTXTRecord`): priority 1;
/// weight `Weights.Passing`, or `Weights.Warning` while a check warns; target
/// `<node>.node.<dc>.consul.` without a service address, `<hex>.addr.<dc>.consul.` with one;
/// ADDITIONAL the target's address, then the node's meta as TXT under the node name.
/// §4.3 RFC 2782 names (DRF `getQueryNameAndTagFromParts`) and the SRV-only shortcut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srv_targets_and_additionals() {
    let consul = FakeConsul::start(sample()).await;

    let reply = consul.ask("web.service.consul.", RecordType::SRV).await;

    assert_rcode(&reply, ResponseCode::NoError);
    assert_eq!(
        srvs(&reply),
        [
            (8080, 1, "node-a.node.dc1.consul.".to_string()),
            (8081, 1, "0a000102.addr.dc1.consul.".to_string()),
            (8082, 2, "node-c.node.dc1.consul.".to_string()),
        ]
    );
    assert_eq!(
        texts(&reply.additionals),
        [
            "0a000102.addr.dc1.consul. 0 IN A 10.0.1.2",
            "node-a.node.dc1.consul. 0 IN A 10.0.0.1",
            "node-a.node.dc1.consul. 0 IN TXT consul-network-segment=",
            "node-a.node.dc1.consul. 0 IN TXT rack=r1",
            "node-b.node.dc1.consul. 0 IN TXT consul-network-segment=",
            "node-c.node.dc1.consul. 0 IN A 10.0.0.3",
            "node-c.node.dc1.consul. 0 IN TXT consul-network-segment=",
        ]
    );

    for same in ["_web._tcp.service.consul.", "_web._tcp.consul."] {
        let other = consul.ask(same, RecordType::SRV).await;
        assert_eq!(srvs(&other), srvs(&reply), "{same}");
    }
    let primary = consul
        .ask("_web._primary.service.consul.", RecordType::SRV)
        .await;
    assert_eq!(
        srvs(&primary),
        [(8080, 1, "node-a.node.dc1.consul.".to_string())]
    );
    let a = consul.ask("_web._tcp.consul.", RecordType::A).await;
    assert_rcode(&a, ResponseCode::NXDomain);
}

/// §6.2 and §4.4 (`encodeIPAsFqdn`): an IPv6 service address gives a 32-hex `.addr.` target
/// with an AAAA in ADDITIONAL; AAAA questions get the v6 instances (§6.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_instances() {
    let consul = FakeConsul::start(sample()).await;

    let srv = consul.ask("api6.service.consul.", RecordType::SRV).await;
    let aaaa = consul.ask("api6.service.consul.", RecordType::AAAA).await;

    assert_eq!(
        srvs(&srv),
        [
            (9000, 1, "node-6.node.dc1.consul.".to_string()),
            (
                9001,
                1,
                "20010db8000000000000000000000010.addr.dc1.consul.".to_string()
            ),
        ]
    );
    assert!(
        texts(&srv.additionals).contains(
            &"20010db8000000000000000000000010.addr.dc1.consul. 0 IN AAAA 2001:db8::10".to_string()
        ),
        "{srv}"
    );
    assert_eq!(
        texts(&aaaa.answers),
        [
            "api6.service.consul. 0 IN AAAA 2001:db8::10",
            "api6.service.consul. 0 IN AAAA 2001:db8::6",
        ]
    );
}

/// §4.3 tag filter and §9: `<tag>.<svc>.service` keeps the tagged instances; a tag nobody has
/// is NXDOMAIN with the SOA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_filter() {
    let consul = FakeConsul::start(sample()).await;

    let primary = consul
        .ask("primary.web.service.consul.", RecordType::A)
        .await;
    let v1 = consul.ask("v1.web.service.consul.", RecordType::A).await;
    let nope = consul.ask("nope.web.service.consul.", RecordType::A).await;

    assert_eq!(ip_set(&primary), BTreeSet::from([ip("10.0.0.1")]));
    assert_eq!(
        ip_set(&v1),
        BTreeSet::from([ip("10.0.0.1"), ip("10.0.1.2")])
    );
    assert_rcode(&nope, ResponseCode::NXDomain);
    assert_consul_soa(&nope);
}

/// §9 (RG `createAuthoritativeResponse`, RM `makeSOA`): a missing service, an unknown
/// datacenter, the apex and empty non-terminals are NXDOMAIN with exactly Consul's SOA; a
/// type the instances lack is NODATA with the same SOA; another datacenter's name answers
/// from that datacenter; out of zone is REFUSED without AA or OPT (RG
/// `createRefusedResponse`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_answers_carry_consuls_soa() {
    let consul = FakeConsul::start(sample()).await;

    for missing in [
        "nope.service.consul.",
        "web.service.dc9.consul.",
        "consul.",
        "service.consul.",
        "web.service.a.b.c.consul.",
        "web.service.x.ns.consul.",
        "zz.node.consul.",
    ] {
        let reply = consul.ask(missing, RecordType::A).await;
        assert_rcode(&reply, ResponseCode::NXDomain);
        assert!(reply.metadata.authoritative, "{missing}");
        assert!(reply.answers.is_empty(), "{reply}");
        assert_consul_soa(&reply);
    }
    let nodata = consul.ask("web.service.consul.", RecordType::AAAA).await;
    assert_rcode(&nodata, ResponseCode::NoError);
    assert!(nodata.answers.is_empty(), "{nodata}");
    assert_consul_soa(&nodata);

    let dc2 = consul.ask("web.service.dc2.consul.", RecordType::A).await;
    assert_eq!(answer_ips(&dc2), [ip("10.9.0.1")]);

    let refused = client::udp(
        consul.dns_addr(),
        &query_with_edns("example.com.", RecordType::A, 1232),
    )
    .await;
    assert_rcode(&refused, ResponseCode::Refused);
    assert!(
        !refused.metadata.authoritative && refused.edns.is_none(),
        "{refused}"
    );
}

/// §11 (QF `fetchService`, `CheckServiceNodes.Filter`): by default a warning instance is
/// answered and a critical one is not; with `only_passing` the warning one goes too. A check
/// turning critical takes its instance out of the next answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_filtering() {
    let consul = FakeConsul::start(sample()).await;
    let strict = FakeConsul::start(sample().configure(|c| c.only_passing = true)).await;

    let strict_reply = strict.ask("web.service.consul.", RecordType::A).await;
    consul.set_service_health("node-b", "web", Health::Critical);
    let after = consul.ask("web.service.consul.", RecordType::A).await;

    assert_eq!(
        ip_set(&strict_reply),
        BTreeSet::from([ip("10.0.0.1"), ip("10.0.1.2")])
    );
    assert_eq!(
        ip_set(&after),
        BTreeSet::from([ip("10.0.0.1"), ip("10.0.0.3")])
    );
}

/// §10.2 (RG `trimUDPResponse`, `syncExtra`): without EDNS, UDP carries at most
/// `udp_answer_limit` (3) answers and TC stays 0 unless `enable_truncate`; SRV keeps only the
/// kept targets' addresses (no TXT). EDNS 1232 and TCP (`trimTCPResponse`) get all ten; the
/// OPT echoes the client's size (RG `setEDNS`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_without_edns_is_cut_to_three() {
    let consul = FakeConsul::start(ten_instances()).await;
    let server = consul.dns_addr();

    let plain = consul.ask("big.service.consul.", RecordType::A).await;
    let srv = consul.ask("big.service.consul.", RecordType::SRV).await;
    let edns = client::udp(
        server,
        &query_with_edns("big.service.consul.", RecordType::A, 1232),
    )
    .await;
    let small_edns = client::udp(
        server,
        &query_with_edns("big.service.consul.", RecordType::A, 512),
    )
    .await;
    let tcp = client::tcp(server, &query("big.service.consul.", RecordType::A)).await;
    consul.change(|c| c.config.enable_truncate = true);
    let flagged = consul.ask("big.service.consul.", RecordType::A).await;

    assert_eq!(plain.answers.len(), 3, "{plain}");
    assert!(!plain.metadata.truncation);
    assert_eq!(srv.answers.len(), 3, "{srv}");
    assert_eq!(srv.additionals.len(), 3, "{srv}");
    assert!(
        srv.additionals
            .iter()
            .all(|r| r.record_type() == RecordType::A)
    );
    assert_eq!(edns.answers.len(), 10, "{edns}");
    assert_eq!(edns.edns.as_ref().map(|e| e.max_payload()), Some(1232));
    assert_eq!(small_edns.answers.len(), 3, "{small_edns}");
    assert_eq!(tcp.answers.len(), 10, "{tcp}");
    assert_eq!(flagged.answers.len(), 3);
    assert!(flagged.metadata.truncation, "{flagged}");
}

/// §7.1 node lookups (QF `FetchNodes`), §7.3 `.addr` (DRF `buildAddressResults`), §7.5 PTR
/// (QF `FetchRecordsByIp`, TTL always 0) and §8 TTLs (MS `getTTLForResult`: exact name, then
/// `prefix*`, then `*`; nodes and `.addr` `node_ttl`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_addr_ptr_and_ttls() {
    let catalog = sample().configure(|c| {
        c.service_ttl = vec![("*".into(), 5), ("web".into(), 30), ("db*".into(), 10)];
        c.node_ttl = 10;
    });
    let consul = FakeConsul::start(catalog).await;

    let node = consul.ask("node-a.node.consul.", RecordType::A).await;
    assert_eq!(
        texts(&node.answers),
        ["node-a.node.consul. 10 IN A 10.0.0.1"]
    );
    assert_eq!(
        texts(&node.additionals),
        [
            "node-a.node.consul. 10 IN TXT consul-network-segment=",
            "node-a.node.consul. 10 IN TXT rack=r1",
        ]
    );
    let addr = consul.ask("0a000001.addr.dc1.consul.", RecordType::A).await;
    assert_eq!(
        texts(&addr.answers),
        ["0a000001.addr.dc1.consul. 10 IN A 10.0.0.1"]
    );
    let bad = consul.ask("zz000001.addr.consul.", RecordType::A).await;
    assert_rcode(&bad, ResponseCode::NXDomain);
    let ptr = consul.ask("1.0.0.10.in-addr.arpa.", RecordType::PTR).await;
    assert_eq!(
        texts(&ptr.answers),
        ["1.0.0.10.in-addr.arpa. 0 IN PTR node-a.node.dc1.consul."]
    );
    let web = consul.ask("web.service.consul.", RecordType::A).await;
    let api6 = consul.ask("api6.service.consul.", RecordType::AAAA).await;
    assert!(web.answers.iter().all(|r| r.ttl == 30), "{web}");
    assert!(api6.answers.iter().all(|r| r.ttl == 5), "{api6}");
    // §6.5: an external hostname is a CNAME alone (no recursors).
    let db = consul.ask("db.service.consul.", RecordType::A).await;
    assert_eq!(
        texts(&db.answers),
        ["db.service.consul. 10 IN CNAME db.example.net."]
    );
}

/// `/v1/agent/self` `DebugConfig` carries the DNS settings under `RuntimeConfig`'s field
/// names (`agent/config/runtime.go`), durations as Go's `Duration.String()`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_self_reports_the_dns_config() {
    let catalog = sample().configure(|c| {
        c.service_ttl = vec![("*".into(), 5), ("web".into(), 90)];
        c.node_ttl = 10;
        c.only_passing = true;
    });
    let consul = FakeConsul::start(catalog).await;

    let reply = consul.get("/v1/agent/self").await;

    assert_eq!(reply.status, 200);
    let debug = &reply.json()["DebugConfig"];
    assert_eq!(debug["DNSDomain"], "consul.");
    assert_eq!(debug["DNSAltDomain"], "");
    assert_eq!(debug["DNSOnlyPassing"], true);
    assert_eq!(debug["DNSServiceTTL"]["*"], "5s");
    assert_eq!(debug["DNSServiceTTL"]["web"], "1m30s");
    assert_eq!(debug["DNSNodeTTL"], "10s");
    assert_eq!(debug["DNSARecordLimit"], 0);
    assert_eq!(debug["DNSUDPAnswerLimit"], 3);
    assert_eq!(debug["DNSEnableTruncate"], false);
    assert_eq!(debug["DNSSOA"]["Refresh"], 3600);
    assert_eq!(debug["DNSSOA"]["Minttl"], 0);
    assert_eq!(reply.json()["Config"]["Datacenter"], "dc1");
}

/// `/v1/health/service/:service` (`healthServiceNodes`): `{Node, Service, Checks}` per
/// instance, critical ones included; `?passing` drops any with a non-passing check
/// (`filterNonPassing`); every `?tag` must match; `?dc` picks the datacenter and an unknown
/// one is a 500; a missing service is `[]`; `setMeta` headers on each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_service_shape_and_filters() {
    let consul = FakeConsul::start(sample()).await;

    let all = consul.get("/v1/health/service/web").await;
    assert_eq!(all.status, 200);
    assert_eq!(all.index(), consul.service_index("web"));
    assert_eq!(all.header("x-consul-knownleader"), Some("true"));
    assert_eq!(all.header("x-consul-lastcontact"), Some("0"));
    let entries = all.json();
    assert_eq!(entries.as_array().unwrap().len(), 4, "{entries}");
    let b = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["Node"]["Node"] == "node-b")
        .unwrap();
    assert_eq!(b["Node"]["Address"], "10.0.0.2");
    assert_eq!(b["Node"]["Datacenter"], "dc1");
    assert_eq!(b["Node"]["TaggedAddresses"]["lan_ipv4"], "10.0.0.2");
    assert_eq!(b["Node"]["Meta"]["consul-network-segment"], "");
    assert_eq!(b["Service"]["ID"], "web");
    assert_eq!(b["Service"]["Service"], "web");
    assert_eq!(b["Service"]["Tags"], serde_json::json!(["v1"]));
    assert_eq!(b["Service"]["Address"], "10.0.1.2");
    assert_eq!(b["Service"]["Port"], 8081);
    assert_eq!(b["Service"]["Weights"]["Passing"], 1);
    assert_eq!(b["Checks"][0]["CheckID"], "serfHealth");
    assert_eq!(b["Checks"][0]["Status"], "passing");

    let nodes = |reply: &crate::support::consul::HttpReply| -> BTreeSet<String> {
        reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Node"]["Node"].as_str().unwrap().to_string())
            .collect()
    };
    let passing = consul.get("/v1/health/service/web?passing").await;
    assert_eq!(
        nodes(&passing),
        BTreeSet::from(["node-a".into(), "node-b".into()])
    );
    let tagged = consul
        .get("/v1/health/service/web?tag=v1&tag=primary")
        .await;
    assert_eq!(nodes(&tagged), BTreeSet::from(["node-a".into()]));
    let dc2 = consul.get("/v1/health/service/web?dc=dc2&stale").await;
    assert_eq!(nodes(&dc2), BTreeSet::from(["far-1".into()]));
    assert_eq!(dc2.header("x-consul-effective-consistency"), Some("stale"));
    let nowhere = consul.get("/v1/health/service/web?dc=dc9").await;
    assert_eq!(nowhere.status, 500);
    let missing = consul.get("/v1/health/service/nope").await;
    assert_eq!(missing.body, "[]");
    assert!(missing.index() >= 1);

    let services = consul.get("/v1/catalog/services").await;
    assert_eq!(services.json()["web"], serde_json::json!(["primary", "v1"]));
    assert_eq!(services.json()["consul"], serde_json::json!([]));
    assert_eq!(services.index(), consul.read(|c| c.services_index()));
}

/// A health query for `web` blocked on `index` (for up to 5 s), returned once the agent
/// counts it as blocked, so what the test changes next is what ends it.
async fn blocked_web_query(
    consul: &FakeConsul,
    index: u64,
) -> tokio::task::JoinHandle<Result<HttpReply, String>> {
    let addr = consul.http_addr();
    let path = format!("/v1/health/service/web?index={index}&wait=5s");
    let waiting = tokio::spawn(async move { try_get(addr, &path).await });
    consul.wait_blocked(1).await;
    waiting
}

/// "Blocking Queries" (api-docs/features/blocking): with `index` set to the current
/// `X-Consul-Index` the request hangs until the service changes and returns the new index; a
/// change to another service does not end it (`blockingquery.Query` runs the query again and
/// keeps waiting while the index has not moved past `index`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_query_returns_on_a_change() {
    let consul = FakeConsul::start(sample()).await;
    let index = consul.get("/v1/health/service/web").await.index();

    let waiting = blocked_web_query(&consul, index).await;
    consul.register(Service::new("other", "node-a", 1));
    let changed = consul.register(Service::new("web", "node-6", 8084).id("web-6"));
    let reply = waiting.await.unwrap().unwrap();

    assert_eq!(reply.status, 200);
    assert_eq!(reply.index(), changed);
    assert!(changed > index);
    assert!(reply.body.contains("web-6"), "{}", reply.body);
    assert_eq!(consul.blocked(), 0);
}

/// "Blocking Queries": when `wait` passes with no change, the reply comes with the same index
/// (a return is no guarantee of a change); the wait is at least `wait`, plus at most
/// `wait/16` of jitter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_elapses_with_the_same_index() {
    let consul = FakeConsul::start(sample()).await;
    let index = consul.get("/v1/health/service/web").await.index();

    let started = Instant::now();
    let reply = consul
        .get(&format!("/v1/health/service/web?index={index}&wait=200ms"))
        .await;

    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.index(), index);
}

/// "Blocking Queries", *Reset the index if it goes backwards*: a snapshot restore lowers the
/// index; a query blocked on the old index returns at once with the lower one
/// (`blockingquery.Query`: "exit if the state store has been abandoned"); a query with the
/// old index afterwards would block to its timeout, while index 0 answers at once, and the
/// lowered index then blocks normally until the next change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_lowers_the_index() {
    let consul = FakeConsul::start(sample()).await;
    let index = consul.get("/v1/health/service/web").await.index();

    let waiting = blocked_web_query(&consul, index).await;
    consul.restore_index(3);
    let reply = waiting.await.unwrap().unwrap();
    assert_eq!(reply.index(), 3);
    assert!(reply.index() < index);

    let stale = consul
        .get(&format!("/v1/health/service/web?index={index}&wait=100ms"))
        .await;
    assert_eq!(stale.index(), 3, "the old index cannot be reached");
    let reset = consul.get("/v1/health/service/web?index=0").await;
    assert_eq!(reset.index(), 3);

    let waiting = blocked_web_query(&consul, 3).await;
    let changed = consul.set_service_health("node-a", "web", Health::Warning);
    assert_eq!(waiting.await.unwrap().unwrap().index(), changed);
    assert_eq!(changed, 4);
}

/// Changes the mirror follows: deregistration, and a check going critical, each move the
/// service's index; the HTTP view and the DNS view change together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deregister_and_critical() {
    let consul = FakeConsul::start(sample()).await;
    let before = consul.service_index("web");

    let down = consul.deregister("node-b", "web");
    let critical = consul.set_node_health("node-a", Health::Critical);

    assert!(before < down && down < critical);
    let reply = consul.get("/v1/health/service/web?passing").await;
    assert_eq!(reply.index(), critical);
    assert_eq!(reply.body, "[]");
    let dns = consul.ask("web.service.consul.", RecordType::A).await;
    assert_eq!(answer_ips(&dns), [ip("10.0.0.3")]);
}

/// Faults: ACLs deny (403) or filter a service (`X-Consul-Results-Filtered-By-ACLs: true`,
/// per the HTTP API docs); slow answers; the HTTP port closed and opened again with the same
/// data and index; per-endpoint request counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_counters() {
    let consul = FakeConsul::start(sample()).await;
    let index = consul.get("/v1/health/service/web?token=t1").await.index();

    consul.set_acl("web", Some(Acl::Deny));
    assert_eq!(consul.get("/v1/health/service/web").await.status, 403);
    let services = consul.get("/v1/catalog/services").await;
    assert!(services.json().get("web").is_none());
    assert_eq!(
        services.header("x-consul-results-filtered-by-acls"),
        Some("true")
    );
    consul.set_acl("web", Some(Acl::Filter));
    let filtered = consul.get("/v1/health/service/web").await;
    assert_eq!((filtered.status, filtered.body.as_str()), (200, "[]"));
    assert_eq!(
        filtered.header("x-consul-results-filtered-by-acls"),
        Some("true")
    );
    consul.set_acl("web", None);

    consul.set_http_delay(Duration::from_millis(150));
    let started = Instant::now();
    consul.get("/v1/agent/self").await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    consul.set_http_delay(Duration::ZERO);

    consul.stop_http().await;
    assert!(try_get(consul.http_addr(), "/v1/agent/self").await.is_err());
    consul.start_http();
    assert_eq!(consul.get("/v1/health/service/web").await.index(), index);

    assert_eq!(consul.requests("/v1/health/service/web"), 4);
    assert_eq!(consul.requests("/v1/catalog/services"), 1);
    assert_eq!(consul.tokens(), ["t1"]);
}

/// splitdns with its Consul route pointed at the fake passes the agent's answers on as they
/// are: the same records (order aside, as Consul shuffles), the same negative answers and SOA,
/// and an SRV answer's whole ADDITIONAL section (target addresses and node-meta TXT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splitdns_forwards_the_agents_answers() {
    let consul = FakeConsul::start(sample()).await;
    let internet = FakeUpstream::start(internet()).await;
    let template = STANDARD.replace("{consul}", &consul.dns_addr().to_string());
    let dns = Splitdns::start(&template, &[("internet", &internet)]).await;

    for (qname, qtype) in [
        ("web.service.consul.", RecordType::A),
        ("web.service.consul.", RecordType::SRV),
        ("_web._tcp.service.consul.", RecordType::SRV),
        ("primary.web.service.consul.", RecordType::A),
        ("web.service.dc2.consul.", RecordType::A),
        ("api6.service.consul.", RecordType::AAAA),
        ("api6.service.consul.", RecordType::SRV),
        ("node-a.node.consul.", RecordType::A),
        ("0a000001.addr.dc1.consul.", RecordType::A),
        ("db.service.consul.", RecordType::A),
        ("nope.service.consul.", RecordType::A),
        ("web.service.consul.", RecordType::AAAA),
    ] {
        let direct = consul.ask(qname, qtype).await;
        let forwarded = dns.ask(qname, qtype).await;
        assert_eq!(
            forwarded.metadata.response_code, direct.metadata.response_code,
            "{qname} {qtype}"
        );
        assert_eq!(
            texts(&forwarded.answers),
            texts(&direct.answers),
            "{qname} {qtype}"
        );
        assert_eq!(
            texts(&forwarded.authorities),
            texts(&direct.authorities),
            "{qname} {qtype}"
        );
        // splitdns keeps ADDITIONAL only where it is the point (SRV targets), as Unbound's
        // minimal-responses does: the node-meta TXT of a node's A answer stays behind.
        let additionals = if qtype == RecordType::SRV {
            texts(&direct.additionals)
        } else {
            Vec::new()
        };
        assert_eq!(
            texts(&forwarded.additionals),
            additionals,
            "{qname} {qtype}"
        );
    }
}
