//! Upstream health: which servers of a route to ask and in what order, and
//! what `/health` and `splitdns_upstream_healthy` report.
//!
//! Each server keeps its consecutive failures, a smoothed round-trip time and
//! when its current run of failures began, all atomics, so choosing servers
//! takes no lock. For choosing: a server that failed [`DOWN_AFTER`] times in a
//! row is out of rotation; queries skip it, and at most every [`PROBE_EVERY`]
//! one query is also sent to it in the background; its first answer brings it
//! back. When every server of a route is out, they are all asked anyway,
//! since failing without asking helps no one. For reporting: a server is down
//! once its attempts have kept failing, without one good reply, for the health
//! window, and up again at its next good reply; a server never asked counts as
//! up, and a route is healthy while one of its servers is up
//! ([`Router::check_health`](crate::resolve::router::Router::check_health)
//! asks that of every route).
//!
//! One server's record, below the upstreams that keep one per server: it
//! knows nothing of routes.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::Strategy;
use crate::dns::clock;

/// Consecutive failures that take a server out of rotation.
pub(crate) const DOWN_AFTER: u32 = 3;
/// The shortest time between two probes of a server out of rotation.
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(5);
/// `fastest` puts another server first on one query in this many, so a server
/// that was slow once gets measured again.
const REMEASURE_EVERY: u32 = 16;

/// One server's recent outcome, updated with relaxed atomics by every attempt.
#[derive(Debug, Default)]
pub struct ServerHealth {
    /// When the current run of failures began ([`millis`]); 0 while answering.
    failing_since: AtomicU64,
    failures_in_a_row: AtomicU32,
    /// Smoothed RTT in microseconds; 0 until the first answer.
    srtt_us: AtomicU32,
    /// When the last probe went out; locked only while out of rotation.
    last_probe: Mutex<Option<Instant>>,
}

impl ServerHealth {
    /// A usable reply after `rtt`: the server is up and back in rotation, and
    /// its RTT moves 1/8 of the way to `rtt` (the weight TCP gives its SRTT,
    /// RFC 6298 §2).
    pub fn answered(&self, rtt: Duration) {
        if self.failing_since.load(Ordering::Relaxed) != 0 {
            self.failing_since.store(0, Ordering::Relaxed);
        }
        if self.failures_in_a_row.load(Ordering::Relaxed) != 0 {
            self.failures_in_a_row.store(0, Ordering::Relaxed);
        }
        let sample = u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX).max(1);
        let _ = self
            .srtt_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    ((u64::from(old) * 7 + u64::from(sample)) / 8) as u32
                })
            });
    }

    /// A timeout, SERVFAIL, REFUSED or bad reply. Returns true when this
    /// failure took the server out of rotation.
    pub fn failed(&self) -> bool {
        let _ = self.failing_since.compare_exchange(
            0,
            millis(Instant::now()),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 == DOWN_AFTER
    }

    /// Up unless it has been failing for at least `window` (what `/health` reports).
    pub fn is_up(&self, window: Duration, now: Instant) -> bool {
        match self.failing_since.load(Ordering::Relaxed) {
            0 => true,
            since => u128::from(millis(now).saturating_sub(since)) < window.as_millis(),
        }
    }

    /// Fewer than [`DOWN_AFTER`] failures in a row: queries may be sent to it.
    pub fn in_rotation(&self) -> bool {
        self.failures_in_a_row.load(Ordering::Relaxed) < DOWN_AFTER
    }

    pub fn srtt(&self) -> Duration {
        Duration::from_micros(u64::from(self.srtt_us.load(Ordering::Relaxed)))
    }

    /// Whether a server out of rotation is due a probe at `now`; claims it if
    /// so, so concurrent queries send one probe between them.
    pub fn claim_probe(&self, now: Instant) -> bool {
        if self.in_rotation() {
            return false;
        }
        let mut last = self.last_probe.lock().expect("probe time lock");
        let due = last.is_none_or(|at| now.saturating_duration_since(at) >= PROBE_EVERY);
        if due {
            *last = Some(now);
        }
        due
    }
}

/// The order to ask servers in, as indices into `servers`: those in rotation
/// only (all of them when none is), arranged by `strategy`. `turn` is a counter
/// that varies between queries, used by `fastest` to re-measure.
pub(crate) fn order(strategy: Strategy, servers: &[&ServerHealth], turn: u32) -> Vec<usize> {
    let mut up: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].in_rotation())
        .collect();
    if up.is_empty() {
        up = (0..servers.len()).collect();
    }
    if strategy == Strategy::Fastest {
        up.sort_by_key(|&i| servers[i].srtt());
        if up.len() > 1 && turn.is_multiple_of(REMEASURE_EVERY) {
            let other = 1 + (turn / REMEASURE_EVERY) as usize % (up.len() - 1);
            up.swap(0, other);
        }
    }
    up
}

/// Milliseconds since the first call, plus one so that 0 can mean "not failing".
fn millis(now: Instant) -> u64 {
    clock::since_start(now).as_millis() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_only_after_failing_for_the_window_and_up_at_the_next_answer() {
        let h = ServerHealth::default();
        let window = Duration::from_secs(5);
        let t0 = Instant::now();
        assert!(h.is_up(window, t0));
        h.failed();
        assert!(h.is_up(window, Instant::now()));
        h.failed();
        assert!(!h.is_up(window, Instant::now() + window));
        h.answered(Duration::from_millis(1));
        assert!(h.is_up(window, Instant::now() + window));
    }

    #[test]
    fn three_failures_in_a_row_take_a_server_down_and_an_answer_brings_it_back() {
        let h = ServerHealth::default();
        assert!(!h.failed() && !h.failed());
        assert!(h.in_rotation());
        assert!(
            h.failed(),
            "the third failure is the one that takes it down"
        );
        assert!(!h.in_rotation());
        h.answered(Duration::from_millis(3));
        assert!(h.in_rotation());
    }

    #[test]
    fn probes_are_at_most_every_five_seconds_and_only_when_down() {
        let h = ServerHealth::default();
        let now = Instant::now();
        assert!(!h.claim_probe(now), "an up server is not probed");
        for _ in 0..DOWN_AFTER {
            h.failed();
        }
        assert!(h.claim_probe(now));
        assert!(!h.claim_probe(now + Duration::from_secs(4)));
        assert!(h.claim_probe(now + Duration::from_secs(5)));
    }

    #[test]
    fn order_skips_down_servers_unless_all_are_down() {
        let (a, b) = (ServerHealth::default(), ServerHealth::default());
        for _ in 0..DOWN_AFTER {
            a.failed();
        }
        assert_eq!(order(Strategy::Failover, &[&a, &b], 1), [1]);
        for _ in 0..DOWN_AFTER {
            b.failed();
        }
        assert_eq!(order(Strategy::Failover, &[&a, &b], 1), [0, 1]);
    }

    #[test]
    fn fastest_prefers_lowest_srtt_and_sometimes_remeasures() {
        let (slow, fast) = (ServerHealth::default(), ServerHealth::default());
        slow.answered(Duration::from_millis(80));
        fast.answered(Duration::from_millis(2));
        assert_eq!(order(Strategy::Fastest, &[&slow, &fast], 1), [1, 0]);
        assert_eq!(order(Strategy::Fastest, &[&slow, &fast], 0), [0, 1]);
    }

    #[test]
    fn srtt_moves_an_eighth_of_the_way() {
        let h = ServerHealth::default();
        h.answered(Duration::from_micros(800));
        h.answered(Duration::from_micros(1600));
        assert_eq!(h.srtt(), Duration::from_micros(900));
    }
}
