//! [`Answer`]: a response kept encoded, ready to be patched for any client.
//!
//! An upstream reply is normalised once (ID 0, question lowercased, OPT removed,
//! AA cleared, TTLs clamped, sections a client does not need dropped) into one
//! allocation. Serving it to a client, whether from the cache, to the queries
//! that waited on the same miss, or straight after the fetch, is then a copy and
//! a few patches: the client's ID, flags and question case, TTLs counted down by
//! age, an OPT when the client sent one, and truncation to the client's size.

use std::time::Instant;

use crate::dns::clock;
use crate::dns::thin::ThinBytes;
use crate::dns::wire::{self, Message, Query, Records, Section};

/// TTL bounds for one route, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtlPolicy {
    pub min: u32,
    pub max: u32,
    pub max_negative: u32,
}

/// An encoded response and its bookkeeping in one allocation, so a full cache
/// costs little more than its bytes: `created (u32 s) | lifetime (u32 s) |
/// last used (u32 s, for eviction) | key flags (u8, DO/CD) | security (u8:
/// [`Security`] in the low 3 bits, an Extended DNS Error info code above) |
/// message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    data: ThinBytes,
}

const META: usize = 14;
const LAST_USED: usize = 8;
const KEY_FLAGS: usize = 12;
const SECURITY: usize = 13;
/// A bit of the key flags byte that is not a key flag: a prefetch was started.
const REFRESHING: u8 = 0x80;

/// What DNSSEC validation made of an answer (RFC 4033 §5), stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Not validated: validation is off, the route is not validated, or the
    /// client set CD.
    Unchecked = 0,
    Secure = 1,
    Insecure = 2,
    Bogus = 3,
    Indeterminate = 4,
}

/// Why an upstream reply cannot become an [`Answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Structure,
    Opt,
}

/// Seconds since the first time anything asked, as a u32: enough for 136 years
/// of uptime, and half the size of an `Instant` in every cache entry.
pub(crate) fn seconds(now: Instant) -> u32 {
    clock::since_start(now).as_secs() as u32
}

impl Answer {
    /// Normalises a validated upstream reply to `lower`. `policy` clamps its TTLs;
    /// the lifetime is the smallest answer TTL, or for NXDOMAIN/NODATA the SOA's
    /// negative TTL min(TTL, MINIMUM) (RFC 2308 §5). Replies that are not
    /// NOERROR/NXDOMAIN get lifetime 0.
    pub fn from_reply(
        reply: &[u8],
        lower: &[u8],
        policy: TtlPolicy,
        now: Instant,
    ) -> Result<Self, Malformed> {
        let msg = Message::parse(reply).ok_or(Malformed::Structure)?;
        match msg.records.iter().position(|r| r.rtype == wire::TYPE_OPT) {
            None => Ok(Self::normalise(&msg, lower, policy, now)),
            Some(i) if i + 1 == msg.records.len() => {
                // The OPT is last: nothing can point into it, so cut it off
                // (normalise writes the counts of what it keeps).
                Ok(Self::normalise(&msg.without_last(), lower, policy, now))
            }
            Some(_) => {
                // Names after it may be compressed across it: let hickory re-encode.
                let mut decoded =
                    hickory_proto::op::Message::from_vec(reply).map_err(|_| Malformed::Opt)?;
                decoded.edns = None;
                let bytes = decoded.to_vec().map_err(|_| Malformed::Opt)?;
                let msg = Message::parse(&bytes).ok_or(Malformed::Structure)?;
                Ok(Self::normalise(&msg, lower, policy, now))
            }
        }
    }

