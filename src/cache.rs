//! The answer cache and the single-flight table in front of it.
//!
//! Entries are whole encoded [`Answer`]s keyed on the lowercased question; each
//! lives for its own lifetime (moka's per-entry expiry), and the entry count is
//! bounded by the configured size. Misses for the same key that overlap share one
//! upstream query: the first becomes the leader, the rest wait for its answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::Expiry;
use tokio::sync::watch;

use crate::answer::Answer;
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
pub struct Cache {
    entries: Option<moka::sync::Cache<Key, Arc<Answer>>>,
}

struct AnswerLifetime;

impl Expiry<Key, Arc<Answer>> for AnswerLifetime {
    fn expire_after_create(&self, _: &Key, answer: &Arc<Answer>, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(u64::from(answer.lifetime())))
    }

    fn expire_after_update(
        &self,
        key: &Key,
        answer: &Arc<Answer>,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(key, answer, at)
    }
}

impl Cache {
    pub fn new(size: u64) -> Self {
        let entries = (size > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(size)
                .expire_after(AnswerLifetime)
                .build()
        });
        Self { entries }
    }

    /// A fresh answer for `key`, if any.
    pub fn get(&self, key: &[u8], now: Instant) -> Option<Arc<Answer>> {
        let answer = self.entries.as_ref()?.get(key)?;
        answer.is_fresh(now).then_some(answer)
    }

    /// Keeps `answer` if it has a lifetime; TTL 0 and failures are not kept.
    pub fn insert(&self, key: &[u8], answer: &Arc<Answer>) {
        if let Some(entries) = &self.entries
            && answer.lifetime() > 0
        {
            entries.insert(key.into(), Arc::clone(answer));
        }
    }

    /// Entries held now (moka's count lags inserts slightly).
    pub fn len(&self) -> u64 {
        self.entries.as_ref().map_or(0, |e| {
            e.run_pending_tasks();
            e.entry_count()
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
