//! Zone data for the fake upstreams: a Consul-like agent and a slice of "the internet".
//!
//! The Consul shapes follow Consul 1.19+ (the v2 DNS server, defaults):
//! TTL 0 everywhere, AA=1, SOA `consul. 0 IN SOA ns.consul. hostmaster.consul. S 3600 600 86400 0`.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::NULL;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::{a, aaaa, cname, mx, name, ns, ptr, soa, srv, txt};

/// What a zone says about one question.
pub(crate) struct Found {
    pub(crate) rcode: ResponseCode,
    pub(crate) answers: Vec<Record>,
    pub(crate) authorities: Vec<Record>,
    pub(crate) additionals: Vec<Record>,
}

/// Records keyed by owner and type, plus the extra records an answer carries in ADDITIONAL.
pub(crate) struct Zone {
    /// Names outside every apex get REFUSED; empty means "answer for everything".
    apexes: Vec<Name>,
    pub(crate) authoritative: bool,
    records: Vec<Record>,
    extras: Vec<(Name, RecordType, Vec<Record>)>,
    soa: Record,
    /// Synthesised answers for names no fixed record covers (used by the load test).
    dynamic: Option<Synthesize>,
}

/// Answers for a name no fixed record covers; `None` when the name is not its business.
type Synthesize = fn(&Name, RecordType) -> Option<Vec<Record>>;

impl Zone {
    fn new(soa: Record) -> Self {
        Self {
            apexes: Vec::new(),
            authoritative: false,
            records: Vec::new(),
            extras: Vec::new(),
            soa,
            dynamic: None,
        }
    }

    fn rr(mut self, record: Record) -> Self {
        self.records.push(record);
        self
    }

    fn extra(mut self, owner: &str, rtype: RecordType, records: Vec<Record>) -> Self {
        self.extras.push((name(owner), rtype, records));
        self
    }

    pub(crate) fn lookup(&self, qname: &Name, qtype: RecordType) -> Found {
        if !self.apexes.is_empty() && !self.apexes.iter().any(|apex| apex.zone_of(qname)) {
            return self.negative(ResponseCode::Refused, false);
        }
        if let Some(answers) = self.dynamic.and_then(|f| f(qname, qtype)) {
            return Found {
                rcode: ResponseCode::NoError,
                answers,
                authorities: Vec::new(),
                additionals: Vec::new(),
            };
        }
        let answers = self.chase(qname, qtype);
        if answers.is_empty() {
            let exists = self.records.iter().any(|r| r.name == *qname);
            let rcode = if exists {
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            };
            return self.negative(rcode, true);
        }
        let additionals = self
            .extras
            .iter()
            .filter(|(owner, rtype, _)| owner == qname && *rtype == qtype)
            .flat_map(|(_, _, records)| records.iter().cloned())
            .collect();
        Found {
            rcode: ResponseCode::NoError,
            answers,
            authorities: Vec::new(),
            additionals,
        }
    }

    /// Records of `qtype` at `qname`, following CNAMEs inside the zone.
    fn chase(&self, qname: &Name, qtype: RecordType) -> Vec<Record> {
        let mut out = Vec::new();
        let mut current = qname.clone();
        for _ in 0..8 {
            let at = |t: RecordType| {
                self.records
                    .iter()
                    .filter(|r| r.name == current && r.record_type() == t)
                    .cloned()
                    .collect::<Vec<_>>()
            };
            let exact = at(qtype);
            if !exact.is_empty() {
                out.extend(exact);
                return out;
            }
            let Some(alias) = at(RecordType::CNAME).into_iter().next() else {
                return out;
            };
            let RData::CNAME(target) = &alias.data else {
                unreachable!()
            };
            let next = target.0.clone();
            out.push(alias);
            current = next;
        }
        out
    }

    fn negative(&self, rcode: ResponseCode, with_soa: bool) -> Found {
        Found {
            rcode,
            answers: Vec::new(),
            authorities: if with_soa {
                vec![self.soa.clone()]
            } else {
                Vec::new()
            },
            additionals: Vec::new(),
        }
    }
}

