//! Misses in flight: misses for the same key that overlap share one
//! upstream query; the first becomes the leader, the rest wait for its answer.
//!
//! A flight costs its leader no allocation: the key is kept inline, and the
//! place followers wait in is made only when the first follower comes, and
//! most misses are never followed.

use std::borrow::Borrow;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use hashbrown::{DefaultHashBuilder, HashTable};
use tokio::sync::Notify;

use crate::dns::answer::Answer;

use super::key::CacheKey;

/// One fetch that misses are waiting for: its outcome once known (`None`
/// inside when it failed), and their wake-up.
#[derive(Default)]
struct Fetching {
    outcome: OnceLock<Option<Arc<Answer>>>,
    done: Notify,
}

/// A flight in the table: its key (the cache key and the routing epoch, so
/// a miss that comes in after a reload changed the routes does not wait on
/// a fetch begun under the old ones), the number its leader knows it by,
/// and its [`Fetching`] once a follower waits.
struct FlightEntry {
    key: CacheKey,
    epoch: u64,
    id: u64,
    waiting: Option<Arc<Fetching>>,
}

#[derive(Default)]
struct FlightTable {
    entries: Mutex<HashTable<FlightEntry>>,
    hasher: DefaultHashBuilder,
    next_id: AtomicU64,
}

/// Misses in flight. Cloning shares the table.
#[derive(Default, Clone)]
pub(crate) struct Flights {
    table: Arc<FlightTable>,
}

/// The first miss for a key fetches; later ones wait for it.
pub(crate) enum Flight {
    Leader(Leader),
    Follower(Follower),
}

/// Held by the miss that fetches; it owns its place in the table, and knows
/// it by hash and number rather than by key, so it is small to carry
/// wherever the fetch waits (a task, a UDP thread's table). Dropping it
/// without [`Leader::finish`] (an error, a cancelled task) releases the
/// followers with no answer.
pub(crate) struct Leader {
    table: Arc<FlightTable>,
    hash: u64,
    id: u64,
    /// [`Leader::finish`] gave the followers the answer.
    finished: bool,
}

/// Held by a miss that waits for a leader: [`Follower::answer`].
pub(crate) struct Follower(Arc<Fetching>);

impl Flights {
    /// Joins the flight for `key` under routing `epoch`, or starts one.
    pub(crate) fn join(&self, key: &CacheKey, epoch: u64) -> Flight {
        let table = &self.table;
        let hash = table.hasher.hash_one((&**key, epoch));
        let mut entries = table.entries.lock().expect("flight table lock");
        let same = |e: &FlightEntry| e.epoch == epoch && e.key == *key;
        if let Some(entry) = entries.find_mut(hash, same) {
            let fetching = entry.waiting.get_or_insert_with(Arc::default);
            return Flight::Follower(Follower(Arc::clone(fetching)));
        }
        let id = table.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = FlightEntry {
            key: *key,
            epoch,
            id,
            waiting: None,
        };
        entries.insert_unique(hash, entry, |e| table.hasher.hash_one((&*e.key, e.epoch)));
        Flight::Leader(Leader {
            table: Arc::clone(table),
            hash,
            id,
            finished: false,
        })
    }
}

/// An answer as its fetch's leader finishes with it: one shared already
/// goes to the followers as it is; a plain one is made shared only when a
/// follower waits, which most fetches never have, so a fetch that nobody
/// followed allocates nothing for them.
pub(crate) trait Shareable: Borrow<Answer> {
    fn shared(&self) -> Arc<Answer>;
}

impl Shareable for Arc<Answer> {
    fn shared(&self) -> Arc<Answer> {
        Self::clone(self)
    }
}

impl Shareable for Answer {
    fn shared(&self) -> Arc<Answer> {
        Arc::new(self.clone())
    }
}

impl Leader {
    pub(crate) fn finish(mut self, answer: &impl Shareable) {
        self.end(Some(answer));
        self.finished = true;
    }

