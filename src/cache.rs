//! The answer cache and the single-flight table in front of it.
//!
//! Entries are whole encoded [`Answer`]s keyed on the lowercased question; each
//! is fresh for its own lifetime, and the entry count is bounded by the
//! configured size. Misses for the same key that overlap share one
//! upstream query: the first becomes the leader, the rest wait for its answer.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hashbrown::{DefaultHashBuilder, HashTable};
use tokio::sync::watch;

use crate::answer::{Answer, seconds};
use crate::wire::Query;

/// `lowercased name | type | class | flags`: what makes two questions the same answer.
pub type Key = Box<[u8]>;

const KEY_DO: u8 = 1;
const KEY_CD: u8 = 2;

/// Builds the cache key of a query into `buf`, without allocating.
pub fn key_of<'b>(query: &Query, buf: &'b mut [u8; 260]) -> &'b [u8] {
    key_for(
        query.lower.as_bytes(),
        query.qtype,
        query.qclass,
        query.dnssec_ok(),
        query.checking_disabled(),
        buf,
    )
}

/// The key of a question splitdns asks itself (SRV targets): DO and CD clear.
pub fn key_for<'b>(
    lower: &[u8],
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    cd: bool,
    buf: &'b mut [u8; 260],
) -> &'b [u8] {
    let n = lower.len();
    buf[..n].copy_from_slice(lower);
    buf[n..n + 2].copy_from_slice(&qtype.to_be_bytes());
    buf[n + 2..n + 4].copy_from_slice(&qclass.to_be_bytes());
    buf[n + 4] = if dnssec_ok { KEY_DO } else { 0 } | if cd { KEY_CD } else { 0 };
    &buf[..n + 5]
}

/// Bounded, TTL-aware answer cache. A size of 0 disables it.
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
}

/// What [`Cache::serve`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// No fresh entry: nothing was written.
    Miss,
    /// The response is written.
    Hit,
    /// The response is written, and the entry is in the last 10% of its life
    /// (at least its last second): refresh it in the background. Said once per entry.
    HitRefresh,
}

struct Shard {
    index: HashTable<u32>,
    slots: Vec<Slot>,
    rng: u64,
}

