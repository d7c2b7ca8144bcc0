//! What hickory's validator made of a reply, as one of RFC 4033 §5's four
//! states, and for a bogus one, the likeliest reason among RFC 8914's.
//!
//! hickory marks each record with its `Proof`, or fails a denial of
//! existence as a whole; it keeps why a chain failed to itself. The reason
//! given here is read back from the reply's own signatures and the zone's
//! keys, for the operator and the EDE: it never changes the verdict.

use hickory_net::{DnsError, NetError};
use hickory_proto::dnssec::Proof;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::op::DnsResponse;
use hickory_proto::rr::{Name, RData, Record, RecordType, SerialNumber};

use super::gaps;
use crate::observe::metrics::BogusReason;

/// The zone keys and DS set splitdns last fetched for a zone, to tell why
/// a signature failed.
pub(super) trait ZoneKeys {
    fn dnskeys(&self, zone: &Name) -> Option<Vec<DNSKEY>>;
    fn ds_set(&self, zone: &Name) -> Option<Vec<DS>>;
}

/// What validation made of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every record of the answer (or of its denial) chains to an anchor.
    Secure,
    /// Provably unsigned: an insecure delegation, no anchor above it, a
    /// negative trust anchor, an NSEC3 opt-out span (RFC 5155 §9.2), or an
    /// algorithm splitdns cannot check (RFC 4035 §5.2).
    Insecure,
    /// hickory could not decide.
    Indeterminate,
    /// Should be signed and is not, or is signed wrongly.
    Bogus(BogusReason),
}

/// The verdict on a validated reply; `Err` when validation could not run
/// (an upstream failed while the chain was fetched).
pub(super) fn judge(
    result: Result<DnsResponse, NetError>,
    keys: &dyn ZoneKeys,
    now: u32,
) -> Result<Verdict, NetError> {
    match result {
        Ok(response) => Ok(match of_records(&response, keys, now) {
            Verdict::Secure if gaps::rests_on_opt_out(&response) => Verdict::Insecure,
            verdict => verdict,
        }),
        Err(NetError::Dns(DnsError::Nsec {
            response, proof, ..
        })) => Ok(match proof {
            Proof::Insecure => Verdict::Insecure,
            Proof::Indeterminate => Verdict::Indeterminate,
            Proof::Bogus if gaps::nsec_wildcard_proven(&response) => Verdict::Secure,
            Proof::Secure | Proof::Bogus => Verdict::Bogus(of_denial(&response, now)),
        }),
        Err(other) => Err(other),
    }
}

/// The answer's records decide, or for a negative answer the authority
/// section's: one bogus record makes the whole bogus, one unsigned record
/// (a CNAME into an unsigned zone) makes it insecure.
fn of_records(response: &DnsResponse, keys: &dyn ZoneKeys, now: u32) -> Verdict {
    let section = if response.answers.is_empty() {
        &response.authorities
    } else {
        &response.answers
    };
    let records: Vec<&Record> = section
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
        .collect();
    if let Some(bogus) = records.iter().find(|r| r.proof.is_bogus()) {
        return Verdict::Bogus(why_bogus(response, bogus, keys, now));
    }
    if records.iter().any(|r| r.proof.is_indeterminate()) {
        return Verdict::Indeterminate;
    }
    if !records.is_empty() && records.iter().all(|r| r.proof.is_secure()) {
        Verdict::Secure
    } else {
        Verdict::Insecure
    }
}

/// Why `record`'s set failed: no signature, only signatures out of their
/// validity period, a signer whose key is gone or is no zone key, or else a
/// signature that does not verify.
fn why_bogus(
    response: &DnsResponse,
    record: &Record,
    keys: &dyn ZoneKeys,
    now: u32,
) -> BogusReason {
    let sigs: Vec<&RRSIG> = response
        .all_sections()
        .filter(|r| r.name == record.name)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig))
                if sig.input().type_covered == record.record_type() =>
            {
                Some(sig)
            }
            _ => None,
        })
        .collect();
    if sigs.is_empty() {
        return BogusReason::rrsigs_missing;
    }
    if let Some(reason) = out_of_time(&sigs, now) {
        return reason;
    }
    let signer = &sigs[0].input().signer_name;
    match keys.dnskeys(signer) {
        // RFC 4035 §5.2: the zone's keys must include one its DS names.
        Some(zone_keys) if !chained(keys, signer, &zone_keys) => BogusReason::dnskey_missing,
        Some(keys) => {
            let tags: Vec<(u16, &DNSKEY)> = keys
                .iter()
                .filter_map(|k| Some((k.calculate_key_tag().ok()?, k)))
                .collect();
            let named = |sig: &&RRSIG| tags.iter().find(|(tag, _)| *tag == sig.input().key_tag);
            match sigs.iter().find_map(named) {
                None => BogusReason::dnskey_missing,
                Some((_, key)) if !key.zone_key() => BogusReason::no_zone_key_bit,
                Some(_) => BogusReason::dnssec_bogus,
            }
        }
        None => BogusReason::dnskey_missing,
    }
}

/// Whether a DS of `zone` names one of its keys; true when no DS set is
/// known (a trust anchor's zone, or one not fetched).
fn chained(keys: &dyn ZoneKeys, zone: &Name, zone_keys: &[DNSKEY]) -> bool {
    match keys.ds_set(zone) {
        Some(ds_set) if !ds_set.is_empty() => ds_set.iter().any(|ds| {
            zone_keys
                .iter()
                .any(|k| ds.covers(zone, k).unwrap_or(false))
        }),
        _ => true,
    }
}

/// Why a denial of existence failed: no NSEC or NSEC3 at all, signatures
/// out of their time, or proofs that prove nothing.
fn of_denial(response: &DnsResponse, now: u32) -> BogusReason {
    let proofs = response
        .authorities
        .iter()
        .any(|r| matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3));
    if !proofs {
        return BogusReason::nsec_missing;
    }
    let sigs: Vec<&RRSIG> = response
        .authorities
        .iter()
        .filter_map(|r| match &r.data {
            RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig),
            _ => None,
        })
        .collect();
    if sigs.is_empty() {
        return BogusReason::rrsigs_missing;
    }
    out_of_time(&sigs, now).unwrap_or(BogusReason::dnssec_bogus)
}

/// Expired or not yet valid, when no signature is within its period.
fn out_of_time(sigs: &[&RRSIG], now: u32) -> Option<BogusReason> {
    let now = SerialNumber::new(now);
    let expired = |s: &&&RRSIG| s.input().sig_expiration < now;
    let early = |s: &&&RRSIG| s.input().sig_inception > now;
    if sigs.iter().all(|s| expired(&s) || early(&s)) {
        return Some(if sigs.iter().any(|s| expired(&s)) {
            BogusReason::signature_expired
        } else {
            BogusReason::signature_not_yet_valid
        });
    }
    None
}