    fn normalise(msg: &Message<'_>, lower: &[u8], policy: TtlPolicy, now: Instant) -> Self {
        let rcode = msg.rcode();
        let has_answers = msg.records.iter().any(|r| r.section == Section::Answer);
        let positive = is_positive(msg);
        let negative =
            rcode == wire::RCODE_NXDOMAIN || (rcode == wire::RCODE_NOERROR && !has_answers);
        let (_, qtype, _) = msg.question();
        let keep = kept_records(msg, positive, qtype);

        let end = msg.records.get(keep).map_or(msg.buf.len(), |r| r.start);
        let mut data = ThinBytes::zeroed(META + end);
        let created = seconds(now).to_le_bytes();
        data[0..4].copy_from_slice(&created);
        data[8..12].copy_from_slice(&created);
        data[META..].copy_from_slice(&msg.buf[..end]);
        let out = &mut data[META..];
        out[..2].fill(0);
        out[2..4].copy_from_slice(&wire::stored_flags(
            false,
            wire::authentic_data(msg.buf),
            rcode,
        ));
        out[wire::HEADER_LEN..wire::HEADER_LEN + lower.len()].copy_from_slice(lower);
        let mut counts = [0u16; 3];
        for rec in &msg.records[..keep] {
            counts[rec.section as usize] += 1;
        }
        for (i, count) in counts.iter().enumerate() {
            out[6 + 2 * i..8 + 2 * i].copy_from_slice(&count.to_be_bytes());
        }

        let clamp = |ttl: u32, cap: u32| ttl.min(cap.max(policy.min)).max(policy.min);
        let mut answer_ttl = u32::MAX;
        let mut negative_ttl = None;
        for rec in &msg.records[..keep] {
            let ttl = rec.ttl(msg.buf);
            let served = match rec.soa_minimum(msg.buf) {
                Some(minimum) if negative && rec.section == Section::Authority => {
                    let neg = clamp(ttl.min(minimum), policy.max_negative);
                    negative_ttl = Some(negative_ttl.map_or(neg, |n: u32| n.min(neg)));
                    neg
                }
                _ => clamp(ttl, policy.max),
            };
            if rec.section == Section::Answer {
                answer_ttl = answer_ttl.min(served);
            }
            out[rec.ttl_at..rec.ttl_at + 4].copy_from_slice(&served.to_be_bytes());
        }
        let lifetime = match (positive, negative) {
            (true, _) => answer_ttl,
            (false, true) => negative_ttl.unwrap_or(0),
            (false, false) => 0,
        };
        data[4..8].copy_from_slice(&lifetime.to_le_bytes());
        Self { data }
    }

    /// The SERVFAIL a bogus answer is replaced with (RFC 4035 §5.5), carrying
    /// the Extended DNS Error `ede` (RFC 8914), kept for `lifetime` seconds
    /// (RFC 9520 §3: resolution failures are cached, briefly).
    pub fn bogus(question: &[u8], ede: u8, lifetime: u32, now: Instant) -> Self {
        let created = seconds(now).to_le_bytes();
        let mut data = Vec::with_capacity(META + wire::HEADER_LEN + question.len());
        data.extend_from_slice(&created);
        data.extend_from_slice(&lifetime.to_le_bytes());
        data.extend_from_slice(&created);
        data.extend_from_slice(&[0, Security::Bogus as u8 | ede << 3]);
        data.extend_from_slice(&[0, 0]);
        data.extend_from_slice(&wire::stored_flags(false, false, wire::RCODE_SERVFAIL));
        data.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        data.extend_from_slice(question);
        Self { data: data.into() }
    }

    /// What validation made of it.
    pub fn security(&self) -> Security {
        match self.data[SECURITY] & 0x07 {
            1 => Security::Secure,
            2 => Security::Insecure,
            3 => Security::Bogus,
            4 => Security::Indeterminate,
            _ => Security::Unchecked,
        }
    }

    /// Records what validation made of it.
    pub fn set_security(&mut self, security: Security) {
        self.data[SECURITY] = (self.data[SECURITY] & !0x07) | security as u8;
    }

    /// The Extended DNS Error info code its responses carry, if any.
    pub fn ede(&self) -> Option<u8> {
        Some(self.data[SECURITY] >> 3).filter(|&code| code != 0)
    }

    /// Seconds this answer may be served from the cache; 0 means never.
    pub fn lifetime(&self) -> u32 {
        u32::from_le_bytes(self.data[4..8].try_into().expect("4 bytes"))
    }

    /// When the cache last served it, in [`seconds`].
    pub fn last_used(&self) -> u32 {
        u32::from_le_bytes(
            self.data[LAST_USED..LAST_USED + 4]
                .try_into()
                .expect("4 bytes"),
        )
    }

