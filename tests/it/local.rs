//! Local data: hosts files, `[[record]]`, the dnsmasq record rules, domain_needed,
//! bogus_priv, filter_aaaa and `[local] ttl`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use tempfile::TempDir;

use crate::support::client::{decode, encode, query_with_edns, udp_exchange_raw};
use crate::support::dnsmasq::{self, Dnsmasq};
use crate::support::fixtures::{consul, internet};
use crate::support::harness::parse;
use crate::support::http::value;
use crate::support::{
    FakeUpstream, Splitdns, additional_ips, answer_ips, assert_rcode, name, query,
};

async fn fakes() -> (FakeUpstream, FakeUpstream) {
    (
        FakeUpstream::start(consul()).await,
        FakeUpstream::start(internet()).await,
    )
}

/// The standard routes plus `extra` (TOML appended after the rules line).
async fn start(
    rules: &[&str],
    extra: &str,
    consul: &FakeUpstream,
    internet: &FakeUpstream,
) -> Splitdns {
    let rules: Vec<String> = rules.iter().map(|r| format!("{r:?}")).collect();
    let config = format!(
        "rules = [{}]\n{extra}\n[server]\nlisten = [\"127.0.0.1:0\"]\n\
         [upstream]\nservers = [\"{{internet}}\"]\ntimeout = \"500ms\"\n\
         [[route]]\nzones = [\"consul\"]\nservers = [\"{{consul}}\"]\ntimeout = \"500ms\"\n",
        rules.join(", ")
    );
    Splitdns::start(&config, &[("consul", consul), ("internet", internet)]).await
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

#[track_caller]
fn assert_local(reply: &Message, rcode: ResponseCode) {
    assert_rcode(reply, rcode);
    assert!(
        reply.metadata.authoritative,
        "local answers are AA=1: {reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_record_answers_a_aaaa_and_ptr_authoritatively_in_the_askers_case() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &["host-record=gw.lan,192.0.2.1,2001:db8::1"],
        "",
        &consul,
        &internet,
    )
    .await;

    let a = dns.ask("GW.Lan.", RecordType::A).await;
    let aaaa = dns.ask("gw.lan.", RecordType::AAAA).await;
    let ptr = dns.ask("1.2.0.192.in-addr.arpa.", RecordType::PTR).await;

    assert_local(&a, ResponseCode::NoError);
    assert_eq!(answer_ips(&a), [ip("192.0.2.1")]);
    assert_eq!(a.queries[0].name().to_ascii(), "GW.Lan.");
    assert_eq!(a.answers[0].name.to_ascii(), "GW.Lan.");
    assert_eq!(a.answers[0].ttl, 0, "[local] ttl defaults to 0");
    assert_local(&aaaa, ResponseCode::NoError);
    assert!(matches!(&aaaa.answers[0].data, RData::AAAA(v6) if v6.0.to_string() == "2001:db8::1"));
    assert_local(&ptr, ResponseCode::NoError);
    assert!(matches!(&ptr.answers[0].data, RData::PTR(p) if p.0 == name("gw.lan.")));
    assert_eq!(internet.total() + consul.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_types_of_a_local_name_get_nodata_without_forwarding() {
    let (consul, internet) = fakes().await;
    let dns = start(&["host-record=gw.lan,192.0.2.1"], "", &consul, &internet).await;

    let reply = dns.ask("gw.lan.", RecordType::MX).await;

    // No local zone holds gw.lan: the root's SOA, not one that would make it a zone's apex
    // (see `hosts_file_names_get_nodata_with_a_soa_for_other_types`).
    assert_nodata(&reply, ".", 0);
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_names_shadow_routes() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &["host-record=web.service.consul,192.0.2.50"],
        "",
        &consul,
        &internet,
    )
    .await;

    let reply = dns.ask("web.service.consul.", RecordType::A).await;
    let below = dns.ask("x.web.service.consul.", RecordType::A).await;

    assert_eq!(answer_ips(&reply), [ip("192.0.2.50")]);
    assert_rcode(&below, ResponseCode::NXDomain);
    assert_eq!(consul.count("web.service.consul.", RecordType::A), 0);
    assert_eq!(
        consul.count("x.web.service.consul.", RecordType::A),
        1,
        "names below are not local"
    );
}

const RECORDS: &str = r#"
[[record]]
name = "mail.lan"
type = "A"
value = "192.0.2.25"
ttl = 60

[[record]]
name = "lan"
type = "MX"
value = "10 mail.lan"

[[record]]
name = "lan"
type = "TXT"
value = '"v=spf1 mx -all"'

[[record]]
name = "_imap._tcp.lan"
type = "SRV"
value = "0 5 143 mail.lan."

[[record]]
name = "webmail.lan"
type = "CNAME"
value = "mail.lan."
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_tables_answer_every_type_with_target_addresses() {
    let (consul, internet) = fakes().await;
    let dns = start(&[], RECORDS, &consul, &internet).await;

    let mx = dns.ask("lan.", RecordType::MX).await;
    let txt = dns.ask("lan.", RecordType::TXT).await;
    let srv = dns.ask("_imap._tcp.lan.", RecordType::SRV).await;
    let cname = dns.ask("webmail.lan.", RecordType::A).await;

    assert_local(&mx, ResponseCode::NoError);
    assert!(
        matches!(&mx.answers[0].data, RData::MX(m) if m.preference == 10 && m.exchange == name("mail.lan."))
    );
    assert_eq!(additional_ips(&mx, "mail.lan."), [ip("192.0.2.25")]);
    assert!(matches!(&txt.answers[0].data, RData::TXT(t) if &*t.txt_data[0] == b"v=spf1 mx -all"));
    assert!(
        matches!(&srv.answers[0].data, RData::SRV(s) if s.port == 143 && s.target == name("mail.lan."))
    );
    assert_eq!(additional_ips(&srv, "mail.lan."), [ip("192.0.2.25")]);
    assert_local(&cname, ResponseCode::NoError);
    assert_eq!(
        cname.answers.len(),
        2,
        "the CNAME, then its local target: {cname}"
    );
    assert_eq!(cname.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(cname.answers[1].name, name("mail.lan."));
    assert_eq!(cname.answers[1].ttl, 60, "a record's own ttl wins");
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnsmasq_record_rules_answer() {
    let (consul, internet) = fakes().await;
    let rules = [
        "host-record=mail.lan,192.0.2.25",
        "cname=webmail.lan,mail.lan",
        "srv-host=_imap._tcp.lan,mail.lan,143",
        "txt-record=lan,\"v=spf1 mx -all\"",
        "ptr-record=_http._tcp.dns-sd.lan,web.lan",
        "mx-host=lan,mail.lan,5",
    ];
    let dns = start(&rules, "", &consul, &internet).await;

    let cname = dns.ask("webmail.lan.", RecordType::A).await;
    let srv = dns.ask("_imap._tcp.lan.", RecordType::SRV).await;
    let txt = dns.ask("lan.", RecordType::TXT).await;
    let ptr = dns.ask("_http._tcp.dns-sd.lan.", RecordType::PTR).await;
    let mx = dns.ask("lan.", RecordType::MX).await;

    assert_eq!(answer_ips(&cname), [ip("192.0.2.25")]);
    assert!(matches!(&srv.answers[0].data, RData::SRV(s) if s.port == 143));
    assert!(matches!(&txt.answers[0].data, RData::TXT(t) if &*t.txt_data[0] == b"v=spf1 mx -all"));
    assert!(matches!(&ptr.answers[0].data, RData::PTR(p) if p.0 == name("web.lan.")));
    assert!(matches!(&mx.answers[0].data, RData::MX(m) if m.preference == 5));
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_ttl_applies_to_local_answers() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &["host-record=gw.lan,192.0.2.1", "address=/ads.example/#"],
        "[local]\nttl = 300\n",
        &consul,
        &internet,
    )
    .await;

    let host = dns.ask("gw.lan.", RecordType::A).await;
    let address = dns.ask("x.ads.example.", RecordType::A).await;

    assert_eq!(host.answers[0].ttl, 300);
    assert_eq!(address.answers[0].ttl, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_answer_too_big_for_udp_is_truncated() {
    let (consul, internet) = fakes().await;
    let long = "t".repeat(250);
    let rules: Vec<String> = (0..4)
        .map(|i| format!("txt-record=big.lan,{i}{long}"))
        .collect();
    let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
    let dns = start(&rules, "", &consul, &internet).await;

    let udp = dns.ask("big.lan.", RecordType::TXT).await;
    let tcp = dns.tcp(&query("big.lan.", RecordType::TXT)).await;

    assert!(udp.metadata.truncation, "{udp}");
    assert!(udp.answers.is_empty());
    assert_eq!(tcp.answers.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_needed_keeps_single_labels_home_unless_routed_or_local() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &["host-record=printer,192.0.2.9"],
        "[local]\ndomain_needed = true\n",
        &consul,
        &internet,
    )
    .await;

    let unknown = dns.ask("fileserver.", RecordType::A).await;
    let unknown_mx = dns.ask("fileserver.", RecordType::MX).await;
    let local = dns.ask("printer.", RecordType::A).await;
    dns.ask("consul.", RecordType::SOA).await;
    let dotted = dns.ask("www.example.", RecordType::A).await;

    assert_nxdomain(&unknown, ".", 0);
    assert_nxdomain(&unknown_mx, ".", 0);
    assert_eq!(answer_ips(&local), [ip("192.0.2.9")]);
    assert_eq!(
        consul.count("consul.", RecordType::SOA),
        1,
        "a route for the label wins"
    );
    assert_eq!(answer_ips(&dotted), [ip("192.0.2.10")]);
    assert_eq!(internet.total(), 1, "only www.example. went out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_priv_keeps_private_reverse_lookups_home_unless_routed() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &["rev-server=10.0.0.0/8,{consul#}"],
        "[local]\nbogus_priv = true\n",
        &consul,
        &internet,
    )
    .await;

    let private = dns.ask("5.1.168.192.in-addr.arpa.", RecordType::PTR).await;
    let docker = dns.ask("2.0.17.172.in-addr.arpa.", RecordType::PTR).await;
    let routed = dns.ask("1.0.0.10.in-addr.arpa.", RecordType::PTR).await;
    dns.ask("8.8.8.8.in-addr.arpa.", RecordType::PTR).await;

    assert_nxdomain(&private, "168.192.in-addr.arpa.", 0);
    assert_nxdomain(&docker, "17.172.in-addr.arpa.", 0);
    assert_rcode(&routed, ResponseCode::NoError);
    assert_eq!(consul.count("1.0.0.10.in-addr.arpa.", RecordType::PTR), 1);
    assert_eq!(
        internet.count("8.8.8.8.in-addr.arpa.", RecordType::PTR),
        1,
        "public space still goes out"
    );
    assert_eq!(internet.total(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_aaaa_answers_nodata_without_asking_and_routes_may_opt_out() {
    let (consul, internet) = fakes().await;
    let config = r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
filter_aaaa = true
[[route]]
zones = ["consul"]
servers = ["{consul}"]
filter_aaaa = false
"#;
    let dns = Splitdns::start(config, &[("consul", &consul), ("internet", &internet)]).await;

    let filtered = dns.ask("www.example.", RecordType::AAAA).await;
    let a = dns.ask("www.example.", RecordType::A).await;
    dns.ask("web.service.consul.", RecordType::AAAA).await;

    assert_rcode(&filtered, ResponseCode::NoError);
    assert!(filtered.answers.is_empty());
    assert_eq!(internet.count("www.example.", RecordType::AAAA), 0);
    assert_eq!(answer_ips(&a), [ip("192.0.2.10")]);
    assert_eq!(consul.count("web.service.consul.", RecordType::AAAA), 1);
}

/// Asks until `check` accepts the reply or `within` passes.
async fn eventually(
    dns: &Splitdns,
    qname: &str,
    within: Duration,
    check: impl Fn(&Message) -> bool,
) -> Message {
    let deadline = Instant::now() + within;
    loop {
        let reply = dns.ask(qname, RecordType::A).await;
        if check(&reply) || Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hosts_config(path: &Path) -> String {
    format!(
        "[local]\nhosts_files = [{:?}]\n",
        path.display().to_string()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_file_answers_and_is_reread_when_it_changes() {
    let (consul, internet) = fakes().await;
    let dir = TempDir::new().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "# test\n192.0.2.7 web.lan web\n").unwrap();
    let dns = start(&[], &hosts_config(&hosts), &consul, &internet).await;

    let before = dns.ask("web.lan.", RecordType::A).await;
    let short = dns.ask("web.", RecordType::A).await;
    let ptr = dns.ask("7.2.0.192.in-addr.arpa.", RecordType::PTR).await;
    std::fs::write(
        &hosts,
        "# test, changed\n192.0.2.8 web.lan web\n192.0.2.9 new.lan\n",
    )
    .unwrap();
    let after = eventually(&dns, "web.lan.", Duration::from_secs(6), |r| {
        answer_ips(r) == [ip("192.0.2.8")]
    })
    .await;
    let added = dns.ask("new.lan.", RecordType::A).await;

    assert_local(&before, ResponseCode::NoError);
    assert_eq!(answer_ips(&before), [ip("192.0.2.7")]);
    assert_eq!(answer_ips(&short), [ip("192.0.2.7")]);
    assert!(matches!(&ptr.answers[0].data, RData::PTR(p) if p.0 == name("web.lan.")));
    assert_eq!(
        answer_ips(&after),
        [ip("192.0.2.8")],
        "not re-read within 5 s"
    );
    assert_eq!(answer_ips(&added), [ip("192.0.2.9")]);
    assert_eq!(internet.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_file_missing_at_start_is_read_when_it_appears() {
    let (consul, internet) = fakes().await;
    let dir = TempDir::new().unwrap();
    let hosts = dir.path().join("hosts");
    let dns = start(&[], &hosts_config(&hosts), &consul, &internet).await;

    let before = dns.ask("late.lan.", RecordType::A).await;
    std::fs::write(&hosts, "192.0.2.70 late.lan\n").unwrap();
    let after = eventually(&dns, "late.lan.", Duration::from_secs(6), |r| {
        !answer_ips(r).is_empty()
    })
    .await;

    assert_rcode(&before, ResponseCode::NXDomain);
    assert_eq!(answer_ips(&after), [ip("192.0.2.70")]);
}

/// NODATA as RFC 2308 §2.2 describes it: NOERROR, no answer records (or only the CNAMEs that
/// lead to the name), authoritative, and the SOA of the zone in the authority section, owned
/// by `zone`, with TTL and MINIMUM `ttl` (the negative TTL is the smaller of the two, RFC 2308
/// §5).
#[track_caller]
fn assert_nodata(reply: &Message, zone: &str, ttl: u32) {
    assert_local(reply, ResponseCode::NoError);
    assert!(
        reply
            .answers
            .iter()
            .all(|r| r.record_type() == RecordType::CNAME),
        "no records of the asked type: {reply}"
    );
    assert_authority_soa(reply, zone, ttl);
}

/// RFC 2308 §3: "Name servers authoritative for a zone MUST include the SOA record of the
/// zone in the authority section of the response when reporting an NXDOMAIN or indicating
/// that no data of the requested type exists. This is required so that the response may be
/// cached." RFC 2308 §5: "Negative responses without SOA records SHOULD NOT be cached as
/// there is no way to prevent the negative responses looping forever between a pair of
/// servers even with a short TTL", so without the SOA every cache behind splitdns asks
/// again for every lookup (and musl asks several search-domain names per lookup).
///
/// NXDOMAIN, authoritative, no answers, and in the authority section exactly one record:
/// the SOA owned by `zone`, with TTL and MINIMUM `ttl` (`[local] ttl`; the negative TTL is
/// the smaller of the two, RFC 2308 §5).
#[track_caller]
fn assert_nxdomain(reply: &Message, zone: &str, ttl: u32) {
    assert_local(reply, ResponseCode::NXDomain);
    assert!(reply.answers.is_empty(), "no answers: {reply}");
    assert_authority_soa(reply, zone, ttl);
}

/// The authority section holds exactly one record, the synthesised SOA of `zone`, with TTL
/// and MINIMUM `ttl`.
#[track_caller]
fn assert_authority_soa(reply: &Message, zone: &str, ttl: u32) {
    assert_eq!(
        reply.authorities.len(),
        1,
        "one record in the authority section: {reply}"
    );
    assert_soa(&reply.authorities[0], zone, ttl, reply);
}

/// `record` is the synthesised SOA owned by `zone` (`localhost. nobody.invalid. 1 3600 1200
/// 604800`), with TTL and MINIMUM `ttl`.
#[track_caller]
fn assert_soa(record: &Record, zone: &str, ttl: u32, reply: &Message) {
    let RData::SOA(soa) = &record.data else {
        panic!("not a SOA: {record} in {reply}");
    };
    assert_eq!(record.name, name(zone), "the SOA of the zone: {reply}");
    assert_eq!(
        (record.ttl, soa.minimum),
        (ttl, ttl),
        "negative TTL from [local] ttl: {reply}"
    );
    assert_eq!(
        (soa.mname.to_ascii(), soa.rname.to_ascii(), soa.serial),
        ("localhost.".to_string(), "nobody.invalid.".to_string(), 1),
        "{reply}"
    );
}

/// RFC 1034 §4.3.2, step 3.b: "If the name is found but no data of the desired type is
/// present, [...] the response is an empty answer" — the name exists, so "authoritative name
/// error" (NXDOMAIN) is only for a name that is not there at all. RFC 8020 §2: "when an
/// iterative caching DNS resolver receives a response NXDOMAIN, [...] all names and resource
/// record sets (RRsets) below that node SHOULD be considered unreachable", so a name that has
/// anything at or below it must not get NXDOMAIN, whatever the type asked. RFC 2308 §2.2:
/// NODATA "is indicated by an answer with the RCODE set to NOERROR and no relevant answers in
/// the answer section. The authority section will contain an SOA record".
///
/// `address=/gw.lan/` gives gw.lan and every name below it an A record; `local=/lan/` makes
/// splitdns the authority for lan. So AAAA, TXT and MX for those names get NODATA (dnsmasq
/// 2.90 says NXDOMAIN, and musl's getaddrinfo then fails the whole lookup), lan. itself is an
/// empty non-terminal above gw.lan (NODATA too), and names nothing gives records still get
/// NXDOMAIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_types_of_an_address_rule_name_in_a_local_zone_get_nodata_not_nxdomain() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &["local=/lan/", "address=/gw.lan/192.0.2.1"],
        "[local]\nttl = 30\n",
        &consul,
        &internet,
    )
    .await;

    let mut nodata = Vec::new();
    for (qname, qtype) in [
        ("gw.lan.", RecordType::AAAA),
        ("gw.lan.", RecordType::TXT),
        ("x.gw.lan.", RecordType::AAAA),
        ("A.B.Gw.Lan.", RecordType::MX),
        ("lan.", RecordType::A),
        ("lan.", RecordType::AAAA),
    ] {
        nodata.push(dns.ask(qname, qtype).await);
    }
    let a = dns.ask("gw.lan.", RecordType::A).await;
    let missing = dns.ask("nas.lan.", RecordType::AAAA).await;
    let off_boundary = dns.ask("notgw.lan.", RecordType::A).await;

    for reply in &nodata {
        assert_nodata(reply, "lan.", 30);
    }
    assert_eq!(answer_ips(&a), [ip("192.0.2.1")]);
    assert_nxdomain(&missing, "lan.", 30);
    assert_nxdomain(&off_boundary, "lan.", 30);
    assert_eq!(
        internet.total() + consul.total(),
        0,
        "lan is never forwarded"
    );
}

/// The same RFC 1034 §4.3.2 / RFC 2308 §2.2 rule with `address=` and `local=` for one zone
/// (dnsmasq's "pre-2.86 behaviour"): NODATA, with the zone's SOA; and a zone with an
/// `address=` inside makes the local zone above it an empty non-terminal (RFC 8020 §2), as
/// does a zone below it that is forwarded. The apex of a local zone with nothing in it
/// exists too: it holds the zone's SOA (see
/// [`the_apex_of_a_local_zone_exists_and_answers_its_soa`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_zone_names_with_something_at_or_below_them_get_nodata() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &[
            "address=/nas.lan/2001:db8::2",
            "local=/nas.lan/",
            "local=/corp/",
            "server=/infra.corp/{consul#}",
            "local=/empty/",
        ],
        "",
        &consul,
        &internet,
    )
    .await;

    let nas = dns.ask("nas.lan.", RecordType::A).await;
    let below = dns.ask("disk.nas.lan.", RecordType::TXT).await;
    let corp = dns.ask("corp.", RecordType::A).await;
    let empty = dns.ask("empty.", RecordType::A).await;
    let beside = dns.ask("www.corp.", RecordType::A).await;

    assert_nodata(&nas, "nas.lan.", 0);
    assert_nodata(&below, "nas.lan.", 0);
    assert_nodata(&corp, "corp.", 0);
    assert_nodata(&empty, "empty.", 0);
    assert_nxdomain(&beside, "corp.", 0);
    assert_eq!(internet.total() + consul.total(), 0);
}

/// Hosts-file names: RFC 1034 §4.3.2 / RFC 2308 §2.2, as above. A name from a hosts file
/// has A (or AAAA) and nothing else, so other types get NODATA with a SOA: the local zone's
/// when one holds the name. A name above a hosts name is an empty non-terminal inside the
/// local zone (RFC 8020 §2).
///
/// A hosts name no local zone holds (`nas.home.arpa` here, or an override of
/// `www.example.com`) is not the apex of a zone: RFC 1035 §3.3.13 has a SOA "mark the start
/// of a zone of authority", and tools that find a zone by asking for its SOA (nsupdate,
/// Kerberos realm discovery) would take one owned by the name for a zone cut at every hosts
/// name. Its NODATA carries the root's SOA instead, the only zone known to hold it (as
/// domain_needed's NXDOMAIN does), so that caches may still keep it (RFC 2308 §5); a SOA
/// question is NODATA too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_file_names_get_nodata_with_a_soa_for_other_types() {
    let (consul, internet) = fakes().await;
    let dir = TempDir::new().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        "192.0.2.7 web.lan\n192.0.2.8 db.rack1.lan\n192.0.2.9 nas.home.arpa\n",
    )
    .unwrap();
    let dns = start(&["local=/lan/"], &hosts_config(&hosts), &consul, &internet).await;

    let aaaa = dns.ask("web.lan.", RecordType::AAAA).await;
    let mx = dns.ask("Web.Lan.", RecordType::MX).await;
    let rack = dns.ask("rack1.lan.", RecordType::A).await;
    let apex = dns.ask("lan.", RecordType::A).await;
    let outside = dns.ask("nas.home.arpa.", RecordType::AAAA).await;
    let missing = dns.ask("db.rack2.lan.", RecordType::A).await;
    let outside_soa = dns.ask("nas.home.arpa.", RecordType::SOA).await;

    assert_nodata(&aaaa, "lan.", 0);
    assert_nodata(&mx, "lan.", 0);
    assert_nodata(&rack, "lan.", 0);
    assert_nodata(&apex, "lan.", 0);
    assert_nodata(&outside, ".", 0);
    assert_nxdomain(&missing, "lan.", 0);
    assert_nodata(&outside_soa, ".", 0);
    assert_eq!(internet.total(), 0);
}

/// `[[record]]` names: RFC 1034 §4.3.2 / RFC 2308 §2.2, as above; `_tcp.lan` is an empty
/// non-terminal above `_imap._tcp.lan` (RFC 8020 §2); and a CNAME to a local name without the
/// asked type is NODATA after the CNAME, with the SOA (RFC 2308 §2.2: "the answer section may
/// contain a CNAME").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_names_get_nodata_with_a_soa_for_other_types() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &["local=/lan/"],
        &format!("{RECORDS}\n[local]\nttl = 5\n"),
        &consul,
        &internet,
    )
    .await;

    let aaaa = dns.ask("mail.lan.", RecordType::AAAA).await;
    let apex = dns.ask("lan.", RecordType::A).await;
    let tcp = dns.ask("_tcp.lan.", RecordType::SRV).await;
    let srv_a = dns.ask("_imap._tcp.lan.", RecordType::A).await;
    let cname = dns.ask("webmail.lan.", RecordType::AAAA).await;
    let missing = dns.ask("_pop3._tcp.lan.", RecordType::SRV).await;
    let soa = dns.ask("lan.", RecordType::SOA).await;

    assert_nodata(&aaaa, "lan.", 5);
    assert_nodata(&apex, "lan.", 5);
    assert_nodata(&tcp, "lan.", 5);
    assert_nodata(&srv_a, "lan.", 5);
    assert_nodata(&cname, "lan.", 5);
    assert_eq!(cname.answers.len(), 1, "the CNAME: {cname}");
    assert_nxdomain(&missing, "lan.", 5);
    assert_soa_answer(&soa, "lan.", 5);
    assert_eq!(internet.total(), 0);
}

/// `domain_needed` and `bogus_priv` keep names home with NXDOMAIN; a name above local data
/// exists all the same (RFC 8020 §2) and gets NODATA (RFC 2308 §2.2), with the SOA of the
/// RFC 6303 zone for a private reverse name, and the root's for a single label (the only zone
/// that holds it: see [`hosts_file_names_get_nodata_with_a_soa_for_other_types`]), so `home.`
/// is no zone's apex and a SOA question for it is NODATA too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_kept_home_above_local_data_get_nodata() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &["host-record=nas.home,192.168.1.5"],
        "[local]\ndomain_needed = true\nbogus_priv = true\n",
        &consul,
        &internet,
    )
    .await;

    let home = dns.ask("home.", RecordType::A).await;
    let reverse = dns.ask("1.168.192.in-addr.arpa.", RecordType::PTR).await;
    let other = dns.ask("2.168.192.in-addr.arpa.", RecordType::PTR).await;
    let single = dns.ask("fileserver.", RecordType::A).await;
    let home_soa = dns.ask("home.", RecordType::SOA).await;

    assert_nodata(&home, ".", 0);
    assert_nodata(&reverse, "168.192.in-addr.arpa.", 0);
    assert_nxdomain(&other, "168.192.in-addr.arpa.", 0);
    assert_nxdomain(&single, ".", 0);
    assert_nodata(&home_soa, ".", 0);
    assert_eq!(internet.total(), 0);
}

/// RFC 2308 §3: negative answers carry "the SOA record of the zone", and one zone has one
/// SOA, with one owner. Under bogus_priv, `168.192.in-addr.arpa` is a zone splitdns serves
/// (RFC 6303 §3), so the PTR that `host-record=nas.home,192.168.1.5` puts in it changes
/// nothing about the zone: the name's NODATA (a SOA question included, since the name is no
/// apex) carries the zone's SOA, as its sibling's NXDOMAIN does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_data_in_a_private_reverse_zone_carries_that_zones_soa() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &["host-record=nas.home,192.168.1.5"],
        "[local]\nbogus_priv = true\n",
        &consul,
        &internet,
    )
    .await;

    let ptr = dns.ask("5.1.168.192.in-addr.arpa.", RecordType::PTR).await;
    let txt = dns.ask("5.1.168.192.in-addr.arpa.", RecordType::TXT).await;
    let soa = dns.ask("5.1.168.192.in-addr.arpa.", RecordType::SOA).await;
    let sibling = dns.ask("6.1.168.192.in-addr.arpa.", RecordType::PTR).await;

    assert!(matches!(&ptr.answers[0].data, RData::PTR(p) if p.0 == name("nas.home.")));
    assert_nodata(&txt, "168.192.in-addr.arpa.", 0);
    assert_nodata(&soa, "168.192.in-addr.arpa.", 0);
    assert_nxdomain(&sibling, "168.192.in-addr.arpa.", 0);
    assert_eq!(internet.total(), 0);
}

/// RFC 6604 §2: "the RCODE is set based on the last query cycle", the name the CNAME chain
/// ends at. A CNAME in local data pointing at a name that does not exist in a local zone is
/// NXDOMAIN, the CNAME in the answer section and the zone's SOA in the authority section
/// (RFC 2308 §2.1, "NXDOMAIN RESPONSE: TYPE 1" with the CNAME). A target outside every zone
/// splitdns answers is left to the client to follow, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cname_to_a_missing_name_in_a_local_zone_is_nxdomain() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &[
            "local=/lan/",
            "cname=alias.lan,gone.lan",
            "cname=out.lan,www.example",
        ],
        "[local]\nttl = 7\n",
        &consul,
        &internet,
    )
    .await;

    let alias = dns.ask("alias.lan.", RecordType::A).await;
    let out = dns.ask("out.lan.", RecordType::A).await;

    assert_nxdomain_after_cname(&alias, "lan.", 7);
    assert_eq!(alias.answers[0].name, name("alias.lan."));
    assert_local(&out, ResponseCode::NoError);
    assert_eq!(out.answers.len(), 1, "the CNAME alone: {out}");
    assert!(out.authorities.is_empty(), "{out}");
    assert_eq!(internet.total(), 0);
}

