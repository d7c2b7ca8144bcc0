//! The fake agent's DNS interface, answering from the [`Catalog`] as Consul's v2 DNS server
//! (1.19.1 and later, default configuration) puts it on the wire. Each behaviour names the
//! Consul function it follows (keys as in the Consul DNS reference: R = `agent/dns/router.go`,
//! RG = `response_generator.go`, MS = `message_serializer.go`, DRF =
//! `discovery_results_fetcher.go`, P = `parser.go`, RM = `dns_record_maker.go`, QF =
//! `agent/discovery/query_fetcher_v1.go`, TA = `agent/translate_addr.go`).
//!
//! Not emulated: prepared queries (`.query.` is NXDOMAIN: no query is defined), mesh
//! (`.connect.`/`.ingress.` are NXDOMAIN: no instance is mesh-capable), virtual IPs (`.virtual.`
//! is NOERROR with no data: no service has one), recursors (out-of-zone names are REFUSED),
//! peering and sameness groups (NXDOMAIN), ECS, and SRV targets that are hostnames inside the
//! zone (left without ADDITIONAL records).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::Shared;
use super::catalog::{Catalog, Health, Instance, Node};

/// The transport a query came over: UDP answers are cut to fit, TCP ones only to 64 KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    Udp,
    Tcp,
}

pub(super) async fn serve_udp(socket: UdpSocket, shared: Arc<Shared>) {
    // SV `ListenAndServe`: a 65535-byte read buffer.
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        shared.count_dns();
        let reply = {
            let catalog = shared.catalog.lock().unwrap();
            respond(&catalog, &buf[..len], Transport::Udp)
        };
        if let Some(reply) = reply {
            let _ = socket.send_to(&reply, peer).await;
        }
    }
}

pub(super) async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_connection(stream, Arc::clone(&shared)));
    }
}

/// Length-prefixed queries, answered in order; several may be pipelined on one connection.
async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>) {
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut query = vec![0u8; u16::from_be_bytes(len) as usize];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        shared.count_dns();
        let reply = {
            let catalog = shared.catalog.lock().unwrap();
            respond(&catalog, &query, Transport::Tcp)
        };
        if let Some(reply) = reply {
            let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&reply);
            if stream.write_all(&framed).await.is_err() {
                return;
            }
        }
    }
}

/// What one question resolves to, before header flags, trimming and EDNS.
#[derive(Debug, Default)]
struct Outcome {
    rcode: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    /// REFUSED: AA=0 and no OPT (RG `createRefusedResponse`).
    refused: bool,
}

impl Outcome {
    fn refused() -> Self {
        Self {
            rcode: ResponseCode::Refused,
            refused: true,
            ..Self::default()
        }
    }
}

