//! Rewrite routes: `prometheus.infra.local` is asked as
//! `prometheus.service.consul`, and the reply is given back under the name the
//! client asked.
//!
//! Every name under the target zone is mapped back, wherever it stands: the
//! question, owner names, and the names records point at (CNAME, SRV and MX
//! targets). So with `rewrite = "consul"` for `infra.local`, the SRV answer for
//! `web.service.infra.local` names its target `node-a.node.dc1.infra.local`,
//! and the target's address in the additional section is owned by that same
//! name, once (RFC 2782: the additionals are the targets' addresses). Mapping
//! targets back, as CoreDNS's `rewrite ... answer auto` does, rather than
//! leaving everything under Consul's names, keeps a client that then asks for
//! a target's address in its own zone: that question comes back through this
//! rewrite route, to the servers that gave the SRV answer, and (with SRV
//! completion) is a cache hit; a client that can only reach `infra.local`
//! through splitdns still resolves it. Names outside the target zone (SRV
//! targets such as `node-a.node.dc1.consul.` under `rewrite = "service.consul"`)
//! are real names the client can look up as they are. A negative answer's SOA is moved to the rewritten
//! zone's apex, so a cache keeps the negative for the zone the client asked
//! about (RFC 2308 §5: the SOA owner names the zone the negative is for).

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::BinDecodable;

use crate::dns::wire::NameBuf;
use crate::dns::zone::Zone;

/// One rewrite: names under `zone` are asked under `target`.
#[derive(Debug, Clone, Copy)]
pub struct Rewrite<'a> {
    pub zone: &'a Zone,
    pub target: &'a Zone,
}

impl Rewrite<'_> {
    /// The name to ask for `lower` (a lowercased name under `zone`); `None`
    /// when the rewritten name would exceed 255 bytes.
    pub fn forward(&self, lower: &[u8]) -> Option<NameBuf> {
        let prefix = lower.len().checked_sub(self.zone.wire().len())?;
        let mut name = [0u8; 255];
        let target = self.target.wire();
        name.get_mut(..prefix)?.copy_from_slice(&lower[..prefix]);
        name.get_mut(prefix..prefix + target.len())?
            .copy_from_slice(target);
        NameBuf::from_wire(&name[..prefix + target.len()])
    }

    /// The upstream's `reply` to the rewritten question, as a reply to
    /// `client_lower`. `None` when the reply cannot be decoded or re-encoded.
    pub fn back(&self, reply: &[u8], client_lower: &[u8]) -> Option<Vec<u8>> {
        let mut msg = Message::from_vec(reply).ok()?;
        let zone = name_of(self.zone.wire())?;
        let target = name_of(self.target.wire())?;
        let client = name_of(client_lower)?;
        for query in &mut msg.queries {
            query.set_name(client.clone());
        }
        let negative = msg.answers.is_empty();
        let map = |name: &Name| map_name(name, &target, &zone);
        for section in [&mut msg.answers, &mut msg.authorities, &mut msg.additionals] {
            // Signatures cannot cover a rewritten name: drop them rather than
            // hand a validator records that fail.
            section.retain(|r| !is_dnssec(r.record_type()));
            for record in section.iter_mut() {
                if let Some(owner) = map(&record.name) {
                    record.name = owner;
                }
                let target = match &mut record.data {
                    RData::CNAME(cname) => &mut cname.0,
                    RData::SRV(srv) => &mut srv.target,
                    RData::MX(mx) => &mut mx.exchange,
                    _ => continue,
                };
                if let Some(mapped) = map(target) {
                    *target = mapped;
                }
            }
        }
        if negative {
            for soa in msg.authorities.iter_mut() {
                if soa.record_type() == RecordType::SOA {
                    soa.name = zone.clone();
                }
            }
        }
        // The renamed records are not the ones the upstream validated (RFC 4035 §3.2.3).
        msg.metadata.authentic_data = false;
        msg.to_vec().ok()
    }
}

/// `name` with the `from` suffix replaced by `to`, if it lies under `from`.
fn map_name(name: &Name, from: &Name, to: &Name) -> Option<Name> {
    if !from.zone_of(name) {
        return None;
    }
    let keep = usize::from(name.num_labels() - from.num_labels());
    let prefix = Name::from_labels(name.iter().take(keep)).ok()?;
    prefix.append_domain(to).ok()
}

fn name_of(wire: &[u8]) -> Option<Name> {
    Name::from_bytes(wire).ok()
}