/// NXDOMAIN for the end of a CNAME chain: the CNAME in the answer section, the SOA of `zone`
/// in the authority section.
#[track_caller]
fn assert_nxdomain_after_cname(reply: &Message, zone: &str, ttl: u32) {
    assert_local(reply, ResponseCode::NXDomain);
    assert_eq!(reply.answers.len(), 1, "the CNAME: {reply}");
    assert_eq!(reply.answers[0].record_type(), RecordType::CNAME, "{reply}");
    assert_authority_soa(reply, zone, ttl);
}

/// RFC 1035 §4.2.1: a UDP message is at most 512 bytes, and a longer one is truncated with
/// TC set; RFC 6891 §6.2.5 lets the client raise that limit with EDNS. `address=` answers
/// are no exception: 20 IPv6 addresses (560 bytes of records) do not fit in 512, so a client
/// without EDNS gets TC=1 and asks again over TCP; one offering 4096 bytes gets them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_answers_too_big_for_the_client_are_truncated() {
    let (consul, internet) = fakes().await;
    let rules: Vec<String> = (1..=20)
        .map(|i| format!("address=/many.lan/2001:db8::{i:x}"))
        .collect();
    let rules: Vec<&str> = rules.iter().map(String::as_str).collect();
    let dns = start(&rules, "", &consul, &internet).await;

    let plain = query("x.many.lan.", RecordType::AAAA);
    let raw = udp_exchange_raw(dns.addr(), &encode(&plain), plain.metadata.id).await;
    let truncated = decode(&raw);
    let edns = dns
        .udp(&query_with_edns("x.many.lan.", RecordType::AAAA, 4096))
        .await;

    assert!(
        raw.len() <= 512,
        "{} bytes over UDP without EDNS",
        raw.len()
    );
    assert!(truncated.metadata.truncation, "{truncated}");
    assert!(truncated.answers.is_empty(), "{truncated}");
    assert!(!edns.metadata.truncation, "{edns}");
    assert_eq!(edns.answers.len(), 20, "{edns}");
}

