//! Misses in flight: misses for the same key that overlap share one
//! upstream query; the first becomes the leader, the rest wait for its answer.
//!
//! A flight costs its leader no allocation: the key is kept inline, and the
//! place followers wait in is made only when the first follower comes, and
//! most misses are never followed.

use std::sync::{Arc, Mutex, OnceLock};

use hashbrown::HashMap;
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

/// A flight's key: the cache key and the routing epoch, so a miss that comes
/// in after a reload changed the routes does not wait on a fetch begun under
/// the old ones.
type FlightKey = (CacheKey, u64);

/// The flights in flight, by key; a flight's [`Fetching`] once one waits.
type Table = Mutex<HashMap<FlightKey, Option<Arc<Fetching>>>>;

/// Misses in flight. Cloning shares the table.
#[derive(Default, Clone)]
pub(crate) struct Flights {
    in_flight: Arc<Table>,
}

/// The first miss for a key fetches; later ones wait for it.
#[allow(clippy::large_enum_variant)] // the leader's key inline, where a box would be an allocation per miss
pub(crate) enum Flight {
    Leader(Leader),
    Follower(Follower),
}

/// Held by the miss that fetches; it owns its place in the table, so it can
/// wait anywhere (a task, a UDP thread's table). Dropping it without
/// [`Leader::finish`] (an error, a cancelled task) releases the followers
/// with no answer.
pub(crate) struct Leader {
    in_flight: Arc<Table>,
    key: FlightKey,
}

/// Held by a miss that waits for a leader: [`Follower::answer`].
pub(crate) struct Follower(Arc<Fetching>);

impl Flights {
    /// Joins the flight for `key` under routing `epoch`, or starts one.
    pub(crate) fn join(&self, key: &CacheKey, epoch: u64) -> Flight {
        let key = (*key, epoch);
        let mut in_flight = self.in_flight.lock().expect("flight table lock");
        match in_flight.get_mut(&key) {
            Some(fetching) => {
                let fetching = fetching.get_or_insert_with(Arc::default);
                Flight::Follower(Follower(Arc::clone(fetching)))
            }
            None => {
                in_flight.insert(key, None);
                Flight::Leader(Leader {
                    in_flight: Arc::clone(&self.in_flight),
                    key,
                })
            }
        }
    }
}

impl Leader {
    /// The cache key of the question being fetched.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key.0
    }

    pub(crate) fn finish(self, answer: &Arc<Answer>) {
        self.end(Some(answer));
        std::mem::forget(self);
    }

    /// Leaves the table, and gives the followers (if any came) the outcome.
    fn end(&self, answer: Option<&Arc<Answer>>) {
        let removed = self
            .in_flight
            .lock()
            .expect("flight table lock")
            .remove(&self.key);
        if let Some(Some(fetching)) = removed {
            let _ = fetching.outcome.set(answer.cloned());
            fetching.done.notify_waiters();
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.end(None);
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
        drop(leader);
        assert!(
            follower.answer().await.is_none(),
            "a failed leader releases its followers"
        );
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
        assert_eq!(old.key(), &*key);
        drop(old);
        assert!(
            matches!(flights.join(&key, 1), Flight::Follower(_)),
            "the old leader's end leaves the new flight in place"
        );
        drop(new);
    }
}
