//! The answer cache, its key ([`key`]), and the single-flight table in front
//! of it ([`flights`]).
//!
//! Entries are whole encoded [`Answer`]s keyed on the lowercased question; each
//! is fresh for its own lifetime, and the entry count is bounded by the
//! configured size.

mod flights;
mod key;

use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::dns::answer::{Answer, seconds};
use crate::dns::wire::{self, Query};

use self::key::MAX_KEY;

/// A miss joins the flight for its key before it asks the upstreams.
pub(crate) use self::flights::{Flight, Flights, Follower, Leader, Shareable};
pub use self::key::CacheKey;

/// Bounded, TTL-aware answer cache. A size of 0 disables it.
///
/// Answers fetched for a client carry the epoch of the routing table they were
/// fetched under; once a reload has moved routes ([`Cache::reroute`]), an
/// answer of an older epoch is no longer stored, so a fetch that was in flight
/// across the reload cannot put back what the reload dropped.
///
/// Sharded by key hash, each shard a small hash index into a vector of
/// answers, one allocation each. A full shard evicts by sampling: of a few
/// random entries, one past its stale window goes first, then an expired one,
/// else the least recently used (as Redis does), so an insert costs the same
/// with 10 or 10 million entries. Expired entries stay (and count against the
/// size) until evicted, so they can be served stale while the upstreams fail.
pub struct Cache {
    shards: Box<[Mutex<Shard>]>,
    shard_capacity: usize,
    hasher: DefaultHashBuilder,
    /// Seconds past expiry an entry may be served stale (RFC 8767); 0 = never.
    stale_window: u32,
    prefetch: bool,
    /// The configured size, as cachesize.bind reports it.
    size: u64,
    insertions: AtomicU64,
    evictions: AtomicU64,
    /// The oldest routing epoch whose answers may still be stored. Read under
    /// the shard lock, so an insert either lands before [`Cache::reroute`]
    /// looks at its shard or sees the new floor.
    floor: AtomicU64,
}

/// What [`Cache::lookup`] found.
pub enum Cached {
    Fresh(Answer),
    /// Expired, within the stale window.
    Stale(Answer),
}

/// What [`Cache::serve`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// No entry: nothing was written.
    Miss,
    /// No fresh entry, but an expired one still within the stale window
    /// (RFC 8767): nothing was written, and [`Cache::lookup`] has it.
    Stale,
    /// The response is written.
    Hit,
    /// The response is written, and the entry is in the last 10% of its life
    /// (at least its last second): refresh it in the background. Said once per entry.
    HitRefresh,
}

struct Shard {
    index: HashTable<u32>,
    /// Each answer carries its key's flags byte (DO, CD) and when it was last
    /// used; the rest of its key is its question.
    slots: Vec<Answer>,
    rng: u64,
}

const MAX_SHARDS: usize = 64;
/// Entries looked at to choose one to evict.
const EVICTION_SAMPLES: usize = 5;

impl Cache {
    pub fn new(size: u64) -> Self {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let shards = (size / 64).next_power_of_two().clamp(1, MAX_SHARDS);
        let shard_capacity = size / shards;
        Self {
            shards: (0..shards)
                .map(|i| {
                    Mutex::new(Shard {
                        // Both sized for a full shard up front, so that filling
                        // the cache never rehashes or copies what it holds. The
                        // slots are reserved, not touched (pages cost memory
                        // only once used); the index is the size a full shard
                        // would grow it to anyway.
                        index: HashTable::with_capacity(shard_capacity),
                        slots: Vec::with_capacity(shard_capacity),
                        rng: 0x9e37_79b9_7f4a_7c15 ^ i as u64,
                    })
                })
                .collect(),
            shard_capacity,
            hasher: DefaultHashBuilder::default(),
            size: size as u64,
            insertions: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            floor: AtomicU64::new(0),
            stale_window: 0,
            prefetch: false,
        }
    }

    /// Keeps expired entries servable for `seconds` past expiry (RFC 8767).
    pub fn with_serve_stale(mut self, seconds: u32) -> Self {
        self.stale_window = seconds;
        self
    }