/// RFC 8020 §2: NXDOMAIN says nothing exists at or below a name, whatever the type asked, so
/// a local zone answers AAAA for a missing name NXDOMAIN as it answers A. `filter_aaaa`
/// keeps AAAA questions from the upstreams; a local zone is never asked upstream, so its own
/// answer wins: NXDOMAIN with its SOA for a missing name, NODATA for one that exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_aaaa_leaves_local_zones_to_answer_aaaa() {
    let (consul, internet) = fakes().await;
    let config = r#"
rules = ["local=/lan/", "address=/gw.lan/192.0.2.1"]
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{internet}"]
filter_aaaa = true
"#;
    let dns = Splitdns::start(config, &[("consul", &consul), ("internet", &internet)]).await;

    let missing_aaaa = dns.ask("nope.lan.", RecordType::AAAA).await;
    let missing_a = dns.ask("nope.lan.", RecordType::A).await;
    let gw = dns.ask("gw.lan.", RecordType::AAAA).await;
    let filtered = dns.ask("www.example.", RecordType::AAAA).await;

    assert_nxdomain(&missing_aaaa, "lan.", 0);
    assert_nxdomain(&missing_a, "lan.", 0);
    assert_nodata(&gw, "lan.", 0);
    assert_rcode(&filtered, ResponseCode::NoError);
    assert!(!filtered.metadata.authoritative, "{filtered}");
    assert_eq!(internet.total() + consul.total(), 0);
}