struct Slot {
    answer: Answer,
    /// The key's flags byte (DO, CD); the rest of the key is the answer's question.
    flags: u8,
    last_used: u32,
    /// A prefetch was asked for; the refreshed answer replaces the whole slot.
    refreshing: bool,
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
                        index: HashTable::new(),
                        slots: Vec::new(),
                        rng: 0x9e37_79b9_7f4a_7c15 ^ i as u64,
                    })
                })
                .collect(),
            shard_capacity,
            hasher: DefaultHashBuilder::default(),
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
        let Some(&i) = index.find(hash, |&i| slots[i as usize].matches(key)) else {
            return Served::Miss;
        };
        let slot = &mut slots[i as usize];
        if !slot.answer.is_fresh(now) {
            return Served::Miss;
        }
        slot.last_used = seconds(now);
        slot.answer.write_response(query, now, limit, out);
        if self.prefetch && !slot.refreshing && slot.answer.is_ending(now) {
            slot.refreshing = true;
            return Served::HitRefresh;
        }
        Served::Hit
    }

    /// A copy of the entry for `key` if it has expired but is still within the
    /// stale window: what to answer when the upstreams fail (RFC 8767 §4).
    pub fn stale(&self, key: &[u8], now: Instant) -> Option<Answer> {
        if self.shard_capacity == 0 || self.stale_window == 0 {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash).lock().expect("cache shard lock");
        let &i = shard
            .index
            .find(hash, |&i| shard.slots[i as usize].matches(key))?;
        let answer = &shard.slots[i as usize].answer;
        let within = seconds(now) < answer.expires().saturating_add(self.stale_window);
        (!answer.is_fresh(now) && within).then(|| answer.clone())
    }

    /// A copy of the fresh entry for `key`, if any.
    pub fn get(&self, key: &[u8], now: Instant) -> Option<Answer> {
        if self.shard_capacity == 0 {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash).lock().expect("cache shard lock");
        let &i = shard
            .index
            .find(hash, |&i| shard.slots[i as usize].matches(key))?;
        let answer = &shard.slots[i as usize].answer;
        answer.is_fresh(now).then(|| answer.clone())
    }

    /// Keeps `answer` if it has a lifetime; TTL 0 and failures are not kept.
    pub fn insert(&self, key: &[u8], answer: &Answer, now: Instant) {
        if self.shard_capacity == 0 || answer.lifetime() == 0 {
            return;
        }
        let hash = self.hasher.hash_one(key);
        let mut shard = self.shard(hash).lock().expect("cache shard lock");
        let flags = key[key.len() - 1];
        let fresh = Slot {
            answer: answer.clone(),
            flags,
            last_used: seconds(now),
            refreshing: false,
        };
        let Shard { index, slots, .. } = &mut *shard;
        if let Some(&i) = index.find(hash, |&i| slots[i as usize].matches(key)) {
            slots[i as usize] = fresh;
            return;
        }
        if slots.len() >= self.shard_capacity {
            shard.evict_one(&self.hasher, seconds(now), self.stale_window);
        }
        let Shard { index, slots, .. } = &mut *shard;
        index.insert_unique(hash, slots.len() as u32, |&i| {
            slots[i as usize].hash(&self.hasher)
        });
        slots.push(fresh);
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

impl Slot {
    fn matches(&self, key: &[u8]) -> bool {
        let (question, flags) = key.split_at(key.len() - 1);
        self.flags == flags[0] && self.answer.question() == question
    }

    fn hash(&self, hasher: &DefaultHashBuilder) -> u64 {
        let mut key = [0; 260];
        let question = self.answer.question();
        key[..question.len()].copy_from_slice(question);
        key[question.len()] = self.flags;
        hasher.hash_one(&key[..=question.len()])
    }
}

impl Shard {
    /// Of a few sampled entries, removes the one least worth keeping: past
    /// its stale window, then expired (still servable stale), then least
    /// recently used.
    fn evict_one(&mut self, hasher: &DefaultHashBuilder, now: u32, stale_window: u32) {
        let len = self.slots.len();
        if len == 0 {
            return;
        }
        let worth = |slot: &Slot| {
            let expires = slot.answer.expires();
            let useless = expires.saturating_add(stale_window) <= now;
            (!useless, expires > now, slot.last_used)
        };
        let mut victim = self.random_below(len);
        for _ in 1..EVICTION_SAMPLES {
            let candidate = self.random_below(len);
            if worth(&self.slots[candidate]) < worth(&self.slots[victim]) {
                victim = candidate;
            }
        }
        self.remove_at(victim, hasher);
    }

    fn remove_at(&mut self, i: usize, hasher: &DefaultHashBuilder) {
        let hash = self.slots[i].hash(hasher);
        if let Ok(entry) = self.index.find_entry(hash, |&j| j as usize == i) {
            entry.remove();
        }
        let last = self.slots.len() - 1;
        self.slots.swap_remove(i);
        if i != last {
            let moved = self.slots[i].hash(hasher);
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

/// What a miss waits on: the leader's answer, or nothing if it failed.
type FlightResult = Option<Arc<Answer>>;

/// Misses in flight, by key.
#[derive(Default)]
pub struct Flights {
    in_flight: Mutex<HashMap<Key, watch::Receiver<FlightResult>>>,
}

/// The first miss for a key fetches; later ones wait for it.
pub enum Flight<'a> {
    Leader(Leader<'a>),
    Follower(watch::Receiver<FlightResult>),
}

/// Held by the miss that fetches. Dropping it without [`Leader::finish`] (an error,
/// a cancelled task) releases the followers with no answer.
pub struct Leader<'a> {
    flights: &'a Flights,
    key: Key,
    tx: watch::Sender<FlightResult>,
}

impl Flights {
    pub fn join(&self, key: &[u8]) -> Flight<'_> {
        let mut in_flight = self.in_flight.lock().expect("flight table lock");
        if let Some(rx) = in_flight.get(key) {
            return Flight::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        in_flight.insert(key.into(), rx);
        Flight::Leader(Leader {
            flights: self,
            key: key.into(),
            tx,
        })
    }
}

impl Leader<'_> {
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    pub fn finish(self, answer: &Arc<Answer>) {
        self.tx.send_replace(Some(Arc::clone(answer)));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.flights
            .in_flight
            .lock()
            .expect("flight table lock")
            .remove(&self.key);
    }
}

/// Waits for the leader of a flight; `None` if it failed.
pub async fn follow(mut rx: watch::Receiver<FlightResult>) -> Option<Arc<Answer>> {
    rx.wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|a| a.clone())
}
