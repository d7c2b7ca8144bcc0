//! splitdns's `rules` against dnsmasq itself: the same rule lines go into dnsmasq (the
//! real binary, Debian's `dnsmasq-base`) and into splitdns, each in front of the same fake
//! upstreams, and both are asked the same questions. For every question the outcome must
//! be the same: which upstream received it, and what came back (the response code and the
//! records, which for a forwarded question name the upstream that answered).
//!
//! An operator's dnsmasq lines must mean in splitdns what they mean in dnsmasq; dnsmasq's
//! behaviour is the expectation, so nothing here is pinned from splitdns's own output. What
//! each kind of line means, pinned as dnsmasq(8) words it so that it runs without dnsmasq, is
//! rules.rs.
//!
//! One difference is deliberate, and each case lists the names it shows on
//! ([`Case::nodata`]): a name the rules give records (an `address=` zone and every name below
//! it) or that has such a name below it, inside a `local=` zone, is answered by dnsmasq 2.90
//! with NXDOMAIN for the types it lacks, and by splitdns with NODATA. NXDOMAIN says the name
//! has nothing at all, of any type, and nothing below it (RFC 1034 §4.3.2; RFC 8020 §2: "all
//! names and resource record sets (RRsets) below that node SHOULD be considered
//! unreachable"), and musl's getaddrinfo fails the whole lookup on it. The apex of a local
//! zone (`local=`, `server=/z/` or `address=/z/` without an address, `rev-server=` without a
//! server) is such a name too, even with nothing in the zone: it owns the zone's SOA, which
//! splitdns sends with every negative answer from the zone (see local.rs). On those names
//! and no others, dnsmasq's "not forwarded, NXDOMAIN" beside splitdns's "not forwarded,
//! NOERROR, no records" passes, and every listed name must show it at least once, so a list
//! that no longer matches what either server does fails too.
//!
//! The questions come from the rules: for every zone, the zone itself, a child, a deep
//! child, a name sharing its suffix without a label boundary (`notconsul.`), its parent and
//! an upper-case spelling; for every `rev-server=` prefix, reverse names of the first and
//! last address inside it and of the addresses just outside, with each of their parents
//! (IPv4: each parent down to `in-addr.arpa.`; IPv6: the parents one nibble either side of
//! the prefix's edge); and names no rule covers.
//!
//! dnsmasq runs with `--cache-size=0 --no-negcache` and splitdns with `[cache] size = 0`,
//! so every question that is forwarded shows where it went. The fakes answer with TTL 0.
//! Questions are asked one at a time, and after each one every fake is settled (see
//! [`Witness::settle`](crate::support::witness::Witness::settle)), so the questions a fake
//! logged since are the ones this question caused: nothing here waits on a clock.
//!
//! Where a zone has several servers, dnsmasq picks among them as it likes (its first query
//! to a group goes to all of them, later ones to the last that answered), so those fakes
//! count as one: the comparison asserts only that one of the zone's servers, and no other
//! upstream, received the question.

use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::{Name, RecordType};
use ipnet::IpNet;

use crate::support::Splitdns;
use crate::support::compare::{Fakes, placeholders};
use crate::support::dnsmasq::{self, Dnsmasq};
use crate::support::harness::parse;

/// Names no rule of any case covers, asked in every case.
const UNCOVERED: &[&str] = &[
    "example.com.",
    "www.example.org.",
    "fileserver.",
    "localhost.",
    "consul.example.com.",
    "in-addr.arpa.",
    "ip6.arpa.",
    "1.2.0.192.in-addr.arpa.",
];

/// One configuration: the rule lines both servers load, where `{NAME}` stands for a fake
/// upstream's `127.0.0.1#PORT`. `{internet}`, the default upstream, is always there.
#[derive(Default)]
struct Case {
    name: &'static str,
    lines: &'static [&'static str],
    /// Fakes that are servers of one zone together; each group counts as one upstream.
    together: &'static [&'static [&'static str]],
    /// Fakes that never answer (they still log what they receive).
    silent: &'static [&'static str],
    /// Questions asked besides the generated ones (PTR under `.arpa`, else A).
    names: &'static [&'static str],
    /// Names, as asked, where dnsmasq's NXDOMAIN is splitdns's NODATA: they exist (RFC 8020
    /// §2), see the module comment.
    nodata: &'static [&'static str],
}