/// The SOA itself, asked for at the apex of a zone splitdns answers: NOERROR, authoritative,
/// one answer record, the zone's SOA (RFC 1035 §3.3.13: "marks the start of a zone of
/// authority"), and nothing in the authority section.
#[track_caller]
fn assert_soa_answer(reply: &Message, zone: &str, ttl: u32) {
    assert_local(reply, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1, "the SOA: {reply}");
    assert_soa(&reply.answers[0], zone, ttl, reply);
    assert!(reply.authorities.is_empty(), "{reply}");
}

/// RFC 2308 §3 and §5 (see [`assert_nxdomain`]) for a name in a local zone: the NXDOMAIN
/// carries the SOA of the zone that holds the name, the same SOA NODATA carries, whichever
/// rule line made the zone local (`local=`, `server=` or `address=` without an address,
/// `rev-server=` without a server), with TTL and MINIMUM `[local] ttl`. A nested local zone
/// is the zone of the names below it; a name beside an `address=` zone is in the local zone
/// around it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_zone_nxdomain_carries_the_soa_of_the_zone() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &[
            "local=/lan/",
            "address=/gw.lan/192.0.2.1",
            "local=/corp/",
            "local=/dev.corp/",
            "server=/blocked.example/",
            "address=/gone.example/",
            "rev-server=10.0.0.0/8",
        ],
        "[local]\nttl = 30\n",
        &consul,
        &internet,
    )
    .await;

    for (qname, qtype, zone) in [
        ("nas.lan.", RecordType::A, "lan."),
        ("A.B.Nas.LAN.", RecordType::TXT, "lan."),
        ("notgw.lan.", RecordType::AAAA, "lan."),
        ("www.corp.", RecordType::A, "corp."),
        ("web.dev.corp.", RecordType::A, "dev.corp."),
        ("x.y.DEV.corp.", RecordType::MX, "dev.corp."),
        ("www.blocked.example.", RecordType::A, "blocked.example."),
        ("x.gone.example.", RecordType::A, "gone.example."),
        (
            "1.2.3.10.in-addr.arpa.",
            RecordType::PTR,
            "10.in-addr.arpa.",
        ),
    ] {
        let reply = dns.ask(qname, qtype).await;
        assert_nxdomain(&reply, zone, 30);
    }
    assert_eq!(internet.total() + consul.total(), 0);
}

