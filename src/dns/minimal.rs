//! A positive reply cut to what its answer needs before it is validated:
//! the answer section, and in the authority section only the NSEC or NSEC3
//! records (with their signatures) that prove a wildcard answer (RFC 4035
//! §5.3.4). The NS records and glue an authoritative server adds are not
//! needed by the client, and every signed RRset left in the reply would cost
//! a signature check, each time, since AD vouches for the answer and
//! authority sections alike (RFC 4035 §3.2.3). Unbound's
//! `minimal-responses` sends the same.

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, Record, RecordType};

use crate::dns::wire;

/// `reply` without the records its answer does not need, when it is
/// positive; the same bytes otherwise, or when there is nothing to drop or
/// it cannot be decoded and encoded again.
pub(crate) fn minimal(reply: Vec<u8>) -> Vec<u8> {
    let Some(parsed) = wire::Message::parse(&reply) else {
        return reply;
    };
    let extra = parsed
        .records
        .iter()
        .any(|r| r.section != wire::Section::Answer && r.rtype != wire::TYPE_OPT);
    if parsed.rcode() != wire::RCODE_NOERROR || !extra || !crate::dns::answer::is_positive(&parsed)
    {
        return reply;
    }
    let Ok(mut msg) = Message::from_vec(&reply) else {
        return reply;
    };
    msg.authorities.retain(proves_the_answer);
    msg.additionals.clear();
    msg.to_vec().unwrap_or(reply)
}

/// An NSEC or NSEC3 record, or the signature over one.
fn proves_the_answer(record: &Record) -> bool {
    let denial = |rtype: RecordType| matches!(rtype, RecordType::NSEC | RecordType::NSEC3);
    match &record.data {
        RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::RRSIG(sig)) => {
            denial(sig.input().type_covered)
        }
        _ => denial(record.record_type()),
    }
}