/// The dnsmasq configuration: the rule lines and the default upstream.
fn dnsmasq_conf(lines: &[String], default: SocketAddr) -> String {
    let mut conf = lines.join("\n");
    conf.push_str(&format!("\nserver={}#{}\n", default.ip(), default.port()));
    conf
}

/// The splitdns configuration: the same lines in `rules`, the same default upstream, no
/// cache, no hosts file, and nothing else that dnsmasq does not do by default. The timeout
/// (how long splitdns waits on one server before the next) matters only where a fake is
/// silent.
fn splitdns_toml(lines: &[String], default: SocketAddr) -> String {
    let rules: Vec<String> = lines
        .iter()
        .map(|l| toml::Value::String(l.clone()).to_string())
        .collect();
    format!(
        "rules = [{}]\n\n[server]\nlisten = [\"127.0.0.1:0\"]\nrebind_protection = false\n\n\
         [upstream]\nservers = [\"{default}\"]\ntimeout = \"1s\"\n\n[cache]\nsize = 0\n\n\
         [local]\nhosts_files = []\n",
        rules.join(", ")
    )
}

/// Every question of a case, in a fixed order, each once.
fn questions(case: &Case) -> Vec<(String, RecordType)> {
    let mut out: Vec<(String, RecordType)> = Vec::new();
    let mut push = |qname: String, qtype: RecordType| {
        if !out.iter().any(|(n, t)| *n == qname && *t == qtype) {
            out.push((qname, qtype));
        }
    };
    for line in case.lines {
        let (option, value) = line.trim().split_once('=').expect("OPTION=VALUE");
        match option {
            "server" | "local" | "address" => {
                // A and AAAA are what address= answers; TXT stands for every other type.
                let types = [RecordType::A, RecordType::AAAA, RecordType::TXT];
                for zone in domains(value) {
                    for qname in zone_names(&zone) {
                        for qtype in types {
                            push(qname.clone(), qtype);
                        }
                    }
                }
            }
            "rev-server" => {
                let prefix = value.split(',').next().unwrap();
                for qname in reverse_names(prefix) {
                    push(qname, RecordType::PTR);
                }
            }
            "host-record" | "cname" => {
                // The names the line gives records, a name below each (which has none)
                // and the one above (which has one below it).
                let types = [RecordType::A, RecordType::AAAA, RecordType::TXT];
                let fields = value.split(',');
                let names =
                    fields.filter(|f| f.parse::<IpAddr>().is_err() && f.parse::<u32>().is_err());
                for owner in names {
                    let owner = owner.trim_end_matches('.');
                    let mut around = vec![format!("{owner}."), format!("www.{owner}.")];
                    around.extend(
                        owner
                            .split_once('.')
                            .map(|(_, parent)| format!("{parent}.")),
                    );
                    for qname in around {
                        for qtype in types {
                            push(qname.clone(), qtype);
                        }
                    }
                }
            }
            other => panic!("no questions for {other}="),
        }
    }
    for qname in UNCOVERED.iter().chain(case.names) {
        let qtype = if qname.ends_with(".arpa.") {
            RecordType::PTR
        } else {
            RecordType::A
        };
        push(qname.to_string(), qtype);
    }
    out
}

/// The domains of `/a/b/VALUE`, as written (dnsmasq reads `/.a/` as `/a/`).
fn domains(value: &str) -> Vec<String> {
    let Some(rest) = value.strip_prefix('/') else {
        return Vec::new();
    };
    let (domains, _) = rest.rsplit_once('/').expect("a domain list ends with /");
    domains
        .split('/')
        .map(|d| d.trim_start_matches('.').to_string())
        .collect()
}

/// Names in and around `zone`: the zone, a child, a deep child, an upper-case child, a
/// name that ends with the zone's text off a label boundary, and the parent.
fn zone_names(zone: &str) -> Vec<String> {
    // An internationalised zone is asked in its ASCII form (RFC 5891), as dnsmasq reads it.
    let ascii = Name::from_utf8(zone)
        .unwrap_or_else(|e| panic!("bad zone {zone:?}: {e}"))
        .to_ascii();
    let zone = ascii.trim_end_matches('.');
    let mut names = vec![
        format!("{zone}."),
        format!("www.{zone}."),
        format!("a.b.c.{zone}."),
        format!("WWW.{}.", zone.to_uppercase()),
        format!("not{zone}."),
    ];
    if let Some((_, parent)) = zone.split_once('.') {
        names.push(format!("{parent}."));
    }
    names
}