/// RFC 2308 §3 and §5 (see [`assert_nxdomain`]) for `[local] domain_needed`: a single-label
/// name nothing gives records lies in the root zone, the only zone that could hold it, so
/// its NXDOMAIN carries a SOA owned by the root. One owned by the name itself would say the
/// name is the apex of a zone, so that it exists, which is what NXDOMAIN denies (RFC 8020
/// §2: nothing is at or below it). dnsmasq 2.90 sends no SOA at all, so it is no guide here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_needed_nxdomain_carries_the_root_soa() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &[],
        "[local]\nttl = 30\ndomain_needed = true\n",
        &consul,
        &internet,
    )
    .await;

    for (qname, qtype) in [
        ("fileserver.", RecordType::A),
        ("FileServer.", RecordType::AAAA),
        ("printer.", RecordType::MX),
    ] {
        let reply = dns.ask(qname, qtype).await;
        assert_nxdomain(&reply, ".", 30);
    }
    assert_eq!(internet.total() + consul.total(), 0);
}

/// RFC 2308 §3 and §5 (see [`assert_nxdomain`]) for `[local] bogus_priv`: a private reverse
/// name gets NXDOMAIN with the SOA of its RFC 6303 zone, as RFC 6303 §3 has these zones
/// served ("return authoritatively (aa=1) name errors (RCODE=3) for queries within the
/// zones", each an empty zone with its own SOA), and as Unbound answers them
/// (`1.2.3.10.in-addr.arpa.` is NXDOMAIN with the SOA of `10.in-addr.arpa.`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_priv_nxdomain_carries_the_soa_of_the_rfc_6303_zone() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &[],
        "[local]\nttl = 30\nbogus_priv = true\n",
        &consul,
        &internet,
    )
    .await;
    let ula = format!("1.{}d.f.ip6.arpa.", "0.".repeat(29));

    for (qname, zone) in [
        ("1.2.3.10.in-addr.arpa.", "10.in-addr.arpa."),
        ("5.1.168.192.IN-ADDR.ARPA.", "168.192.in-addr.arpa."),
        ("2.0.17.172.in-addr.arpa.", "17.172.in-addr.arpa."),
        ("1.0.0.127.in-addr.arpa.", "127.in-addr.arpa."),
        ("7.100.51.198.in-addr.arpa.", "100.51.198.in-addr.arpa."),
        (&ula, "d.f.ip6.arpa."),
    ] {
        let reply = dns.ask(qname, RecordType::PTR).await;
        assert_nxdomain(&reply, zone, 30);
    }
    assert_eq!(internet.total() + consul.total(), 0);
}

