//! The Consul mirror (`[consul]`) against the fake agent: answers from the watched catalog
//! compared with the agent's own DNS answers, changes, and faults.
//!
//! Each splitdns here runs in front of one `FakeConsul`: its Consul route forwards to the
//! agent's DNS port and its `[consul] http` points at the agent's HTTP API. Which one
//! answered a question is proven by counting: a mirror answer moves
//! `splitdns_consul_mirror_answers_total` and leaves the agent's DNS query count where it
//! was; a forwarded one moves that count. Readiness is the agent showing the watch's
//! blocked `/v1/health/service/<name>` query, then an answer that came from the mirror;
//! every wait is bounded.
//!
//! Citation keys for Consul's functions are those of `../shared/reference/consul-dns.md`
//! (MS `message_serializer.go`, QF `query_fetcher_v1.go`, RG `response_generator.go`, ...).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use tempfile::TempDir;

use crate::support::client::{self, REPLY_WAIT, query, query_with_edns};
use crate::support::consul::{Acl, Catalog, FakeConsul, Health, Node, Service};
use crate::support::fixtures::internet;
use crate::support::http::get;
use crate::support::logged::{Logged, free_addr};
use crate::support::{FakeUpstream, Splitdns, answer_ips, assert_rcode};

// ---------------------------------------------------------------------------------------
// Catalogs

/// The catalog the differential runs over: two datacenters; node meta (RFC 1464 escapes
/// included); an IPv6-only node and a dual-stack one (`lan_ipv6` tagged address); a node
/// failing `serfHealth`; services with 0 healthy (`down`), 1 (`solo`), 3 (`trio`) and 10
/// (`big`) instances; tags; service addresses (IPv4 and IPv6) and none; a warning check
/// with weights; two instances on one node (`twice`); a service, tag and node named in
/// mixed case (`Mixed`, `Blue`, `Node-X`), which Consul matches without regard to case and
/// writes in SRV targets as the catalog spells them (consul-dns.md §3).
fn rich() -> Catalog {
    let catalog = Catalog::new()
        .with_node(
            Node::new("node-a", "10.0.0.1")
                .meta("rack", "r1")
                .meta("a=b", "c`d")
                .meta("rfc1035-raw", "v=spf1"),
        )
        .with_node(Node::new("node-b", "10.0.0.2"))
        .with_node(Node::new("node-c", "10.0.0.3"))
        .with_node(Node::new("node-d", "10.0.0.4").health(Health::Critical))
        .with_node(Node::new("node-6", "2001:db8::6"))
        .with_node(Node::new("node-ds", "10.0.0.7").tagged("lan_ipv6", "2001:db8::7"))
        .with_node(Node::new("far-1", "10.9.0.1").dc("dc2"))
        .with_node(
            Node::new("far-2", "10.9.0.2")
                .dc("dc2")
                .meta("zone", "west"),
        )
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
        .with_service(
            Service::new("web", "far-2", 81)
                .address("10.9.1.2")
                .tags(&["primary"]),
        )
        .with_service(Service::new("api6", "node-6", 9000))
        .with_service(Service::new("api6", "node-b", 9001).address("2001:db8::10"))
        .with_service(Service::new("solo", "node-b", 7000).tags(&["only"]))
        .with_service(Service::new("trio", "node-a", 7100).tags(&["x"]))
        .with_service(Service::new("trio", "node-b", 7101))
        .with_service(
            Service::new("trio", "node-c", 7102)
                .health(Health::Warning)
                .weights(5, 1),
        )
        .with_service(Service::new("down", "node-a", 7200).health(Health::Critical))
        .with_service(Service::new("down", "node-d", 7201))
        .with_service(Service::new("dual", "node-a", 7300))
        .with_service(Service::new("dual", "node-6", 7301))
        .with_service(Service::new("ds", "node-ds", 7400))
        .with_node(Node::new("Node-X", "10.0.0.8").meta("Owner", "Team-Blue"))
        .with_service(Service::new("Mixed", "Node-X", 7600).tags(&["Blue"]))
        .with_service(Service::new("twice", "node-a", 7500).id("twice-1"))
        .with_service(Service::new("twice", "node-a", 7501).id("twice-2"));
    with_instances(catalog, "big", 10, 1)
}

/// `count` instances of `service`, each on a node of its own (`<service>-<i>`, 10.`net`.0.i).
fn with_instances(catalog: Catalog, service: &str, count: u8, net: u8) -> Catalog {
    (1..=count).fold(catalog, |catalog, i| {
        let node = format!("{service}-{i}");
        catalog
            .with_node(Node::new(&node, &format!("10.{net}.0.{i}")))
            .with_service(Service::new(service, &node, 7000))
    })
}

/// `web` on three nodes (one with a service address), `solo` on one, and a spare node
/// `node-e` with no service yet.
fn small() -> Catalog {
    Catalog::new()
        .with_node(Node::new("node-a", "10.0.0.1"))
        .with_node(Node::new("node-b", "10.0.0.2"))
        .with_node(Node::new("node-c", "10.0.0.3"))
        .with_node(Node::new("node-e", "10.0.0.5"))
        .with_service(Service::new("web", "node-a", 8080))
        .with_service(Service::new("web", "node-b", 8081).address("10.0.1.2"))
        .with_service(Service::new("web", "node-c", 8082))
        .with_service(Service::new("solo", "node-a", 7000))
        .with_service(Service::new("trio", "node-a", 7100))
        .with_service(Service::new("trio", "node-b", 7101))
        .with_service(Service::new("trio", "node-c", 7102))
        .with_service(Service::new("db", "node-a", 5432).address("db.example.net"))
}

// ---------------------------------------------------------------------------------------
// splitdns in front of the fake agent

/// How the Consul route is written: a `[[route]]` table, or a dnsmasq rule line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RouteStyle {
    Table,
    Rule,
}

/// A splitdns config whose Consul route (`zones`) forwards to `consul`'s DNS port, with a
/// `[consul]` table holding `http` and `consul_keys` when `mirror` is set.
fn config(
    consul: &FakeConsul,
    zones: &[&str],
    style: RouteStyle,
    mirror: bool,
    consul_keys: &str,
) -> String {
    let dns = consul.dns_addr();
    let (rules, route) = match style {
        RouteStyle::Rule => {
            let lines: Vec<String> = zones
                .iter()
                .map(|z| format!("\"server=/{z}/{}#{}\"", dns.ip(), dns.port()))
                .collect();
            (format!("rules = [{}]\n", lines.join(", ")), String::new())
        }
        RouteStyle::Table => {
            let zones: Vec<String> = zones.iter().map(|z| format!("\"{z}\"")).collect();
            (
                String::new(),
                format!(
                    "[[route]]\nzones = [{}]\nservers = [\"{dns}\"]\ntimeout = \"500ms\"\n",
                    zones.join(", ")
                ),
            )
        }
    };
    let table = if mirror {
        format!(
            "[consul]\nhttp = \"{}\"\n{consul_keys}\n",
            consul.http_addr()
        )
    } else {
        String::new()
    };
    format!(
        "{rules}\n[server]\nlisten = [\"127.0.0.1:0\"]\n\n\
         [upstream]\nservers = [\"{{internet}}\"]\ntimeout = \"500ms\"\n\n{route}\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n\n{table}"
    )
}

/// Which server answered one question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// The mirror counter moved by one and the agent's DNS port saw nothing.
    Mirror,
    /// The agent's DNS port saw the question (or more) and the mirror counter stayed.
    Forwarded,
    /// Neither, or both.
    Unclear,
}

/// The fake agent, splitdns with the mirror, and splitdns without it (the reference).
struct Mirror {
    consul: FakeConsul,
    dns: Splitdns,
    plain: Splitdns,
    _internet: FakeUpstream,
    /// Service watches started so far: each holds one blocked query once synced.
    watches: AtomicUsize,
}

impl Mirror {
    /// The agent on `catalog`; splitdns with `[consul]` (`consul_keys` added) and without.
    async fn start(catalog: Catalog, consul_keys: &str) -> Self {
        Self::start_with(catalog, &["consul"], RouteStyle::Table, consul_keys, |_| {}).await
    }

    /// `prepare` sets the agent's faults up before splitdns first asks it anything.
    async fn start_with(
        catalog: Catalog,
        zones: &[&str],
        style: RouteStyle,
        consul_keys: &str,
        prepare: impl FnOnce(&FakeConsul),
    ) -> Self {
        let consul = FakeConsul::start(catalog).await;
        prepare(&consul);
        let internet = FakeUpstream::start(internet()).await;
        let upstreams = [("internet", &internet)];
        let mirrored = config(&consul, zones, style, true, consul_keys);
        let dns = Splitdns::start(&mirrored, &upstreams).await;
        let plain = config(&consul, zones, RouteStyle::Table, false, "");
        let plain = Splitdns::start(&plain, &upstreams).await;
        Self {
            consul,
            dns,
            plain,
            _internet: internet,
            watches: AtomicUsize::new(0),
        }
    }

