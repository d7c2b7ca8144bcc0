//! [`Answer`]: a response kept encoded, ready to be patched for any client.
//!
//! An upstream reply is normalised once (ID 0, question lowercased, OPT removed,
//! AA cleared, TTLs clamped) and remembers where its TTLs are. Serving it to a
//! client, whether from the cache, to the queries that waited on the same miss, or
//! straight after the fetch, is then a copy and a few patches: the client's ID,
//! flags and question case, TTLs counted down by age, an OPT when the client sent
//! one, and truncation to the client's size.

use std::time::Instant;

use crate::wire::{self, Message, Query, Section};

/// TTL bounds for one route, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtlPolicy {
    pub min: u32,
    pub max: u32,
    pub max_negative: u32,
}

/// An encoded response with the offsets of its TTLs.
#[derive(Debug)]
pub struct Answer {
    /// The response with ID 0 and the question lowercased; no OPT record.
    bytes: Box<[u8]>,
    ttl_offsets: Box<[u16]>,
    question_end: u16,
    /// How long it may be served from the cache, in seconds; 0: not at all.
    lifetime: u32,
    created: Instant,
}

/// Why an upstream reply cannot become an [`Answer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    Structure,
    Opt,
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
        let stripped;
        let (buf, msg) = match opt_position(&msg) {
            OptAt::None => (reply, msg),
            OptAt::Last(start) => {
                stripped = strip_last_record(reply, start);
                let msg = Message::parse(&stripped).ok_or(Malformed::Structure)?;
                (&stripped[..], msg)
            }
            OptAt::Middle => {
                stripped = reencode_without_opt(reply).ok_or(Malformed::Opt)?;
                let msg = Message::parse(&stripped).ok_or(Malformed::Structure)?;
                (&stripped[..], msg)
            }
        };
        Ok(Self::normalise(buf, &msg, lower, false, policy, now))
    }

    /// An answer splitdns makes itself (local rules): authoritative, never cached.
    pub fn local(encoded: &[u8], lower: &[u8], now: Instant) -> Self {
        let msg = Message::parse(encoded).expect("locally built messages are well formed");
        let policy = TtlPolicy {
            min: 0,
            max: u32::MAX,
            max_negative: u32::MAX,
        };
        let mut answer = Self::normalise(encoded, &msg, lower, true, policy, now);
        answer.lifetime = 0;
        answer
    }

    fn normalise(
        buf: &[u8],
        msg: &Message<'_>,
        lower: &[u8],
        authoritative: bool,
        policy: TtlPolicy,
        now: Instant,
    ) -> Self {
        let mut bytes: Box<[u8]> = buf.into();
        bytes[..2].fill(0);
        let rcode = msg.rcode();
        let flags = wire::stored_flags(authoritative, wire::authentic_data(buf), rcode);
        bytes[2..4].copy_from_slice(&flags);
        bytes[wire::HEADER_LEN..wire::HEADER_LEN + lower.len()].copy_from_slice(lower);

        let answers = msg.records.iter().filter(|r| r.section == Section::Answer);
        let positive = rcode == wire::RCODE_NOERROR && answers.clone().next().is_some();
        let negative = rcode == wire::RCODE_NXDOMAIN || (rcode == wire::RCODE_NOERROR && !positive);
        let clamp = |ttl: u32, cap: u32| ttl.min(cap.max(policy.min)).max(policy.min);

        let mut lifetime = u32::MAX;
        let mut negative_ttl = None;
        let mut ttl_offsets = Vec::with_capacity(msg.records.len());
        for rec in &msg.records {
            let ttl = rec.ttl(buf);
            let served = match rec.soa_minimum(buf) {
                Some(minimum) if negative && rec.section == Section::Authority => {
                    let neg = clamp(ttl.min(minimum), policy.max_negative);
                    negative_ttl = Some(negative_ttl.map_or(neg, |n: u32| n.min(neg)));
                    neg
                }
                _ => clamp(ttl, policy.max),
            };
            if rec.section == Section::Answer {
                lifetime = lifetime.min(served);
            }
            bytes[rec.ttl_at..rec.ttl_at + 4].copy_from_slice(&served.to_be_bytes());
            ttl_offsets.push(rec.ttl_at as u16);
        }
        let lifetime = if positive {
            lifetime
        } else if negative {
            negative_ttl.unwrap_or(0)
        } else {
            0
        };
        Self {
            bytes,
            ttl_offsets: ttl_offsets.into(),
            question_end: msg.question_end as u16,
            lifetime,
            created: now,
        }
    }

    /// Seconds this answer may be served from the cache; 0 means never.
    pub fn lifetime(&self) -> u32 {
        self.lifetime
    }

    pub fn rcode(&self) -> u8 {
        self.bytes[3] & 0x0f
    }

    /// The normalised message (ID 0, lowercased question, no OPT).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the answer is still fresh at `now`.
    pub fn is_fresh(&self, now: Instant) -> bool {
        self.age(now) < self.lifetime
    }

    fn age(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.created).as_secs() as u32
    }

    /// Writes the response for `query` into `out`: the client's ID, flags and
    /// question, TTLs counted down by age, an OPT if the client sent one, and TC=1
    /// with no records when it is larger than `limit` bytes.
    pub fn write_response(&self, query: &Query, now: Instant, limit: usize, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.bytes);
        wire::patch_header(out, query);
        let name = query.name.as_bytes();
        out[wire::HEADER_LEN..wire::HEADER_LEN + name.len()].copy_from_slice(name);
        let age = self.age(now);
        if age > 0 {
            for &at in self.ttl_offsets.iter() {
                let at = usize::from(at);
                let ttl = u32::from_be_bytes(out[at..at + 4].try_into().expect("4 bytes"));
                out[at..at + 4].copy_from_slice(&ttl.saturating_sub(age).to_be_bytes());
            }
        }
        let opt_len = if query.edns.is_some() {
            wire::OPT_LEN
        } else {
            0
        };
        if out.len() + opt_len > limit {
            wire::truncate_to_question(out, usize::from(self.question_end));
        }
        if query.edns.is_some() {
            wire::push_opt(out, 0, query.dnssec_ok());
            wire::add_to_arcount(out, 1);
        }
    }
}