/// A zone's apex exists: it holds the zone's SOA (RFC 1035 §3.3.13), which splitdns
/// synthesises and sends with every negative answer from the zone, so the apex cannot be
/// NXDOMAIN (RFC 8020 §2: that would deny every name below it, and the SOA's owner with
/// them). RFC 6303 §3 says the same of the private reverse zones: name errors "with the
/// obvious exception of queries for the zone name itself where SOA, NS, and "no data"
/// responses will be returned as appropriate to the query type". So the apex of a local zone
/// with nothing in it, and of an RFC 6303 zone under bogus_priv, answers SOA (and ANY) with
/// the SOA, and every other type with NODATA, whichever line made the zone local. Unbound
/// answers its RFC 6303 zones so; dnsmasq 2.90 answers NXDOMAIN for the apex of a local zone,
/// with no SOA anywhere (a deliberate difference, listed in differential.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apex_of_a_local_zone_exists_and_answers_its_soa() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &[
            "local=/lan/",
            "server=/blocked.example/",
            "address=/gone.example/",
            "rev-server=10.0.0.0/8",
        ],
        "[local]\nttl = 30\nbogus_priv = true\n",
        &consul,
        &internet,
    )
    .await;

    for (qname, zone) in [
        ("lan.", "lan."),
        ("LAN.", "lan."),
        ("blocked.example.", "blocked.example."),
        ("gone.example.", "gone.example."),
        ("10.in-addr.arpa.", "10.in-addr.arpa."),
        ("168.192.in-addr.arpa.", "168.192.in-addr.arpa."),
    ] {
        let soa = dns.ask(qname, RecordType::SOA).await;
        let any = dns.ask(qname, RecordType::ANY).await;
        assert_soa_answer(&soa, zone, 30);
        assert_soa_answer(&any, zone, 30);
        for qtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::TXT,
            RecordType::NS,
            RecordType::PTR,
        ] {
            let reply = dns.ask(qname, qtype).await;
            assert_nodata(&reply, zone, 30);
        }
    }
    assert_eq!(internet.total() + consul.total(), 0);
}