/// Reverse names around a `rev-server=` prefix (`ADDR[/LEN]`): the first and last address
/// inside it and the addresses just outside, each with its parents near the prefix, and the
/// first one in upper case.
fn reverse_names(prefix: &str) -> Vec<String> {
    let net: IpNet = prefix
        .parse()
        .or_else(|_| prefix.parse::<IpAddr>().map(IpNet::from))
        .unwrap_or_else(|_| panic!("bad prefix {prefix}"));
    let (first, last) = (net.network(), net.broadcast());
    let mut addrs = vec![first, last];
    addrs.extend(step(first, -1));
    addrs.extend(step(last, 1));
    let mut names = vec![format!("{}.", reverse_labels(first).join(".")).to_uppercase()];
    for addr in addrs {
        let labels = reverse_labels(addr);
        // A label is an octet (8 bits) or a nibble (4 bits); keep the names one label
        // above and below the prefix's edge, and the full name.
        let bits = if addr.is_ipv4() { 8 } else { 4 };
        let edge = usize::from(net.prefix_len()).div_ceil(bits);
        let keep = |n: usize| n == labels.len() - 2 || n + 1 >= edge && n <= edge + 1;
        for n in 0..=labels.len() - 2 {
            if addr.is_ipv4() || keep(n) {
                // The last `n` address labels and the two of the suffix.
                let start = labels.len() - 2 - n;
                names.push(format!("{}.", labels[start..].join(".")));
            }
        }
    }
    names
}

/// `addr`'s reverse name, label by label, most specific first.
fn reverse_labels(addr: IpAddr) -> Vec<String> {
    let mut labels: Vec<String> = match addr {
        IpAddr::V4(v4) => v4.octets().iter().rev().map(u8::to_string).collect(),
        IpAddr::V6(v6) => v6
            .octets()
            .iter()
            .rev()
            .flat_map(|b| [b & 15, b >> 4])
            .map(|d| format!("{d:x}"))
            .collect(),
    };
    let suffix = if addr.is_ipv4() { "in-addr" } else { "ip6" };
    labels.extend([suffix.to_string(), "arpa".to_string()]);
    labels
}

/// The address `by` (±1) away, if there is one.
fn step(addr: IpAddr, by: i8) -> Option<IpAddr> {
    match addr {
        IpAddr::V4(v4) => u32::from(v4)
            .checked_add_signed(by.into())
            .map(|n| IpAddr::from(n.to_be_bytes())),
        IpAddr::V6(v6) => u128::from(v6)
            .checked_add_signed(by.into())
            .map(|n| IpAddr::from(n.to_be_bytes())),
    }
}

/// Loads `case` into dnsmasq and splitdns, asks both every question, and fails with every
/// question whose outcomes differ.
async fn compare(case: Case) {
    if dnsmasq::skip(case.name) {
        return;
    }
    let fake_names = case.lines.iter().flat_map(|l| placeholders(l));
    let fakes = Fakes::start(fake_names, case.together, case.silent).await;
    let lines: Vec<String> = case.lines.iter().map(|l| fakes.render(l)).collect();
    let dnsmasq = Dnsmasq::start(&dnsmasq_conf(&lines, fakes.default_upstream())).await;
    let splitdns =
        Splitdns::start_config(parse(&splitdns_toml(&lines, fakes.default_upstream()))).await;
    let questions = questions(&case);
    let differences = fakes
        .differences(
            dnsmasq.addr(),
            splitdns.addr(),
            &questions,
            case.nodata,
            &[],
        )
        .await;
    assert!(
        differences.is_empty(),
        "{}: splitdns and dnsmasq differ on {} of {} questions for the rules\n  {}\n\
         (upstreams: {})\n{}\n\ndnsmasq's log:\n{}",
        case.name,
        differences.len(),
        questions.len(),
        lines.join("\n  "),
        fakes.describe(),
        differences.join("\n"),
        dnsmasq.log(),
    );
}

