//! The answers Consul's DNS server gives, made from the mirrored catalog: the
//! records of `agent/dns/message_serializer.go` (MS) and
//! `dns_record_maker.go` (RM) for services, nodes and `.addr.` names, and the
//! NXDOMAIN/NODATA of `response_generator.go` with Consul's SOA.
//!
//! Names are compressed so that the answer records can still be shuffled per
//! query by moving whole records, as Consul shuffles instances on every query
//! (QF `fetchService`): answer records point only at the question, and the
//! pointers of later records into an answer record (an SRV target, the owner
//! of its address record) are listed, to be rewritten after the move.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::rdata::{A, AAAA, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::catalog::{AgentDns, Health, Instance, NodeInfo};
use crate::dns::wire;

/// One record; `owner` `None` is the question's name.
struct Rr {
    owner: Option<Name>,
    ttl: u32,
    data: RData,
}

/// An answer before it is encoded.
#[derive(Default)]
pub(super) struct Reply {
    rcode: u8,
    answers: Vec<Rr>,
    authority: Vec<Rr>,
    additional: Vec<Rr>,
}

impl Reply {
    /// Whether the answer section may be reordered per query: several
    /// instances' records (never a node's A-then-TXT).
    pub(super) fn shuffled(&self) -> bool {
        self.answers.len() > 1
    }
}

/// The question and the domain it was asked under, as the answer names it.
#[derive(Clone, Copy)]
pub(super) struct Asked<'a> {
    pub(super) lower: &'a [u8],
    pub(super) qtype: u16,
    /// `consul.` or the alt domain: the one the question ends in.
    pub(super) domain: &'a str,
}

fn name(text: &str) -> Option<Name> {
    Name::from_ascii(text).ok()
}

/// RM `makeSOA`: `<d> <min_ttl> SOA ns.<d> hostmaster.<d> <unix time> …`.
fn soa(agent: &AgentDns, domain: &str) -> Option<Rr> {
    let s = agent.soa;
    let serial = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let data = SOA::new(
        name(&format!("ns.{domain}"))?,
        name(&format!("hostmaster.{domain}"))?,
        serial,
        s.refresh as i32,
        s.retry as i32,
        s.expire as i32,
        s.minttl,
    );
    Some(Rr {
        owner: Some(name(domain)?),
        ttl: s.minttl,
        data: RData::SOA(data),
    })
}

/// RG `createAuthoritativeResponse`: NXDOMAIN or NODATA, one SOA.
fn negative(agent: &AgentDns, domain: &str, rcode: u8) -> Option<Reply> {
    Some(Reply {
        rcode,
        authority: vec![soa(agent, domain)?],
        ..Reply::default()
    })
}

pub(super) fn nxdomain(agent: &AgentDns, asked: Asked<'_>) -> Option<Reply> {
    negative(agent, asked.domain, wire::RCODE_NXDOMAIN)
}

/// An answer with nothing in it anywhere is NODATA, with the SOA.
fn or_nodata(agent: &AgentDns, asked: Asked<'_>, reply: Reply) -> Option<Reply> {
    if reply.answers.is_empty() && reply.additional.is_empty() {
        negative(agent, asked.domain, wire::RCODE_NOERROR)
    } else {
        Some(reply)
    }
}

/// TA `translateAddressAccept`: A takes `lan_ipv4`, AAAA `lan_ipv6`, other
/// types `lan_ipv6` then `lan_ipv4`; each falls back to the node's address.
fn node_address(node: &NodeInfo, qtype: u16) -> &str {
    let pick = match qtype {
        wire::TYPE_A => node.lan_ipv4.as_deref(),
        wire::TYPE_AAAA => node.lan_ipv6.as_deref(),
        _ => node.lan_ipv6.as_deref().or(node.lan_ipv4.as_deref()),
    };
    pick.unwrap_or(&node.address)
}

