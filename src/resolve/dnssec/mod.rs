//! DNSSEC validation (RFC 4033-4035), with hickory's validator
//! (`DnssecDnsHandle`) over splitdns's own routes and upstream client.
//!
//! Which answers are validated: with `[dnssec] validate`, those of routes
//! with `dnssec` set (the default upstreams, unless a route says otherwise),
//! for names under a trust anchor and under no negative trust anchor (RFC
//! 7646), asked without CD. Everything else is insecure by design: a private
//! zone (`consul`, a rev-server zone) has no DS chain, and must not turn into
//! SERVFAIL for lack of one.
//!
//! The files: [`anchors`] (the anchors, primed), [`handle`] (the questions
//! a chain needs, routed and sent with DO and CD), [`keys`] (their replies,
//! kept for their TTL), [`verdict`] (what the validator's output means).

mod anchors;
mod gaps;
mod handle;
mod keys;
mod verdict;

use std::sync::Arc;

use hickory_net::xfer::{DnsHandle, FirstAnswer};
use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_proto::op::{DnsRequestOptions, Message, Query};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinEncodable};

use self::anchors::Anchors;
use self::handle::RoutedHandle;
pub(crate) use self::verdict::Verdict;
use crate::config::DnssecConfig;
use crate::config::dnssec::TrustAnchor;
use crate::dns::question::Question;
use crate::dns::wire;
use crate::dns::zone::Zone;
use crate::observe::logging::Every;
use crate::observe::metrics::BogusReason;
use crate::resolve::router::{Route, Router};

/// At most one warning line about bogus answers per 10 s; the others are counted.
static LOG: Every = Every::seconds(10);

/// How long a bogus answer is kept: RFC 9520 §3.2 has resolution failures
/// cached for at least 1 s and at most 5 minutes; Unbound keeps bogus data
/// for 60 s (`val-bogus-ttl`). 30 s is the stale-answer TTL of RFC 8767 §4,
/// short enough that a fixed zone is believed again soon.
pub(crate) const BOGUS_TTL: u32 = 30;

/// The validator of one config and routing table, shared by every query of
/// their state: its anchors, the keys its chains fetched, and what hickory's
/// validator proved of them, so a zone's keys are checked once for all its
/// names.
pub(crate) struct Validator {
    anchors: Anchors,
    insecure: Vec<Zone>,
    check_unsigned: bool,
    handle: RoutedHandle,
}

impl Validator {
    /// `None` when `[dnssec] validate` is off. The chains' questions go
    /// through `router`, the state's own.
    pub(crate) fn new(config: &DnssecConfig, router: Arc<Router>) -> Option<Self> {
        config.validate.then(|| Self {
            anchors: Anchors::new(config.trust_anchors.clone()),
            insecure: config.insecure.clone(),
            check_unsigned: config.check_unsigned,
            handle: RoutedHandle::new(router),
        })
    }

    /// Whether the answer to `question` through `route` is validated. Only
    /// class IN is: DNSSEC's records and the trust anchors are IN's, and a
    /// class ANY question is answered with IN records hickory would reject as
    /// of another class.
    pub(crate) fn covers(&self, route: &Route, question: &Question) -> bool {
        let lower = question.lower.as_bytes();
        route.dnssec
            && question.qclass == wire::CLASS_IN
            && !self.insecure.iter().any(|z| z.contains(lower))
            && self.anchors.covering(lower).is_some()
    }

    /// Validates `reply`, the upstream's answer to `question` (asked with DO
    /// and CD), fetching what its chain needs through the routes. `None` when
    /// it cannot be read at all, or an upstream failed a question of its
    /// chain and it did not come out secure or insecure.
    pub(crate) async fn validate(&self, question: &Question, reply: Vec<u8>) -> Option<Verdict> {
        let lower = question.lower.as_bytes();
        if !self.check_unsigned && !signed(&reply) {
            // dnssec-check-unsigned=no: dnsmasq(8) assumes unsigned replies
            // valid and passes them on, without AD, unproven.
            return Some(Verdict::Insecure);
        }
        let primed = self.anchors.validator(&self.handle).await;
        let zone = self.anchors.covering(lower)?;
        if let Some((_, reason)) = primed.failed.iter().find(|(z, _)| z == zone) {
            // Unanswered: an upstream's failure, given as one (see below).
            return reason.map(Verdict::Bogus);
        }
        let name = Name::from_bytes(lower).ok()?;
        let mut query = Query::query(name, RecordType::from(question.qtype));
        query.set_query_class(DNSClass::from(question.qclass));
        let held = self.handle.hold(question, reply);
        let lookup = primed
            .validator
            .lookup(query, DnsRequestOptions::default())
            .first_answer();
        let (result, unanswered) = handle::watching(lookup).await;
        drop(held);
        match verdict::judge(result, self, anchors::unix_now()) {
            // An upstream failed on the way: no proof of anything, and
            // nothing to keep for 30 s. The client gets SERVFAIL, or a stale
            // answer (RFC 8767), as for any upstream failure.
            Ok(Verdict::Bogus(_)) | Err(_) if unanswered => {
                tracing::info!(name = %question.lower, "validation failed: an upstream did not answer a question of the chain");
                None
            }
            Ok(verdict) => Some(verdict),
            Err(error) => {
                tracing::debug!(name = %question.lower, %error, "validation could not finish");
                Some(Verdict::Bogus(BogusReason::dnssec_bogus))
            }
        }
    }