/// The Consul guide's dnsmasq lines, as `tests/it/import.rs` holds them: the `consul` zone
/// and the cluster's reverse zone to the agent (`server=/consul/127.0.0.1#8600`,
/// `rev-server=10.0.0.0/8,127.0.0.1#8600`), everything else to the default upstream.
/// dnsmasq(8), `--server`: "If one or more optional domains are given, that server is used
/// only for those domains and they are queried only using the specified server", and
/// "Matching of domains is normally done on complete labels, so /google.com/ matches
/// google.com and www.google.com but NOT supergoogle.com."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_guide() {
    compare(Case {
        name: "consul_guide",
        lines: &["server=/consul/{consul}", "rev-server=10.0.0.0/8,{consul}"],
        names: &[
            "web.service.consul.",
            "Web.Service.DC1.Consul.",
            "5.0.17.172.in-addr.arpa.",
        ],
        ..Case::default()
    })
    .await;
}

/// The reverse lines Consul's DNS forwarding guide offers (commented out there) for the
/// common private and special-use netblocks, all enabled: /4, /8, /10, /12 and /16 prefixes,
/// and one written with host bits set (`127.0.0.1/8`). dnsmasq(8), `--rev-server`: "This is
/// functionally the same as --server, but provides some syntactic sugar to make specifying
/// address-to-name queries easier. For example --rev-server=1.2.3.0/24,192.168.0.1 is exactly
/// equivalent to --server=/3.2.1.in-addr.arpa/192.168.0.1. Allowed prefix lengths are 1-32
/// (IPv4) and 1-128 (IPv6)."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_guide_with_reverse_lookups() {
    compare(Case {
        name: "consul_guide_with_reverse_lookups",
        lines: &[
            "server=/consul/{consul}",
            "rev-server=0.0.0.0/8,{consul}",
            "rev-server=10.0.0.0/8,{consul}",
            "rev-server=100.64.0.0/10,{consul}",
            "rev-server=127.0.0.1/8,{consul}",
            "rev-server=169.254.0.0/16,{consul}",
            "rev-server=172.16.0.0/12,{consul}",
            "rev-server=192.168.0.0/16,{consul}",
            "rev-server=224.0.0.0/4,{consul}",
            "rev-server=240.0.0.0/4,{consul}",
        ],
        names: &["5.0.17.172.in-addr.arpa.", "1.1.168.192.in-addr.arpa."],
        ..Case::default()
    })
    .await;
}

/// The Docker guide's lines, as `tests/it/import.rs` holds them: `server=/consul/...` in a
/// conf-dir file (`10-consul.conf`) and a default `server=`, with dnsmasq listening on the
/// bridge (172.17.0.1). Names a container on docker0 asks: Consul services, its own and the
/// gateway's reverse names (172.17.0.0/16, which no rule covers), Docker's own names and the
/// internet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_bridge_guide() {
    compare(Case {
        name: "docker_bridge_guide",
        lines: &["server=/consul/{consul}"],
        names: &[
            "1.0.17.172.in-addr.arpa.",
            "2.0.17.172.in-addr.arpa.",
            "17.172.in-addr.arpa.",
            "redis.service.consul.",
            "redis.service.consul.service.consul.",
            "registry-1.docker.io.",
            "host.docker.internal.",
        ],
        ..Case::default()
    })
    .await;
}

/// Two Consul agents for one zone, as operators write it: one line each, for `consul` and
/// for its reverse zone. dnsmasq(8), `--server`: "More than one --server flag is allowed,
/// with repeated domain or ipaddr parts as required", and `--rev-server` "is functionally the
/// same as --server". Both lines make one group of servers for the zone; which of them gets a
/// given query is dnsmasq's choice, so the two agents count as one upstream here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_two_agents() {
    compare(Case {
        name: "consul_two_agents",
        lines: &[
            "server=/consul/{agent1}",
            "server=/consul/{agent2}",
            "rev-server=10.0.0.0/8,{agent1}",
            "rev-server=10.0.0.0/8,{agent2}",
        ],
        together: &[&["agent1", "agent2"]],
        names: &["web.service.consul."],
        ..Case::default()
    })
    .await;
}

/// Two agents, the first one stopped (it never answers): the second line makes the second
/// agent a server of the zone too, so every `consul` question is answered, by the second
/// agent, and none goes to the default upstream. dnsmasq sends a query to the server of the
/// group that answered last, and the first query and then one every 50 queries or 20 s to
/// all of them, so here the second agent answers everything; splitdns tries its servers in
/// order, and answers from the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_two_agents_first_stopped() {
    compare(Case {
        name: "consul_two_agents_first_stopped",
        lines: &["server=/consul/{agent1}", "server=/consul/{agent2}"],
        together: &[&["agent1", "agent2"]],
        silent: &["agent1"],
        names: &["web.service.consul."],
        nodata: &[],
    })
    .await;
}

