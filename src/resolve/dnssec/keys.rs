//! The replies validation asks for again and again, kept for their TTL:
//! DNSKEY and DS sets, and the NS questions that find zone cuts. One chain
//! of keys serves every name under it, so the keys of `example.com` are
//! fetched once for `www.example.com` and `mail.example.com` alike.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;

/// Entries kept at most; past it, the expired go, and if that is not
/// enough, everything (the next validations fetch what they need again).
const CAPACITY: usize = 8192;
/// Bounds on how long a reply is kept, whatever its TTLs say.
const MIN_KEEP: Duration = Duration::from_secs(1);
const MAX_KEEP: Duration = Duration::from_secs(3600);

/// A lowercased wire name and a type.
type Key = (Vec<u8>, u16);

/// The kept replies, each with the time it is kept until.
#[derive(Default)]
pub(super) struct KeyCache {
    entries: Mutex<HashMap<Key, (Instant, Vec<u8>)>>,
}

impl KeyCache {
    /// Whether replies to `qtype` are kept here.
    pub(super) fn keeps(qtype: u16) -> bool {
        use hickory_proto::rr::RecordType;
        matches!(
            RecordType::from(qtype),
            RecordType::DNSKEY | RecordType::DS | RecordType::NS
        )
    }

    pub(super) fn get(&self, lower: &[u8], qtype: u16, now: Instant) -> Option<Vec<u8>> {
        let entries = self.entries.lock().expect("not poisoned");
        let (until, reply) = entries.get(&(lower.to_vec(), qtype))?;
        (*until > now).then(|| reply.clone())
    }

    /// Keeps `reply` for the smallest TTL among its records.
    pub(super) fn put(&self, lower: &[u8], qtype: u16, reply: &[u8], now: Instant) {
        let Ok(msg) = Message::from_vec(reply) else {
            return;
        };
        let ttl = msg
            .answers
            .iter()
            .chain(&msg.authorities)
            .map(|r| r.ttl)
            .min()
            .unwrap_or(0);
        let keep = Duration::from_secs(ttl.into()).clamp(MIN_KEEP, MAX_KEEP);
        let mut entries = self.entries.lock().expect("not poisoned");
        if entries.len() >= CAPACITY {
            entries.retain(|_, (until, _)| *until > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert((lower.to_vec(), qtype), (now + keep, reply.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, Query};
    use hickory_proto::rr::rdata::NS;
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    fn ns_reply(ttl: u32) -> Vec<u8> {
        let name = Name::from_ascii("example.").unwrap();
        let mut m = Message::query();
        m.metadata.message_type = MessageType::Response;
        m.add_query(Query::query(name.clone(), RecordType::NS));
        let host = Name::from_ascii("ns.example.").unwrap();
        m.add_answer(Record::from_rdata(name, ttl, RData::NS(NS(host))));
        m.to_vec().unwrap()
    }

    #[test]
    fn a_reply_is_kept_for_its_ttl_and_no_longer() {
        let keys = KeyCache::default();
        let now = Instant::now();
        let name = b"\x07example\x00";
        keys.put(name, 2, &ns_reply(60), now);
        assert!(keys.get(name, 2, now + Duration::from_secs(59)).is_some());
        assert!(keys.get(name, 2, now + Duration::from_secs(60)).is_none());
        assert!(keys.get(name, 48, now).is_none(), "by type too");
        keys.put(name, 2, &ns_reply(0), now);
        assert!(
            keys.get(name, 2, now).is_some(),
            "TTL 0 is kept {MIN_KEEP:?}"
        );
        assert!(KeyCache::keeps(48) && KeyCache::keeps(43) && KeyCache::keeps(2));
        assert!(!KeyCache::keeps(1));
    }
}
