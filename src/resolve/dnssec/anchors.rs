//! The trust anchors validation starts from. Without configured anchors, the
//! root's KSKs hickory-proto ships. Configured anchors (a DS or a DNSKEY per
//! zone, as Unbound's `trust-anchor:` takes them) are primed as a validator
//! primes them (RFC 4033 §5, RFC 7958 §1): the zone's DNSKEY set is fetched,
//! a key that matches an anchor must sign it, and then every zone key of the
//! set is trusted, until the set's TTL runs out.
//!
//! hickory's validator holds its anchors from its start, so each set of
//! primed keys comes with the validator that trusts them: kept until they
//! are primed again, with its cache of what it proved.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hickory_net::dnssec::DnssecDnsHandle;
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKey, TrustAnchors, Verifier};
use hickory_proto::op::Message;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType, SerialNumber};
use hickory_proto::serialize::binary::BinDecodable;

use super::handle::RoutedHandle;
use crate::config::dnssec::{AnchorRecord, TrustAnchor};
use crate::dns::wire::NameBuf;
use crate::dns::zone::Zone;
use crate::observe::logging::Every;
use crate::observe::metrics::BogusReason;

/// How long a primed DNSKEY set is trusted at most and at least, whatever
/// its TTL: a key roll is seen within the hour.
const MAX_PRIMED: Duration = Duration::from_secs(3600);
const MIN_PRIMED: Duration = Duration::from_secs(60);
/// At most one warning about priming per 10 s: an anchor whose upstream is
/// down is tried again every second.
static LOG: Every = Every::seconds(10);

/// How many proofs hickory's validator keeps (its default is 1,048,576,
/// hundreds of MB on a cold workload). The ones worth keeping are a zone's
/// DNSKEY and DS sets, reused by all its names; an answer's own proof is
/// used once, as the answer is cached after it.
const PROOFS_KEPT: usize = 8192;

/// How soon an anchor that could not be primed is tried again: one whose
/// keys did not prove out, and one whose upstreams did not answer (RFC 9520
/// §3.2: resolution failures are kept at least 1 s).
const RETRY: Duration = Duration::from_secs(30);
const RETRY_UNANSWERED: Duration = Duration::from_secs(1);

/// The anchors of one config.
pub(super) struct Anchors {
    /// Configured anchors; empty: the root's built-in keys.
    configured: Vec<TrustAnchor>,
    /// The zones the anchors are for, longest first.
    zones: Vec<Zone>,
    primed: Mutex<Option<Primed>>,
}

/// The validator of the keys trusted until `until`; the anchor zones that
/// failed, and why (`None`: their upstreams did not answer).
#[derive(Clone)]
pub(super) struct Primed {
    pub(super) validator: DnssecDnsHandle<RoutedHandle>,
    pub(super) failed: Vec<(Zone, Option<BogusReason>)>,
    until: Instant,
}

impl Anchors {
    pub(super) fn new(configured: Vec<TrustAnchor>) -> Self {
        let mut zones: Vec<Zone> = configured.iter().map(|a| a.zone.clone()).collect();
        if zones.is_empty() {
            zones.push(Zone::root());
        }
        zones.sort_by_key(|z| std::cmp::Reverse(z.wire().len()));
        zones.dedup();
        Self {
            configured,
            zones,
            primed: Mutex::new(None),
        }
    }

    /// The anchor zone a lowercased wire name lies under, if any.
    pub(super) fn covering(&self, lower: &[u8]) -> Option<&Zone> {
        self.zones.iter().find(|z| z.contains(lower))
    }