    /// Logs a bogus answer, naming the zone and why (at most one line per 10 s).
    pub(crate) fn warn_bogus(&self, question: &Question, reason: BogusReason) {
        if let Some(also) = LOG.due() {
            let zone = self
                .anchors
                .covering(question.lower.as_bytes())
                .map(ToString::to_string)
                .unwrap_or_default();
            tracing::warn!(
                name = %question.lower,
                qtype = question.qtype,
                anchor = %zone,
                ?reason,
                also_since_last_line = also,
                "DNSSEC validation failed: answered SERVFAIL"
            );
        }
    }
}

impl verdict::ZoneKeys for Validator {
    fn dnskeys(&self, zone: &Name) -> Option<Vec<DNSKEY>> {
        self.kept(zone, RecordType::DNSKEY, |data| match data {
            RData::DNSSEC(DNSSECRData::DNSKEY(key)) => Some(key),
            _ => None,
        })
    }

    fn ds_set(&self, zone: &Name) -> Option<Vec<DS>> {
        self.kept(zone, RecordType::DS, |data| match data {
            RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds),
            _ => None,
        })
    }
}

impl Validator {
    /// The records of `rtype` at `zone` in the key cache, as last fetched.
    fn kept<T>(
        &self,
        zone: &Name,
        rtype: RecordType,
        pick: fn(RData) -> Option<T>,
    ) -> Option<Vec<T>> {
        let lower = zone.to_lowercase().to_bytes().ok()?;
        let reply = self
            .handle
            .keys()
            .get(&lower, u16::from(rtype), std::time::Instant::now())?;
        let msg = Message::from_vec(&reply).ok()?;
        Some(
            msg.answers
                .into_iter()
                .filter_map(|r| pick(r.data))
                .collect(),
        )
    }
}

/// Whether a reply is signed, as dnsmasq's `dnssec-check-unsigned=no` sees
/// it: its answer carries an RRSIG, or, for a negative reply, its authority
/// section does.
fn signed(reply: &[u8]) -> bool {
    let Some(msg) = wire::Message::parse(reply) else {
        return false;
    };
    let answers = msg
        .records
        .iter()
        .any(|r| r.section == wire::Section::Answer);
    msg.records
        .iter()
        .any(|r| r.rtype == wire::TYPE_RRSIG && (!answers || r.section == wire::Section::Answer))
}

/// The RFC 8914 §4 info code of a bogus reason.
pub(crate) fn ede_code(reason: BogusReason) -> u8 {
    match reason {
        BogusReason::dnssec_bogus => 6,
        BogusReason::signature_expired => 7,
        BogusReason::signature_not_yet_valid => 8,
        BogusReason::dnskey_missing => 9,
        BogusReason::rrsigs_missing => 10,
        BogusReason::no_zone_key_bit => 11,
        BogusReason::nsec_missing => 12,
    }
}

/// What `check` prints of `[dnssec]`: the anchors (the configured ones, or
/// the built-in root KSKs as DS records), the negative trust anchors, and
/// which routes are validated.
pub(crate) fn summary(config: &DnssecConfig, router: &Router) -> String {
    if !config.validate {
        return "dnssec: not validated ([dnssec] validate = false)\n".to_string();
    }
    let mut out = String::from("dnssec: validated\n");
    let anchors: Vec<String> = if config.trust_anchors.is_empty() {
        ROOT_DS
            .iter()
            .map(|ds| format!("{ds} (built in)"))
            .collect()
    } else {
        config
            .trust_anchors
            .iter()
            .map(TrustAnchor::to_text)
            .collect()
    };
    for anchor in anchors {
        out.push_str(&format!("  trust anchor: {anchor}\n"));
    }
    for zone in &config.insecure {
        out.push_str(&format!("  insecure (negative trust anchor): {zone}\n"));
    }
    let (validated, not): (Vec<&Route>, Vec<&Route>) = router
        .routes()
        .iter()
        .partition(|r| r.dnssec && r.rewrite.is_none());
    let zones = |routes: Vec<&Route>| -> String {
        let names: Vec<String> = routes
            .iter()
            .flat_map(|r| r.zones.iter().map(ToString::to_string))
            .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    out.push_str(&format!("  validated routes: {}\n", zones(validated)));
    out.push_str(&format!(
        "  insecure routes (no AD, never SERVFAIL for a missing chain): {}\n",
        zones(not)
    ));
    if !config.check_unsigned {
        out.push_str("  unsigned answers taken as insecure unchecked (check_unsigned = false)\n");
    }
    out
}

/// The root's KSKs hickory-proto ships, as DS records (IANA's root-anchors.xml).
pub(crate) const ROOT_DS: [&str; 2] = [
    ". IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D",
    ". IN DS 38696 8 2 683D2D0ACB8C9B712A1948B27F741219298D0A450D612C483AF444A4C0FB2B16",
];

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::dnssec::{PublicKey, TrustAnchors};

    /// The DS text splitdns prints for the built-in anchor is that of the keys
    /// hickory-proto ships, not a copy that could drift from them.
    #[test]
    fn the_printed_root_anchors_are_the_shipped_keys() {
        let shipped = TrustAnchors::default();
        for (i, text) in ROOT_DS.iter().enumerate() {
            let anchor = TrustAnchor::parse(text).unwrap();
            let key = shipped.get(i).unwrap();
            let dnskey = DNSKEY::new(true, true, false, key.clone());
            let crate::config::dnssec::AnchorRecord::Ds { digest, .. } = &anchor.record else {
                panic!("a DS");
            };
            let computed = dnskey
                .to_digest(&Name::root(), hickory_proto::dnssec::DigestType::SHA256)
                .unwrap();
            assert_eq!(computed.as_ref(), digest.as_slice(), "{text}");
            assert_eq!(key.algorithm(), hickory_proto::dnssec::Algorithm::RSASHA256);
        }
    }
}