/// The wire reply to the datagram or TCP message `bytes`; `None` when Consul sends nothing.
pub(crate) fn respond(catalog: &Catalog, bytes: &[u8], transport: Transport) -> Option<Vec<u8>> {
    if bytes.len() < 12 {
        return None;
    }
    // miekg `DefaultMsgAcceptFunc`: a response (QR=1) is dropped without a reply.
    if bytes[2] & 0x80 != 0 {
        return None;
    }
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let Ok(query) = Message::from_vec(bytes) else {
        // miekg: a body that fails to parse → FORMERR.
        let mut reply = Message::response(id, OpCode::Query);
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply.to_vec().ok();
    };
    let mut reply = Message::response(id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.checking_disabled = query.metadata.checking_disabled;
    // miekg `DefaultMsgAcceptFunc`: opcodes other than QUERY/NOTIFY → NOTIMP; QDCOUNT ≠ 1 →
    // FORMERR; both with the sections emptied.
    if !matches!(query.metadata.op_code, OpCode::Query | OpCode::Notify) {
        reply.metadata.response_code = ResponseCode::NotImp;
        return reply.to_vec().ok();
    }
    if query.queries.len() != 1 {
        reply.metadata.response_code = ResponseCode::FormErr;
        return reply.to_vec().ok();
    }
    // R `validateAndNormalizeRequest`: the question is lower-cased before the reply copies it,
    // so the echoed question and every owner name derived from it are lower case.
    let mut question = query.queries[0].clone();
    let qname = question.name().to_lowercase();
    question.set_name(qname.clone());
    reply.add_query(question.clone());
    let qtype = question.query_type();

    let outcome = lookup(catalog, &qname, qtype, 0);
    reply.metadata.response_code = outcome.rcode;
    // RG `createAuthoritativeResponse`: AA on every in-zone and reverse answer; RA only with
    // recursors, which the fake never has.
    reply.metadata.authoritative = !outcome.refused;
    reply.answers = outcome.answers;
    reply.authorities = outcome.authorities;
    reply.additionals = outcome.additionals;

    if outcome.rcode == ResponseCode::NoError && !reply.answers.is_empty() {
        let trimmed = match transport {
            Transport::Udp => trim_udp(catalog, &mut reply, query.edns.as_ref()),
            Transport::Tcp => trim_tcp(&mut reply, qtype),
        };
        // RG `trimUDPResponse`/`trimTCPResponse`: TC only with `enable_truncate`; by default
        // Consul cuts silently.
        reply.metadata.truncation = trimmed && catalog.config.enable_truncate;
    }
    // RG `setEDNS`: an OPT only when the query had one (never on REFUSED), added after
    // trimming, echoing the client's UDP size, version 0, DO never set.
    if let Some(edns) = &query.edns
        && !outcome.refused
    {
        let mut out = Edns::new();
        out.set_max_payload(edns.max_payload().max(512));
        out.set_version(0);
        reply.set_edns(out);
    }
    reply.to_vec().ok()
}

/// Encoded size of `msg`, with or without name compression (Go's `msg.Len()`).
fn wire_len(msg: &Message, compress: bool) -> usize {
    let mut buf = Vec::new();
    let mut encoder = BinEncoder::new(&mut buf);
    if !compress {
        encoder.set_name_encoding(NameEncoding::Uncompressed);
    }
    msg.emit(&mut encoder).expect("encode reply");
    buf.len()
}

/// RG `trimUDPResponse`. Returns whether anything was removed.
fn trim_udp(catalog: &Catalog, msg: &mut Message, edns: Option<&Edns>) -> bool {
    let max = edns
        .map_or(512, |e| usize::from(e.max_payload()).max(512))
        .min(65467);
    let index = msg.additionals.clone();
    let mut compress = true;
    let mut trimmed = false;
    // Without EDNS (or with EDNS ≤ 512) at most min(8, udp_answer_limit) answers, and from
    // then on sizes are measured uncompressed.
    let limit = catalog.config.udp_answer_limit.min(8);
    if max == 512 && msg.answers.len() > limit {
        msg.answers.truncate(limit);
        sync_extra(&index, msg);
        compress = false;
        trimmed = true;
    }
    trimmed | shrink_to(msg, &index, max - 8, compress)
}

/// RG `trimTCPResponse`: at most 4096 answers (1024 SRV), 65523 bytes.
fn trim_tcp(msg: &mut Message, qtype: RecordType) -> bool {
    let index = msg.additionals.clone();
    let limit = if qtype == RecordType::SRV { 1024 } else { 4096 };
    let mut trimmed = false;
    if msg.answers.len() > limit {
        msg.answers.truncate(limit);
        sync_extra(&index, msg);
        trimmed = true;
    }
    trimmed | shrink_to(msg, &index, 65523, true)
}

/// RG `trimUDPResponse` step 2: while more than one answer is left and the message is over
/// `max`, drop AUTHORITY first, then answers from the end, re-syncing ADDITIONAL each time.
fn shrink_to(msg: &mut Message, index: &[Record], max: usize, compress: bool) -> bool {
    let mut trimmed = false;
    while msg.answers.len() > 1 && wire_len(msg, compress) > max {
        if !msg.authorities.is_empty() {
            msg.authorities.clear();
        } else {
            msg.answers.pop();
            sync_extra(index, msg);
        }
        trimmed = true;
    }
    trimmed
}

/// RG `syncExtra`: for each SRV answer left, the first ADDITIONAL record owned by its target
/// (following CNAMEs); nothing for other answers. Node-meta TXT records therefore go.
fn sync_extra(index: &[Record], msg: &mut Message) {
    let first = |owner: &Name| index.iter().find(|r| r.name == *owner).cloned();
    let mut kept: Vec<Record> = Vec::new();
    for answer in &msg.answers {
        let RData::SRV(srv) = &answer.data else {
            continue;
        };
        let mut owner = srv.target.to_lowercase();
        for _ in 0..8 {
            let Some(record) = first(&owner) else { break };
            let next = match &record.data {
                RData::CNAME(c) => Some(c.0.to_lowercase()),
                _ => None,
            };
            if !kept.contains(&record) {
                kept.push(record);
            }
            match next {
                Some(next) => owner = next,
                None => break,
            }
        }
    }
    msg.additionals = kept;
}

fn name(text: &str) -> Name {
    let mut name = Name::from_ascii(text).unwrap_or_else(|e| panic!("bad name {text:?}: {e}"));
    name.set_fqdn(true);
    name
}

/// RM `makeSOA`: `<d> <min_ttl> IN SOA ns.<d> hostmaster.<d> <unix time> …`.
fn soa(catalog: &Catalog, domain: &str) -> Record {
    let s = catalog.config.soa;
    let serial = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let data = SOA::new(
        name(&format!("ns.{domain}")),
        name(&format!("hostmaster.{domain}")),
        serial,
        s.refresh as i32,
        s.retry as i32,
        s.expire as i32,
        s.min_ttl,
    );
    Record::from_rdata(name(domain), s.min_ttl, RData::SOA(data))
}

/// RG `createAuthoritativeResponse`: NXDOMAIN (or NODATA) with exactly one SOA in AUTHORITY.
fn negative(catalog: &Catalog, domain: &str, rcode: ResponseCode) -> Outcome {
    Outcome {
        rcode,
        authorities: vec![soa(catalog, domain)],
        ..Outcome::default()
    }
}

fn nxdomain(catalog: &Catalog, domain: &str) -> Outcome {
    negative(catalog, domain, ResponseCode::NXDomain)
}

fn nodata(catalog: &Catalog, domain: &str) -> Outcome {
    negative(catalog, domain, ResponseCode::NoError)
}

/// R `parseDomain`: the domain (primary or alt) `qname` is under, as the client spelled it,
/// and the labels before it.
fn split_domain(catalog: &Catalog, qname: &Name) -> Option<(String, Vec<String>)> {
    let text = qname.to_ascii();
    let labels: Vec<String> = qname
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_string())
        .collect();
    let mut domains = vec![catalog.config.domain.clone()];
    domains.extend(catalog.config.alt_domain.clone());
    // DRF `trimDomainFromQuestionName`: the longest match first.
    domains.sort_by_key(|d| std::cmp::Reverse(d.len()));
    for domain in domains {
        let domain_labels = domain.trim_end_matches('.').split('.').count();
        if text == domain || text.ends_with(&format!(".{domain}")) {
            let keep = labels.len() - domain_labels;
            return Some((domain, labels[..keep].to_vec()));
        }
    }
    None
}