/// A Consul agent with the default TTL of 0 on every record.
pub(crate) fn consul() -> Zone {
    consul_with_ttl(0)
}

/// A Consul agent whose services and nodes carry `ttl` (like `service_ttl`/`node_ttl`).
/// The SOA stays at Consul's default `soa.min_ttl` of 0, so negatives are never cacheable.
pub(crate) fn consul_with_ttl(ttl: u32) -> Zone {
    let web_srv_targets = vec![
        a("node-a.node.dc1.consul.", ttl, "10.0.0.1"),
        txt("node-a.node.dc1.consul.", ttl, &["rack=r1"]),
        a("0a000102.addr.dc1.consul.", ttl, "10.0.1.2"),
    ];
    let mut zone = Zone::new(soa("consul.", 0, "ns.consul.", "hostmaster.consul.", 0));
    zone.apexes = vec![name("consul."), name("in-addr.arpa.")];
    zone.authoritative = true;
    zone.rr(a("web.service.consul.", ttl, "10.0.0.1"))
        .rr(a("web.service.consul.", ttl, "10.0.1.2"))
        .rr(srv(
            "web.service.consul.",
            ttl,
            8080,
            "node-a.node.dc1.consul.",
        ))
        .rr(srv(
            "web.service.consul.",
            ttl,
            8081,
            "0a000102.addr.dc1.consul.",
        ))
        .extra(
            "web.service.consul.",
            RecordType::SRV,
            web_srv_targets.clone(),
        )
        .rr(srv(
            "_web._tcp.service.consul.",
            ttl,
            8080,
            "node-a.node.dc1.consul.",
        ))
        .rr(srv(
            "_web._tcp.service.consul.",
            ttl,
            8081,
            "0a000102.addr.dc1.consul.",
        ))
        .extra(
            "_web._tcp.service.consul.",
            RecordType::SRV,
            web_srv_targets,
        )
        // A service whose SRV answer carries no ADDITIONAL records (splitdns must complete it).
        .rr(srv(
            "bare.service.consul.",
            ttl,
            9000,
            "node-c.node.dc1.consul.",
        ))
        // An external service: its SRV target is a hostname outside Consul (§6.5, item 15).
        .rr(srv("db.service.consul.", ttl, 5432, "db.example.net."))
        .rr(a("node-a.node.consul.", ttl, "10.0.0.1"))
        .rr(a("node-a.node.dc1.consul.", ttl, "10.0.0.1"))
        .rr(txt("node-a.node.dc1.consul.", ttl, &["rack=r1"]))
        .rr(a("node-b.node.dc1.consul.", ttl, "10.0.0.2"))
        .rr(a("node-c.node.dc1.consul.", ttl, "10.0.0.3"))
        .rr(a("0a000102.addr.dc1.consul.", ttl, "10.0.1.2"))
        // PTR TTL is hard-coded 0 in Consul (#10577).
        .rr(ptr("1.0.0.10.in-addr.arpa.", 0, "node-a.node.dc1.consul."))
}

/// A server for `moved.test`: `host<i>.moved.test.` for i in 0..64 has the A record `ip`, TTL
/// 300, so an answer that was cached stays for the whole test.
pub(crate) fn moved(ip: &str) -> Zone {
    let mut zone = Zone::new(soa(
        "moved.test.",
        300,
        "ns.moved.test.",
        "hostmaster.moved.test.",
        300,
    ));
    for i in 0..64 {
        zone = zone.rr(a(&format!("host{i}.moved.test."), 300, ip));
    }
    zone
}

/// TTL of ordinary internet records.
pub(crate) const NET_TTL: u32 = 300;
/// The SOA MINIMUM of the internet zone: negatives are cacheable for 300 s.
pub(crate) const NET_NEGATIVE_TTL: u32 = 300;