    async fn scrape(&self) -> String {
        self.dns.scrape().await
    }

    /// `name{labels}` summed over the series that carry `labels` (0 when none exists yet).
    async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric(&self.scrape().await, name, labels)
    }

    async fn mirror_answers(&self) -> f64 {
        self.metric(MIRROR_ANSWERS, &[]).await
    }

    /// Sends `msg` to splitdns with the mirror and tells which server answered.
    async fn trace(&self, msg: &Message) -> (Message, Source) {
        let agent = self.consul.dns_queries();
        let mirrored = self.mirror_answers().await;
        let reply = self.dns.udp(msg).await;
        let agent = self.consul.dns_queries() - agent;
        let mirrored = self.mirror_answers().await - mirrored;
        let source = if agent == 0 && mirrored == 1.0 {
            Source::Mirror
        } else if agent > 0 && mirrored == 0.0 {
            Source::Forwarded
        } else {
            Source::Unclear
        };
        (reply, source)
    }

    /// Asks with EDNS (1232) and fails unless the mirror answered.
    async fn mirrored(&self, qname: &str, qtype: RecordType) -> Message {
        let (reply, source) = self.trace(&query_with_edns(qname, qtype, 1232)).await;
        assert_eq!(source, Source::Mirror, "{qname} {qtype}: {reply}");
        reply
    }

    /// Asks with EDNS (1232) and fails unless the question reached the agent's DNS port.
    async fn forwarded(&self, qname: &str, qtype: RecordType) -> Message {
        let (reply, source) = self.trace(&query_with_edns(qname, qtype, 1232)).await;
        assert_eq!(source, Source::Forwarded, "{qname} {qtype}: {reply}");
        reply
    }

    /// The agent's own answer, asked with EDNS (1232) so that nothing is trimmed.
    async fn agent(&self, qname: &str, qtype: RecordType) -> Message {
        client::udp(self.consul.dns_addr(), &query_with_edns(qname, qtype, 1232)).await
    }

    /// Starts the watches of `services` (names such as `web.service.consul.` or
    /// `web.service.dc2.consul.`) by asking each (an MX question: NODATA for a service that
    /// has instances, NXDOMAIN otherwise), which is forwarded, again until its watch's
    /// second, blocking, request has reached the agent; waits until the agent holds a
    /// blocked query per watch, then until each name is answered from the mirror.
    async fn watch(&self, services: &[&str]) {
        // Several datacenters' watches of one service share a path.
        let path = |service: &str| {
            let name = service.split('.').next().unwrap();
            format!("/v1/health/service/{name}")
        };
        let wanted =
            |service: &str| 2 * services.iter().filter(|s| path(s) == path(service)).count();
        let deadline = Instant::now() + REPLY_WAIT;
        loop {
            let missing: Vec<&str> = services
                .iter()
                .copied()
                .filter(|s| self.consul.requests(&path(s)) < wanted(s))
                .collect();
            if missing.is_empty() {
                break;
            }
            for service in &missing {
                self.dns
                    .udp(&query_with_edns(service, RecordType::MX, 1232))
                    .await;
            }
            assert!(
                Instant::now() < deadline,
                "no blocking request for {missing:?}"
            );
            tokio::time::sleep(POLL).await;
        }
        let watches = self.watches.fetch_add(services.len(), Ordering::SeqCst) + services.len();
        self.consul.wait_blocked(watches).await;
        for service in services {
            self.until_mirrored(service, RecordType::MX).await;
        }
    }

    /// Asks `qname` until the mirror answers it, for at most [`REPLY_WAIT`]; returns that
    /// answer.
    async fn until_mirrored(&self, qname: &str, qtype: RecordType) -> Message {
        let deadline = Instant::now() + REPLY_WAIT;
        loop {
            let (reply, source) = self.trace(&query_with_edns(qname, qtype, 1232)).await;
            if source == Source::Mirror {
                return reply;
            }
            assert!(
                Instant::now() < deadline,
                "{qname} {qtype} not answered from the mirror within {REPLY_WAIT:?} \
                 (last: {source:?})\n{reply}\n{}",
                self.scrape().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Asks `qname` A from the mirror (every answer must come from it) until `done` holds,
    /// and fails unless that happens within [`CHANGE_WAIT`] of `since`.
    async fn until_answer(
        &self,
        qname: &str,
        since: Instant,
        what: &str,
        done: impl Fn(&Message) -> bool,
    ) -> Message {
        loop {
            let reply = self.mirrored(qname, RecordType::A).await;
            if done(&reply) {
                let took = since.elapsed();
                assert!(took < CHANGE_WAIT, "{what}: seen after {took:?}");
                return reply;
            }
            assert!(
                since.elapsed() < CHANGE_WAIT,
                "{what}: not seen within {CHANGE_WAIT:?}; last answer:\n{reply}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls the metric until `done` holds, for at most `wait`; returns its value.
    async fn until_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        wait: Duration,
        done: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + wait;
        loop {
            let text = self.scrape().await;
            let value = metric(&text, name, labels);
            if done(value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{name}{labels:?} still {value} after {wait:?}:\n{text}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

const MIRROR_ANSWERS: &str = "splitdns_consul_mirror_answers_total";
const FORWARDED: &str = "splitdns_consul_forwarded_total";
const WATCHES: &str = "splitdns_consul_watches";
const WATCH_ERRORS: &str = "splitdns_consul_watch_errors_total";
const MIRROR_AGE: &str = "splitdns_consul_mirror_age_seconds";

/// How often a poll asks again.
const POLL: Duration = Duration::from_millis(10);
/// The bound on a change reaching the answers: one blocking round trip, with room for a
/// loaded machine.
const CHANGE_WAIT: Duration = Duration::from_secs(2);

/// The sum of the samples of `name` whose labels include each of `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples(text, name)
        .filter(|(series, _)| {
            labels
                .iter()
                .all(|(k, v)| series.contains(&(k.to_string(), v.to_string())))
        })
        .map(|(_, value)| value)
        .sum()
}

/// Whether the exposition has any sample of `name`.
fn has_metric(text: &str, name: &str) -> bool {
    samples(text, name).next().is_some()
}

/// The samples of `name`: their labels as pairs, and their values.
fn samples<'a>(
    text: &'a str,
    name: &'a str,
) -> impl Iterator<Item = (Vec<(String, String)>, f64)> + 'a {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(move |line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let labels = labels
                .split(',')
                .filter(|pair| !pair.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect();
            Some((labels, value.parse().ok()?))
        })
}

// ---------------------------------------------------------------------------------------
// Comparing answers

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

/// What the differential compares: rcode and each section, order aside.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    rcode: ResponseCode,
    answers: Vec<String>,
    authorities: Vec<String>,
    additionals: Vec<String>,
}

impl Shape {
    fn of(msg: &Message) -> Self {
        Self {
            rcode: msg.metadata.response_code,
            answers: texts(&msg.answers),
            authorities: texts(&msg.authorities),
            additionals: texts(&msg.additionals),
        }
    }

    /// The agent's answer as splitdns passes a forwarded answer on (`kept_records` in
    /// src/dns/answer.rs, Unbound's minimal-responses): everything for SRV, MX, NS and ANY;
    /// otherwise the answer section of a positive answer, and the answer and authority
    /// sections (the SOA) of the others.
    fn forwarded(agent: &Message, qtype: RecordType) -> Self {
        let mut shape = Self::of(agent);
        let keeps_all = matches!(
            qtype,
            RecordType::SRV | RecordType::MX | RecordType::NS | RecordType::ANY
        );
        if !keeps_all {
            shape.additionals.clear();
            if shape.rcode == ResponseCode::NoError && !shape.answers.is_empty() {
                shape.authorities.clear();
            }
        }
        shape
    }
}

/// What the mirror's answers are compared with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reference {
    /// splitdns without `[consul]` forwarding the same question (for ANY, which splitdns
    /// answers itself when forwarding, the agent's answer in splitdns's shape).
    Plain,
    /// The agent's answer in splitdns's shape (`Shape::forwarded`).
    Agent,
}

/// One question of the differential; `strict` ones must be answered by the mirror.
struct Question {
    qname: String,
    qtype: RecordType,
    strict: bool,
}

const TYPES: [RecordType; 6] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::ANY,
    RecordType::TXT,
    RecordType::MX,
];

/// Every name form the mirror answers, for `services` (service, tags) under `domain` with
/// each datacenter suffix of `dcs` ("" or ".dc1").
fn service_names(services: &[(&str, &[&str])], dcs: &[&str], domain: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (service, tags) in services {
        for dc in dcs {
            names.push(format!("{service}.service{dc}.{domain}"));
            names.push(format!("_{service}._tcp.service{dc}.{domain}"));
            for tag in *tags {
                names.push(format!("{tag}.{service}.service{dc}.{domain}"));
                names.push(format!("_{service}._{tag}.service{dc}.{domain}"));
            }
        }
    }
    names
}

fn questions(names: &[String], types: &[RecordType], strict: bool) -> Vec<Question> {
    names
        .iter()
        .flat_map(|qname| {
            types.iter().map(move |&qtype| Question {
                qname: qname.clone(),
                qtype,
                strict,
            })
        })
        .collect()
}

/// Asks the mirror and the reference every question; returns each difference, described:
/// a different rcode or section, a header unlike a forwarded answer's (AA=0, RA=1, TC=0,
/// the client's ID, RD and OPT), or a strict question the mirror did not answer itself.
async fn differences(m: &Mirror, questions: &[Question], reference: Reference) -> Vec<String> {
    let mut out = Vec::new();
    for Question {
        qname,
        qtype,
        strict,
    } in questions
    {
        let (qname, qtype) = (qname.as_str(), *qtype);
        let msg = query_with_edns(qname, qtype, 1232);
        let (ours, source) = m.trace(&msg).await;
        let theirs = if reference == Reference::Agent || qtype == RecordType::ANY {
            Shape::forwarded(&m.agent(qname, qtype).await, qtype)
        } else {
            Shape::of(&m.plain.udp(&query_with_edns(qname, qtype, 1232)).await)
        };
        let mut problems = Vec::new();
        if *strict && source != Source::Mirror {
            problems.push(format!("answered by {source:?}, not the mirror"));
        }
        let h = &ours.metadata;
        if h.id != msg.metadata.id
            || h.authoritative
            || !h.recursion_available
            || !h.recursion_desired
            || h.truncation
            || ours.edns.is_none()
        {
            problems.push(format!(
                "header: id {} (sent {}), aa {}, ra {}, rd {}, tc {}, opt {}",
                h.id,
                msg.metadata.id,
                h.authoritative,
                h.recursion_available,
                h.recursion_desired,
                h.truncation,
                ours.edns.is_some()
            ));
        }
        if ours.queries.first().map(|q| q.name().to_ascii()) != Some(qname.to_string()) {
            problems.push(format!("question {:?}", ours.queries));
        }
        let ours = Shape::of(&ours);
        if ours != theirs {
            problems.push(format!(
                "\n      mirror:    {ours:?}\n      reference: {theirs:?}"
            ));
        }
        if !problems.is_empty() {
            out.push(format!("  {qname} {qtype}: {}", problems.join("; ")));
        }
    }
    out
}

#[track_caller]
fn assert_no_differences(differences: &[String], asked: usize) {
    assert!(
        differences.is_empty(),
        "{} of {asked} questions differ:\n{}",
        differences.len(),
        differences
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn ip_set(msg: &Message) -> BTreeSet<Ipv4Addr> {
    answer_ips(msg).into_iter().collect()
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

/// The SRV answers' weights by target.
fn srv_weights(msg: &Message) -> Vec<(String, u16)> {
    let mut out: Vec<_> = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.target.to_ascii(), s.weight)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// Consul's SOA for `domain` in the authority section (RM `makeSOA`), whatever the serial.
#[track_caller]
fn assert_consul_soa(msg: &Message, domain: &str) {
    assert_eq!(msg.authorities.len(), 1, "{msg}");
    let soa = &msg.authorities[0];
    assert_eq!(soa.name.to_ascii(), domain, "{msg}");
    let RData::SOA(data) = &soa.data else {
        panic!("not an SOA: {soa}")
    };
    assert_eq!(data.mname.to_ascii(), format!("ns.{domain}"));
    assert_eq!(data.rname.to_ascii(), format!("hostmaster.{domain}"));
}

// ---------------------------------------------------------------------------------------
// 1. The same answers as the agent

/// consul-dns.md §4.3 (DRF `getQueryNameAndTagFromParts`: `svc`, `tag.svc`,
/// `_svc._tcp|_tag`), §6.1–6.4 (MS `appendResultsToDNSResponse`, `getAnswerExtrasForIP`,
/// `shouldAppendTXTRecord`; QF `fetchService`, `findWeight`), §6.7 (other types: NODATA),
/// §7.1 (QF `FetchNodes`), §7.3 (DRF `buildAddressResults`), §9 (RG
/// `createAuthoritativeResponse`, RM `makeSOA`), §11 (`CheckServiceNodes.Filter`), TA
/// `translateAddressAccept` (the dual-stack node): every mirrored name form × A, AAAA,
/// SRV, ANY, TXT, MX over the rich catalog gets what splitdns forwarding to the agent gets
/// (ANY: the agent's own answer, since splitdns answers a forwarded ANY itself with RFC
/// 8482's HINFO): rcode, answer, authority (SOA serial aside) and additional sections, in
/// a forwarded answer's header (AA=0, RA=1), and from the mirror, never the agent's DNS
/// port. Names the contract lets the mirror forward (unknown datacenters, the `_svc._tcp`
/// form without `.service`, a node with no instance of a watched service, bad `.addr`
/// hex) must get the same answer too, whoever gives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential_over_the_rich_catalog() {
    let m = Mirror::start(rich(), "").await;
    let dc1: [(&str, &[&str]); 10] = [
        ("web", &["primary", "v1", "nope"]),
        ("api6", &[]),
        ("solo", &["only", "nope"]),
        ("trio", &["x"]),
        ("big", &[]),
        ("down", &[]),
        ("dual", &[]),
        ("ds", &[]),
        ("twice", &[]),
        ("mixed", &["blue"]),
    ];
    let mut watched: Vec<String> = dc1
        .iter()
        .map(|(s, _)| format!("{s}.service.consul."))
        .collect();
    watched.push("web.service.dc2.consul.".to_string());
    let watched: Vec<&str> = watched.iter().map(String::as_str).collect();
    m.watch(&watched).await;

    let mut names = service_names(&dc1, &["", ".dc1"], "consul.");
    names.extend(service_names(
        &[("web", &["primary"])],
        &[".dc2"],
        "consul.",
    ));
    names.extend(
        [
            "nope.service.consul.",
            "nope.nope.service.consul.",
            "_nope._tcp.service.consul.",
        ]
        .map(String::from),
    );
    for node in [
        "node-a", "node-b", "node-c", "node-6", "node-ds", "big-3", "node-x",
    ] {
        names.push(format!("{node}.node.consul."));
        names.push(format!("{node}.node.dc1.consul."));
    }
    names.extend(["far-1.node.dc2.consul.", "far-2.node.dc2.consul."].map(String::from));
    names.extend(
        [
            "0a000001.addr.dc1.consul.",
            "20010db8000000000000000000000010.addr.dc1.consul.",
            "0a090102.addr.dc2.consul.",
        ]
        .map(String::from),
    );
    let mut asked = questions(&names, &TYPES, true);
    let either: Vec<String> = [
        "web.service.dc9.consul.",
        "nope.service.dc2.consul.",
        "_web._tcp.consul.",
        "a.b.web.service.consul.",
        "node-d.node.consul.",
        "srv1.node.consul.",
        "zz000001.addr.dc1.consul.",
    ]
    .map(String::from)
    .to_vec();
    // ANY is left out here: forwarded, splitdns answers it with RFC 8482's HINFO.
    let some_types = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::SRV,
        RecordType::TXT,
    ];
    asked.extend(questions(&either, &some_types, false));

    let found = differences(&m, &asked, Reference::Plain).await;
    assert_no_differences(&found, asked.len());
}

/// The agent's settings read from `/v1/agent/self`, not a copy: `only_passing` (§11, QF
/// `fetchService`: a warning instance goes), `service_ttl` and `node_ttl` (§8, MS
/// `getTTLForResult`: exact name, longest `prefix*`, `*`, then `node_ttl` in v2), `soa`
/// (RM `makeSOA`), `enable_additional_node_meta_txt` off (MS `shouldAppendTXTRecord`: no
/// node-meta TXT beside SRV targets), `soa`
/// (RM `makeSOA`), and `alt_domain` (§4.3, R `parseDomain`: answers use the domain the
/// client asked under, SRV targets included), with a Consul route for both zones. Each
/// answer against the agent's own, in splitdns's forwarded shape, TTLs included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential_follows_the_agents_dns_config() {
    let catalog = rich().configure(|c| {
        c.only_passing = true;
        c.service_ttl = vec![("*".into(), 5), ("web".into(), 30), ("tr*".into(), 10)];
        c.node_ttl = 7;
        c.alt_domain = Some("cluster.".into());
        c.soa.refresh = 1800;
        c.soa.retry = 300;
        c.soa.expire = 7200;
        c.node_meta_txt = false;
    });
    let m = Mirror::start_with(
        catalog,
        &["consul", "cluster"],
        RouteStyle::Table,
        "",
        |_| {},
    )
    .await;
    let services: [(&str, &[&str]); 5] = [
        ("web", &["v1"]),
        ("trio", &["x"]),
        ("solo", &[]),
        ("api6", &[]),
        ("big", &[]),
    ];
    let watched: Vec<String> = services
        .iter()
        .map(|(s, _)| format!("{s}.service.consul."))
        .collect();
    let watched: Vec<&str> = watched.iter().map(String::as_str).collect();
    m.watch(&watched).await;

    let mut names = Vec::new();
    for domain in ["consul.", "cluster."] {
        names.extend(service_names(&services, &[""], domain));
        names.push(format!("nope.service.{domain}"));
        names.push(format!("node-a.node.{domain}"));
        names.push(format!("node-b.node.dc1.{domain}"));
        names.push(format!("0a000001.addr.dc1.{domain}"));
    }
    let asked = questions(&names, &TYPES, true);
    let found = differences(&m, &asked, Reference::Agent).await;
    assert_no_differences(&found, asked.len());

    // The TTLs themselves, so a wrong reference cannot hide them.
    let web = m.mirrored("web.service.cluster.", RecordType::SRV).await;
    assert!(
        web.answers
            .iter()
            .chain(&web.additionals)
            .all(|r| r.ttl == 30),
        "{web}"
    );
    assert!(
        web.answers.iter().all(|r| match &r.data {
            RData::SRV(s) => s.target.to_ascii().ends_with(".dc1.cluster."),
            _ => false,
        }),
        "{web}"
    );
    let trio = m.mirrored("trio.service.consul.", RecordType::A).await;
    assert_eq!(
        ip_set(&trio),
        BTreeSet::from([ip("10.0.0.1"), ip("10.0.0.2")])
    );
    assert!(trio.answers.iter().all(|r| r.ttl == 10), "{trio}");
    let node = m.mirrored("node-a.node.consul.", RecordType::A).await;
    assert!(node.answers.iter().all(|r| r.ttl == 7), "{node}");
    let nope = m.mirrored("nope.service.cluster.", RecordType::A).await;
    assert_rcode(&nope, ResponseCode::NXDomain);
    assert_consul_soa(&nope, "cluster.");
}

/// `a_record_limit` (consul-dns.md §6.1 and checklist item 25, MS
/// `appendResultsToDNSResponse`): A and ANY answers stop after that many distinct records,
/// cut after the shuffle, so over 20 questions more than that many addresses show up; SRV
/// keeps every instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_limit_caps_address_answers() {
    // Without node-meta TXT, the 10-instance SRV answer is small enough for any encoding.
    let catalog = with_instances(Catalog::new(), "big", 10, 1).configure(|c| {
        c.a_record_limit = 2;
        c.node_meta_txt = false;
    });
    let m = Mirror::start(catalog, "").await;
    m.watch(&["big.service.consul."]).await;

    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        let reply = m.mirrored("big.service.consul.", RecordType::A).await;
        assert_eq!(reply.answers.len(), 2, "{reply}");
        seen.extend(ip_set(&reply));
    }
    assert!(seen.len() > 2, "always the same two: {seen:?}");
    assert!(
        seen.iter().all(|ip| ip.octets()[..3] == [10, 1, 0]),
        "{seen:?}"
    );
    let any = m.mirrored("big.service.consul.", RecordType::ANY).await;
    assert_eq!(any.answers.len(), 2, "{any}");
    let srv = m.mirrored("big.service.consul.", RecordType::SRV).await;
    assert_eq!(srv.answers.len(), 10, "{srv}");
}