/// Whether an instance's address is a host name: Consul then answers with a
/// CNAME and chases it, which the mirror leaves to the agent.
pub(super) fn has_host_name(instance: &Instance) -> bool {
    let address = instance
        .address
        .as_deref()
        .unwrap_or(&instance.node.address);
    address.parse::<IpAddr>().is_err()
}

fn ip_data(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// MS `getAnswerExtrasForIP`: the types whose answer takes an address of this family.
fn fits(qtype: u16, ip: IpAddr) -> bool {
    match qtype {
        wire::TYPE_A => ip.is_ipv4(),
        wire::TYPE_AAAA => ip.is_ipv6(),
        wire::TYPE_ANY | wire::TYPE_TXT => true,
        _ => false,
    }
}

/// MS `encodeIPAsFqdn`: the address bytes in lower-case hex.
fn addr_label(ip: IpAddr) -> String {
    let bytes = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RM `encodeKVasRFC1464`: `key=value`; in the key a backquote is doubled,
/// `=` becomes backquote-`=`, leading and trailing spaces backquote-space; in
/// the value only backquotes are doubled; a key starting `rfc1035-` gives the
/// value alone.
fn rfc1464(key: &str, value: &str) -> String {
    if key.to_ascii_lowercase().starts_with("rfc1035-") {
        return value.to_string();
    }
    let escaped = key.replace('`', "``").replace('=', "`=");
    let body = escaped.trim_matches(' ');
    let (lead, trail) = if body.is_empty() {
        (escaped.len(), 0)
    } else {
        let lead = escaped.len() - escaped.trim_start_matches(' ').len();
        (lead, escaped.len() - escaped.trim_end_matches(' ').len())
    };
    let key = format!("{}{body}{}", "` ".repeat(lead), "` ".repeat(trail));
    format!("{key}={}", value.replace('`', "``"))
}

/// RM `makeTXT`: one TXT per node-meta key.
fn meta_txt(node: &NodeInfo, owner: Option<&Name>, ttl: u32) -> Vec<Rr> {
    node.meta
        .iter()
        .map(|(k, v)| Rr {
            owner: owner.cloned(),
            ttl,
            data: RData::TXT(TXT::new(vec![rfc1464(k, v)])),
        })
        .collect()
}

/// A service's answer from its instances that pass the health and tag
/// filters (none: NXDOMAIN); `None` when a name cannot be written.
pub(super) fn service(
    agent: &AgentDns,
    asked: Asked<'_>,
    service: &str,
    instances: &[&Instance],
) -> Option<Reply> {
    if instances.is_empty() {
        return nxdomain(agent, asked);
    }
    let ttl = agent.service_ttl(service);
    let mut reply = Reply::default();
    match asked.qtype {
        wire::TYPE_SRV => srv(agent, asked, instances, ttl, &mut reply)?,
        wire::TYPE_A | wire::TYPE_AAAA | wire::TYPE_ANY | wire::TYPE_TXT | wire::TYPE_CNAME => {
            let mut ips: Vec<IpAddr> = Vec::new();
            for instance in instances {
                let address = match &instance.address {
                    Some(address) => address.as_str(),
                    None => node_address(&instance.node, asked.qtype),
                };
                match address.parse::<IpAddr>() {
                    // Duplicate records collapse (MS `appendResultsToDNSResponse`).
                    Ok(ip) if fits(asked.qtype, ip) && !ips.contains(&ip) => ips.push(ip),
                    _ => {}
                }
            }
            let records = ips.into_iter().map(|ip| Rr {
                owner: None,
                ttl,
                data: ip_data(ip),
            });
            // v2: a service has no TXT data; its addresses go to ADDITIONAL.
            if asked.qtype == wire::TYPE_TXT {
                reply.additional.extend(records);
            } else {
                reply.answers.extend(records);
            }
        }
        // MX, PTR, CAA, HTTPS, … on a service: NODATA.
        _ => {}
    }
    or_nodata(agent, asked, reply)
}

/// MS `getAnswerExtrasForIP`/`makeRecordFromFQDN`: one SRV per node, service
/// address and port; the target `<node>.node.<dc>.<d>`, or `<hex>.addr.<dc>.<d>`
/// for a service address (#7360); its address and the node's meta TXT
/// (`shouldAppendTXTRecord`, owned by the node name) in ADDITIONAL.
fn srv(
    agent: &AgentDns,
    asked: Asked<'_>,
    instances: &[&Instance],
    ttl: u32,
    reply: &mut Reply,
) -> Option<()> {
    let mut seen: Vec<(&str, Option<&str>, u16)> = Vec::new();
    for instance in instances {
        let node = &instance.node;
        let key = (
            node.name.as_str(),
            instance.address.as_deref(),
            instance.port,
        );
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        // QF `findWeight`.
        let weight = match instance.health {
            Health::Warning => instance.weights.1,
            _ => instance.weights.0,
        };
        let domain = asked.domain;
        let node_name = name(&format!("{}.node.{}.{domain}", node.name, node.datacenter))?;
        let (target, ip) = match &instance.address {
            Some(address) => {
                let ip: IpAddr = address.parse().ok()?;
                let label = addr_label(ip);
                (
                    name(&format!("{label}.addr.{}.{domain}", node.datacenter))?,
                    ip,
                )
            }
            None => (
                node_name.clone(),
                node_address(node, wire::TYPE_SRV).parse().ok()?,
            ),
        };
        reply.answers.push(Rr {
            owner: None,
            ttl,
            data: RData::SRV(SRV::new(1, weight, instance.port, target.clone())),
        });
        let extra = Rr {
            owner: Some(target),
            ttl,
            data: ip_data(ip),
        };
        if !reply.additional.iter().any(|r| same(r, &extra)) {
            reply.additional.push(extra);
        }
        if agent.node_meta_txt {
            for txt in meta_txt(node, Some(&node_name), ttl) {
                if !reply.additional.iter().any(|r| same(r, &txt)) {
                    reply.additional.push(txt);
                }
            }
        }
    }
    Some(())
}

fn same(a: &Rr, b: &Rr) -> bool {
    a.owner == b.owner && a.ttl == b.ttl && a.data == b.data
}

/// QF `FetchNodes`: the node's address for A/AAAA (its meta TXT in
/// ADDITIONAL), its meta for TXT (the address in ADDITIONAL), both for ANY.
/// `None` for a node whose address is a host name.
pub(super) fn node(agent: &AgentDns, asked: Asked<'_>, node: &NodeInfo) -> Option<Reply> {
    let ttl = agent.node_ttl;
    let ip: IpAddr = node_address(node, asked.qtype).parse().ok()?;
    let address = || Rr {
        owner: None,
        ttl,
        data: ip_data(ip),
    };
    let mut reply = Reply::default();
    match asked.qtype {
        wire::TYPE_A | wire::TYPE_AAAA => {
            if fits(asked.qtype, ip) {
                reply.answers.push(address());
            }
            if agent.node_meta_txt {
                reply.additional = meta_txt(node, None, ttl);
            }
        }
        wire::TYPE_TXT => {
            reply.answers = meta_txt(node, None, ttl);
            reply.additional.push(address());
        }
        wire::TYPE_ANY => {
            reply.answers.push(address());
            reply.answers.extend(meta_txt(node, None, ttl));
        }
        _ => {}
    }
    or_nodata(agent, asked, reply)
}

/// DRF `buildAddressResults`: the address in the name, in ANSWER for its own
/// type (or ANY), else in ADDITIONAL with no SOA.
pub(super) fn addr(agent: &AgentDns, asked: Asked<'_>, ip: IpAddr) -> Reply {
    let record = Rr {
        owner: None,
        ttl: agent.node_ttl,
        data: ip_data(ip),
    };
    let own_type = if ip.is_ipv4() {
        wire::TYPE_A
    } else {
        wire::TYPE_AAAA
    };
    let mut reply = Reply::default();
    if asked.qtype == wire::TYPE_ANY || asked.qtype == own_type {
        reply.answers.push(record);
    } else {
        reply.additional.push(record);
    }
    reply
}

/// A pointer in the encoded answer to a name inside answer record `record`,
/// `offset` bytes into it: rewritten when the answer records are reordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fixup {
    pub(super) at: usize,
    pub(super) record: usize,
    pub(super) offset: usize,
}

/// A reply as a DNS message, and the pointers to patch when its answer
/// records move.
pub(super) struct Encoded {
    pub(super) bytes: Vec<u8>,
    pub(super) fixups: Vec<Fixup>,
}

/// Where a name written earlier is: at a fixed offset (the question, the
/// authority and additional sections, whose place no reordering changes),
/// or inside an answer record, which moves.
#[derive(Clone, Copy)]
enum Place {
    Fixed(usize),
    InAnswer { record: usize, offset: usize },
}

/// The largest offset a compression pointer can hold (RFC 1035 §4.1.4).
const MAX_POINTER: usize = 0x3fff;

/// Writes names compressed against the names before them, as Consul (and
/// any server) does, with one rule so that the answer records can be
/// reordered per query: nothing points into the answer section but through
/// a [`Fixup`], and nothing in the answer section points at anything but
/// the question.
struct Writer {
    out: Vec<u8>,
    /// Suffixes written so far (exact bytes, so case is kept) and where.
    names: Vec<(Vec<u8>, Place)>,
    fixups: Vec<Fixup>,
    /// Where each answer record starts.
    answer_starts: Vec<usize>,
}

/// The wire form of labels, root included.
fn wire_of(labels: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for label in labels {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

impl Writer {
    /// Notes the suffixes of the name whose labels start at `at`.
    fn remember(&mut self, labels: &[&[u8]], at: usize, place: impl Fn(usize) -> Place) {
        let mut pos = at;
        for i in 0..labels.len() {
            self.names.push((wire_of(&labels[i..]), place(pos)));
            pos += 1 + labels[i].len();
        }
    }

    /// Writes `name`, compressed against what may be pointed at.
    fn name(&mut self, name: &Name) {
        let labels: Vec<&[u8]> = name.iter().collect();
        let start = self.out.len();
        // An answer record moves within the answer section, which ends
        // before this name: any place it moves to is below `start`.
        let movable_ok = start <= MAX_POINTER;
        for i in 0..labels.len() {
            let suffix = wire_of(&labels[i..]);
            let Some(&(_, place)) = self.names.iter().find(|(known, _)| *known == suffix) else {
                continue;
            };
            let target = match place {
                Place::Fixed(at) => at,
                Place::InAnswer { record, offset } if movable_ok => {
                    self.answer_starts[record] + offset
                }
                Place::InAnswer { .. } => continue,
            };
            if target > MAX_POINTER {
                continue;
            }
            for label in &labels[..i] {
                self.out.push(label.len() as u8);
                self.out.extend_from_slice(label);
            }
            let at = self.out.len();
            if let Place::InAnswer { record, offset } = place {
                self.fixups.push(Fixup { at, record, offset });
            }
            self.out
                .extend_from_slice(&(0xc000 | target as u16).to_be_bytes());
            self.remember(&labels[..i], start, Place::Fixed);
            return;
        }
        self.out.extend_from_slice(&wire_of(&labels));
        self.remember(&labels, start, Place::Fixed);
    }
}

/// The reply as a DNS message (ID 0, AA), its question `asked`.
pub(super) fn encode(asked: Asked<'_>, reply: &Reply) -> Option<Encoded> {
    let count = |records: &[Rr]| u16::try_from(records.len()).ok();
    let mut w = Writer {
        out: Vec::with_capacity(512),
        names: Vec::new(),
        fixups: Vec::new(),
        answer_starts: Vec::new(),
    };
    w.out.extend_from_slice(&[0, 0, 0x84, reply.rcode, 0, 1]);
    for section in [&reply.answers, &reply.authority, &reply.additional] {
        w.out.extend_from_slice(&count(section)?.to_be_bytes());
    }
    let question: Vec<&[u8]> = labels_of(asked.lower);
    w.out.extend_from_slice(asked.lower);
    w.remember(&question, wire::HEADER_LEN, Place::Fixed);
    w.out.extend_from_slice(&asked.qtype.to_be_bytes());
    w.out.extend_from_slice(&wire::CLASS_IN.to_be_bytes());
    let answers = reply.answers.len();
    let records = reply
        .answers
        .iter()
        .chain(&reply.authority)
        .chain(&reply.additional);
    for (index, rr) in records.enumerate() {
        let start = w.out.len();
        let in_answer = index < answers;
        if in_answer {
            w.answer_starts.push(start);
        }
        match &rr.owner {
            // A pointer to the question's name, right after the header.
            None => w.out.extend_from_slice(&[0xc0, wire::HEADER_LEN as u8]),
            // Answer owners are the question's in every answer made here.
            Some(owner) if in_answer => emit(owner, &mut w.out)?,
            Some(owner) => w.name(owner),
        }
        w.out
            .extend_from_slice(&u16::from(rr.data.record_type()).to_be_bytes());
        w.out.extend_from_slice(&wire::CLASS_IN.to_be_bytes());
        w.out.extend_from_slice(&rr.ttl.to_be_bytes());
        let mut rdata = Vec::new();
        emit(&rr.data, &mut rdata)?;
        w.out
            .extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
        let rdata_at = w.out.len();
        w.out.extend_from_slice(&rdata);
        // An SRV target is never compressed (RFC 2782), but later owners may
        // point at it, as Consul's additional records do.
        if let (RData::SRV(srv), true) = (&rr.data, in_answer) {
            let labels: Vec<&[u8]> = srv.target.iter().collect();
            w.remember(&labels, rdata_at + 6, |at| Place::InAnswer {
                record: index,
                offset: at - start,
            });
        }
    }
    Some(Encoded {
        bytes: w.out,
        fixups: w.fixups,
    })
}

/// The labels of a wire-format name without compression.
fn labels_of(wire: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        if len == 0 {
            break;
        }
        out.push(&wire[at + 1..(at + 1 + usize::from(len)).min(wire.len())]);
        at += 1 + usize::from(len);
    }
    out
}

/// Appends `item` with every name written out in full, never compressed.
fn emit(item: &impl BinEncodable, out: &mut Vec<u8>) -> Option<()> {
    let mut buf = Vec::new();
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    item.emit(&mut encoder).ok()?;
    out.extend_from_slice(&buf);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RM `encodeKVasRFC1464` and RFC 1464 §2's escapes.
    #[test]
    fn rfc1464_escapes_as_consul_does() {
        assert_eq!(rfc1464("rack", "r1"), "rack=r1");
        assert_eq!(rfc1464("a=b", "c=d"), "a`=b=c=d");
        assert_eq!(rfc1464(" k ", "v`"), "` k` =v``");
        assert_eq!(rfc1464("rfc1035-x", "raw"), "raw");
        assert_eq!(
            rfc1464("consul-network-segment", ""),
            "consul-network-segment="
        );
    }

    /// D-static: `192.0.2.10` is `c000020a`; IPv6 is 32 hex digits.
    #[test]
    fn addr_labels() {
        assert_eq!(addr_label("192.0.2.10".parse().unwrap()), "c000020a");
        assert_eq!(
            addr_label("2001:db8:1:2:cafe::1337".parse().unwrap()),
            "20010db800010002cafe000000001337"
        );
    }
}
