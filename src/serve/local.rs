//! Answers splitdns makes itself: local rules (`address=`, `local=`,
//! `server=/x/`), local data (hosts files, static records) and names kept from
//! the upstreams. Local answers are marked authoritative (AA=1): splitdns owns
//! these names, so they are never forwarded, and a type it has no data for gets
//! NODATA rather than a trip upstream (dnsmasq forwards those, which loops and
//! stalls).
//!
//! NODATA is NOERROR with no records of the type and, in the authority
//! section, the SOA of the zone the answer comes from (RFC 2308 §2.2, §3).
//! NXDOMAIN carries the SOA of its zone too (RFC 2308 §3), so resolvers behind
//! splitdns may cache either (RFC 2308 §5: not without it): see [`Soa`].
//! NXDOMAIN is only for a name with nothing at or below it (RFC 8020 §2); the
//! handler decides which. The SOA's owner exists, as the zone's apex: asked
//! for its SOA (or ANY) it answers with it, and NODATA for other types.
//!
//! Owner names equal to the question, or a zone above it, are written as a
//! pointer into it (RFC 1035 §4.1.4), so the client's letter case comes back
//! as it asked.
//!
//! Every answer here ends through [`Query::fit_and_finish`], as answers from the
//! cache do (errors are a header, a question and an OPT, which always fit): one
//! larger than the client's limit (512 bytes over
//! UDP without EDNS, RFC 1035 §4.2.1; the EDNS size, RFC 6891 §6.2.5) is cut
//! back to the question with TC=1.

use std::net::IpAddr;

use crate::dns::wire::{self, Query};
use crate::host::local_data::{LocalData, Rr};

/// The question name, at offset 12.
const QUESTION_POINTER: [u8; 2] = [0xc0, 0x0c];
/// CNAME links followed inside local data before giving up (a loop, or absurd).
const MAX_CHAIN: usize = 8;

/// The SOA a local negative answer carries: owned by the zone the name is
/// answered in, `zone` bytes from the start of the name (0: the name itself,
/// the zone's apex; the name's length less one: the root), with
/// TTL and MINIMUM both `ttl` (`[local] ttl`), so a resolver caches the
/// negative answer as long as it would the positive ones (RFC 2308 §5: the
/// lesser of the two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Soa {
    pub zone: usize,
    pub ttl: u32,
}

/// The SOA's fixed fields: MNAME `localhost.` (no primary server stands
/// behind a synthesised zone), then RNAME `nobody.invalid.`, serial 1 and
/// the refresh, retry and expire that RFC 6303 §3 gives its locally served
/// zones.
const SOA_NAMES: &[u8] = b"\x09localhost\x00\x06nobody\x07invalid\x00";
const SOA_TIMERS: [u32; 4] = [1, 3600, 1200, 604_800];

/// What a name without records of its own gets in a zone splitdns answers
/// itself (see [`negative`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Negative {
    /// Nothing exists at or below the name (RFC 8020 §2). The SOA is that of
    /// the zone that would hold the name, never one owned by the name (which
    /// would make it a zone's apex, and so a name that exists).
    NxDomain(Soa),
    /// The name exists without records of the asked type: a zone's apex, an
    /// empty non-terminal, or a name kept home above local data.
    NoData(Soa),
}

/// Where the names of a local answer lie among the zones splitdns answers
/// itself, as [`data`] asks it of each name of a CNAME chain.
pub(crate) trait Zones {
    /// The SOA of the zone that holds `lower`, a name with local data.
    fn soa(&self, lower: &[u8]) -> Soa;
    /// What `lower`, a CNAME's target without local data, gets; `None` when no
    /// zone splitdns answers holds it, and the client follows the CNAME.
    fn missing(&self, lower: &[u8]) -> Option<Negative>;
}

/// NXDOMAIN or NODATA for the question, as `negative` says; at the apex,
/// the SOA itself for SOA or ANY.
pub(crate) fn negative(query: &Query, negative: Negative, limit: usize, out: &mut Vec<u8>) {
    let (rcode, soa) = match negative {
        Negative::NxDomain(soa) => (wire::RCODE_NXDOMAIN, soa),
        Negative::NoData(soa) => (wire::RCODE_NOERROR, soa),
    };
    start(query, rcode, true, out);
    let answers = negative_records(
        out,
        &QUESTION_POINTER,
        query.lower.as_bytes(),
        query.qtype,
        negative,
    );
    debug_assert!(soa.zone > 0 || rcode == wire::RCODE_NOERROR);
    finish(query, answers, limit, out);
}