    /// Asks for a refresh of entries hit in the last 10% of their life.
    pub fn with_prefetch(mut self, prefetch: bool) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// The configured size in entries.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Answers stored so far, replacements included.
    pub fn insertions(&self) -> u64 {
        self.insertions.load(Ordering::Relaxed)
    }

    /// Fresh entries pushed out to make room (expired ones going do not count).
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    fn shard(&self, hash: u64) -> &Mutex<Shard> {
        // Bits 32.. are used neither for hashbrown's bucket nor for its tag.
        &self.shards[(hash >> 32) as usize & (self.shards.len() - 1)]
    }

    /// Writes the response for `query` from a fresh entry, if there is one.
    pub fn serve(
        &self,
        key: &[u8],
        query: &Query,
        now: Instant,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Served {
        if self.shard_capacity == 0 {
            return Served::Miss;
        }
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash).lock().expect("cache shard lock");
        let Shard { index, slots, .. } = &mut *shard;
        let Some(&i) = index.find(hash, |&i| matches(&slots[i as usize], key)) else {
            return Served::Miss;
        };
        let answer = &mut slots[i as usize];
        if !answer.is_fresh(now) {
            return if self.servable_stale(answer, now) {
                Served::Stale
            } else {
                Served::Miss
            };
        }
        answer.touch(now);
        answer.write_response(query, now, limit, out);
        if self.prefetch && answer.is_ending(now) && answer.claim_refresh() {
            return Served::HitRefresh;
        }
        Served::Hit
    }

    /// Whether `answer`, expired, is still within the stale window.
    fn servable_stale(&self, answer: &Answer, now: Instant) -> bool {
        self.stale_window > 0 && seconds(now) < answer.expires().saturating_add(self.stale_window)
    }

    /// A copy of the entry for `key` if it is fresh, or has expired but is
    /// still within the stale window: what to answer when the upstreams fail
    /// (RFC 8767 §4). One lookup for both, on the miss path.
    pub fn lookup(&self, key: &[u8], now: Instant) -> Option<Cached> {
        if self.shard_capacity == 0 {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash).lock().expect("cache shard lock");
        let &i = shard
            .index
            .find(hash, |&i| matches(&shard.slots[i as usize], key))?;
        let answer = &shard.slots[i as usize];
        if answer.is_fresh(now) {
            Some(Cached::Fresh(answer.clone()))
        } else if self.servable_stale(answer, now) {
            Some(Cached::Stale(answer.clone()))
        } else {
            None
        }
    }

    /// A copy of the fresh entry for `key`, if any.
    #[cfg(test)]
    pub(crate) fn get(&self, key: &[u8], now: Instant) -> Option<Answer> {
        match self.lookup(key, now)? {
            Cached::Fresh(answer) => Some(answer),
            Cached::Stale(_) => None,
        }
    }

    /// Keeps `answer` if it has a lifetime; TTL 0 and failures are not kept.
    pub fn insert(&self, key: &[u8], answer: &Answer, now: Instant) {
        self.store(key, answer, now, None);
    }

    /// [`Cache::insert`] for an answer fetched under routing `epoch`: not
    /// kept when a reload has changed the routes since. True when kept.
    pub fn insert_fetched(&self, key: &[u8], answer: &Answer, now: Instant, epoch: u64) -> bool {
        self.store(key, answer, now, Some(epoch))
    }

    fn store(&self, key: &[u8], answer: &Answer, now: Instant, epoch: Option<u64>) -> bool {
        if self.shard_capacity == 0 || answer.lifetime() == 0 {
            return false;
        }
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash).lock().expect("cache shard lock");
        if epoch.is_some_and(|e| e < self.floor.load(Ordering::Acquire)) {
            return false;
        }
        let mut fresh = answer.clone();
        fresh.set_key_flags(key[key.len() - 1]);
        fresh.touch(now);
        self.insertions.fetch_add(1, Ordering::Relaxed);
        let Shard { index, slots, .. } = &mut *shard;
        if let Some(&i) = index.find(hash, |&i| matches(&slots[i as usize], key)) {
            slots[i as usize] = fresh;
            return true;
        }
        if slots.len() >= self.shard_capacity
            && shard.evict_one(&self.hasher, seconds(now), self.stale_window)
        {
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        let Shard { index, slots, .. } = &mut *shard;
        index.insert_unique(hash, slots.len() as u32, |&i| {
            hash_of(&slots[i as usize], &self.hasher)
        });
        slots.push(fresh);
        true
    }