/// Overlapping zones: dnsmasq(8), `--server`: "More specific domains take precedence over less
/// specific domains, so: --server=/google.com/1.2.3.4 --server=/www.google.com/2.3.4.5 will
/// send queries for google.com and gmail.google.com to 1.2.3.4, but www.google.com will go to
/// 2.3.4.5".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_zones_longest_wins() {
    compare(Case {
        name: "overlapping_zones_longest_wins",
        lines: &[
            "server=/consul/{a}",
            "server=/service.consul/{b}",
            "server=/web.service.consul/{c}",
        ],
        names: &[
            "db.service.consul.",
            "node.consul.",
            "x.web.service.consul.",
        ],
        ..Case::default()
    })
    .await;
}

/// `#` as the server: dnsmasq(8), `--server`: "The special server address '#' means, "use the
/// standard servers", so --server=/google.com/1.2.3.4 --server=/www.google.com/# will send
/// queries for google.com and its subdomains to 1.2.3.4, except www.google.com (and its
/// subdomains) which will be forwarded as usual." Two zones on the `#` line, one of them
/// under a local zone, so the local zone's own name has names below it: NODATA, not
/// NXDOMAIN (RFC 8020 §2, see the module comment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_server_means_the_default_upstreams() {
    compare(Case {
        name: "hash_server_means_the_default_upstreams",
        lines: &[
            "server=/consul/{a}",
            "server=/skip.consul/#",
            "local=/lan/",
            "server=/public.lan/open.consul/#",
        ],
        nodata: &["lan."],
        ..Case::default()
    })
    .await;
}

/// An empty server and `local=`: dnsmasq(8), `--server`: "Also permitted is a -S flag which
/// gives a domain but no IP address; this tells dnsmasq that a domain is local and it may
/// answer queries from /etc/hosts or DHCP but should never forward queries on that domain to
/// any upstream servers. --local is a synonym for --server to make configuration files
/// clearer in this case." A more specific zone under a local one is still forwarded, and the
/// local zone's own name, above it, gets NODATA, not NXDOMAIN (RFC 8020 §2, see the module
/// comment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_server_and_local_are_never_forwarded() {
    compare(Case {
        name: "empty_server_and_local_are_never_forwarded",
        lines: &[
            "server=/consul/{a}",
            "server=/blocked.consul/",
            "local=/lan/",
            "server=/infra.lan/{b}",
            "local=/deep.infra.lan/",
        ],
        nodata: &["lan.", "blocked.consul.", "deep.infra.lan."],
        ..Case::default()
    })
    .await;
}

/// `address=` under a forwarded zone and under a local one: dnsmasq(8), `--address`: "Specify
/// an IP address to return for any host in the given domains. A (or AAAA) queries in the
/// domains are never forwarded and always replied to with the specified IP address", "To
/// give multiple addresses or both IPv4 and IPv6 addresses for a domain, use repeated
/// --address flags", and "the behaviour for
/// queries which don't match the specified address literal changed in version 2.86. Previous
/// versions, configured with (eg) --address=/example.com/1.2.3.4 and then queried for a RR type
/// other than A would return a NoData answer. From 2.86, the query is sent upstream."
///
/// Under `local=/lan/`, "upstream" is the local zone, and there dnsmasq 2.90 answers AAAA and
/// TXT for gw.lan and the names below it with NXDOMAIN, though they have an A record, and
/// lan. too, though gw.lan is below it. splitdns answers NODATA: RFC 1034 §4.3.2, "If the
/// name is found but no data of the desired type is present", the answer is empty, and RFC
/// 8020 §2 (see the module comment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_under_a_forwarded_zone() {
    compare(Case {
        name: "address_under_a_forwarded_zone",
        lines: &[
            "server=/consul/{a}",
            "address=/web.service.consul/192.0.2.10",
            "address=/v6.consul/2001:db8::10",
            "address=/both.consul/192.0.2.11",
            "address=/both.consul/2001:db8::11",
            "local=/lan/",
            "address=/gw.lan/192.0.2.1",
        ],
        nodata: &[
            "lan.",
            "gw.lan.",
            "www.gw.lan.",
            "a.b.c.gw.lan.",
            "WWW.GW.LAN.",
        ],
        ..Case::default()
    })
    .await;
}

