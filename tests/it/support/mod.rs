//! Shared test machinery: fake upstreams, a DNS client, fixtures and a splitdns harness.
//!
//! Everything binds 127.0.0.1 on ephemeral ports, so tests run in parallel without colliding.

// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

pub(crate) mod agent;
pub(crate) mod client;
pub(crate) mod clients;
pub(crate) mod compare;
pub(crate) mod consul;
pub(crate) mod daemon;
pub(crate) mod dnsmasq;
pub(crate) mod dockerd;
pub(crate) mod fixtures;
pub(crate) mod harness;
pub(crate) mod http;
pub(crate) mod logged;
pub(crate) mod netns;
pub(crate) mod prereq;
pub(crate) mod signed;
pub(crate) mod unbound;
pub(crate) mod upstream;
pub(crate) mod witness;

use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, UdpSocket};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

pub(crate) use client::{query, query_with_edns};
pub(crate) use harness::Splitdns;
pub(crate) use upstream::{FakeUpstream, Mode, Proto};

/// A fully qualified name; panics on a typo in a test.
pub(crate) fn name(text: &str) -> Name {
    let mut name = Name::from_ascii(text).unwrap_or_else(|e| panic!("bad name {text:?}: {e}"));
    name.set_fqdn(true);
    name
}

pub(crate) fn a(owner: &str, ttl: u32, ip: &str) -> Record {
    let ip: Ipv4Addr = ip.parse().unwrap();
    Record::from_rdata(name(owner), ttl, RData::A(A(ip)))
}

pub(crate) fn aaaa(owner: &str, ttl: u32, ip: &str) -> Record {
    let ip: Ipv6Addr = ip.parse().unwrap();
    Record::from_rdata(name(owner), ttl, RData::AAAA(AAAA(ip)))
}

pub(crate) fn cname(owner: &str, ttl: u32, target: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::CNAME(CNAME(name(target))))
}

pub(crate) fn ns(owner: &str, ttl: u32, target: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::NS(NS(name(target))))
}

pub(crate) fn ptr(owner: &str, ttl: u32, target: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::PTR(PTR(name(target))))
}

pub(crate) fn mx(owner: &str, ttl: u32, preference: u16, exchange: &str) -> Record {
    Record::from_rdata(
        name(owner),
        ttl,
        RData::MX(MX::new(preference, name(exchange))),
    )
}

pub(crate) fn txt(owner: &str, ttl: u32, strings: &[&str]) -> Record {
    let strings = strings.iter().map(|s| s.to_string()).collect();
    Record::from_rdata(name(owner), ttl, RData::TXT(TXT::new(strings)))
}

pub(crate) fn srv(owner: &str, ttl: u32, port: u16, target: &str) -> Record {
    Record::from_rdata(
        name(owner),
        ttl,
        RData::SRV(SRV::new(1, 1, port, name(target))),
    )
}

/// `owner ttl IN SOA mname rname serial 3600 600 86400 minimum`
pub(crate) fn soa(owner: &str, ttl: u32, mname: &str, rname: &str, minimum: u32) -> Record {
    let serial = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let data = SOA::new(name(mname), name(rname), serial, 3600, 600, 86400, minimum);
    Record::from_rdata(name(owner), ttl, RData::SOA(data))
}

/// The IPv4 addresses in the answer section, in order.
pub(crate) fn answer_ips(msg: &Message) -> Vec<Ipv4Addr> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// The IPv4 addresses of the A records in the additional section owned by `owner`.
pub(crate) fn additional_ips(msg: &Message, owner: &str) -> Vec<Ipv4Addr> {
    let owner = name(owner);
    msg.additionals
        .iter()
        .filter(|r| r.name == owner)
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// TTLs of the answer records of type `rtype`.
pub(crate) fn answer_ttls(msg: &Message, rtype: RecordType) -> Vec<u32> {
    msg.answers
        .iter()
        .filter(|r| r.record_type() == rtype)
        .map(|r| r.ttl)
        .collect()
}

/// Total bytes of TXT data in the answer section.
pub(crate) fn txt_bytes(msg: &Message) -> usize {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.txt_data.iter().map(|s| s.len()).sum::<usize>()),
            _ => None,
        })
        .sum()
}

/// Asserts the response code, printing the whole message when it differs.
#[track_caller]
pub(crate) fn assert_rcode(msg: &Message, rcode: ResponseCode) {
    assert_eq!(
        msg.metadata.response_code, rcode,
        "unexpected response code in:\n{msg}"
    );
}

/// A port free for both UDP and TCP on 127.0.0.1 right now. The program given it binds it a
/// moment later; a caller that starts one retries on another port if it was taken meanwhile.
pub(crate) fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