fn lookup(catalog: &Catalog, qname: &Name, qtype: RecordType, depth: usize) -> Outcome {
    let Some((domain, labels)) = split_domain(catalog, qname) else {
        let arpa = name("arpa.");
        if arpa.zone_of(qname) {
            return reverse(catalog, qname, qtype);
        }
        // No recursors: names outside the zone are REFUSED (RG `createRefusedResponse`).
        return Outcome::refused();
    };
    // R `parseRequestType`: SOA and NS short-circuit the name parser for any in-zone name.
    match qtype {
        RecordType::SOA => return soa_answer(catalog, &domain),
        RecordType::NS => return ns_answer(catalog, &domain),
        _ => {}
    }
    // R `isAddrSubdomain`: more than two labels and the second one is `addr`.
    if qname.num_labels() > 2 && labels.get(1).is_some_and(|l| l == "addr") {
        return addr(catalog, qname, &labels[0], qtype, &domain);
    }
    // DRF `getQueryTypePartsAndSuffixesFromDNSMessage`: the first keyword from the right.
    const KEYWORDS: [&str; 6] = ["service", "connect", "virtual", "ingress", "node", "query"];
    let found = labels
        .iter()
        .rposition(|l| KEYWORDS.contains(&l.as_str()))
        .map(|at| (at, labels[at].clone()));
    let (parts, kind, suffixes) = match found {
        Some((at, kind)) => (&labels[..at], kind, &labels[at + 1..]),
        // SRV-only shortcut: the first `_` label from the right acts as if `.service` followed.
        None if qtype == RecordType::SRV => match labels.iter().rposition(|l| l.starts_with('_')) {
            Some(at) => (&labels[..=at], "service".to_string(), &labels[at + 1..]),
            None => return nxdomain(catalog, &domain),
        },
        None => return nxdomain(catalog, &domain),
    };
    if parts.is_empty() {
        return nxdomain(catalog, &domain);
    }
    // P `parseLabels`, QFCE `validateEnterpriseTenancy`, then "No path to datacenter".
    let Some(dc) = locality(catalog, suffixes) else {
        return nxdomain(catalog, &domain);
    };
    if !catalog.knows_dc(&dc) {
        return nxdomain(catalog, &domain);
    }
    match kind.as_str() {
        "service" => {
            // DRF `getQueryNameAndTagFromParts`: `_svc._tag` (`_tcp` = no tag), `tag.svc`,
            // `svc`; more parts → NXDOMAIN (v2, PR #21361).
            let (svc, tag) = match parts {
                [svc] => (svc.as_str(), None),
                [a, b] if a.starts_with('_') && b.starts_with('_') => {
                    let tag = (b != "_tcp").then(|| &b[1..]);
                    (&a[1..], tag)
                }
                [tag, svc] => (svc.as_str(), Some(tag.as_str())),
                _ => return nxdomain(catalog, &domain),
            };
            service(catalog, qname, qtype, &dc, svc, tag, &domain, depth)
        }
        // v2 uses only the last part as the node name.
        "node" => node(catalog, qname, qtype, &dc, parts.last().unwrap(), &domain),
        // QF `FetchVirtualIP`: no VIP → NOERROR, empty, no SOA (MS exempts virtual from NODATA).
        "virtual" => Outcome::default(),
        // No prepared queries and no mesh instances: not found.
        _ => nxdomain(catalog, &domain),
    }
}