    /// The validator of the keys trusted now, priming the configured
    /// anchors when they are not primed or their time has run out.
    pub(super) async fn validator(&self, handle: &RoutedHandle) -> Primed {
        let now = Instant::now();
        if let Some(primed) = self.primed.lock().expect("not poisoned").as_ref()
            && primed.until > now
        {
            return primed.clone();
        }
        let primed = if self.configured.is_empty() {
            // The root's keys are in hickory-proto: nothing to prime. The
            // validator is made again once a day all the same, so what it
            // holds of keys rolled since is let go.
            Primed {
                validator: DnssecDnsHandle::new(handle.clone()).validation_cache_size(PROOFS_KEPT),
                failed: Vec::new(),
                until: now + Duration::from_secs(86_400),
            }
        } else {
            self.prime(handle, now).await
        };
        *self.primed.lock().expect("not poisoned") = Some(primed.clone());
        primed
    }

    async fn prime(&self, handle: &RoutedHandle, now: Instant) -> Primed {
        let mut keys = TrustAnchors::empty();
        let mut failed = Vec::new();
        let mut until = now + MAX_PRIMED;
        for zone in &self.zones {
            let anchors: Vec<&AnchorRecord> = self
                .configured
                .iter()
                .filter(|a| &a.zone == zone)
                .map(|a| &a.record)
                .collect();
            match prime_zone(handle, zone, &anchors).await {
                Ok((zone_keys, ttl)) => {
                    let name = Name::from_wire_lower(zone);
                    for key in &zone_keys {
                        keys.insert_with_name(key.public_key(), LowerName::new(&name));
                    }
                    until = until.min(now + ttl.clamp(MIN_PRIMED, MAX_PRIMED));
                }
                Err(Some(reason)) => {
                    if let Some(also) = LOG.due() {
                        tracing::warn!(zone = %zone, ?reason, also_since_last_line = also, "could not prime a trust anchor: names under it are bogus");
                    }
                    failed.push((zone.clone(), Some(reason)));
                    until = until.min(now + RETRY);
                }
                Err(None) => {
                    if let Some(also) = LOG.due() {
                        tracing::warn!(zone = %zone, also_since_last_line = also, "could not prime a trust anchor: its DNSKEY question got no answer");
                    }
                    failed.push((zone.clone(), None));
                    until = until.min(now + RETRY_UNANSWERED);
                }
            }
        }
        Primed {
            validator: DnssecDnsHandle::with_trust_anchor(handle.clone(), Arc::new(keys))
                .validation_cache_size(PROOFS_KEPT),
            failed,
            until,
        }
    }
}

/// The zone keys of `zone`'s DNSKEY set, once a key that matches one of
/// `anchors` is found to sign the set; and the set's TTL.
async fn prime_zone(
    handle: &RoutedHandle,
    zone: &Zone,
    anchors: &[&AnchorRecord],
) -> Result<(Vec<DNSKEY>, Duration), Option<BogusReason>> {
    let lower = NameBuf::from_wire(zone.wire()).ok_or(Some(BogusReason::dnssec_bogus))?;
    let reply = handle
        .reply(lower, u16::from(RecordType::DNSKEY))
        .await
        .map_err(|_| None)?;
    let msg = Message::from_vec(&reply).map_err(|_| Some(BogusReason::dnskey_missing))?;
    let name = Name::from_wire_lower(zone);
    let set: Vec<&Record> = msg
        .answers
        .iter()
        .filter(|r| r.name == name && r.record_type() == RecordType::DNSKEY)
        .collect();
    let keys: Vec<&DNSKEY> = set.iter().filter_map(|r| dnskey(r)).collect();
    let trusted: Vec<&DNSKEY> = keys
        .iter()
        .copied()
        .filter(|k| anchors.iter().any(|a| matches(a, &name, k)))
        .collect();
    if trusted.is_empty() {
        return Err(Some(BogusReason::dnskey_missing));
    }
    let now = SerialNumber::new(unix_now());
    let mut reason = BogusReason::rrsigs_missing;
    for rrsig in msg.answers.iter().filter_map(|r| rrsig(r, &name)) {
        let input = rrsig.input();
        if input.sig_expiration < now {
            reason = BogusReason::signature_expired;
            continue;
        }
        if input.sig_inception > now {
            reason = BogusReason::signature_not_yet_valid;
            continue;
        }
        reason = BogusReason::dnssec_bogus;
        let signed = trusted.iter().any(|key| {
            key.calculate_key_tag().ok() == Some(input.key_tag)
                && key
                    .verify_rrsig(&name, DNSClass::IN, rrsig, set.iter().copied())
                    .is_ok()
        });
        if signed {
            let ttl = set.iter().map(|r| r.ttl).min().unwrap_or(0);
            let zone_keys = keys
                .into_iter()
                .filter(|k| k.zone_key() && !k.revoke())
                .cloned()
                .collect();
            return Ok((zone_keys, Duration::from_secs(ttl.into())));
        }
    }
    Err(Some(reason))
}

