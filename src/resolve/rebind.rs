//! DNS rebinding protection: a name from the internet must not point inside.
//!
//! A page on `evil.example` can make a browser on this host (or in a container
//! on its bridge) talk to `192.168.1.1` or `127.0.0.1:8500` by having its own
//! name resolve there. So, with `[server] rebind_protection = true`, answers
//! from the default upstreams lose their A and AAAA records with private
//! addresses before they are stored, as dnsmasq's `stop-dns-rebind` does. It
//! is off by default, as in dnsmasq and Unbound: behind a cloud VPC resolver,
//! internal names legitimately resolve to private addresses. Zones routed to their own servers (such as
//! `consul`) are trusted with private addresses, and so are the zones listed in
//! `rebind_allow`. The work is done once per upstream answer, never per hit.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::op::Message as HMessage;
use hickory_proto::rr::{RData, Record};

use crate::config::GuardConfig;
use crate::dns::answer;
use crate::dns::wire::{self, Message};
use crate::dns::zone::Zone;
use crate::observe::logging::Every;
use crate::resolve::router::{Action, Router};
use crate::resolve::upstream::Upstream;

/// At most one warning per 10 s; the others are counted in the next one.
static LOG: Every = Every::seconds(10);

/// The rebind policy of one configuration.
pub(crate) struct Rebind {
    on: bool,
    allow: Vec<Zone>,
}

impl Rebind {
    pub(crate) fn new(guard: &GuardConfig) -> Self {
        Self {
            on: guard.rebind_protection,
            allow: guard.rebind_allow.clone(),
        }
    }

    /// Whether answers for `lower`, fetched from `used`, are screened:
    /// protection on, `used` is the default upstreams, and no `rebind_allow`
    /// zone holds the name.
    pub(crate) fn guards(&self, router: &Router, used: &Arc<Upstream>, lower: &[u8]) -> bool {
        let Action::Forward(default) = &router.routes()[0].action else {
            return false;
        };
        self.on && Arc::ptr_eq(default, used) && !self.allow.iter().any(|zone| zone.contains(lower))
    }
}

/// `reply` without its A/AAAA records that hold private addresses; the same
/// bytes when it has none. `None` when such a reply cannot be re-encoded: it is
/// then not used at all.
pub(crate) fn screen<'a>(
    reply: Cow<'a, [u8]>,
    name: &impl std::fmt::Display,
) -> Option<Cow<'a, [u8]>> {
    let msg = Message::parse(&reply)?;
    // Only what will be stored matters: the glue of a plain A answer
    // (`ns A 127.0.0.1`) is dropped when it is stored anyway.
    let (_, qtype, _) = msg.question();
    let kept = answer::kept_records(&msg, answer::is_positive(&msg), qtype);
    let private = msg.records[..kept].iter().any(|r| {
        (r.rtype == wire::TYPE_A || r.rtype == wire::TYPE_AAAA)
            && address(&msg.buf[r.rdata.clone()]).is_some_and(is_private)
    });
    if !private {
        return Some(reply);
    }
    let mut decoded = HMessage::from_vec(&reply).ok()?;
    let mut keep = |record: &Record| {
        let address: IpAddr = match &record.data {
            RData::A(a) => a.0.into(),
            RData::AAAA(a) => a.0.into(),
            _ => return true,
        };
        if !is_private(address) {
            return true;
        }
        if let Some(also) = LOG.due() {
            tracing::warn!(%name, %address, also_since_last_line = also, "rebind protection: dropped a private address from an upstream answer");
        }
        false
    };
    decoded.answers.retain(&mut keep);
    decoded.authorities.retain(&mut keep);
    decoded.additionals.retain(&mut keep);
    // What is left is not the RRset the upstream validated (RFC 4035 §3.2.3).
    decoded.metadata.authentic_data = false;
    decoded.to_vec().ok().map(Cow::Owned)
}

fn address(rdata: &[u8]) -> Option<IpAddr> {
    match rdata.len() {
        4 => Some(Ipv4Addr::from(<[u8; 4]>::try_from(rdata).ok()?).into()),
        16 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(rdata).ok()?).into()),
        _ => None,
    }
}

/// Addresses a name on the internet has no business pointing at: this host,
/// its LANs, link-local and carrier-grade NAT space, in either family.
/// Documentation ranges (192.0.2.0/24, 2001:db8::/32) are not private.
pub(crate) fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => private_v4(v4),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || first & 0xfe00 == 0xfc00 // fc00::/7, unique local
                    || first & 0xffc0 == 0xfe80 // fe80::/10, link-local
            }
        },
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 0
        || a == 10
        || a == 127
        || (a == 100 && b & 0xc0 == 64) // 100.64.0.0/10, carrier-grade NAT
        || (a == 169 && b == 254)
        || (a == 172 && b & 0xf0 == 16)
        || (a == 192 && b == 168)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire;

    #[test]
    fn private_ranges_and_their_mapped_forms() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "100.127.255.255",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::1",
            "::",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip} is private");
        }
    }

    #[test]
    fn public_and_documentation_ranges_are_not_private() {
        for ip in [
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "172.32.0.1",
            "172.15.255.255",
            "100.128.0.1",
            "100.63.255.255",
            "8.8.8.8",
            "2001:db8::1",
            "2606:4700::1111",
            "::ffff:192.0.2.1",
            "fec0::1",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip} is public");
        }
    }

    /// RFC 4035 §3.2.3: AD says the answer's RRsets are authentic. Once a private
    /// address is taken out, the RRset is no longer the one the upstream validated.
    #[test]
    fn a_screened_reply_loses_the_upstreams_ad() {
        use hickory_proto::op::{Message as HMessage, MessageType, OpCode, Query};
        use hickory_proto::rr::rdata::A;
        use hickory_proto::rr::{Name, RData, Record, RecordType};
        let asked = Name::from_ascii("www.example.").unwrap();
        let mut m = HMessage::new(1, MessageType::Response, OpCode::Query);
        m.metadata.authentic_data = true;
        m.add_query(Query::query(asked.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(
            asked.clone(),
            60,
            RData::A(A::new(10, 0, 0, 1)),
        ));
        m.add_answer(Record::from_rdata(
            asked,
            60,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        let screened = screen(m.to_vec().unwrap().into(), &"www.example.").unwrap();
        let screened = HMessage::from_vec(&screened).unwrap();
        assert_eq!(screened.answers.len(), 1);
        assert!(!screened.metadata.authentic_data);
    }

    #[test]
    fn a_reply_without_private_addresses_is_kept_as_is() {
        let reply = wire::build_query(7, b"\x01a\x00", 1, 1, false, false);
        // A query parses as a message too: no records to strip, same bytes back.
        assert_eq!(
            screen(reply.as_slice().into(), &"a.").as_deref(),
            Some(&reply[..])
        );
    }
}
