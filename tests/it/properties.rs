//! Properties of the cache's TTL arithmetic and of the patches the hit path makes, over
//! random TTLs, ages, policies and client queries. Time is an argument here: `now` plus
//! whole seconds, so nothing sleeps.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use proptest::collection::vec;
use proptest::prelude::*;
use splitdns::parts::Query;
use splitdns::parts::{Answer, TtlPolicy};
use splitdns::parts::{Cache, CacheKey, Cached, Served};

const LOWER: &[u8] = b"\x03web\x07example\x00";

fn upstream_reply(ttls: &[u32]) -> Vec<u8> {
    let name = Name::from_ascii("web.example.").unwrap();
    let mut m = Message::new(9, MessageType::Response, OpCode::Query);
    m.metadata.response_code = ResponseCode::NoError;
    m.add_query(HQuery::query(name.clone(), RecordType::A));
    for (i, ttl) in ttls.iter().enumerate() {
        let ip = Ipv4Addr::new(192, 0, 2, i as u8);
        m.add_answer(Record::from_rdata(name.clone(), *ttl, RData::A(A(ip))));
    }
    m.to_vec().unwrap()
}

/// A client query for web.example A with the name in `case` (one bool per letter).
fn client_query(id: u16, case: &[bool], rd: bool, cd: bool, edns: Option<u16>) -> (Vec<u8>, Query) {
    let mut name = LOWER.to_vec();
    for (byte, upper) in name.iter_mut().filter(|b| b.is_ascii_lowercase()).zip(case) {
        if *upper {
            byte.make_ascii_uppercase();
        }
    }
    let mut q = id.to_be_bytes().to_vec();
    q.push(u8::from(rd));
    q.push(if cd { 0x10 } else { 0 });
    q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    q.extend_from_slice(&name);
    q.extend_from_slice(&[0, 1, 0, 1]);
    if let Some(size) = edns {
        q.extend_from_slice(&[0, 0, 41]);
        q.extend_from_slice(&size.to_be_bytes());
        q.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    let parsed = Query::parse(&q).unwrap();
    (name, parsed)
}

fn policy() -> impl Strategy<Value = TtlPolicy> {
    (0u32..200, 0u32..100_000, 0u32..10_000).prop_map(|(min, extra, max_negative)| TtlPolicy {
        min,
        max: min + extra,
        max_negative,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    /// The lifetime is the smallest clamped TTL, where a TTL with the top bit set reads
    /// as 0 (RFC 2181 §8); served TTLs count down by age and never wrap; an entry is
    /// fresh exactly while its age is below the lifetime, then stale exactly for the
    /// stale window, then gone.
    #[test]
    fn ttl_arithmetic(
        ttls in vec(any::<u32>(), 1..6),
        policy in policy(),
        age in 0u32..300_000,
        window in 0u32..100_000,
    ) {
        let now = Instant::now();
        let answer = Answer::from_reply(&upstream_reply(&ttls), LOWER, policy, now).unwrap();
        let received = |t: u32| if t >> 31 == 1 { 0 } else { t };
        let clamped: Vec<u32> = ttls.iter().map(|t| received(*t).clamp(policy.min, policy.max)).collect();
        let lifetime = *clamped.iter().min().unwrap();
        prop_assert_eq!(answer.lifetime(), lifetime);

        let later = now + Duration::from_secs(u64::from(age));
        prop_assert_eq!(answer.is_fresh(later), age < lifetime);
        let (_, query) = client_query(1, &[], true, false, Some(4096));
        let mut out = Vec::new();
        answer.write_response(&query, later, 65_535, &mut out);
        let served = Message::from_vec(&out).unwrap();
        let mut got: Vec<u32> = served.answers.iter().map(|r| r.ttl).collect();
        let mut want: Vec<u32> = clamped.iter().map(|t| t.saturating_sub(age)).collect();
        got.sort_unstable();
        want.sort_unstable();
        prop_assert_eq!(got, want);

        let cache = Cache::new(100).with_serve_stale(window);
        let key = &CacheKey::new(LOWER, 1, 1, false, false);
        cache.insert(key, &answer, now);
        let served = cache.serve(key, &query, later, 65_535, &mut out);
        let hit = matches!(served, Served::Hit | Served::HitRefresh);
        prop_assert_eq!(hit, lifetime > 0 && age < lifetime);
        let stale = match cache.lookup(key, later) {
            Some(Cached::Stale(old)) => Some(old),
            _ => None,
        };
        prop_assert_eq!(stale.is_some(), lifetime > 0 && window > 0 && age >= lifetime && age < lifetime.saturating_add(window));
        prop_assert_eq!(served == Served::Stale, stale.is_some());
        if let Some(old) = stale {
            old.to_stale(later, 30).write_response(&query, later, 65_535, &mut out);
            let msg = Message::from_vec(&out).unwrap();
            prop_assert!(msg.answers.iter().all(|r| r.ttl == 30));
        }
    }

    /// What the hit path patches is the client's: ID, name case, RD and CD; QR and RA set;
    /// an OPT exactly when the client sent one; and never more than the client's limit,
    /// else TC=1 and no records.
    #[test]
    fn hit_path_patches(
        id in any::<u16>(),
        case in vec(any::<bool>(), 10),
        rd in any::<bool>(),
        cd in any::<bool>(),
        edns in proptest::option::of(0u16..4096),
        records in 1usize..60,
        age in 0u32..400,
    ) {
        let now = Instant::now();
        let reply = upstream_reply(&vec![300; records]);
        let policy = TtlPolicy { min: 0, max: 86_400, max_negative: 3_600 };
        let answer = Answer::from_reply(&reply, LOWER, policy, now).unwrap();
        let (name, query) = client_query(id, &case, rd, cd, edns);
        let limit = query.udp_limit();
        let mut out = Vec::new();
        answer.write_response(&query, now + Duration::from_secs(u64::from(age)), limit, &mut out);

        prop_assert!(out.len() <= limit, "{} bytes for a limit of {limit}", out.len());
        prop_assert_eq!(&out[..2], &id.to_be_bytes()[..]);
        prop_assert_eq!(&out[12..12 + name.len()], &name[..]);
        let msg = Message::from_vec(&out).unwrap();
        prop_assert!(msg.metadata.message_type == MessageType::Response);
        prop_assert!(msg.metadata.recursion_available);
        prop_assert_eq!(msg.metadata.recursion_desired, rd);
        prop_assert_eq!(msg.metadata.checking_disabled, cd);
        prop_assert_eq!(msg.edns.is_some(), edns.is_some());
        if msg.metadata.truncation {
            prop_assert!(msg.answers.is_empty());
        } else {
            prop_assert_eq!(msg.answers.len(), records);
            prop_assert!(msg.answers.iter().all(|r| r.ttl == 300u32.saturating_sub(age)));
        }
    }
}