/// P `parseLabels`: the datacenter named by the labels between keyword and domain.
fn locality(catalog: &Catalog, suffixes: &[String]) -> Option<String> {
    match suffixes {
        [] => Some(catalog.config.datacenter.clone()),
        [dc] => Some(dc.clone()),
        // Pairs `<value>.<key>`; CE accepts only the default namespace and partition.
        [_, _] | [_, _, _, _] | [_, _, _, _, _, _] => {
            let mut dc = None;
            let pairs: Vec<(&String, &String)> = suffixes
                .chunks(2)
                .map(|pair| (&pair[0], &pair[1]))
                .collect();
            let known = |k: &str| matches!(k, "dc" | "cluster" | "peer" | "sg" | "ns" | "ap");
            if pairs.len() == 1 && !known(pairs[0].1) {
                // Legacy ENT form `<namespace>.<datacenter>`.
                let (ns, datacenter) = pairs[0];
                return (ns == "default").then(|| datacenter.clone());
            }
            for (value, key) in pairs {
                match key.as_str() {
                    "dc" | "cluster" => dc = Some(value.clone()),
                    "ns" | "ap" if value == "default" => {}
                    // Peering and sameness groups are not emulated; other tenancy is ENT-only.
                    _ => return None,
                }
            }
            Some(dc.unwrap_or_else(|| catalog.config.datacenter.clone()))
        }
        _ => None,
    }
}