/// Records in a local zone: dnsmasq(8), `--host-record`: "Add A, AAAA and PTR records to the
/// DNS", and `--cname`: "Return a CNAME record which indicates that <cname> is really
/// <target>". A type the name lacks is NODATA in both, and so is a name with a record name
/// below it (`rack1.lan.`, `lan.`): dnsmasq 2.90 gets these right, as RFC 1034 §4.3.2 and
/// RFC 8020 §2 have them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_in_a_local_zone() {
    compare(Case {
        name: "records_in_a_local_zone",
        lines: &[
            "local=/lan/",
            "host-record=nas.lan,192.0.2.5",
            "host-record=db.rack1.lan,192.0.2.6,2001:db8::6",
            "cname=files.lan,nas.lan",
        ],
        ..Case::default()
    })
    .await;
}

/// `address=/z/#` and an empty address: dnsmasq(8), `--address`: "An address specified as '#'
/// translates to the NULL address of 0.0.0.0 and its IPv6 equivalent of ::", and "one or more
/// domains with no address returns a no-such-domain answer, so --address=/example.com/ is
/// equivalent to --server=/example.com/ and returns NXDOMAIN for example.com and all its
/// subdomains."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_hash_blocks_and_empty_address_is_nxdomain() {
    compare(Case {
        name: "address_hash_blocks_and_empty_address_is_nxdomain",
        lines: &[
            "server=/example/{a}",
            "address=/ads.example/#",
            "address=/gone.example/",
        ],
        nodata: &["gone.example."],
        ..Case::default()
    })
    .await;
}

/// Several zones on one line, and a zone spelled `/.zone/` in mixed case: dnsmasq(8),
/// `--server`: "If one or more optional domains are given, that server is used only for those
/// domains", and "For historical reasons, the pattern /.google.com/ is equivalent to
/// /google.com/". DNS names compare without regard to case (RFC 4343 §2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_zones_on_one_line() {
    compare(Case {
        name: "several_zones_on_one_line",
        lines: &[
            "server=/consul/infra.local/{a}",
            "server=/b.infra.local/{b}",
            "server=/.Corp.Example/{c}",
        ],
        ..Case::default()
    })
    .await;
}

/// The same zone on several lines of different kinds: dnsmasq(8), `--address`: "To restore
/// the pre-2.86 behaviour, use the configuration --address=/example.com/1.2.3.4
/// --local=/example.com/", so A questions get the address and other types NXDOMAIN; and an
/// `address=` beside a `server=` of its own zone answers A itself and sends the rest to that
/// server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_with_local_or_server_for_the_same_zone() {
    compare(Case {
        name: "address_with_local_or_server_for_the_same_zone",
        lines: &[
            "address=/gw.lan/192.0.2.1",
            "local=/gw.lan/",
            "server=/consul/{a}",
            "address=/consul/192.0.2.2",
        ],
        ..Case::default()
    })
    .await;
}

/// `rev-server=` on octet boundaries, nested (/16 with a /24 inside, and a /32 from an address
/// without a length): dnsmasq(8), `--rev-server`: "--rev-server=1.2.3.0/24,192.168.0.1 is
/// exactly equivalent to --server=/3.2.1.in-addr.arpa/192.168.0.1", and "If the prefix length
/// is omitted, dnsmasq substitutes either 32 (IPv4) or 128 (IPv6)."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rev_server_on_octet_boundaries() {
    compare(Case {
        name: "rev_server_on_octet_boundaries",
        lines: &[
            "rev-server=10.0.0.0/8,{a}",
            "rev-server=192.168.0.0/16,{b}",
            "rev-server=192.168.1.0/24,{c}",
            "rev-server=192.0.2.1,{c}",
        ],
        ..Case::default()
    })
    .await;
}

/// `rev-server=` off an octet boundary: the man page allows "prefix lengths 1-32", and a
/// reverse zone can only end on an octet, so a /12 stands for the sixteen /16 zones it covers
/// (dnsmasq logs each as "using nameserver ... for domain 16.172.in-addr.arpa" ...
/// "31.172.in-addr.arpa"); /10 and /7 likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rev_server_off_octet_boundaries() {
    compare(Case {
        name: "rev_server_off_octet_boundaries",
        lines: &[
            "rev-server=172.16.0.0/12,{a}",
            "rev-server=100.64.0.0/10,{b}",
            "rev-server=fc00::/7,{c}",
        ],
        ..Case::default()
    })
    .await;
}