/// QF `fetchService` "Perform a random shuffle" (§10.1): the mirror answers a 3-instance
/// service, A and SRV, in more than one order over 30 questions, as the agent does (the
/// chance of one order 30 times over is 6^-29).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_shuffled_per_query() {
    let m = Mirror::start(small(), "").await;
    m.watch(&["trio.service.consul."]).await;

    let mut orders = BTreeSet::new();
    for _ in 0..30 {
        let reply = m.mirrored("trio.service.consul.", RecordType::A).await;
        assert_eq!(reply.answers.len(), 3, "{reply}");
        orders.insert(answer_ips(&reply));
    }

    assert!(orders.len() > 1, "always the same order: {orders:?}");

    let mut orders = BTreeSet::new();
    for _ in 0..30 {
        let reply = m.mirrored("trio.service.consul.", RecordType::SRV).await;
        let targets: Vec<String> = reply.answers.iter().map(|r| r.data.to_string()).collect();
        assert_eq!(targets.len(), 3, "{reply}");
        orders.insert(targets);
    }
    assert!(orders.len() > 1, "SRV always in the same order: {orders:?}");
}

/// docs/behaviour.md, Responses: the client's ID and question in its own letter case, RD and
/// CD copied, RA set, AA clear (a forwarded answer's header; Consul's own AA=1 and
/// lower-cased question, R `validateAndNormalizeRequest`, do not reach the client), an OPT
/// only when the query had one; the records as splitdns without the mirror gives them for
/// the same mixed-case question.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_answers_have_the_forwarded_header_and_the_clients_case() {
    let m = Mirror::start(small(), "").await;
    m.watch(&["web.service.consul."]).await;

    for qtype in [RecordType::A, RecordType::SRV] {
        let mixed = "WeB.SeRvIcE.CoNsUl.";
        let (reply, source) = m.trace(&query(mixed, qtype)).await;
        assert_eq!(source, Source::Mirror, "{reply}");
        let plain = m.plain.udp(&query(mixed, qtype)).await;
        assert_eq!(reply.queries[0].name().to_ascii(), mixed);
        assert_eq!(texts(&reply.answers), texts(&plain.answers), "{qtype}");
        assert_eq!(texts(&reply.additionals), texts(&plain.additionals));
        assert!(!reply.metadata.authoritative, "{reply}");
        assert!(reply.metadata.recursion_available, "{reply}");
        assert!(reply.metadata.recursion_desired, "{reply}");
        assert!(reply.edns.is_none(), "{reply}");
    }

    let mut quiet = query_with_edns("web.service.consul.", RecordType::A, 1232);
    quiet.metadata.recursion_desired = false;
    quiet.metadata.checking_disabled = true;
    let (reply, source) = m.trace(&quiet).await;
    assert_eq!(source, Source::Mirror, "{reply}");
    assert_eq!(reply.metadata.id, quiet.metadata.id);
    assert!(!reply.metadata.recursion_desired, "{reply}");
    assert!(reply.metadata.checking_disabled, "{reply}");
    assert!(reply.edns.is_some(), "{reply}");
    assert_eq!(reply.answers.len(), 3, "{reply}");
}