    /// A reload moved routes: from now on only answers fetched under `epoch`
    /// or later are stored, and every entry whose name `keep` refuses (its
    /// route changed) is dropped. How many went.
    pub fn reroute(&self, epoch: u64, keep: impl FnMut(&[u8]) -> bool) -> usize {
        self.floor.fetch_max(epoch, Ordering::AcqRel);
        self.retain(keep)
    }

    /// Drops every entry whose lowercased wire-format name `keep` refuses;
    /// how many went. For reloads, so it may take each shard's lock in turn.
    pub fn retain(&self, mut keep: impl FnMut(&[u8]) -> bool) -> usize {
        let mut dropped = 0;
        for shard in &self.shards {
            let mut shard = shard.lock().expect("cache shard lock");
            // Backwards: removal swaps the last entry in, and that one has
            // been looked at already.
            for i in (0..shard.slots.len()).rev() {
                let question = shard.slots[i].question();
                let name = &question[..question.len().saturating_sub(4)];
                if !keep(name) {
                    shard.remove_at(i, &self.hasher);
                    dropped += 1;
                }
            }
        }
        dropped
    }

    /// Entries held now, fresh or not.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("cache shard lock").slots.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `answer` is the one stored under `key`.
fn matches(answer: &Answer, key: &[u8]) -> bool {
    let (question, flags) = key.split_at(key.len() - 1);
    // Wire names are prefix-free, so equal bytes from the start of the
    // question are the same question: no need to find where it ends.
    answer.key_flags() == flags[0]
        && answer
            .bytes()
            .get(wire::HEADER_LEN..wire::HEADER_LEN + question.len())
            == Some(question)
}

fn hash_of(answer: &Answer, hasher: &DefaultHashBuilder) -> u64 {
    let mut key = [0; MAX_KEY];
    let question = answer.question();
    key[..question.len()].copy_from_slice(question);
    key[question.len()] = answer.key_flags();
    hasher.hash_one(&key[..=question.len()])
}

impl Shard {
    /// Removes one entry, of a few sampled the one least worth keeping: past
    /// its stale window, then expired (still servable stale), then least
    /// recently used. True when it was still fresh.
    fn evict_one(&mut self, hasher: &DefaultHashBuilder, now: u32, stale_window: u32) -> bool {
        let len = self.slots.len();
        if len == 0 {
            return false;
        }
        let worth = |answer: &Answer| {
            let expires = answer.expires();
            let useless = expires.saturating_add(stale_window) <= now;
            (!useless, expires > now, answer.last_used())
        };
        let mut victim = self.random_below(len);
        for _ in 1..EVICTION_SAMPLES {
            let candidate = self.random_below(len);
            if worth(&self.slots[candidate]) < worth(&self.slots[victim]) {
                victim = candidate;
            }
        }
        let fresh = self.slots[victim].expires() > now;
        self.remove_at(victim, hasher);
        fresh
    }

    fn remove_at(&mut self, i: usize, hasher: &DefaultHashBuilder) {
        let hash = hash_of(&self.slots[i], hasher);
        if let Ok(entry) = self.index.find_entry(hash, |&j| j as usize == i) {
            entry.remove();
        }
        let last = self.slots.len() - 1;
        self.slots.swap_remove(i);
        if i != last {
            let moved = hash_of(&self.slots[i], hasher);
            if let Some(j) = self.index.find_mut(moved, |&j| j as usize == last) {
                *j = i as u32;
            }
        }
    }

