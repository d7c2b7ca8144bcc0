//! Misses in flight: misses for the same key that overlap share one
//! upstream query; the first becomes the leader, the rest wait for its answer.

use std::sync::{Arc, Mutex, OnceLock};

use hashbrown::HashMap;
use tokio::sync::Notify;

use crate::dns::answer::Answer;

use super::key::MAX_KEY;

/// One fetch in flight: its outcome once known (`None` inside when it
/// failed), and the wake-up of the misses waiting for it. One allocation and
/// one wake-up list per fetch.
#[derive(Default)]
struct Fetching {
    outcome: OnceLock<Option<Arc<Answer>>>,
    done: Notify,
}

/// Misses in flight, by key and routing epoch: a miss that comes in after a
/// reload changed the routes does not wait on a fetch begun under the old ones.
#[derive(Default)]
pub(crate) struct Flights {
    in_flight: Mutex<HashMap<FlightKey, Arc<Fetching>>>,
}

/// The first miss for a key fetches; later ones wait for it.
pub(crate) enum Flight<'a> {
    Leader(Leader<'a>),
    Follower(Follower),
}

/// Held by the miss that fetches. Dropping it without [`Leader::finish`] (an error,
/// a cancelled task) releases the followers with no answer.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    /// The cache key, then the epoch's eight bytes.
    key: FlightKey,
    flight: Arc<Fetching>,
}

/// Held by a miss that waits for a leader: [`Follower::answer`].
pub(crate) struct Follower(Arc<Fetching>);

const EPOCH_LEN: usize = 8;

/// A flight's key: the cache key, then the routing epoch's eight bytes.
type FlightKey = Box<[u8]>;

impl Flights {
    /// Joins the flight for `key` under routing `epoch`, or starts one.
    pub(crate) fn join(&self, key: &[u8], epoch: u64) -> Flight<'_> {
        let mut buf = [0; MAX_KEY + EPOCH_LEN];
        buf[..key.len()].copy_from_slice(key);
        buf[key.len()..key.len() + EPOCH_LEN].copy_from_slice(&epoch.to_be_bytes());
        let flight_key = &buf[..key.len() + EPOCH_LEN];
        let mut in_flight = self.in_flight.lock().expect("flight table lock");
        if let Some(flight) = in_flight.get(flight_key) {
            return Flight::Follower(Follower(Arc::clone(flight)));
        }
        let flight = Arc::new(Fetching::default());
        let key: FlightKey = flight_key.into();
        in_flight.insert(key.clone(), Arc::clone(&flight));
        Flight::Leader(Leader {
            flights: self,
            key,
            flight,
        })
    }
}

impl Leader<'_> {
    /// The cache key of the question being fetched.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key[..self.key.len() - EPOCH_LEN]
    }

    pub(crate) fn finish(self, answer: &Arc<Answer>) {
        let _ = self.flight.outcome.set(Some(Arc::clone(answer)));
        // Drop wakes the followers.
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.flights
            .in_flight
            .lock()
            .expect("flight table lock")
            .remove(&self.key);
        let _ = self.flight.outcome.set(None);
        self.flight.done.notify_waiters();
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
        let (key, a) = answer(1, 300, now);
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
        let (key, _) = answer(1, 300, Instant::now());
        let Flight::Leader(old) = flights.join(&key, 0) else {
            panic!("first is the leader")
        };
        let Flight::Leader(new) = flights.join(&key, 1) else {
            panic!("another epoch leads its own fetch")
        };
        assert_eq!(old.key(), &key[..]);
        drop(old);
        assert!(
            matches!(flights.join(&key, 1), Flight::Follower(_)),
            "the old leader's end leaves the new flight in place"
        );
        drop(new);
    }
}