/// The deliberate difference from Consul (README, Consul mirror): Consul cuts a UDP answer
/// to a client without EDNS to `udp_answer_limit` (3) records without setting TC (RG
/// `trimUDPResponse`; "Consul truncates the results without setting the truncate bit",
/// D-static); the mirror gives such a client the whole answer when it fits in 512 bytes
/// (10 A records do) and TC=1 when it does not (40 A records do not, RFC 1035 §4.2.1),
/// never a silent cut; over TCP the whole answer. The SRV answer of 10 instances with their
/// additional records is held to what splitdns without the mirror gives: TC=1 or every
/// record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_edns_get_everything_or_tc() {
    let catalog = with_instances(with_instances(Catalog::new(), "big", 10, 1), "huge", 40, 2);
    let m = Mirror::start(catalog, "").await;
    m.watch(&["big.service.consul.", "huge.service.consul."])
        .await;

    let agent = m.consul.ask("big.service.consul.", RecordType::A).await;
    assert_eq!(agent.answers.len(), 3, "Consul's silent cut: {agent}");
    assert!(!agent.metadata.truncation);
    let (big, source) = m.trace(&query("big.service.consul.", RecordType::A)).await;
    assert_eq!(source, Source::Mirror, "{big}");
    assert_eq!(big.answers.len(), 10, "{big}");
    assert!(!big.metadata.truncation, "{big}");

    let (huge, source) = m.trace(&query("huge.service.consul.", RecordType::A)).await;
    assert_eq!(source, Source::Mirror, "{huge}");
    assert!(
        huge.metadata.truncation,
        "40 A records do not fit 512 bytes: {huge}"
    );
    assert!(huge.answers.len() < 40);
    let tcp = m
        .dns
        .tcp(&query("huge.service.consul.", RecordType::A))
        .await;
    assert_eq!(tcp.answers.len(), 40, "{tcp}");
    assert!(!tcp.metadata.truncation);

    let (srv, source) = m
        .trace(&query("big.service.consul.", RecordType::SRV))
        .await;
    assert_eq!(source, Source::Mirror, "{srv}");
    let plain = m
        .plain
        .udp(&query("big.service.consul.", RecordType::SRV))
        .await;
    assert_eq!(srv.metadata.truncation, plain.metadata.truncation, "{srv}");
    assert_eq!(Shape::of(&srv), Shape::of(&plain));
    assert!(
        srv.metadata.truncation || srv.answers.len() == 10,
        "a silent cut: {srv}"
    );
}