enum OptAt {
    None,
    Last(usize),
    Middle,
}

fn opt_position(msg: &Message<'_>) -> OptAt {
    match msg.records.iter().position(|r| r.rtype == wire::TYPE_OPT) {
        None => OptAt::None,
        Some(i) if i + 1 == msg.records.len() && msg.records[i].section == Section::Additional => {
            OptAt::Last(msg.records[i].start)
        }
        Some(_) => OptAt::Middle,
    }
}

/// Removes the last record, which starts at `start` (an OPT: nothing points into it).
fn strip_last_record(reply: &[u8], start: usize) -> Vec<u8> {
    let mut out = reply[..start].to_vec();
    let count = wire::read_u16(&out, 10).unwrap_or(1).saturating_sub(1);
    out[10..12].copy_from_slice(&count.to_be_bytes());
    out
}

/// An OPT that is not last can have compressed names after it pointing across
/// it; let hickory re-encode the message rather than splice bytes.
fn reencode_without_opt(reply: &[u8]) -> Option<Vec<u8>> {
    let mut msg = hickory_proto::op::Message::from_vec(reply).ok()?;
    msg.edns = None;
    msg.to_vec().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{
        Message as HMessage, MessageType, OpCode, Query as HQuery, ResponseCode,
    };
    use hickory_proto::rr::rdata::{A, SOA};
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
        if let Some((ttl, minimum)) = soa {
            let soa = SOA::new(
                Name::from_ascii("ns.example.").unwrap(),
                Name::from_ascii("h.example.").unwrap(),
                1,
                2,
                3,
                4,
                minimum,
            );
            m.add_authority(Record::from_rdata(
                Name::from_ascii("example.").unwrap(),
                ttl,
                RData::SOA(soa),
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

    #[test]
    fn lifetime_is_smallest_answer_ttl_and_opt_is_stripped() {
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
        assert!(
            !parsed.metadata.authoritative,
            "forwarded answers are not authoritative"
        );
        assert_eq!(parsed.queries[0].name().to_ascii(), "web.example.");
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
}