/// TA `translateAddressAccept` for the instance's node: A takes `lan_ipv4` then the address;
/// AAAA `lan_ipv6` then the address; SRV/ANY/TXT `lan_ipv6`, `lan_ipv4`, then the address.
fn node_address(node: &Node, qtype: RecordType) -> &str {
    let tagged = |key: &str| node.tagged_addresses.get(key).map(String::as_str);
    let pick = match qtype {
        RecordType::A => tagged("lan_ipv4"),
        RecordType::AAAA => tagged("lan_ipv6"),
        _ => tagged("lan_ipv6").or(tagged("lan_ipv4")),
    };
    pick.unwrap_or(&node.address)
}

/// An A or AAAA record for `ip`.
fn ip_record(owner: &Name, ttl: u32, ip: IpAddr) -> Record {
    let data = match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(owner.clone(), ttl, data)
}

/// Whether `qtype` takes an address of `ip`'s family in ANSWER (MS `getAnswerExtrasForIP`).
fn family_fits(qtype: RecordType, ip: IpAddr) -> bool {
    match qtype {
        RecordType::A => ip.is_ipv4(),
        RecordType::AAAA => ip.is_ipv6(),
        RecordType::ANY | RecordType::TXT => true,
        _ => false,
    }
}

/// MS `encodeIPAsFqdn`: the address bytes as lower-case hex.
pub(crate) fn addr_label(ip: IpAddr) -> String {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RM `encodeKVasRFC1464`: `key=value`; in the key a backquote is doubled, `=` becomes
/// backquote-`=`, leading and trailing spaces backquote-space; in the value only backquotes are
/// doubled; a key starting `rfc1035-` gives the raw value.
pub(crate) fn rfc1464(key: &str, value: &str) -> String {
    if key.to_ascii_lowercase().starts_with("rfc1035-") {
        return value.to_string();
    }
    let mut k = key.replace('`', "``").replace('=', "`=");
    let lead = k.len() - k.trim_start_matches(' ').len();
    let trail = k.len() - k.trim_end_matches(' ').len();
    if lead == k.len() {
        k = "` ".repeat(lead);
    } else {
        let middle = k[lead..k.len() - trail].to_string();
        k = format!("{}{middle}{}", "` ".repeat(lead), "` ".repeat(trail));
    }
    format!("{k}={}", value.replace('`', "``"))
}

/// RM `makeTXT`: one TXT RR per node-meta key, in random order (Go map iteration).
fn meta_txt(node: &Node, owner: &Name, ttl: u32) -> Vec<Record> {
    let mut records: Vec<Record> = node
        .meta
        .iter()
        .map(|(k, v)| {
            let data = TXT::new(vec![rfc1464(k, v)]);
            Record::from_rdata(owner.clone(), ttl, RData::TXT(data))
        })
        .collect();
    records.shuffle(&mut rand::rng());
    records
}

fn push_unique(records: &mut Vec<Record>, record: Record) {
    if !records.contains(&record) {
        records.push(record);
    }
}

/// A service lookup (MS `serialize`/`appendResultsToDNSResponse`, QF `fetchService`).
#[allow(clippy::too_many_arguments)]
fn service(
    catalog: &Catalog,
    qname: &Name,
    qtype: RecordType,
    dc: &str,
    svc: &str,
    tag: Option<&str>,
    domain: &str,
    depth: usize,
) -> Outcome {
    let mut instances = catalog.healthy_instances(dc, svc, tag);
    // Unknown service, none healthy, or none with the tag → NXDOMAIN.
    if instances.is_empty() {
        return nxdomain(catalog, domain);
    }
    // QF `fetchService`: the instances are shuffled on every query.
    instances.shuffle(&mut rand::rng());
    let ttl = catalog.config.service_ttl(svc);
    let mut out = Outcome::default();
    match qtype {
        RecordType::SRV => srv_records(catalog, &instances, qname, ttl, domain, &mut out),
        RecordType::A
        | RecordType::AAAA
        | RecordType::ANY
        | RecordType::CNAME
        | RecordType::TXT => {
            address_records(catalog, &instances, qname, qtype, ttl, depth, &mut out)
        }
        // MX, PTR, CAA, HTTPS, … on a service name → NODATA.
        _ => {}
    }
    if out.answers.is_empty() && out.additionals.is_empty() {
        return nodata(catalog, domain);
    }
    out
}

/// A/AAAA/ANY/CNAME/TXT on a service (MS `getAnswerExtrasForIP`, `appendResultsToDNSResponse`).
fn address_records(
    catalog: &Catalog,
    instances: &[Instance<'_>],
    qname: &Name,
    qtype: RecordType,
    ttl: u32,
    depth: usize,
    out: &mut Outcome,
) {
    let mut ips: Vec<Record> = Vec::new();
    let mut first_host: Option<String> = None;
    let limit = catalog.config.a_record_limit;
    let qtext = qname.to_ascii();
    for instance in instances {
        let mut address = match &instance.service.address {
            Some(a) => a.as_str(),
            None => node_address(instance.node, qtype),
        };
        // The service address equal to the question name with an IP node: the node's IP
        // (avoids a CNAME to itself).
        if address
            .trim_end_matches('.')
            .eq_ignore_ascii_case(qtext.trim_end_matches('.'))
        {
            address = node_address(instance.node, qtype);
        }
        match address.parse::<IpAddr>() {
            Ok(ip) if family_fits(qtype, ip) => {
                // Duplicate RRs collapse; `a_record_limit` counts distinct answers.
                if limit > 0 && ips.len() >= limit && qtype != RecordType::TXT {
                    continue;
                }
                push_unique(&mut ips, ip_record(qname, ttl, ip));
            }
            Ok(_) => {}
            Err(_) => {
                if first_host.is_none() {
                    first_host = Some(address.to_string());
                }
            }
        }
    }
    if qtype == RecordType::TXT {
        // v2: no TXT data for services; the address records go to ADDITIONAL.
        out.additionals = ips;
        return;
    }
    if !ips.is_empty() {
        out.answers = ips;
        return;
    }
    // MS `answerCNAME`: only when no instance gave an IP answer, the first hostname (after
    // the shuffle), chased inside the zone up to 3 levels (R `resolveCNAME`), alone outside it.
    if let Some(host) = first_host {
        let target = name(&host).to_lowercase();
        out.answers.push(Record::from_rdata(
            qname.clone(),
            ttl,
            RData::CNAME(CNAME(target.clone())),
        ));
        if depth < 3 && split_domain(catalog, &target).is_some() {
            let chased = lookup(catalog, &target, RecordType::ANY, depth + 1);
            out.answers.extend(chased.answers.into_iter().map(|mut r| {
                r.ttl = ttl;
                r
            }));
        }
    }
}

/// SRV on a service (MS `getAnswerExtrasForIP`/`makeRecordFromFQDN`, `shouldAppendTXTRecord`).
fn srv_records(
    catalog: &Catalog,
    instances: &[Instance<'_>],
    qname: &Name,
    ttl: u32,
    domain: &str,
    out: &mut Outcome,
) {
    let mut seen: Vec<(String, Option<String>, u16)> = Vec::new();
    for instance in instances {
        let (node, svc) = (instance.node, instance.service);
        // One SRV per (node, service address, port).
        let key = (node.name.clone(), svc.address.clone(), svc.port);
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        // QF `findWeight`: Weights.Passing, or Weights.Warning while a check warns.
        let weight = match instance.health {
            Health::Warning => svc.weights.1,
            _ => svc.weights.0,
        };
        let node_owner = name(&format!(
            "{}.node.{}.{domain}",
            node.name, instance.datacenter
        ));
        let (target, extra) = match &svc.address {
            // A service address that is an IP: the `.addr.` form (#7360, PR #21361).
            Some(address) => match address.parse::<IpAddr>() {
                Ok(ip) => {
                    let owner = name(&format!(
                        "{}.addr.{}.{domain}",
                        addr_label(ip),
                        instance.datacenter
                    ));
                    (owner.clone(), Some(ip_record(&owner, ttl, ip)))
                }
                Err(_) => (name(address), None),
            },
            None => match node_address(node, RecordType::SRV).parse::<IpAddr>() {
                Ok(ip) => (node_owner.clone(), Some(ip_record(&node_owner, ttl, ip))),
                Err(_) => (name(&node.address), None),
            },
        };
        let data = SRV::new(1, weight, svc.port, target);
        out.answers
            .push(Record::from_rdata(qname.clone(), ttl, RData::SRV(data)));
        if let Some(extra) = extra {
            push_unique(&mut out.additionals, extra);
            // Node-meta TXT, owned by the node name even for `.addr.` targets.
            if catalog.config.node_meta_txt {
                for txt in meta_txt(node, &node_owner, ttl) {
                    push_unique(&mut out.additionals, txt);
                }
            }
        }
    }
}

/// `<node>.node[.<dc>].<d>` (QF `FetchNodes`).
fn node(
    catalog: &Catalog,
    qname: &Name,
    qtype: RecordType,
    dc: &str,
    node_name: &str,
    domain: &str,
) -> Outcome {
    let Some(node) = catalog.nodes().iter().find(|n| {
        n.name.eq_ignore_ascii_case(node_name) && catalog.node_dc(n).eq_ignore_ascii_case(dc)
    }) else {
        return nxdomain(catalog, domain);
    };
    let ttl = catalog.config.node_ttl;
    let mut out = Outcome::default();
    let address = |qtype| node_address(node, qtype).parse::<IpAddr>().ok();
    let txt = || {
        if catalog.config.node_meta_txt || qtype == RecordType::TXT {
            meta_txt(node, qname, ttl)
        } else {
            Vec::new()
        }
    };
    match qtype {
        RecordType::A | RecordType::AAAA => {
            match address(qtype) {
                Some(ip) if family_fits(qtype, ip) => out.answers.push(ip_record(qname, ttl, ip)),
                Some(_) => {}
                None => out.answers.push(Record::from_rdata(
                    qname.clone(),
                    ttl,
                    RData::CNAME(CNAME(name(&node.address))),
                )),
            }
            out.additionals = txt();
        }
        // v2: TXT answers the meta, with the node's address in ADDITIONAL.
        RecordType::TXT => {
            out.answers = meta_txt(node, qname, ttl);
            out.additionals
                .extend(address(qtype).map(|ip| ip_record(qname, ttl, ip)));
        }
        RecordType::ANY => {
            out.answers
                .extend(address(qtype).map(|ip| ip_record(qname, ttl, ip)));
            out.answers.extend(meta_txt(node, qname, ttl));
        }
        _ => {}
    }
    // Wrong family or another type: NOERROR with the SOA, unless meta TXT is in ADDITIONAL.
    if out.answers.is_empty() && out.additionals.is_empty() {
        return nodata(catalog, domain);
    }
    out
}

/// `<hex>.addr.<anything>.<d>` (DRF `buildAddressResults`): 8 hex digits an IPv4 address, 32
/// an IPv6 one; a record of the other type goes to ADDITIONAL with no SOA.
fn addr(catalog: &Catalog, qname: &Name, label: &str, qtype: RecordType, domain: &str) -> Outcome {
    let bytes: Option<Vec<u8>> = label
        .len()
        .is_multiple_of(2)
        .then(|| {
            (0..label.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&label[i..i + 2], 16).ok())
                .collect()
        })
        .flatten();
    let ip = match bytes.as_deref() {
        Some(&[a, b, c, d]) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        Some(b) if b.len() == 16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap())),
        _ => return nxdomain(catalog, domain),
    };
    let record = ip_record(qname, catalog.config.node_ttl, ip);
    let mut out = Outcome::default();
    if qtype == RecordType::ANY || qtype == record.record_type() {
        out.answers.push(record);
    } else {
        out.additionals.push(record);
    }
    out
}