/// The local NXDOMAINs of each kind, with `[local] ttl = 30`: in a local zone, a
/// domain_needed single label, a bogus_priv reverse name; each asked with its own type, so
/// that `splitdns_queries_total` counts each on its own.
const MISSING: [(&str, RecordType, &str); 3] = [
    ("nas.lan.", RecordType::A, "A"),
    ("fileserver.", RecordType::AAAA, "AAAA"),
    ("5.1.168.192.in-addr.arpa.", RecordType::PTR, "PTR"),
];

/// splitdns answering [`MISSING`] itself, with a `/metrics` endpoint that counts the queries
/// it gets.
async fn inner(consul: &FakeUpstream, internet: &FakeUpstream) -> Splitdns {
    start(
        &["local=/lan/"],
        "[local]\nttl = 30\ndomain_needed = true\nbogus_priv = true\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n",
        consul,
        internet,
    )
    .await
}

/// How many queries for each name of [`MISSING`] reached `inner`, all answered NXDOMAIN.
async fn reached(inner: &Splitdns) -> Vec<f64> {
    let text = inner.scrape().await;
    MISSING
        .iter()
        .map(|(_, _, qtype)| {
            let series = format!(
                r#"splitdns_queries_total{{protocol="udp",qtype="{qtype}",rcode="NXDOMAIN"}}"#
            );
            value(&text, &series)
        })
        .collect()
}