/// Contract: a client gets the whole answer when it fits its UDP size, as a forwarded
/// answer does, and splitdns's forwarded answers are compressed (RFC 1035 §4.1.4). 20 A
/// records without EDNS fit 512 bytes (16 bytes each with the owner a pointer to the
/// question); 10 SRV records with their targets' A and node-meta TXT records fit 1232
/// bytes compressed, about 880, but not with every target and owner written out in full,
/// about 1300: the mirror's answers must fit wherever splitdns without the mirror gives the
/// whole answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_fit_compressed_are_not_truncated() {
    let catalog = with_instances(with_instances(Catalog::new(), "big", 10, 1), "mid", 20, 2);
    let m = Mirror::start(catalog, "").await;
    m.watch(&["big.service.consul.", "mid.service.consul."])
        .await;

    for (msg, wanted) in [
        (query("mid.service.consul.", RecordType::A), 20),
        (
            query_with_edns("big.service.consul.", RecordType::SRV, 1232),
            10,
        ),
    ] {
        let plain = m.plain.udp(&msg).await;
        assert!(!plain.metadata.truncation, "{plain}");
        assert_eq!(plain.answers.len(), wanted, "{plain}");
        let (reply, source) = m.trace(&msg).await;
        assert_eq!(source, Source::Mirror, "{reply}");
        assert!(
            !reply.metadata.truncation,
            "TC where the answer fits: {reply}"
        );
        assert_eq!(Shape::of(&reply), Shape::of(&plain));
    }
}

/// The contract's forwarded names (consul-dns.md §6.6 SOA/NS, §7.2 `.query`, §4.3
/// `.connect`/`.ingress`/`.virtual` and `ns`/`ap`/`peer`/`sg` labels, §6.5 hostname
/// addresses, §7.1 unknown nodes): even for a watched service, each goes to the agent's
/// DNS port as splitdns without the mirror sends it, with the same answer, and
/// `splitdns_consul_forwarded_total` counts it (the name forms the mirror never answers
/// as `reason="unmirrored"`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_the_mirror_does_not_answer_are_forwarded() {
    let m = Mirror::start(small(), "").await;
    m.watch(&["web.service.consul."]).await;
    // `db` has a hostname instance: its watch syncs, and its names stay forwarded.
    m.forwarded("db.service.consul.", RecordType::MX).await;
    m.consul.wait_blocked(2).await;

    let unmirrored = [
        ("web.service.consul.", RecordType::SOA),
        ("web.service.consul.", RecordType::NS),
        ("consul.", RecordType::SOA),
        ("pq.query.consul.", RecordType::A),
        ("web.connect.consul.", RecordType::A),
        ("web.ingress.consul.", RecordType::SRV),
        ("web.virtual.consul.", RecordType::A),
        ("web.service.default.ns.consul.", RecordType::A),
        ("web.service.default.ap.consul.", RecordType::A),
        ("web.service.p1.peer.consul.", RecordType::A),
        ("web.service.g1.sg.consul.", RecordType::A),
    ];
    for (qname, qtype) in unmirrored {
        let before = m.metric(FORWARDED, &[("reason", "unmirrored")]).await;
        let reply = m.forwarded(qname, qtype).await;
        let plain = m.plain.udp(&query_with_edns(qname, qtype, 1232)).await;
        assert_eq!(Shape::of(&reply), Shape::of(&plain), "{qname} {qtype}");
        let after = m.metric(FORWARDED, &[("reason", "unmirrored")]).await;
        assert_eq!(after, before + 1.0, "{qname} {qtype}");
    }
    for (qname, qtype) in [
        ("db.service.consul.", RecordType::A),
        ("db.service.consul.", RecordType::SRV),
        ("zz-unknown.node.consul.", RecordType::A),
    ] {
        let before = m.metric(FORWARDED, &[]).await;
        let reply = m.forwarded(qname, qtype).await;
        let plain = m.plain.udp(&query_with_edns(qname, qtype, 1232)).await;
        assert_eq!(Shape::of(&reply), Shape::of(&plain), "{qname} {qtype}");
        assert_eq!(m.metric(FORWARDED, &[]).await, before + 1.0, "{qname}");
    }
    // The watched service itself is still answered from memory.
    m.mirrored("web.service.consul.", RecordType::A).await;
}

/// The `[consul]` table works the same when the Consul route is a dnsmasq rule line
/// (`server=/consul/127.0.0.1#PORT`, the Consul guide's dnsmasq line, D-fwd) instead of a
/// `[[route]]`: once the mirror has read the catalog, the first question for a service is
/// forwarded (`reason="unwatched"`), the next ones come from the mirror with the agent's
/// records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_line_route_is_mirrored_too() {
    let m = Mirror::start_with(small(), &["consul"], RouteStyle::Rule, "", |_| {}).await;
    // Until the mirror has read the catalog, every question is forwarded as `syncing`; once
    // it has, a service the catalog does not list is NXDOMAIN from memory (§9).
    m.until_mirrored("zz-absent.service.consul.", RecordType::A)
        .await;

    let first = m.forwarded("web.service.consul.", RecordType::A).await;
    assert_eq!(
        m.metric(FORWARDED, &[("reason", "unwatched")]).await,
        1.0,
        "{}",
        m.scrape().await
    );
    m.consul.wait_blocked(1).await;
    let mirrored = m.until_mirrored("web.service.consul.", RecordType::A).await;

    assert_eq!(ip_set(&first), ip_set(&mirrored));
    assert_eq!(
        ip_set(&mirrored),
        BTreeSet::from([ip("10.0.0.1"), ip("10.0.1.2"), ip("10.0.0.3")])
    );
    assert_eq!(m.metric(WATCHES, &[]).await, 1.0);
}

// ---------------------------------------------------------------------------------------
// 2. Changes

/// "Blocking Queries" (api-docs/features/blocking) and QF `fetchService` /
/// `CheckServiceNodes.Filter` (§11): a registration, a check going critical and back, a
/// warning (SRV weight `Weights.Warning`, QF `findWeight`), a node's `serfHealth` going
/// critical and a deregistration each show in the next answers from the mirror once the
/// agent's index moves, within one blocking round trip (bounded at 2 s), every answer on
/// the way from the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_answers_within_a_round_trip() {
    let m = Mirror::start(small(), "").await;
    m.watch(&["web.service.consul."]).await;
    let web = "web.service.consul.";
    let e = ip("10.0.0.5");

    let t = Instant::now();
    m.consul
        .register(Service::new("web", "node-e", 8084).weights(3, 1));
    m.until_answer(web, t, "registration", |r| ip_set(r).contains(&e))
        .await;

    let t = Instant::now();
    m.consul
        .set_service_health("node-e", "web", Health::Critical);
    m.until_answer(web, t, "critical check", |r| !ip_set(r).contains(&e))
        .await;

    let t = Instant::now();
    m.consul
        .set_service_health("node-e", "web", Health::Warning);
    m.until_answer(web, t, "warning check", |r| ip_set(r).contains(&e))
        .await;
    let srv = m.mirrored(web, RecordType::SRV).await;
    assert!(
        srv_weights(&srv).contains(&("node-e.node.dc1.consul.".to_string(), 1)),
        "{srv}"
    );

    let t = Instant::now();
    m.consul.set_node_health("node-a", Health::Critical);
    m.until_answer(web, t, "critical node", |r| {
        !ip_set(r).contains(&ip("10.0.0.1"))
    })
    .await;

    let t = Instant::now();
    m.consul.deregister("node-b", "web");
    let last = m
        .until_answer(web, t, "deregistration", |r| {
            !ip_set(r).contains(&ip("10.0.1.2"))
        })
        .await;
    assert_eq!(ip_set(&last), BTreeSet::from([ip("10.0.0.3"), e]));
    assert_eq!(ip_set(&m.agent(web, RecordType::A).await), ip_set(&last));

    // Nothing healthy left: NXDOMAIN with Consul's SOA, from the mirror.
    let t = Instant::now();
    m.consul.deregister("node-c", "web");
    m.consul.deregister("node-e", "web");
    let gone = m
        .until_answer(web, t, "last instance gone", |r| {
            r.metadata.response_code == ResponseCode::NXDomain
        })
        .await;
    assert_consul_soa(&gone, "consul.");
}

