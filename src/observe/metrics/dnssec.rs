//! DNSSEC validation: answers validated by what validation made of them, and
//! bogus answers by why.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::register::registered;

/// Why an answer is bogus: the Extended DNS Errors of RFC 8914 §4 that
/// name a validation failure.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(crate) enum BogusReason {
    /// EDE 6, DNSSEC Bogus: a signature does not verify, a chain is broken.
    dnssec_bogus,
    /// EDE 7, Signature Expired.
    signature_expired,
    /// EDE 8, Signature Not Yet Valid.
    signature_not_yet_valid,
    /// EDE 9, DNSKEY Missing: a DS names a key the zone does not have, or a
    /// trust anchor's zone gave no key that matches it.
    dnskey_missing,
    /// EDE 10, RRSIGs Missing: a signed zone sent records without signatures.
    rrsigs_missing,
    /// EDE 11, No Zone Key Bit Set: the key that signed is no zone key.
    no_zone_key_bit,
    /// EDE 12, NSEC Missing: a denial of existence without its proof.
    nsec_missing,
}

impl BogusReason {
    const ALL: [Self; 7] = [
        Self::dnssec_bogus,
        Self::signature_expired,
        Self::signature_not_yet_valid,
        Self::dnskey_missing,
        Self::rrsigs_missing,
        Self::no_zone_key_bit,
        Self::nsec_missing,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: BogusReason,
}

/// The validator's handles.
#[derive(Clone)]
pub(crate) struct DnssecMetrics {
    pub(crate) secure: Counter,
    pub(crate) insecure: Counter,
    pub(crate) bogus: Counter,
    pub(crate) indeterminate: Counter,
    reasons: Family<ReasonLabel, Counter>,
}

impl DnssecMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let answers: Family<StateLabel, Counter> = registered(
            registry,
            "dnssec_answers",
            "Upstream answers validated (once per answer fetched, not per cache hit), by result",
        );
        let state = |state| answers.get_or_create_owned(&StateLabel { state });
        let reasons: Family<ReasonLabel, Counter> = registered(
            registry,
            "dnssec_bogus",
            "Answers that failed validation and were answered SERVFAIL, by reason (RFC 8914 EDE)",
        );
        // Every reason from the start, at 0, so a rate over it has a series.
        for reason in BogusReason::ALL {
            reasons.get_or_create_owned(&ReasonLabel { reason });
        }
        Self {
            secure: state("secure"),
            insecure: state("insecure"),
            bogus: state("bogus"),
            indeterminate: state("indeterminate"),
            reasons,
        }
    }

    pub(crate) fn bogus(&self, reason: BogusReason) {
        self.bogus.inc();
        self.reasons.get_or_create(&ReasonLabel { reason }).inc();
    }
}