    pub fn touch(&mut self, now: Instant) {
        self.data[LAST_USED..LAST_USED + 4].copy_from_slice(&seconds(now).to_le_bytes());
    }

    /// The flags byte of the cache key this answer is stored under (DO, CD).
    pub fn key_flags(&self) -> u8 {
        self.data[KEY_FLAGS] & !REFRESHING
    }

    /// Sets the key flags; clears the refresh mark, as a stored answer is new.
    pub fn set_key_flags(&mut self, flags: u8) {
        self.data[KEY_FLAGS] = flags;
    }

    /// Marks a stored answer as being refreshed; false if it already was, so
    /// one prefetch is started per entry.
    pub fn claim_refresh(&mut self) -> bool {
        let claimed = self.data[KEY_FLAGS] & REFRESHING == 0;
        self.data[KEY_FLAGS] |= REFRESHING;
        claimed
    }

    fn created(&self) -> u32 {
        u32::from_le_bytes(self.data[..4].try_into().expect("4 bytes"))
    }

    pub fn rcode(&self) -> u8 {
        self.bytes()[3] & 0x0f
    }

    /// The normalised message (ID 0, lowercased question, no OPT).
    pub fn bytes(&self) -> &[u8] {
        &self.data[META..]
    }

    /// The question as it is stored: lowercased name, type, class.
    pub fn question(&self) -> &[u8] {
        let bytes = self.bytes();
        &bytes[wire::HEADER_LEN..wire::question_end(bytes).unwrap_or(wire::HEADER_LEN)]
    }

    /// Whether the answer is still fresh at `now`.
    pub fn is_fresh(&self, now: Instant) -> bool {
        self.age(now) < self.lifetime()
    }

    /// When it stops being fresh, in [`seconds`].
    pub fn expires(&self) -> u32 {
        self.created().saturating_add(self.lifetime())
    }

    /// Whether `now` falls in the last 10% of the lifetime, or its last second
    /// for lifetimes under 10 s: when a prefetch keeps a hot name from missing.
    pub fn is_ending(&self, now: Instant) -> bool {
        let left = self.lifetime().saturating_sub(self.age(now));
        left <= (self.lifetime() / 10).max(1)
    }

    /// This answer served past its expiry (RFC 8767 §4): every TTL set to
    /// `ttl`, as if made at `now`, with lifetime 0 so it is never stored again.
    pub fn to_stale(&self, now: Instant, ttl: u32) -> Self {
        let mut data = self.data.to_vec();
        data[..4].copy_from_slice(&seconds(now).to_le_bytes());
        data[4..8].copy_from_slice(&0u32.to_le_bytes());
        let message = &mut data[META..];
        let question_end = wire::question_end(message).unwrap_or(message.len());
        let ttl_at: Vec<usize> = Records::new(message, question_end)
            .map(|r| r.ttl_at)
            .collect();
        for at in ttl_at {
            message[at..at + 4].copy_from_slice(&ttl.to_be_bytes());
        }
        Self { data: data.into() }
    }

    fn age(&self, now: Instant) -> u32 {
        seconds(now).saturating_sub(self.created())
    }

    /// Starts the response for `query` in `out`: this message with the
    /// client's ID, flags and question as it wrote it, TTLs as stored.
    /// Returns where the question ends.
    pub(crate) fn start_response(&self, query: &Query, out: &mut Vec<u8>) -> usize {
        out.clear();
        out.extend_from_slice(self.bytes());
        wire::patch_header(out, query);
        let name = query.name.as_bytes();
        out[wire::HEADER_LEN..wire::HEADER_LEN + name.len()].copy_from_slice(name);
        wire::HEADER_LEN + name.len() + 4
    }

    /// Writes the response for `query` into `out`: the client's ID, flags and
    /// question, TTLs counted down by age, an OPT if the client sent one, and TC=1
    /// with no records when it is larger than `limit` bytes.
    pub fn write_response(&self, query: &Query, now: Instant, limit: usize, out: &mut Vec<u8>) {
        let question_end = self.start_response(query, out);
        let age = self.age(now);
        if age > 0 {
            for rec in Records::new(&self.data[META..], question_end) {
                let ttl = u32::from_be_bytes(
                    out[rec.ttl_at..rec.ttl_at + 4].try_into().expect("4 bytes"),
                );
                out[rec.ttl_at..rec.ttl_at + 4]
                    .copy_from_slice(&ttl.saturating_sub(age).to_be_bytes());
            }
        }
        query.fit_and_finish(out, question_end, limit);
        if let Some(code) = self.ede()
            && query.edns.is_some()
        {
            wire::push_ede(out, code.into());
        }
    }
}