    /// Leaves the table, and gives the followers (if any came) the outcome.
    fn end<A: Shareable>(&self, answer: Option<&A>) {
        let mut entries = self.table.entries.lock().expect("flight table lock");
        let Ok(entry) = entries.find_entry(self.hash, |e| e.id == self.id) else {
            return;
        };
        let (entry, _) = entry.remove();
        drop(entries);
        if let Some(fetching) = entry.waiting {
            let _ = fetching.outcome.set(answer.map(Shareable::shared));
            fetching.done.notify_waiters();
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if !self.finished {
            self.end::<Answer>(None);
        }
    }
}

impl Follower {
    /// The leader's answer once it has one; `None` if it failed.
    pub(crate) async fn answer(self) -> Option<Arc<Answer>> {
        let done = self.0.done.notified();
        tokio::pin!(done);
        // Registered before the outcome is looked at, so a leader that
        // finishes in between still wakes this one.
        done.as_mut().enable();
        if let Some(outcome) = self.0.outcome.get() {
            return outcome.clone();
        }
        done.await;
        self.0.outcome.get().cloned().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::cache::tests::answer;
    use std::time::Instant;

    #[tokio::test]
    async fn followers_get_the_leaders_answer_or_none() {
        let flights = Flights::default();
        let now = Instant::now();
        let (_, a) = answer(1, 300, now);
        let key = CacheKey::new(b"\x02n1\x04test\x00", 1, 1, false, false);
        let Flight::Leader(leader) = flights.join(&key, 0) else {
            panic!("first is the leader")
        };
        let Flight::Follower(follower) = flights.join(&key, 0) else {
            panic!("second follows")
        };
        leader.finish(&Arc::new(a.clone()));
        assert_eq!(follower.answer().await.as_deref(), Some(&a));
        let Flight::Leader(leader) = flights.join(&key, 0) else {
            panic!("a finished flight is gone")
        };
        let Flight::Follower(follower) = flights.join(&key, 0) else {
            panic!("second follows")
        };
        leader.finish(&a);
        assert_eq!(follower.answer().await.as_deref(), Some(&a));
        let Flight::Leader(leader) = flights.join(&key, 0) else {
            panic!("a finished flight is gone")
        };
        let Flight::Follower(follower) = flights.join(&key, 0) else {
            panic!("second follows")
        };
        drop(leader);
        assert!(
            follower.answer().await.is_none(),
            "a failed leader releases its followers"
        );
    }

    /// Most misses are never followed: leading one, and finishing it with a
    /// plain answer, allocates nothing (the answer is made shared only for
    /// followers, and the key is kept inline).
    #[test]
    fn a_flight_nobody_follows_allocates_nothing() {
        let flights = Flights::default();
        let (_, a) = answer(1, 300, Instant::now());
        let key = CacheKey::new(b"\x02n1\x04test\x00", 1, 1, false, false);
        // The table's first entry grows it; later flights reuse the room.
        drop(flights.join(&key, 0));
        let ((), made) = crate::dns::allocations::made_by(|| {
            let Flight::Leader(leader) = flights.join(&key, 0) else {
                panic!("first is the leader")
            };
            leader.finish(&a);
        });
        assert_eq!(made, 0, "allocations to lead and finish a flight");
    }

    #[tokio::test]
    async fn a_miss_under_a_new_epoch_does_not_follow_a_flight_of_the_old_one() {
        let flights = Flights::default();
        let key = CacheKey::new(b"\x02n1\x04test\x00", 1, 1, false, false);
        let Flight::Leader(old) = flights.join(&key, 0) else {
            panic!("first is the leader")
        };
        let Flight::Leader(new) = flights.join(&key, 1) else {
            panic!("another epoch leads its own fetch")
        };
        drop(old);
        assert!(
            matches!(flights.join(&key, 1), Flight::Follower(_)),
            "the old leader's end leaves the new flight in place"
        );
        drop(new);
    }
}
