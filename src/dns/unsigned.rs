//! A validated reply as a client without DO gets it: RFC 4035 §3.2.1, "the
//! name server MUST NOT include DNSSEC RR types in the response unless those
//! types were explicitly requested", though splitdns asked upstream with DO
//! to validate.

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::dns::wire;

/// `reply` without its DNSSEC records (RRSIG, NSEC, NSEC3, DS, DNSKEY), but
/// for the type asked; the same bytes when it has none. `None` when it
/// cannot be decoded or encoded again.
pub(crate) fn strip(reply: Vec<u8>, qtype: u16) -> Option<Vec<u8>> {
    let parsed = wire::Message::parse(&reply)?;
    let signed = parsed
        .records
        .iter()
        .any(|r| r.rtype != qtype && is_dnssec(RecordType::from(r.rtype)));
    if !signed {
        return Some(reply);
    }
    let mut msg = Message::from_vec(&reply).ok()?;
    let asked = RecordType::from(qtype);
    for section in [&mut msg.answers, &mut msg.authorities, &mut msg.additionals] {
        section.retain(|r| r.record_type() == asked || !is_dnssec(r.record_type()));
    }
    msg.to_vec().ok()
}

fn is_dnssec(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::RRSIG
            | RecordType::NSEC
            | RecordType::NSEC3
            | RecordType::DS
            | RecordType::DNSKEY
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC};
    use hickory_proto::op::{Message, MessageType, Query};
    use hickory_proto::rr::{Name, RData, Record, rdata::A};

    #[test]
    fn drops_proofs_and_signatures_but_not_what_was_asked() {
        let name = Name::from_ascii("a.example.").unwrap();
        let mut m = Message::query();
        m.metadata.message_type = MessageType::Response;
        m.add_query(Query::query(name.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(
            name.clone(),
            60,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        let nsec = NSEC::new(name.clone(), [RecordType::A]);
        m.add_authority(Record::from_rdata(
            name.clone(),
            60,
            RData::DNSSEC(DNSSECRData::NSEC(nsec)),
        ));
        let stripped = strip(m.to_vec().unwrap(), 1).unwrap();
        let back = Message::from_vec(&stripped).unwrap();
        assert_eq!(back.answers.len(), 1);
        assert!(back.authorities.is_empty());
        let kept = strip(m.to_vec().unwrap(), u16::from(RecordType::NSEC)).unwrap();
        assert_eq!(Message::from_vec(&kept).unwrap().authorities.len(), 1);
    }
}