/// `/v1/catalog/services` (`agent/catalog_endpoint.go`) lists the services that exist: a
/// name missing from it is NXDOMAIN from the mirror (§9), and once a registration puts it
/// there, the next answers are the agent's, within a round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_service_is_found_once_registered() {
    let m = Mirror::start(small(), "").await;
    let fresh = "fresh.service.consul.";
    let missing = m.until_mirrored(fresh, RecordType::A).await;
    assert_rcode(&missing, ResponseCode::NXDomain);
    assert_consul_soa(&missing, "consul.");

    let t = Instant::now();
    m.consul.register(Service::new("fresh", "node-e", 9999));
    loop {
        let reply = m.dns.udp(&query(fresh, RecordType::A)).await;
        if answer_ips(&reply) == [ip("10.0.0.5")] {
            break;
        }
        assert!(t.elapsed() < CHANGE_WAIT, "still {reply}");
        tokio::time::sleep(POLL).await;
    }
}

/// §6.5 (MS `appendResultsToDNSResponse` `answerCNAME`): an instance whose address is a
/// hostname makes the answer the agent's to give, so once one is registered the service is
/// forwarded, within a round trip, and its answer is the agent's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostname_instance_sends_the_service_back_to_the_agent() {
    let m = Mirror::start(small(), "").await;
    m.watch(&["solo.service.consul."]).await;

    let t = Instant::now();
    m.consul.register(
        Service::new("solo", "node-b", 7001)
            .id("solo-2")
            .address("solo.example.net"),
    );
    loop {
        let (reply, source) = m
            .trace(&query_with_edns(
                "solo.service.consul.",
                RecordType::SRV,
                1232,
            ))
            .await;
        if source == Source::Forwarded {
            let agent = m.agent("solo.service.consul.", RecordType::SRV).await;
            assert_eq!(texts(&reply.answers), texts(&agent.answers));
            break;
        }
        assert!(t.elapsed() < CHANGE_WAIT, "still from the mirror: {reply}");
        tokio::time::sleep(POLL).await;
    }
}

/// `watch_idle`: a service's watch stops after that long without a question (the gauge
/// `splitdns_consul_watches` goes back to 0 and the agent holds no blocked query); the
/// next question is forwarded as a first one (`reason="unwatched"`) and starts it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_watch_stops() {
    let m = Mirror::start(small(), "watch_idle = \"1s\"").await;
    m.watch(&["web.service.consul."]).await;
    assert_eq!(m.metric(WATCHES, &[]).await, 1.0);

    m.until_metric(WATCHES, &[], Duration::from_secs(1) + REPLY_WAIT, |v| {
        v == 0.0
    })
    .await;
    let before = m.metric(FORWARDED, &[("reason", "unwatched")]).await;
    m.forwarded("web.service.consul.", RecordType::A).await;
    assert_eq!(
        m.metric(FORWARDED, &[("reason", "unwatched")]).await,
        before + 1.0
    );
    m.consul.wait_blocked(1).await;
    m.until_mirrored("web.service.consul.", RecordType::A).await;
}

// ---------------------------------------------------------------------------------------
// 3. Faults

/// Issue 21, "When the agent goes away": with the HTTP port closed the mirror keeps
/// answering (`state="stale"`, `splitdns_consul_mirror_age_seconds` above 0, a
/// `watch_errors{kind="connect"}`), `/health` fails naming the mirror; past `stale_limit`
/// names are forwarded (`reason="stale_limit"`); with the port open again the answers come
/// from the mirror, fresh, and `/health` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_http_port_makes_the_mirror_stale_then_forwarded() {
    let m = Mirror::start(small(), "stale_limit = \"3s\"").await;
    m.watch(&["web.service.consul."]).await;
    let web = "web.service.consul.";
    let health = m.dns.metrics_addr();
    assert_eq!(get(health, "/health").await.0, 200);
    assert_eq!(m.metric(MIRROR_AGE, &[]).await, 0.0);
    let expected = ip_set(&m.mirrored(web, RecordType::A).await);

    m.consul.stop_http().await;
    let stopped = Instant::now();
    // Answers go on, from the mirror, until it counts them stale.
    let deadline = Instant::now() + REPLY_WAIT;
    loop {
        let stale = m.metric(MIRROR_ANSWERS, &[("state", "stale")]).await;
        let reply = m.mirrored(web, RecordType::A).await;
        assert_eq!(ip_set(&reply), expected);
        if m.metric(MIRROR_ANSWERS, &[("state", "stale")]).await == stale + 1.0 {
            break;
        }
        assert!(Instant::now() < deadline, "never stale");
        tokio::time::sleep(POLL).await;
    }
    assert!(m.metric(WATCH_ERRORS, &[("kind", "connect")]).await >= 1.0);
    let deadline = Instant::now() + REPLY_WAIT;
    let body = loop {
        let (status, body) = get(health, "/health").await;
        if status == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "/health still {status}: {body}");
        tokio::time::sleep(POLL).await;
    };
    assert!(body.to_lowercase().contains("mirror"), "{body}");
    m.until_metric(MIRROR_AGE, &[], REPLY_WAIT, |age| age > 0.0)
        .await;

    // Past stale_limit: forwarded.
    let deadline = stopped + Duration::from_secs(3) + REPLY_WAIT;
    loop {
        let (reply, source) = m.trace(&query_with_edns(web, RecordType::A, 1232)).await;
        assert_eq!(ip_set(&reply), expected, "{reply}");
        if source == Source::Forwarded {
            break;
        }
        assert_eq!(source, Source::Mirror, "{reply}");
        assert!(
            Instant::now() < deadline,
            "still mirrored after stale_limit"
        );
        tokio::time::sleep(POLL).await;
    }
    assert!(m.metric(FORWARDED, &[("reason", "stale_limit")]).await >= 1.0);

    // Back: fresh answers from the mirror again, /health passes.
    m.consul.start_http();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let fresh = m.metric(MIRROR_ANSWERS, &[("state", "fresh")]).await;
        let (_, source) = m.trace(&query_with_edns(web, RecordType::A, 1232)).await;
        if source == Source::Mirror
            && m.metric(MIRROR_ANSWERS, &[("state", "fresh")]).await == fresh + 1.0
        {
            break;
        }
        assert!(Instant::now() < deadline, "the mirror never came back");
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(m.metric(MIRROR_AGE, &[]).await, 0.0);
    assert_eq!(get(health, "/health").await.0, 200);
}

/// Issue 21: "An agent restart with an unchanged catalog must be invisible to clients."
/// The HTTP port closes and opens again on the same index: every answer meanwhile comes
/// from the mirror (none reaches the agent's DNS port, none is forwarded), the watch blocks
/// again without an index reset, and a later change still arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restart_with_the_same_index_is_invisible() {
    let m = Mirror::start(small(), "").await;
    m.watch(&["web.service.consul."]).await;
    let web = "web.service.consul.";
    let expected = ip_set(&m.mirrored(web, RecordType::A).await);
    let forwarded = m.metric(FORWARDED, &[]).await;
    let path = "/v1/health/service/web";

    m.consul.stop_http().await;
    let requests = m.consul.requests(path);
    m.consul.start_http();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = m.mirrored(web, RecordType::A).await;
        assert_eq!(ip_set(&reply), expected);
        if m.consul.requests(path) > requests && m.consul.blocked() >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the watch never came back");
        tokio::time::sleep(POLL).await;
    }
    assert_eq!(m.metric(FORWARDED, &[]).await, forwarded);
    assert_eq!(
        m.metric(WATCH_ERRORS, &[("kind", "index_reset")]).await,
        0.0
    );

    let t = Instant::now();
    m.consul.register(Service::new("web", "node-e", 8084));
    m.until_answer(web, t, "registration after restart", |r| {
        ip_set(r).contains(&ip("10.0.0.5"))
    })
    .await;
}