/// NOERROR with at least one answer record.
pub(crate) fn is_positive(msg: &Message<'_>) -> bool {
    msg.rcode() == wire::RCODE_NOERROR && msg.records.iter().any(|r| r.section == Section::Answer)
}

/// How many leading records to keep. A positive answer keeps its answer section
/// only, as Unbound's minimal-responses does, except where the additional
/// records are the point (SRV targets, MX and NS hosts) or DNSSEC proofs may be
/// in the authority section (DO set): the client needs nothing else, and the
/// cache holds less. Negative answers keep the SOA that gives their TTL.
pub(crate) fn kept_records(msg: &Message<'_>, positive: bool, qtype: u16) -> usize {
    let all = msg.records.len();
    let dnssec = msg.records.iter().any(|r| r.rtype == wire::TYPE_RRSIG);
    if dnssec
        || matches!(
            qtype,
            wire::TYPE_SRV | wire::TYPE_MX | wire::TYPE_NS | wire::TYPE_ANY
        )
    {
        return all;
    }
    let last = if positive {
        Section::Answer
    } else {
        Section::Authority
    };
    msg.records
        .iter()
        .position(|r| r.section > last)
        .unwrap_or(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{
        Message as HMessage, MessageType, OpCode, Query as HQuery, ResponseCode,
    };
    use hickory_proto::rr::rdata::{A, NS, SOA};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use std::time::Duration;

    const POLICY: TtlPolicy = TtlPolicy {
        min: 0,
        max: 86_400,
        max_negative: 3_600,
    };

    fn reply(rcode: ResponseCode, answers: &[(u32, [u8; 4])], soa: Option<(u32, u32)>) -> Vec<u8> {
        let name = Name::from_ascii("WeB.example.").unwrap();
        let mut m = HMessage::new(77, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.authoritative = true;
        m.add_query(HQuery::query(name.clone(), RecordType::A));
        for (ttl, ip) in answers {
            m.add_answer(Record::from_rdata(
                name.clone(),
                *ttl,
                RData::A(A::from(std::net::Ipv4Addr::from(*ip))),
            ));
        }
        let zone = Name::from_ascii("example.").unwrap();
        let ns = Name::from_ascii("ns.example.").unwrap();
        if let Some((ttl, minimum)) = soa {
            let soa = SOA::new(
                ns.clone(),
                Name::from_ascii("h.example.").unwrap(),
                1,
                2,
                3,
                4,
                minimum,
            );
            m.add_authority(Record::from_rdata(zone.clone(), ttl, RData::SOA(soa)));
        } else {
            m.add_authority(Record::from_rdata(zone, 3600, RData::NS(NS(ns.clone()))));
            m.add_additional(Record::from_rdata(
                ns,
                3600,
                RData::A(A::new(192, 0, 2, 53)),
            ));
        }
        let mut edns = hickory_proto::op::Edns::new();
        edns.set_max_payload(1232);
        m.set_edns(edns);
        m.to_vec().unwrap()
    }

    fn client_query(edns: bool) -> Query {
        let mut q = vec![0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
        q.extend_from_slice(b"\x03WEB\x07example\x00\x00\x01\x00\x01");
        if edns {
            q.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
        }
        Query::parse(&q).unwrap()
    }

    const LOWER: &[u8] = b"\x03web\x07example\x00";

    /// A miss's reply is read with one allocation: the answer's own bytes,
    /// made at their final length and written in place. Its records are
    /// walked without a list on the heap, OPT last (RFC 6891 §6.1.1 puts it
    /// in the additional section, where servers write it last) included.
    #[test]
    fn a_reply_becomes_an_answer_in_one_allocation() {
        let now = Instant::now();
        let positive = reply(
            ResponseCode::NoError,
            &[(300, [1, 2, 3, 4]), (60, [1, 2, 3, 5])],
            None,
        );
        let negative = reply(ResponseCode::NXDomain, &[], Some((3600, 300)));
        for reply in [positive, negative] {
            let (answer, made) =
                crate::dns::allocations::made_by(|| Answer::from_reply(&reply, LOWER, POLICY, now));
            assert!(answer.is_ok());
            assert_eq!(made, 1, "allocations to read a reply");
        }
    }

    #[test]
    fn lifetime_is_smallest_answer_ttl_and_only_answers_are_kept() {
        let now = Instant::now();
        let a = Answer::from_reply(
            &reply(
                ResponseCode::NoError,
                &[(300, [1, 2, 3, 4]), (60, [1, 2, 3, 5])],
                None,
            ),
            LOWER,
            POLICY,
            now,
        )
        .unwrap();
        assert_eq!(a.lifetime(), 60);
        let parsed = HMessage::from_vec(a.bytes()).unwrap();
        assert!(parsed.edns.is_none());
        assert!(parsed.authorities.is_empty() && parsed.additionals.is_empty());
        assert_eq!(parsed.answers.len(), 2);
        assert!(
            !parsed.metadata.authoritative,
            "forwarded answers are not authoritative"
        );
        assert_eq!(parsed.queries[0].name().to_ascii(), "web.example.");
        assert_eq!(a.question(), b"\x03web\x07example\x00\x00\x01\x00\x01");
    }

    /// RFC 2181 §8: "Implementations should treat TTL values received with the most
    /// significant bit set as if the entire value received was zero." Such an answer is
    /// not kept, and is passed on with TTL 0, not the 2^31 - 1 or the cap it would read as.
    #[test]
    fn a_ttl_with_the_top_bit_set_counts_as_zero() {
        let a = Answer::from_reply(
            &reply(
                ResponseCode::NoError,
                &[(0x8000_0001, [1, 2, 3, 4]), (300, [1, 2, 3, 5])],
                None,
            ),
            LOWER,
            POLICY,
            Instant::now(),
        )
        .unwrap();
        assert_eq!(a.lifetime(), 0);
        let parsed = HMessage::from_vec(a.bytes()).unwrap();
        assert_eq!(parsed.answers[0].ttl, 0);
        assert_eq!(parsed.answers[1].ttl, 300);
    }

    #[test]
    fn ttls_count_down_and_client_case_and_id_are_restored() {
        let now = Instant::now();
        let a = Answer::from_reply(
            &reply(ResponseCode::NoError, &[(300, [1, 2, 3, 4])], None),
            LOWER,
            POLICY,
            now,
        )
        .unwrap();
        let mut out = Vec::new();
        a.write_response(
            &client_query(false),
            now + Duration::from_secs(100),
            512,
            &mut out,
        );
        let m = HMessage::from_vec(&out).unwrap();
        assert_eq!(m.metadata.id, 0xabcd);
        assert!(m.metadata.recursion_desired && m.metadata.recursion_available);
        assert_eq!(m.queries[0].name().to_ascii(), "WEB.example.");
        assert_eq!(m.answers[0].ttl, 200);
        assert!(m.edns.is_none());
    }

    #[test]
    fn negative_lifetime_is_soa_min_of_ttl_and_minimum() {
        let now = Instant::now();
        let a = Answer::from_reply(
            &reply(ResponseCode::NXDomain, &[], Some((900, 300))),
            LOWER,
            POLICY,
            now,
        )
        .unwrap();
        assert_eq!(a.lifetime(), 300);
        assert_eq!(
            HMessage::from_vec(a.bytes()).unwrap().authorities.len(),
            1,
            "the SOA stays"
        );
        let consul = Answer::from_reply(
            &reply(ResponseCode::NXDomain, &[], Some((0, 0))),
            LOWER,
            POLICY,
            now,
        )
        .unwrap();
        assert_eq!(consul.lifetime(), 0);
        let no_soa =
            Answer::from_reply(&reply(ResponseCode::NoError, &[], None), LOWER, POLICY, now)
                .unwrap();
        assert_eq!(
            no_soa.lifetime(),
            0,
            "a negative answer without SOA is not cached (RFC 2308 §5)"
        );
    }

    #[test]
    fn floor_lifts_ttl_zero_and_cap_limits_served_ttl() {
        let now = Instant::now();
        let floor = TtlPolicy { min: 10, ..POLICY };
        assert_eq!(
            Answer::from_reply(
                &reply(ResponseCode::NoError, &[(0, [1, 2, 3, 4])], None),
                LOWER,
                floor,
                now
            )
            .unwrap()
            .lifetime(),
            10
        );
        let cap = TtlPolicy { max: 100, ..POLICY };
        let a = Answer::from_reply(
            &reply(ResponseCode::NoError, &[(9000, [1, 2, 3, 4])], None),
            LOWER,
            cap,
            now,
        )
        .unwrap();
        let mut out = Vec::new();
        a.write_response(&client_query(true), now, 4096, &mut out);
        let m = HMessage::from_vec(&out).unwrap();
        assert_eq!(m.answers[0].ttl, 100);
        assert!(m.edns.is_some());
    }

    #[test]
    fn servfail_is_never_cacheable() {
        let now = Instant::now();
        let a = Answer::from_reply(
            &reply(ResponseCode::ServFail, &[], Some((900, 300))),
            LOWER,
            POLICY,
            now,
        )
        .unwrap();
        assert_eq!(a.lifetime(), 0);
    }

    #[test]
    fn too_large_for_client_is_truncated_to_question() {
        let now = Instant::now();
        let many: Vec<(u32, [u8; 4])> = (0..40).map(|i| (300, [10, 0, 0, i])).collect();
        let a = Answer::from_reply(
            &reply(ResponseCode::NoError, &many, None),
            LOWER,
            POLICY,
            now,
        )
        .unwrap();
        let mut out = Vec::new();
        a.write_response(&client_query(false), now, 512, &mut out);
        let m = HMessage::from_vec(&out).unwrap();
        assert!(m.metadata.truncation);
        assert!(m.answers.is_empty());
        assert_eq!(m.queries.len(), 1);
        a.write_response(&client_query(false), now, 65_535, &mut out);
        assert_eq!(HMessage::from_vec(&out).unwrap().answers.len(), 40);
    }

    /// RFC 8914 §2: a bogus answer is SERVFAIL with its Extended DNS Error in
    /// the OPT of a client that sent EDNS, and without one for a client that did
    /// not; RFC 9520 §3.2: it is kept, briefly.
    #[test]
    fn a_bogus_answer_is_servfail_with_its_ede() {
        let now = Instant::now();
        let mut question = LOWER.to_vec();
        question.extend_from_slice(&[0, 1, 0, 1]);
        let a = Answer::bogus(&question, 7, 30, now);
        assert_eq!(a.lifetime(), 30);
        assert_eq!(a.security(), Security::Bogus);
        assert_eq!(a.ede(), Some(7));
        let mut out = Vec::new();
        a.write_response(&client_query(true), now, 512, &mut out);
        let m = HMessage::from_vec(&out).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(m.queries[0].name().to_ascii(), "WEB.example.");
        let options = &m.edns.as_ref().unwrap().options().options;
        let ede = options.iter().find_map(|(_, o)| match o {
            hickory_proto::rr::rdata::opt::EdnsOption::Unknown(15, data) => Some(data.clone()),
            _ => None,
        });
        assert_eq!(ede, Some(vec![0, 7]));
        a.write_response(&client_query(false), now, 512, &mut out);
        let m = HMessage::from_vec(&out).unwrap();
        assert!(m.edns.is_none());
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    }

    #[test]
    fn the_security_byte_leaves_the_key_flags_alone() {
        let now = Instant::now();
        let mut a = Answer::from_reply(
            &reply(ResponseCode::NoError, &[(60, [192, 0, 2, 1])], None),
            LOWER,
            POLICY,
            now,
        )
        .unwrap();
        assert_eq!(a.security(), Security::Unchecked);
        a.set_key_flags(3);
        a.set_security(Security::Secure);
        assert_eq!(
            (a.key_flags(), a.security(), a.ede()),
            (3, Security::Secure, None)
        );
    }
}