/// The `consul` service's instances in the agent's datacenter, at most 3, shuffled
/// (R `getNameserverResults`; V1 `nameservers`).
fn servers<'a>(catalog: &'a Catalog) -> Vec<Instance<'a>> {
    let mut servers = catalog.healthy_instances(&catalog.config.datacenter, "consul", None);
    servers.shuffle(&mut rand::rng());
    servers.truncate(3);
    servers
}

fn glue(catalog: &Catalog, server: &Instance<'_>, owner: &Name) -> Option<Record> {
    let ip = node_address(server.node, RecordType::NS).parse().ok()?;
    Some(ip_record(owner, catalog.config.node_ttl, ip))
}

/// NS on any in-zone name: the servers as `<node>.node.<dc>.<d>` with glue; owner the apex.
fn ns_answer(catalog: &Catalog, domain: &str) -> Outcome {
    let (answers, additionals) = servers_ns(catalog, domain, "node");
    Outcome {
        answers,
        additionals,
        ..Outcome::default()
    }
}

/// SOA on any in-zone name: the apex SOA; the servers in AUTHORITY, which v2 renders as
/// `<node>.service.<dc>.<d>`, with glue.
fn soa_answer(catalog: &Catalog, domain: &str) -> Outcome {
    let (authorities, additionals) = servers_ns(catalog, domain, "service");
    Outcome {
        answers: vec![soa(catalog, domain)],
        authorities,
        additionals,
        ..Outcome::default()
    }
}