/// docs/behaviour.md, Consul mirror: "When the agent is back, the watches read everything
/// again at once (no blocking on the old index)". The catalog changes while the HTTP port
/// is closed (the agent restarted with other services): once the port opens, the change
/// shows within the watches' error backoff (at most 5 s, with jitter), every answer on the
/// way from the mirror.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_the_agent_was_away_arrives_when_it_returns() {
    let m = Mirror::start(small(), "").await;
    m.watch(&["web.service.consul."]).await;
    let web = "web.service.consul.";

    m.consul.stop_http().await;
    m.consul.register(Service::new("web", "node-e", 8084));
    m.consul.deregister("node-a", "web");
    let reply = m.mirrored(web, RecordType::A).await;
    assert!(ip_set(&reply).contains(&ip("10.0.0.1")), "{reply}");
    m.consul.start_http();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = m.mirrored(web, RecordType::A).await;
        if ip_set(&reply) == ip_set(&m.agent(web, RecordType::A).await) {
            break;
        }
        assert!(Instant::now() < deadline, "still {reply}");
        tokio::time::sleep(POLL).await;
    }
}

/// "Blocking Queries", *Reset the index if it goes backwards*, at a restart: the agent comes
/// back from an older snapshot (its index lowered while the HTTP port was closed), where a
/// query on the old index would wait its whole `wait` for changes that never pass it. The
/// answers stay right and from the mirror throughout, and a change after the restart (its
/// index still below the old one) arrives within a round trip once the watch blocks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restart_with_a_lower_index_still_follows_changes() {
    let m = Mirror::start(small(), "").await;
    m.watch(&["web.service.consul."]).await;
    let web = "web.service.consul.";
    let old = m.consul.service_index("web");
    let expected = ip_set(&m.mirrored(web, RecordType::A).await);
    let path = "/v1/health/service/web";

    m.consul.stop_http().await;
    m.consul.restore_index(3);
    let requests = m.consul.requests(path);
    m.consul.start_http();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = m.mirrored(web, RecordType::A).await;
        assert_eq!(ip_set(&reply), expected);
        // The listing's query and web's, blocked on the new index.
        if m.consul.requests(path) >= requests + 2 && m.consul.blocked() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the watch never blocked again");
        tokio::time::sleep(POLL).await;
    }

    let t = Instant::now();
    let index = m.consul.register(Service::new("web", "node-e", 8084));
    assert!(index < old, "{index} is not below {old}");
    m.until_answer(web, t, "registration after the restart", |r| {
        ip_set(r).contains(&ip("10.0.0.5"))
    })
    .await;
}

/// "Blocking Queries", *Reset the index if it goes backwards*: a snapshot restore lowers
/// the index and ends the blocked query with it (`blockingquery.Query`, "the state store
/// has been abandoned"); the mirror resets its watch (`watch_errors{kind="index_reset"}`),
/// its answers stay right, and a change after the restore (whose index is still below the
/// old one) arrives within a round trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_index_resets_the_watch() {
    let m = Mirror::start(small(), "").await;
    m.watch(&["web.service.consul."]).await;
    let web = "web.service.consul.";
    let old = m.consul.service_index("web");
    assert!(old > 4, "index {old}");
    // The restore must find web's query blocked (the listing's is the other one): a query
    // sent after it with the old index would wait for its whole `wait`, as at Consul.
    m.consul.wait_blocked(2).await;

    m.consul.restore_index(3);
    m.until_metric(WATCH_ERRORS, &[("kind", "index_reset")], REPLY_WAIT, |v| {
        v >= 1.0
    })
    .await;
    let reply = m.mirrored(web, RecordType::A).await;
    assert_eq!(ip_set(&reply), ip_set(&m.agent(web, RecordType::A).await));

    m.consul.wait_blocked(1).await;
    let t = Instant::now();
    let index = m.consul.register(Service::new("web", "node-e", 8084));
    assert!(index < old, "{index} is not below {old}");
    m.until_answer(web, t, "registration after the restore", |r| {
        ip_set(r).contains(&ip("10.0.0.5"))
    })
    .await;
}

/// Issue 21 and the HTTP API's ACL docs: a 403 on one service's health is a
/// `watch_errors{kind="acl_denied"}`, the service is forwarded (`reason="acl"`) and gets
/// the agent's answer, never NXDOMAIN, and the denied watch is not retried in a hot loop:
/// 50 questions over a second bring at most a handful of requests for that path. The other
/// services stay mirrored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_service_is_forwarded_without_a_hot_loop() {
    let m = hidden_service_is_forwarded(Acl::Deny, "acl_denied").await;
    assert!(m.metric(FORWARDED, &[("reason", "acl")]).await >= 1.0);
    m.mirrored("web.service.consul.", RecordType::A).await;
}

/// Starts the mirror with the agent's ACL doing `acl` to `solo`, then asks for `solo` 50
/// times over a second: each answer is the agent's own, never NXDOMAIN, `watch_errors`
/// counts `kind`, and the agent sees at most a handful of requests for `solo`'s health.
async fn hidden_service_is_forwarded(acl: Acl, kind: &str) -> Mirror {
    // Set before splitdns starts: an ACL change does not move the index, so the mirror's
    // first listing must already see it.
    let m = Mirror::start_with(small(), &["consul"], RouteStyle::Table, "", |consul| {
        consul.set_acl("solo", Some(acl))
    })
    .await;
    m.watch(&["web.service.consul."]).await;
    let solo = "solo.service.consul.";

    m.forwarded(solo, RecordType::A).await;
    m.until_metric(WATCH_ERRORS, &[("kind", kind)], REPLY_WAIT, |v| v >= 1.0)
        .await;
    let path = "/v1/health/service/solo";
    let before = m.consul.requests(path);
    for _ in 0..50 {
        let reply = m.forwarded(solo, RecordType::A).await;
        assert_rcode(&reply, ResponseCode::NoError);
        assert_eq!(answer_ips(&reply), [ip("10.0.0.1")], "{reply}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let requests = m.consul.requests(path) - before;
    assert!(requests <= 5, "{requests} requests for {path} in a second");
    m
}

/// The HTTP API's ACL docs (`X-Consul-Results-Filtered-By-ACLs: true`): a service the
/// token may not see is missing from `/v1/catalog/services` and its health is `[]`, both
/// marked filtered. Issue 21: "an ACL that hides services must never turn into NXDOMAIN":
/// the service is forwarded and gets the agent's records, and so is a name missing from a
/// filtered list (its absence proves nothing); `watch_errors{kind="acl_filtered"}` counts
/// it, without a hot loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_service_is_forwarded_never_nxdomain() {
    let m = hidden_service_is_forwarded(Acl::Filter, "acl_filtered").await;
    let unknown = m.forwarded("nope.service.consul.", RecordType::A).await;
    assert_rcode(&unknown, ResponseCode::NXDomain);
    m.mirrored("web.service.consul.", RecordType::A).await;
}

/// Slow HTTP answers (every one delayed 500 ms): nothing waits on the agent's HTTP API.
/// While the mirror has not yet read `/v1/agent/self`, questions are forwarded at once;
/// once it knows the catalog, a new service's first questions are forwarded at once while
/// its watch syncs (`reason="syncing"` after the first), answered well inside the delay;
/// the watch syncs in the end, and a change still arrives within a round trip (the delay is
/// spent before the query blocks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_http_answers_delay_nothing() {
    let delay = Duration::from_millis(500);
    let m = Mirror::start_with(small(), &["consul"], RouteStyle::Table, "", |consul| {
        consul.set_http_delay(delay)
    })
    .await;
    let (web, solo) = ("web.service.consul.", "solo.service.consul.");

    let started = Instant::now();
    let reply = m.dns.udp(&query(web, RecordType::A)).await;
    assert!(started.elapsed() < delay, "took {:?}", started.elapsed());
    assert_eq!(reply.answers.len(), 3, "{reply}");

    // The catalog's list read: an unknown name is the mirror's.
    m.until_mirrored("nope.service.consul.", RecordType::A)
        .await;
    for _ in 0..5 {
        let started = Instant::now();
        let reply = m.forwarded(solo, RecordType::A).await;
        assert!(started.elapsed() < delay, "took {:?}", started.elapsed());
        assert_eq!(answer_ips(&reply), [ip("10.0.0.1")], "{reply}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let syncing = m.metric(FORWARDED, &[("reason", "syncing")]).await;
    assert!(syncing >= 1.0, "{}", m.scrape().await);

    m.consul.wait_blocked(1).await;
    m.until_mirrored(solo, RecordType::A).await;
    let t = Instant::now();
    m.consul
        .register(Service::new("solo", "node-e", 7000).id("solo-e"));
    m.until_answer(solo, t, "registration", |r| {
        ip_set(r).contains(&ip("10.0.0.5"))
    })
    .await;
}

/// README, Consul mirror: "The first query for a service is forwarded as before and starts
/// its watch" (issue 21: "Watches start lazily on the first query for a service"). A
/// question that comes while the mirror is still reading the agent (its HTTP answers slowed
/// to 300 ms, so `/v1/agent/self` and `/v1/catalog/services` are still on their way) is
/// that first query too: with no question after it, its service's watch starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_question_starts_the_watch_while_the_mirror_starts() {
    let delay = Duration::from_millis(300);
    let m = Mirror::start_with(small(), &["consul"], RouteStyle::Table, "", |consul| {
        consul.set_http_delay(delay)
    })
    .await;

    let reply = m
        .dns
        .udp(&query("web.service.consul.", RecordType::A))
        .await;
    assert_eq!(reply.answers.len(), 3, "{reply}");

    let deadline = Instant::now() + 4 * delay + REPLY_WAIT;
    while m.consul.requests("/v1/health/service/web") == 0 {
        assert!(
            Instant::now() < deadline,
            "no watch of web after its first question:\n{}",
            m.scrape().await
        );
        tokio::time::sleep(POLL).await;
    }
}

/// `max_watches`: with 2, a third service is forwarded (`reason="watch_cap"`) every time
/// and never watched (no request for its health), while the gauge stays at 2 and the two
/// watched services stay mirrored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_watch_cap_names_are_forwarded() {
    let m = Mirror::start(small(), "max_watches = 2").await;
    m.watch(&["web.service.consul.", "solo.service.consul."])
        .await;

    for _ in 0..5 {
        let reply = m.forwarded("trio.service.consul.", RecordType::A).await;
        assert_eq!(reply.answers.len(), 3, "{reply}");
    }

    assert!(m.metric(FORWARDED, &[("reason", "watch_cap")]).await >= 4.0);
    assert_eq!(m.metric(WATCHES, &[]).await, 2.0);
    assert_eq!(m.consul.requests("/v1/health/service/trio"), 0);
    m.mirrored("web.service.consul.", RecordType::A).await;
    m.mirrored("solo.service.consul.", RecordType::A).await;
}