/// Whether `key`, a DNSKEY of `name`, is the one `anchor` names.
fn matches(anchor: &AnchorRecord, name: &Name, key: &DNSKEY) -> bool {
    match anchor {
        AnchorRecord::Ds {
            key_tag,
            algorithm,
            digest_type,
            digest,
        } => {
            let ds = DS::new(
                *key_tag,
                Algorithm::from_u8(*algorithm),
                DigestType::from(*digest_type),
                digest.clone(),
            );
            ds.covers(name, key).unwrap_or(false)
        }
        AnchorRecord::Dnskey {
            algorithm,
            public_key,
            ..
        } => {
            key.algorithm() == Algorithm::from_u8(*algorithm)
                && key.public_key().public_bytes() == public_key.as_slice()
        }
    }
}

fn dnskey(record: &Record) -> Option<&DNSKEY> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::DNSKEY(key)) => Some(key),
        _ => None,
    }
}

fn rrsig<'a>(record: &'a Record, name: &Name) -> Option<&'a RRSIG> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig))
            if &record.name == name && sig.input().type_covered == RecordType::DNSKEY =>
        {
            Some(sig)
        }
        _ => None,
    }
}

/// Seconds since 1970, as RRSIG times count them (RFC 4034 §3.1.5).
pub(super) fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// A zone's name as hickory spells it.
trait FromZone {
    fn from_wire_lower(zone: &Zone) -> Self;
}

impl FromZone for Name {
    fn from_wire_lower(zone: &Zone) -> Self {
        Self::from_bytes(zone.wire()).unwrap_or_else(|_| Self::root())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::dnssec::ROOT_DS;
    use base64::Engine as _;

    /// The root's KSK 20326 as hickory-proto ships it, and its DS (IANA's).
    fn root_key() -> DNSKEY {
        let key = TrustAnchors::default().get(0).unwrap().clone();
        DNSKEY::new(true, true, false, key)
    }

    #[test]
    fn a_ds_anchor_matches_the_key_it_digests() {
        let key = root_key();
        let anchor = TrustAnchor::parse(ROOT_DS[0]).unwrap();
        assert!(matches(&anchor.record, &Name::root(), &key));
        let other = TrustAnchor::parse(ROOT_DS[1]).unwrap();
        assert!(!matches(&other.record, &Name::root(), &key));
        let elsewhere = Name::from_ascii("example.").unwrap();
        assert!(!matches(&anchor.record, &elsewhere, &key));
    }

    #[test]
    fn a_dnskey_anchor_matches_the_same_key_only() {
        let key = root_key();
        let text =
            base64::engine::general_purpose::STANDARD.encode(key.public_key().public_bytes());
        let anchor = TrustAnchor::parse(&format!(". IN DNSKEY 257 3 8 {text}")).unwrap();
        assert!(matches(&anchor.record, &Name::root(), &key));
        let wrong_algorithm = TrustAnchor::parse(&format!(". IN DNSKEY 257 3 13 {text}")).unwrap();
        assert!(!matches(&wrong_algorithm.record, &Name::root(), &key));
    }
}