/// The servers as NS records of the apex, each named `<node>.<kind>.<dc>.<d>`, and their
/// glue.
fn servers_ns(catalog: &Catalog, domain: &str, kind: &str) -> (Vec<Record>, Vec<Record>) {
    let mut ns = Vec::new();
    let mut glue_records = Vec::new();
    for server in servers(catalog) {
        let target = name(&format!(
            "{}.{kind}.{}.{domain}",
            server.node.name, server.datacenter
        ));
        glue_records.extend(glue(catalog, &server, &target));
        ns.push(Record::from_rdata(
            name(domain),
            catalog.config.node_ttl,
            RData::NS(NS(target)),
        ));
    }
    (ns, glue_records)
}

/// `*.in-addr.arpa.`/`*.ip6.arpa.` (QF `FetchRecordsByIp`): a node with the address first,
/// then a service instance with it as its service address; one PTR, TTL 0; always the primary
/// domain. SOA/NS on an arpa name give the `consul.` apex's.
fn reverse(catalog: &Catalog, qname: &Name, qtype: RecordType) -> Outcome {
    let domain = catalog.config.domain.clone();
    match qtype {
        RecordType::SOA => return soa_answer(catalog, &domain),
        RecordType::NS => return ns_answer(catalog, &domain),
        _ => {}
    }
    // DU `IPFromARPA`: only a full address parses.
    let ip = match qname.parse_arpa_name() {
        Ok(net) if net.prefix_len() == net.max_prefix_len() => net.addr(),
        _ => return nxdomain(catalog, &domain),
    };
    let dc = &catalog.config.datacenter;
    let target = catalog
        .nodes()
        .iter()
        .filter(|n| catalog.node_dc(n) == dc)
        .find(|n| n.address.parse::<IpAddr>().ok() == Some(ip))
        .map(|n| format!("{}.node.{dc}.{domain}", n.name))
        .or_else(|| {
            catalog
                .services()
                .iter()
                .find(|s| s.address.as_deref().and_then(|a| a.parse().ok()) == Some(ip))
                .map(|s| format!("{}.service.{dc}.{domain}", s.name))
        });
    match target {
        Some(target) => Outcome {
            answers: vec![Record::from_rdata(
                qname.clone(),
                0,
                RData::PTR(PTR(name(&target))),
            )],
            ..Outcome::default()
        },
        None => nxdomain(catalog, &domain),
    }
}