/// NOERROR with no records, not authoritative: the name was not asked about
/// (`filter_aaaa`), so splitdns knows nothing of it.
pub(crate) fn filtered(query: &Query, limit: usize, out: &mut Vec<u8>) {
    start(query, wire::RCODE_NOERROR, false, out);
    finish(query, 0, limit, out);
}

/// The zone's addresses that fit the question's type; NODATA with `soa` when
/// none do. `soa.ttl` is `[local] ttl`, the addresses' TTL too.
pub(crate) fn addresses(query: &Query, ips: &[IpAddr], soa: Soa, limit: usize, out: &mut Vec<u8>) {
    let ttl = soa.ttl;
    start(query, wire::RCODE_NOERROR, true, out);
    let mut count = 0u16;
    for ip in ips {
        let (rtype, rdata): (u16, &[u8]) = match ip {
            IpAddr::V4(v4) => (wire::TYPE_A, &v4.octets()[..]),
            IpAddr::V6(v6) => (wire::TYPE_AAAA, &v6.octets()[..]),
        };
        if query.qtype != rtype && query.qtype != wire::TYPE_ANY {
            continue;
        }
        out.extend_from_slice(&QUESTION_POINTER);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
        count += 1;
    }
    if count == 0 {
        count = negative_records(
            out,
            &QUESTION_POINTER,
            query.lower.as_bytes(),
            query.qtype,
            Negative::NoData(soa),
        );
    }
    finish(query, count, limit, out);
}

/// RFC 8482 §4.2: an ANY query gets one synthesised HINFO record, CPU
/// "RFC8482" and an empty OS, instead of everything upstream knows about the
/// name. ANY is never forwarded, so splitdns cannot be used to amplify a flood.
/// The HINFO is of class IN, whatever the question's (ANY included): the
/// record is the one RFC 8482 §4.2 has a server synthesise, and a record of
/// class ANY (255) exists in no zone.
pub(crate) fn rfc8482(query: &Query, limit: usize, out: &mut Vec<u8>) {
    /// Long, so that resolvers behind splitdns keep it (RFC 8482 §6).
    const HINFO_TTL: u32 = 3600;
    const RDATA: &[u8] = b"\x07RFC8482\x00";
    // Not authoritative: the name may live anywhere.
    start(query, wire::RCODE_NOERROR, false, out);
    out.extend_from_slice(&QUESTION_POINTER);
    out.extend_from_slice(&wire::TYPE_HINFO.to_be_bytes());
    out.extend_from_slice(&wire::CLASS_IN.to_be_bytes());
    out.extend_from_slice(&HINFO_TTL.to_be_bytes());
    out.extend_from_slice(&(RDATA.len() as u16).to_be_bytes());
    out.extend_from_slice(RDATA);
    finish(query, 1, limit, out);
}

/// The answer for a local name with `records`: those of the asked type; else
/// its CNAME, followed through local data; else NODATA, with the SOA `zones`
/// gives for the name that lacks the type (the question, or the last name of
/// the CNAME chain: RFC 2308 §2.2), or that SOA as the answer when the name
/// is its zone's apex and SOA was asked. A CNAME whose target has no local
/// data ends the chain with what `zones` says of the target: RFC 6604 §2, the
/// RCODE is the last name's, so NXDOMAIN for one that does not exist in a
/// zone splitdns answers. SRV and MX answers carry the local addresses of
/// their targets as additional records. Too large for `limit`: TC=1, so the
/// client asks again over TCP.
pub(crate) fn data(
    query: &Query,
    local: &LocalData,
    records: &[Rr],
    zones: &dyn Zones,
    limit: usize,
    out: &mut Vec<u8>,
) {
    start(query, wire::RCODE_NOERROR, true, out);
    let qtype = query.qtype;
    let mut answers = 0u16;
    let mut owner: &[u8] = &QUESTION_POINTER;
    let mut name = query.lower.as_bytes();
    let mut at = records;
    // What the name the chain stopped at gets, having no records of the type.
    let mut negative = None;
    for _ in 0..MAX_CHAIN {
        let direct = at
            .iter()
            .filter(|r| r.rtype == qtype || qtype == wire::TYPE_ANY);
        let mut wrote = false;
        for rr in direct {
            push(out, owner, rr);
            answers += 1;
            wrote = true;
        }
        if wrote {
            break;
        }
        let cname = at.iter().find(|r| r.rtype == wire::TYPE_CNAME);
        let Some(cname) = cname.filter(|_| qtype != wire::TYPE_CNAME) else {
            negative = Some(Negative::NoData(zones.soa(name)));
            break;
        };
        push(out, owner, cname);
        answers += 1;
        let target = cname.target.as_deref().unwrap_or_default();
        (owner, name) = (target, target);
        match local.lookup(target) {
            Some(next) => at = next,
            None => {
                negative = zones.missing(target);
                break;
            }
        }
    }
    if let Some(negative) = negative {
        answers += negative_records(out, owner, name, qtype, negative);
        if let Negative::NxDomain(_) = negative {
            // RFC 6604 §2: the RCODE of the last name of the chain.
            out[3] = (out[3] & 0xf0) | wire::RCODE_NXDOMAIN;
        }
    }
    let mut additionals = 0u16;
    if matches!(qtype, wire::TYPE_SRV | wire::TYPE_MX) {
        // The targets of the records answered (none with NODATA).
        let answered = at.iter().filter(|r| r.rtype == qtype);
        for target in answered.filter_map(|r| r.target.as_deref()) {
            for rr in local.lookup(target).unwrap_or_default() {
                if matches!(rr.rtype, wire::TYPE_A | wire::TYPE_AAAA) {
                    push(out, target, rr);
                    additionals += 1;
                }
            }
        }
    }
    out[10..12].copy_from_slice(&additionals.to_be_bytes());
    finish(query, answers, limit, out);
}