/// A thousand distinct names of services that do not exist, asked once each (a scan, or a
/// typo in a loop): NXDOMAIN with Consul's SOA from the mirror's copy of
/// `/v1/catalog/services`, without a watch each (a handful of health requests in all, the
/// watch gauge unmoved) and with a handful of questions at most reaching the agent's DNS
/// port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_unknown_names_cost_the_agent_nothing() {
    let m = Mirror::start(small(), "").await;
    m.until_mirrored("warm-up.service.consul.", RecordType::A)
        .await;
    let agent = m.consul.dns_queries();
    let mirrored = m.mirror_answers().await;
    // The warm-up name's, if it was asked while the listing was still being read.
    let watches = m.metric(WATCHES, &[]).await;

    for i in 0..1000 {
        let qname = format!("unknown-{i}.service.consul.");
        let reply = m.dns.udp(&query(&qname, RecordType::A)).await;
        assert_rcode(&reply, ResponseCode::NXDomain);
        assert_consul_soa(&reply, "consul.");
    }

    let asked = m.consul.dns_queries() - agent;
    assert!(asked <= 10, "{asked} questions reached the agent");
    assert!(m.mirror_answers().await - mirrored >= 990.0);

    // A thousand tags nobody has, on a watched service: NXDOMAIN (§9, "tag filter matches
    // nothing"), from the watch already there.
    m.watch(&["web.service.consul."]).await;
    let (agent, web) = (
        m.consul.dns_queries(),
        m.consul.requests("/v1/health/service/web"),
    );
    for i in 0..1000 {
        let qname = format!("tag-{i}.web.service.consul.");
        let reply = m.dns.udp(&query(&qname, RecordType::A)).await;
        assert_rcode(&reply, ResponseCode::NXDomain);
        assert_consul_soa(&reply, "consul.");
    }
    assert!(m.consul.dns_queries() - agent <= 10);
    assert!(m.consul.requests("/v1/health/service/web") - web <= 2);
    let health: usize = (0..1000)
        .map(|i| {
            m.consul
                .requests(&format!("/v1/health/service/unknown-{i}"))
        })
        .sum();
    assert!(health <= 10, "{health} health requests");
    // Web's, and none for the unknown names.
    let now = m.metric(WATCHES, &[]).await;
    assert!(
        (1.0..=watches + 1.0).contains(&now),
        "{now} watches, {watches} before"
    );
}

/// `token_file`: the token goes with every HTTP request as `X-Consul-Token` (the HTTP API's
/// authentication docs), and no log line carries it, not even at debug. The query log
/// (docs/observing.md, Query log) says which answered: `mirror` for a fresh mirror answer,
/// `mirror-stale` once the agent's HTTP API is gone. Run as the real binary, whose log is
/// the one an operator reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_log_names_the_mirror_and_the_token_is_never_logged() {
    let consul = FakeConsul::start(small()).await;
    let internet = FakeUpstream::start(internet()).await;
    let dir = TempDir::new().unwrap();
    let token = "b1f0c0de-mirror-token-7d3e";
    let token_file = dir.path().join("consul.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let keys = format!(
        "token_file = \"{}\"\nstale_limit = \"1m\"",
        token_file.display()
    );
    let (running, addr, metrics) = run_binary(&dir, &consul, &internet, &keys);
    let web = "web.service.consul.";
    let mirror_answers = move || async move {
        let text = crate::support::http::scrape(metrics).await;
        (
            metric(&text, MIRROR_ANSWERS, &[("state", "fresh")]),
            metric(&text, MIRROR_ANSWERS, &[("state", "stale")]),
        )
    };

    client::udp(addr, &query(web, RecordType::A)).await;
    consul.wait_blocked(1).await;
    let deadline = Instant::now() + REPLY_WAIT;
    while mirror_answers().await.0 == 0.0 {
        assert!(Instant::now() < deadline, "no mirror answer");
        client::udp(addr, &query(web, RecordType::A)).await;
        tokio::time::sleep(POLL).await;
    }
    consul.stop_http().await;
    let deadline = Instant::now() + REPLY_WAIT;
    while mirror_answers().await.1 == 0.0 {
        assert!(Instant::now() < deadline, "no stale mirror answer");
        client::udp(addr, &query(web, RecordType::A)).await;
        tokio::time::sleep(POLL).await;
    }
    let lines = running.finish();

    let by: BTreeSet<String> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|j| j["target"] == "splitdns::query")
        .filter_map(|j| {
            let field = if j.get("by").is_some() {
                "by"
            } else {
                "upstream"
            };
            j[field].as_str().map(str::to_string)
        })
        .collect();
    assert!(by.contains("mirror"), "{by:?}\n{lines:#?}");
    assert!(by.contains("mirror-stale"), "{by:?}\n{lines:#?}");
    let leaks: Vec<&String> = lines.iter().filter(|l| l.contains(token)).collect();
    assert!(leaks.is_empty(), "the token is logged: {leaks:#?}");
    let tokens = consul.tokens();
    assert!(!tokens.is_empty());
    assert!(tokens.iter().all(|t| t == token), "{tokens:?}");
}

/// Starts the binary with the mirror on `consul`, a JSON query log and debug logging;
/// returns it with its DNS and metrics addresses.
fn run_binary(
    dir: &TempDir,
    consul: &FakeConsul,
    internet: &FakeUpstream,
    consul_keys: &str,
) -> (Logged, SocketAddr, SocketAddr) {
    Logged::start(dir.path(), &["--log-level", "debug"], |addr| {
        let metrics = free_addr();
        let text = format!(
            "[server]\nlisten = [\"{addr}\"]\n[upstream]\nservers = [\"{}\"]\n\
             [[route]]\nzones = [\"consul\"]\nservers = [\"{}\"]\n\
             [consul]\nhttp = \"{}\"\n{consul_keys}\n\
             [metrics]\nlisten = \"{metrics}\"\n\
             [log]\nqueries = true\nformat = \"json\"\n",
            internet.addr(),
            consul.dns_addr(),
            consul.http_addr()
        );
        (text, metrics)
    })
}

/// `has_metric` guards the gauges the contract names: each is exposed once the mirror runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mirror_metrics_are_exposed() {
    let m = Mirror::start(small(), "").await;
    m.watch(&["web.service.consul."]).await;
    let text = m.scrape().await;
    for name in [MIRROR_ANSWERS, FORWARDED, WATCHES, MIRROR_AGE] {
        assert!(has_metric(&text, name), "no {name} in:\n{text}");
    }
    assert_eq!(metric(&text, WATCHES, &[]), 1.0);
    assert_eq!(metric(&text, MIRROR_AGE, &[]), 0.0);
    assert!(metric(&text, MIRROR_ANSWERS, &[("state", "fresh")]) >= 1.0);
}