/// `alias.example.` is a CNAME to `www.example.`; `zero.`, `hundred.` and `long.example.` have
/// TTLs 0, 100 and two days; `medium.example.` TXT fits 1232 but not 512 bytes;
/// `big.example.` TXT does not fit 1232 bytes; `n<i>.load.example.` answers A for any i.
pub(crate) fn internet() -> Zone {
    let t = NET_TTL;
    let mut zone = Zone::new(soa(
        "example.",
        3600,
        "ns.example.",
        "hostmaster.example.",
        NET_NEGATIVE_TTL,
    ));
    zone.dynamic = Some(load_answer);
    let (m, b) = ("m".repeat(250), "b".repeat(250));
    zone.rr(ns(".", t, "a.root-servers.net."))
        .rr(soa(
            "example.",
            t,
            "ns.example.",
            "hostmaster.example.",
            300,
        ))
        .rr(mx("example.", t, 10, "mail.example."))
        .rr(txt("example.", t, &["v=spf1 -all"]))
        .rr(a("mail.example.", t, "192.0.2.25"))
        .rr(a("www.example.", t, "192.0.2.10"))
        .rr(aaaa("www.example.", t, "2001:db8::10"))
        .rr(cname("alias.example.", t, "www.example."))
        .rr(a("zero.example.", 0, "192.0.2.20"))
        .rr(a("hundred.example.", 100, "192.0.2.100"))
        .rr(a("long.example.", 172_800, "192.0.2.200"))
        .rr(txt("medium.example.", t, &[m.as_str(); 3]))
        .rr(txt("big.example.", t, &[b.as_str(); 8]))
        .rr(unknown(
            "private.example.",
            t,
            65280,
            &[0xde, 0xad, 0xbe, 0xef],
        ))
        .rr(a("db.example.net.", t, "192.0.2.53"))
        .rr(a("notconsul.", t, "192.0.2.99"))
        // Rebinding attempts: a public name pointing inside, mixed with a public address.
        .rr(a("rebind.example.", t, "192.168.1.1"))
        .rr(a("rebind.example.", t, "192.0.2.7"))
        .rr(aaaa("rebind.example.", t, "::ffff:10.0.0.1"))
        .rr(aaaa("rebind.example.", t, "2001:db8::7"))
        .rr(a("inside.example.", t, "127.0.0.1"))
        .rr(a("router.lan.", t, "192.168.1.1"))
        .rr(a("web.notconsul.", t, "192.0.2.98"))
}

/// Bytes of TXT data in `medium.example.` and `big.example.`.
pub(crate) const MEDIUM_TXT_BYTES: usize = 750;
pub(crate) const BIG_TXT_BYTES: usize = 2000;

fn unknown(owner: &str, ttl: u32, code: u16, data: &[u8]) -> Record {
    let rdata = RData::Unknown {
        code: RecordType::Unknown(code),
        rdata: NULL::with(data.to_vec()),
    };
    Record::from_rdata(name(owner), ttl, rdata)
}

/// `n<i>.load.example. A` → the address [`load_ip`]`(i)`.
fn load_answer(qname: &Name, qtype: RecordType) -> Option<Vec<Record>> {
    let lower = qname.to_lowercase().to_ascii();
    let i: u32 = lower
        .strip_suffix(".load.example.")?
        .strip_prefix('n')?
        .parse()
        .ok()?;
    if qtype != RecordType::A {
        return Some(Vec::new());
    }
    Some(vec![a(&lower, NET_TTL, &load_ip(i).to_string())])
}

/// The address `n<i>.load.example.` resolves to: in 198.18.0.0/15 (RFC 2544's
/// benchmarking range), public as far as rebind protection is concerned, as
/// internet names must be.
pub(crate) fn load_ip(i: u32) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(0xc612_0000 | (i & 0x1_ffff))
}

/// A daemon's config with both routes caching: the Consul route keeps answers 60 s (Consul's
/// own TTL is 0). Rendered against the `internet` and `consul` fakes.
pub(crate) const DAEMON_CONFIG: &str = r#"
[server]
listen = ["127.0.0.1:0"]

[upstream]
servers = ["{internet}"]
timeout = "1s"

[[route]]
zones = ["consul"]
servers = ["{consul}"]
min_ttl = 60
"#;
