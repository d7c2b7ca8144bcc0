//! Answers from local rules (`address=`, `local=`, `server=/x/`), built here and
//! marked authoritative (AA=1): splitdns owns these names, so they are never
//! forwarded, and a type it has no data for gets NODATA rather than a trip
//! upstream (dnsmasq forwards those, which loops and stalls).

use std::net::IpAddr;

use crate::wire::{self, Query};

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
/// The TTL of local answers, as dnsmasq's default local-ttl: clients ask again.
const LOCAL_TTL: u32 = 0;

/// NXDOMAIN for a name in a local zone.
pub fn nxdomain(query: &Query, out: &mut Vec<u8>) {
    start(query, wire::RCODE_NXDOMAIN, out);
    finish(query, 0, out);
}

/// The zone's addresses that fit the question's type; NODATA when none do.
pub fn addresses(query: &Query, ips: &[IpAddr], out: &mut Vec<u8>) {
    start(query, wire::RCODE_NOERROR, out);
    let mut count = 0u16;
    for ip in ips {
        let (rtype, rdata): (u16, &[u8]) = match ip {
            IpAddr::V4(v4) => (TYPE_A, &v4.octets()[..]),
            IpAddr::V6(v6) => (TYPE_AAAA, &v6.octets()[..]),
        };
        if query.qtype != rtype && query.qtype != wire::TYPE_ANY {
            continue;
        }
        // Owner: a pointer to the question name at offset 12 (RFC 1035 §4.1.4).
        out.extend_from_slice(&[0xc0, 0x0c]);
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&LOCAL_TTL.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
        count += 1;
    }
    finish(query, count, out);
}

/// RFC 8482 §4.2: an ANY query gets one synthesised HINFO record, CPU
/// "RFC8482" and an empty OS, instead of everything upstream knows about the
/// name. ANY is never forwarded, so splitdns cannot be used to amplify a flood.
pub fn rfc8482(query: &Query, out: &mut Vec<u8>) {
    const TYPE_HINFO: u16 = 13;
    /// Long, so that resolvers behind splitdns keep it (RFC 8482 §6).
    const HINFO_TTL: u32 = 3600;
    const RDATA: &[u8] = b"\x07RFC8482\x00";
    start(query, wire::RCODE_NOERROR, out);
    out[2] &= !0x04; // Not authoritative: the name may live anywhere.
    out.extend_from_slice(&[0xc0, 0x0c]);
    out.extend_from_slice(&TYPE_HINFO.to_be_bytes());
    out.extend_from_slice(&query.qclass.to_be_bytes());
    out.extend_from_slice(&HINFO_TTL.to_be_bytes());
    out.extend_from_slice(&(RDATA.len() as u16).to_be_bytes());
    out.extend_from_slice(RDATA);
    finish(query, 1, out);
}

fn start(query: &Query, rcode: u8, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&query.id.to_be_bytes());
    let [flags, _] = wire::stored_flags(true, false, rcode);
    out.push(flags | (query.flags[0] & 0x01));
    out.push(wire::stored_flags(true, false, rcode)[1] | (query.flags[1] & 0x10));
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(query.name.as_bytes());
    out.extend_from_slice(&query.qtype.to_be_bytes());
    out.extend_from_slice(&query.qclass.to_be_bytes());
}

fn finish(query: &Query, answers: u16, out: &mut Vec<u8>) {
    out[6..8].copy_from_slice(&answers.to_be_bytes());
    if query.edns.is_some() {
        wire::push_opt(out, 0, query.dnssec_ok());
        wire::add_to_arcount(out, 1);
    }
}