fn is_dnssec(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3 | RecordType::DS
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, CNAME, MX, SOA, SRV};
    use hickory_proto::serialize::binary::BinEncodable;

    fn wire(text: &str) -> Vec<u8> {
        Name::from_ascii(text).unwrap().to_bytes().unwrap()
    }

    fn rewrite<R>(f: impl FnOnce(Rewrite<'_>) -> R) -> R {
        let zone = Zone::parse("infra.local").unwrap();
        let target = Zone::parse("service.consul").unwrap();
        f(Rewrite {
            zone: &zone,
            target: &target,
        })
    }

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    #[test]
    fn forward_swaps_the_suffix() {
        rewrite(|rw| {
            let asked = rw.forward(&wire("prometheus.infra.local.")).unwrap();
            assert_eq!(asked.as_bytes(), wire("prometheus.service.consul."));
            let apex = rw.forward(&wire("infra.local.")).unwrap();
            assert_eq!(apex.as_bytes(), wire("service.consul."));
            let long = format!("{}.infra.local.", "a.".repeat(120) + "b");
            assert!(rw.forward(&wire(&long)).is_none());
        });
    }

    #[test]
    fn back_maps_owners_and_cname_targets_but_not_foreign_names() {
        let asked = name("web.service.consul.");
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(asked.clone(), RecordType::SRV));
        m.add_answer(Record::from_rdata(
            asked.clone(),
            0,
            RData::SRV(SRV::new(1, 1, 80, name("node-a.node.dc1.consul."))),
        ));
        m.add_answer(Record::from_rdata(
            name("alias.service.consul."),
            0,
            RData::CNAME(CNAME(name("web.service.consul."))),
        ));
        m.add_additional(Record::from_rdata(
            name("node-a.node.dc1.consul."),
            0,
            RData::A(A::new(10, 0, 0, 1)),
        ));
        let bytes = rewrite(|rw| rw.back(&m.to_vec().unwrap(), &wire("web.infra.local."))).unwrap();
        let back = Message::from_vec(&bytes).unwrap();
        assert_eq!(back.queries[0].name(), &name("web.infra.local."));
        assert_eq!(back.answers[0].name, name("web.infra.local."));
        let RData::SRV(srv) = &back.answers[0].data else {
            panic!()
        };
        assert_eq!(srv.target, name("node-a.node.dc1.consul."));
        let RData::CNAME(cname) = &back.answers[1].data else {
            panic!()
        };
        assert_eq!(cname.0, name("web.infra.local."));
        assert_eq!(back.additionals[0].name, name("node-a.node.dc1.consul."));
    }

    /// RFC 4035 §3.2.3: AD says the answer's RRsets are authentic. A rewritten answer's
    /// names are not the ones the upstream validated, so its AD does not carry over.
    #[test]
    fn back_clears_the_upstreams_ad() {
        let asked = name("web.service.consul.");
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.authentic_data = true;
        m.add_query(Query::query(asked.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(asked, 0, RData::A(A::new(192, 0, 2, 1))));
        let bytes = rewrite(|rw| rw.back(&m.to_vec().unwrap(), &wire("web.infra.local."))).unwrap();
        assert!(!Message::from_vec(&bytes).unwrap().metadata.authentic_data);
    }

    #[test]
    fn whole_zone_rewrite_maps_srv_and_mx_targets_with_their_additionals() {
        let asked = name("web.service.consul.");
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(asked.clone(), RecordType::SRV));
        m.add_answer(Record::from_rdata(
            asked,
            0,
            RData::SRV(SRV::new(1, 1, 80, name("node-a.node.dc1.consul."))),
        ));
        m.add_answer(Record::from_rdata(
            name("mail.service.consul."),
            0,
            RData::MX(MX::new(10, name("node-b.node.dc1.consul."))),
        ));
        m.add_additional(Record::from_rdata(
            name("node-a.node.dc1.consul."),
            0,
            RData::A(A::new(10, 0, 0, 1)),
        ));
        let zone = Zone::parse("infra.local").unwrap();
        let target = Zone::parse("consul").unwrap();
        let rw = Rewrite {
            zone: &zone,
            target: &target,
        };
        let bytes = rw
            .back(&m.to_vec().unwrap(), &wire("web.service.infra.local."))
            .unwrap();
        let back = Message::from_vec(&bytes).unwrap();
        let RData::SRV(srv) = &back.answers[0].data else {
            panic!()
        };
        assert_eq!(srv.target, name("node-a.node.dc1.infra.local."));
        let RData::MX(mx) = &back.answers[1].data else {
            panic!()
        };
        assert_eq!(mx.exchange, name("node-b.node.dc1.infra.local."));
        assert_eq!(back.additionals[0].name, srv.target);
    }

    #[test]
    fn negative_soa_moves_to_the_zone_apex() {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.response_code = ResponseCode::NXDomain;
        m.add_query(Query::query(name("nope.service.consul."), RecordType::A));
        let soa = SOA::new(
            name("ns.consul."),
            name("hostmaster.consul."),
            1,
            2,
            3,
            4,
            0,
        );
        m.add_authority(Record::from_rdata(name("consul."), 0, RData::SOA(soa)));
        let bytes =
            rewrite(|rw| rw.back(&m.to_vec().unwrap(), &wire("nope.infra.local."))).unwrap();
        let back = Message::from_vec(&bytes).unwrap();
        assert_eq!(back.authorities[0].name, name("infra.local."));
    }
}