    /// xorshift64: sampling needs spread, not secrecy.
    fn random_below(&mut self, n: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::answer::TtlPolicy;
    use std::time::Duration;

    const POLICY: TtlPolicy = TtlPolicy {
        min: 0,
        max: 86_400,
        max_negative: 3_600,
    };

    /// An answer for `nN.test A` with one A record of `ttl`, and its key.
    pub(super) fn answer(n: u32, ttl: u32, now: Instant) -> (Vec<u8>, Answer) {
        let label = format!("n{n}");
        let mut name = vec![label.len() as u8];
        name.extend_from_slice(label.as_bytes());
        name.extend_from_slice(b"\x04test\x00");
        let mut reply = vec![0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        reply.extend_from_slice(&name);
        reply.extend_from_slice(&[0, 1, 0, 1, 0xc0, 12, 0, 1, 0, 1]);
        reply.extend_from_slice(&ttl.to_be_bytes());
        reply.extend_from_slice(&[0, 4, 192, 0, 2, 1]);
        let answer = Answer::from_reply(&reply, &name, POLICY, now).unwrap();
        let key = CacheKey::new(&name, 1, 1, false, false).to_vec();
        (key, answer)
    }

    #[test]
    fn entry_count_never_exceeds_size() {
        let cache = Cache::new(1000);
        let now = Instant::now();
        for n in 0..5000 {
            let (key, answer) = answer(n, 300, now);
            cache.insert(&key, &answer, now);
        }
        assert!(cache.len() <= 1000, "{} entries", cache.len());
        assert!(
            cache.len() >= 900,
            "eviction made room for new entries: {}",
            cache.len()
        );
        let (key, _) = answer(4999, 300, now);
        assert!(cache.get(&key, now).is_some(), "the newest entry is kept");
    }

    #[test]
    fn expired_entries_are_evicted_first() {
        let cache = Cache::new(64);
        let now = Instant::now();
        for n in 0..64 {
            let (key, answer) = answer(n, if n < 32 { 1 } else { 3600 }, now);
            cache.insert(&key, &answer, now);
        }
        let later = now + Duration::from_secs(5);
        for n in 64..96 {
            let (key, answer) = answer(n, 3600, later);
            cache.insert(&key, &answer, later);
        }
        let survivors = (32..64)
            .filter(|&n| cache.get(&answer(n, 0, now).0, later).is_some())
            .count();
        assert!(
            survivors >= 24,
            "long-lived entries survive while expired ones go: {survivors}/32"
        );
    }

    #[test]
    fn stale_entries_are_not_served_and_zero_ttl_is_not_stored() {
        let cache = Cache::new(100);
        let now = Instant::now();
        let (key, a) = answer(1, 10, now);
        cache.insert(&key, &a, now);
        assert!(cache.get(&key, now + Duration::from_secs(9)).is_some());
        assert!(cache.get(&key, now + Duration::from_secs(10)).is_none());
        let (key, zero) = answer(2, 0, now);
        cache.insert(&key, &zero, now);
        assert!(cache.get(&key, now).is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn size_zero_disables() {
        let cache = Cache::new(0);
        let now = Instant::now();
        let (key, a) = answer(1, 300, now);
        cache.insert(&key, &a, now);
        assert!(cache.get(&key, now).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn answers_fetched_before_a_reroute_are_not_stored_after_it() {
        let cache = Cache::new(1000);
        let now = Instant::now();
        let (kept_key, kept) = answer(1, 300, now);
        let (moved_key, moved) = answer(2, 300, now);
        assert!(cache.insert_fetched(&kept_key, &kept, now, 0));
        assert!(cache.insert_fetched(&moved_key, &moved, now, 0));

        let dropped = cache.reroute(1, |name| name.starts_with(b"\x02n1"));

        assert_eq!(dropped, 1);
        assert!(cache.get(&kept_key, now).is_some(), "unchanged route kept");
        assert!(
            !cache.insert_fetched(&moved_key, &moved, now, 0),
            "a fetch of the old epoch lands after the reroute"
        );
        assert!(cache.get(&moved_key, now).is_none());
        assert!(cache.insert_fetched(&moved_key, &moved, now, 1));
        assert!(cache.get(&moved_key, now).is_some());
    }
}