fn push(out: &mut Vec<u8>, owner: &[u8], rr: &Rr) {
    out.extend_from_slice(owner);
    out.extend_from_slice(&rr.rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&rr.ttl.to_be_bytes());
    out.extend_from_slice(&(rr.rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rr.rdata);
}

/// The records of `negative` for `name` (written in `out` as `owner`) and
/// `qtype`, of which it has no records: the SOA in the answer section when
/// the name owns it (the zone's apex) and SOA or ANY was asked; else the SOA
/// in the authority section (RFC 2308 §3). The answer records written: 1 or 0.
fn negative_records(
    out: &mut Vec<u8>,
    owner: &[u8],
    name: &[u8],
    qtype: u16,
    negative: Negative,
) -> u16 {
    let (Negative::NxDomain(soa) | Negative::NoData(soa)) = negative;
    push_soa_rr(out, owner, name, soa);
    let asked = matches!(qtype, wire::TYPE_SOA | wire::TYPE_ANY);
    if soa.zone == 0 && asked && matches!(negative, Negative::NoData(_)) {
        return 1;
    }
    out[8..10].copy_from_slice(&1u16.to_be_bytes());
    0
}

/// Appends the SOA `soa` describes to `out`, after the answer records; the
/// caller counts it in its section. `name` is the lowercased name the SOA's
/// zone is counted in, and `owner` how that name is written in `out` (a
/// pointer, or the name itself): a zone that is the name is written as
/// `owner`, a zone above the question name as a pointer into the question,
/// the root as itself.
fn push_soa_rr(out: &mut Vec<u8>, owner: &[u8], name: &[u8], soa: Soa) {
    let zone = name.get(soa.zone..).unwrap_or(b"\x00");
    if soa.zone == 0 {
        out.extend_from_slice(owner);
    } else if owner == QUESTION_POINTER && zone.len() > 1 {
        let at = (wire::HEADER_LEN + soa.zone) as u16;
        out.extend_from_slice(&(0xc000 | at).to_be_bytes());
    } else {
        out.extend_from_slice(zone);
    }
    out.extend_from_slice(&wire::TYPE_SOA.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&soa.ttl.to_be_bytes());
    let rdlength = SOA_NAMES.len() + 4 * (SOA_TIMERS.len() + 1);
    out.extend_from_slice(&(rdlength as u16).to_be_bytes());
    out.extend_from_slice(SOA_NAMES);
    for timer in SOA_TIMERS {
        out.extend_from_slice(&timer.to_be_bytes());
    }
    out.extend_from_slice(&soa.ttl.to_be_bytes());
}

fn start(query: &Query, rcode: u8, authoritative: bool, out: &mut Vec<u8>) {
    query.write_head(wire::stored_flags(authoritative, false, rcode), out);
}

/// Counts the answer records, then fits the response to the client's
/// `limit` and adds its OPT record.
fn finish(query: &Query, answers: u16, limit: usize, out: &mut Vec<u8>) {
    out[6..8].copy_from_slice(&answers.to_be_bytes());
    let question_end = wire::HEADER_LEN + query.name.as_bytes().len() + 4;
    query.fit_and_finish(out, question_end, limit);
}
