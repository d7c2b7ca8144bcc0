//! Two places where hickory-net 0.26's validator departs from the RFCs, and
//! the narrow corrections splitdns makes on top of its verdict. Both work on
//! records hickory has already proven authentic (`Proof::Secure`); neither
//! checks a signature.
//!
//! - A wildcard answer proven by NSEC is failed: hickory looks for an NSEC
//!   that *covers* the wildcard's own name, where the zone holds one that
//!   *matches* it (hickory-dns#3812, merged as a failing test). RFC 4035
//!   §5.3.4 asks only that an NSEC prove no closer match: that it cover the
//!   next closer name, one label below the wildcard's parent.
//! - A denial resting on an NSEC3 opt-out span is called secure, where RFC
//!   5155 §9.2 allows it to prove no more than an insecure delegation.

use hickory_proto::dnssec::Proof;
use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC, NSEC3, RRSIG};
use hickory_proto::op::{DnsResponse, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Whether `response`, which hickory failed, is a wildcard expansion proven
/// by NSEC: every answer record at the query name and secure, signed by a
/// wildcard RRSIG, and a secure NSEC of the same zone covers the next closer
/// name.
pub(super) fn nsec_wildcard_proven(response: &DnsResponse) -> bool {
    let Some(query) = response.queries.first() else {
        return false;
    };
    let qname = query.name();
    if response.response_code != ResponseCode::NoError || response.answers.is_empty() {
        return false;
    }
    let data: Vec<&Record> = response
        .answers
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
        .collect();
    let answered = data
        .iter()
        .all(|r| &r.name == qname && r.proof == Proof::Secure)
        && data
            .iter()
            .any(|r| r.record_type() == query.query_type() || r.record_type() == RecordType::CNAME);
    if !answered {
        return false;
    }
    let Some(sig) = response.answers.iter().find_map(|r| secure_rrsig(r, qname)) else {
        return false;
    };
    let labels = sig.input().num_labels;
    if labels >= qname.num_labels() {
        return false; // not a wildcard expansion
    }
    let next_closer = qname.trim_to(usize::from(labels) + 1);
    let signer = &sig.input().signer_name;
    response.authorities.iter().any(|r| {
        secure_nsec(r).is_some_and(|nsec| {
            signed_by(response, &r.name, RecordType::NSEC, signer)
                && covers(&r.name, nsec.next_domain_name(), &next_closer)
        })
    })
}

/// Whether a denial hickory called secure rests on an opt-out NSEC3: one
/// that does not match the query name, so covers a name of the proof.
pub(super) fn rests_on_opt_out(response: &DnsResponse) -> bool {
    let Some(query) = response.queries.first() else {
        return false;
    };
    let negative = response.response_code == ResponseCode::NXDomain
        || response
            .answers
            .iter()
            .all(|r| r.record_type() == RecordType::RRSIG);
    if !negative {
        return false;
    }
    response.authorities.iter().any(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::NSEC3(nsec3)) if nsec3.opt_out() => {
            !matches_name(&r.name, nsec3, query.name())
        }
        _ => false,
    })
}

/// Whether the NSEC3 owned by `owner` is the one of `name`: its first label
/// is the base32hex hash of `name` (RFC 5155 §3, §5).
fn matches_name(owner: &Name, nsec3: &NSEC3, name: &Name) -> bool {
    let Ok(hash) = nsec3
        .hash_algorithm()
        .hash(nsec3.salt(), name, nsec3.iterations())
    else {
        return false;
    };
    let label = owner.iter().next().unwrap_or_default();
    label.eq_ignore_ascii_case(base32hex(hash.as_ref()).as_bytes())
}

/// RFC 4648 §7's base32 with the extended hex alphabet, without padding.
fn base32hex(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// `name` lies strictly between an NSEC's owner and its next name, in
/// canonical order (RFC 4034 §6.1), the last NSEC of a zone wrapping round.
fn covers(owner: &Name, next: &Name, name: &Name) -> bool {
    name > owner && (name < next || (next <= owner && next.zone_of(name)))
}

fn secure_rrsig<'a>(record: &'a Record, owner: &Name) -> Option<&'a RRSIG> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig))
            if &record.name == owner && record.proof == Proof::Secure =>
        {
            Some(sig)
        }
        _ => None,
    }
}

fn secure_nsec(record: &Record) -> Option<&NSEC> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::NSEC(nsec)) if record.proof == Proof::Secure => Some(nsec),
        _ => None,
    }
}

/// Whether a secure RRSIG by `signer` covers the `rtype` set at `owner`.
fn signed_by(response: &DnsResponse, owner: &Name, rtype: RecordType, signer: &Name) -> bool {
    response.authorities.iter().any(|r| {
        secure_rrsig(r, owner).is_some_and(|sig| {
            sig.input().type_covered == rtype && &sig.input().signer_name == signer
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5155 Appendix A: H(example) = 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom
    /// (salt aabbccdd, 12 iterations).
    #[test]
    fn base32hex_spells_hashes_as_nsec3_owners_do() {
        use hickory_proto::dnssec::Nsec3HashAlgorithm;
        let salt = [0xaa, 0xbb, 0xcc, 0xdd];
        let name = Name::from_ascii("example.").unwrap();
        let hash = Nsec3HashAlgorithm::SHA1.hash(&salt, &name, 12).unwrap();
        assert_eq!(base32hex(hash.as_ref()), "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom");
    }

    #[test]
    fn coverage_is_canonical_and_wraps_at_the_apex() {
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let owner = n("*.wild.example.");
        assert!(covers(&owner, &n("www.example."), &n("x.wild.example.")));
        assert!(!covers(&owner, &n("www.example."), &owner));
        assert!(covers(&n("z.example."), &n("example."), &n("zz.example.")));
    }
}