/// IPv6 prefixes: an /8, an /10 off the nibble boundary (link-local), a /48, and a /32 written
/// with host bits set inside the /8; reverse names are nibbles under `ip6.arpa` (RFC 3596
/// §2.5). dnsmasq(8), `--rev-server`: "Allowed prefix lengths are 1-32 (IPv4) and 1-128 (IPv6)."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rev_server_ipv6_prefixes() {
    compare(Case {
        name: "rev_server_ipv6_prefixes",
        lines: &[
            "rev-server=fd00::/8,{a}",
            "rev-server=fe80::/10,{b}",
            "rev-server=2001:db8:1::/48,{c}",
            "rev-server=fd12:3456::1/32,{c}",
        ],
        ..Case::default()
    })
    .await;
}

/// Reverse zones and domain lines together: `server=`, `local=` and `server=/z/#` lines for
/// reverse zones inside a `rev-server=` prefix. dnsmasq(8): `--rev-server` "is functionally
/// the same as --server", and "More specific domains take precedence over less specific
/// domains", so the domain lines win for their names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rev_server_with_more_specific_domain_lines() {
    compare(Case {
        name: "rev_server_with_more_specific_domain_lines",
        lines: &[
            "rev-server=10.0.0.0/8,{a}",
            "server=/5.10.in-addr.arpa/{b}",
            "local=/6.10.in-addr.arpa/",
            "server=/7.10.in-addr.arpa/#",
        ],
        nodata: &["6.10.in-addr.arpa."],
        ..Case::default()
    })
    .await;
}

/// The same zone on lines of different kinds: `server=` with an address beside `server=/z/#`,
/// and beside `local=/z/` in either order. dnsmasq(8) gives each line its meaning ("The special
/// server address '#' means, "use the standard servers"", "a domain but no IP address ...
/// should never forward queries on that domain") but does not say which wins when one domain
/// has both; since 2.86 dnsmasq ranks a domain's lines by kind, not by their order. Whatever
/// the installed dnsmasq does with them, splitdns must do the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_zone_on_lines_of_different_kinds() {
    compare(Case {
        name: "same_zone_on_lines_of_different_kinds",
        lines: &[
            "server=/hash.test/{a}",
            "server=/hash.test/#",
            "server=/local.test/{b}",
            "local=/local.test/",
            "local=/local2.test/",
            "server=/local2.test/{b}",
        ],
        ..Case::default()
    })
    .await;
}

/// Lines as they sit in a dnsmasq.conf, with a comment after the value and white space
/// before the option. dnsmasq reads `#` after white space as the start of a comment (so
/// `127.0.0.1#8600` keeps its port), and docs/rules.md says lines copied from a dnsmasq.conf
/// work in `rules` as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_and_white_space_as_in_a_dnsmasq_conf() {
    compare(Case {
        name: "comments_and_white_space_as_in_a_dnsmasq_conf",
        lines: &[
            "server=/consul/{a} # the local agent",
            "server=/skip.consul/#\t# the default upstreams",
            "  local=/lan/",
            "rev-server=10.0.0.0/8,{b}  # Consul's reverse zone",
        ],
        nodata: &["lan."],
        ..Case::default()
    })
    .await;
}

/// Spellings dnsmasq accepts: a zone with a trailing dot and capitals, a `rev-server=` prefix
/// written with host bits set, and a `rev-server=` without a server. dnsmasq(8):
/// `--rev-server=<ip-address>[/<prefix-len>][,<server>]...`, the server being optional as in
/// `--server`, where "a domain but no IP address ... tells dnsmasq that a domain is local and
/// it may answer queries from /etc/hosts or DHCP but should never forward queries on that
/// domain to any upstream servers."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spellings_dnsmasq_accepts() {
    compare(Case {
        name: "spellings_dnsmasq_accepts",
        lines: &[
            "server=/Trail.Example./{a}",
            "rev-server=192.168.3.7/24,{b}",
            "rev-server=10.0.0.0/8",
        ],
        nodata: &["10.in-addr.arpa."],
        ..Case::default()
    })
    .await;
}

/// An internationalised zone: dnsmasq, built with IDN support as Debian's is, reads
/// `/bücher.example/` as its ASCII form `xn--bcher-kva.example` (RFC 5891) and routes that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internationalised_zone() {
    compare(Case {
        name: "internationalised_zone",
        lines: &["server=/bücher.example/{a}"],
        ..Case::default()
    })
    .await;
}