/// RFC 2308 §5 (see [`assert_nxdomain`]): with the SOA, a cache behind splitdns keeps the
/// NXDOMAIN, for the SOA's negative TTL. Here the cache is a second splitdns, in front of
/// the first (its default upstream), with its cache on as by default: each missing name,
/// asked twice, reaches the inner splitdns once, as `splitdns_queries_total` counts there.
/// Without the SOA the outer one does not cache the answer, and every lookup crosses both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_splitdns_in_front_caches_local_nxdomain() {
    let (consul, internet) = fakes().await;
    let inner = inner(&consul, &internet).await;
    let outer = Splitdns::start_config(parse(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\
         [upstream]\nservers = [\"{}\"]\ntimeout = \"500ms\"\n",
        inner.addr()
    )))
    .await;

    for (qname, qtype, _) in MISSING {
        for _ in 0..2 {
            let reply = outer.ask(qname, qtype).await;
            assert_rcode(&reply, ResponseCode::NXDomain);
        }
    }

    assert_eq!(
        reached(&inner).await,
        [1.0; MISSING.len()],
        "the second ask of each name is answered from the outer cache"
    );
    assert_eq!(internet.total() + consul.total(), 0);
}

/// As [`a_splitdns_in_front_caches_local_nxdomain`], with the real dnsmasq in front, its cache
/// and negative cache on (its defaults). dnsmasq(8), `--neg-ttl`: "Negative replies from
/// upstream servers normally contain time-to-live information in SOA records which dnsmasq
/// uses for caching. If the replies from upstream servers omit this information, dnsmasq
/// does not cache the reply." So each missing name, asked twice, reaches splitdns once,
/// the root SOA of a single-label name included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnsmasq_in_front_caches_local_nxdomain() {
    if dnsmasq::skip("dnsmasq_in_front_caches_local_nxdomain") {
        return;
    }
    let (consul, internet) = fakes().await;
    let inner = inner(&consul, &internet).await;
    let addr = inner.addr();
    let dnsmasq = Dnsmasq::start_caching(&format!("server={}#{}\n", addr.ip(), addr.port())).await;

    for (qname, qtype, _) in MISSING {
        for _ in 0..2 {
            let reply = crate::support::client::udp(dnsmasq.addr(), &query(qname, qtype)).await;
            assert_rcode(&reply, ResponseCode::NXDomain);
        }
    }

    assert_eq!(
        reached(&inner).await,
        [1.0; MISSING.len()],
        "the second ask of each name is answered from dnsmasq's cache; its log:\n{}",
        dnsmasq.log()
    );
}

/// A name between two local zones exists when the inner zone does: `dev.x.corp.` is the apex
/// of a local zone (it holds its SOA, as the test above shows), so `x.corp.` is an empty
/// non-terminal, and "NXDOMAIN means that there are no names below" (RFC 8020 §2): it gets
/// NODATA with the SOA of `corp.`, the local zone that holds it, while a sibling with nothing
/// below it stays NXDOMAIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_above_a_nested_local_zone_exists() {
    let (consul, internet) = fakes().await;
    let dns = start(
        &["local=/corp/", "local=/dev.x.corp/"],
        "[local]\nttl = 30\n",
        &consul,
        &internet,
    )
    .await;
    assert_nodata(&dns.ask("x.corp.", RecordType::A).await, "corp.", 30);
    assert_nxdomain(&dns.ask("y.corp.", RecordType::A).await, "corp.", 30);
    assert_nxdomain(
        &dns.ask("web.dev.x.corp.", RecordType::A).await,
        "dev.x.corp.",
        30,
    );
    assert_eq!(internet.total() + consul.total(), 0);
}
