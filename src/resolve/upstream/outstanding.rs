//! The queries outstanding at one server over UDP: each has an ID no other
//! query in flight at that server has (RFC 5452 §9.2 wants it random, and a
//! reply is matched to its query by it), and `loops` looks a query that came
//! back to us up here.
//!
//! Every UDP thread registers its queries here, and every thread's `loops`
//! check reads it, so it takes no lock and allocates nothing: a fixed array
//! of buckets, one word each, that an ID owns by its low bits. A word holds
//! the ID and a hash of the question, and is claimed and released with one
//! atomic operation.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use hashbrown::DefaultHashBuilder;

use crate::config::MAX_INFLIGHT;
use crate::dns::question::Question;

/// Buckets per server, a power of two: twice the most queries a route may
/// have in flight (`max_inflight`: every query at a server holds one of its
/// route's permits, but for a probe of a server out of rotation now and
/// then), so a random draw finds a free bucket about every other time and
/// [`TRIES`] draws all fail with odds near 2^-64. 64 KiB per server.
const BUCKETS: usize = 2 * MAX_INFLIGHT;
const _: () = assert!(BUCKETS.is_power_of_two());

/// Random IDs drawn before a full table gives up.
const TRIES: usize = 64;

/// The queries outstanding at one server over UDP. A bucket's word is 0 when
/// free, else `ID << 48 | hash of the question`, with the hash's lowest
/// bit set so that no claimed word is 0. The hash is seeded at random, per
/// server.
pub(super) struct OutstandingIds {
    buckets: Box<[AtomicU64]>,
    hasher: DefaultHashBuilder,
}

impl Default for OutstandingIds {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

/// `ask`'s name, type and class, as [`question_hash`] reads them.
fn question_of(ask: &Question, out: &mut [u8; 259]) -> usize {
    let lower = ask.lower.as_bytes();
    let len = lower.len();
    out[..len].copy_from_slice(lower);
    out[len..len + 2].copy_from_slice(&ask.qtype.to_be_bytes());
    out[len + 2..len + 4].copy_from_slice(&ask.qclass.to_be_bytes());
    len + 4
}

impl OutstandingIds {
    /// Claims a random ID no query in flight at this server has, for `ask`;
    /// `None` when [`TRIES`] random draws all found their bucket taken (the
    /// server has thousands of queries in flight). The ID is uniform over
    /// the IDs whose bucket is free.
    pub(super) fn claim(&self, ask: &Question) -> Option<u16> {
        let mut question = [0; 259];
        let len = question_of(ask, &mut question);
        let hash = self.question_hash(&question[..len]);
        (0..TRIES).find_map(|_| {
            let id: u16 = rand::random();
            let word = u64::from(id) << 48 | hash;
            self.bucket(id)
                .compare_exchange(0, word, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
                .then_some(id)
        })
    }

    /// Gives `id` back: its query is over.
    pub(super) fn release(&self, id: u16) {
        self.bucket(id).store(0, Ordering::Release);
    }

    /// Whether a query with this ID and question (lowercased name, type and
    /// class) is outstanding here.
    pub(super) fn contains(&self, id: u16, question: &[u8]) -> bool {
        let word = u64::from(id) << 48 | self.question_hash(question);
        self.bucket(id).load(Ordering::Acquire) == word
    }

    fn bucket(&self, id: u16) -> &AtomicU64 {
        &self.buckets[usize::from(id) % BUCKETS]
    }

    /// The hash of a question (lowercased name, type and class, as `loops`
    /// reads them from a query), in a word's low 48 bits.
    fn question_hash(&self, question: &[u8]) -> u64 {
        (self.hasher.hash_one(question) & 0xffff_ffff_ffff) | 1
    }
}

/// A query's ID in its server's [`OutstandingIds`], released however the
/// wait ends.
pub(super) struct Outstanding<'a> {
    table: &'a OutstandingIds,
    pub(super) id: u16,
}

impl<'a> Outstanding<'a> {
    pub(super) fn claim(table: &'a OutstandingIds, ask: &Question) -> Option<Self> {
        Some(Self {
            table,
            id: table.claim(ask)?,
        })
    }
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        self.table.release(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::NameBuf;

    fn ask(name: &[u8]) -> Question {
        Question {
            lower: NameBuf::from_wire(name).unwrap(),
            qtype: 1,
            qclass: 1,
            dnssec_ok: false,
            checking_disabled: false,
        }
    }

    /// An ID is outstanding for its question only, until released, and two
    /// queries in flight never share one.
    #[test]
    fn ids_are_unique_while_in_flight_and_match_their_question() {
        let ids = OutstandingIds::default();
        let web = ask(b"\x03web\x07service\x06consul\x00");
        let mut question = [0; 259];
        let len = question_of(&web, &mut question);
        let claimed: Vec<u16> = (0..2000).map(|_| ids.claim(&web).unwrap()).collect();
        let mut unique = claimed.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), claimed.len());
        assert!(ids.contains(claimed[0], &question[..len]));
        let other = ask(b"\x02db\x07service\x06consul\x00");
        let other_len = question_of(&other, &mut question);
        assert!(!ids.contains(claimed[0], &question[..other_len]));
        ids.release(claimed[0]);
        let len = question_of(&web, &mut question);
        assert!(!ids.contains(claimed[0], &question[..len]));
    }

    /// A route has at most `max_inflight` (≤ 4096) queries in flight at a
    /// server; with that many outstanding, one more still finds a random ID
    /// every time (the table keeps room for twice as many), so no query
    /// fails, or counts against its server, for want of one.
    #[test]
    fn a_full_route_still_finds_an_id_for_every_query() {
        let ids = OutstandingIds::default();
        let web = ask(b"\x03web\x07service\x06consul\x00");
        let held: Vec<u16> = (0..MAX_INFLIGHT - 1)
            .map(|_| ids.claim(&web).expect("room for max_inflight"))
            .collect();
        for _ in 0..10_000 {
            let id = ids.claim(&web).expect("the last query of a full route");
            assert!(!held.contains(&id));
            ids.release(id);
        }
    }
}
