//! Upstream health: which servers of a route to ask, and in what order.
//!
//! Each server keeps its consecutive failures and a smoothed round-trip time,
//! all atomics, so choosing servers takes no lock. A server that failed
//! [`DOWN_AFTER`] times in a row is down: queries skip it, and at most every
//! [`PROBE_EVERY`] one query is also sent to it in the background; its first
//! answer brings it back. When every server of a route is down they are all
//! asked anyway, since failing without asking helps no one.

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Consecutive failures that take a server out of rotation.
pub const DOWN_AFTER: u32 = 3;
/// The shortest time between two probes of a server that is down.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// `fastest` puts another server first on one query in this many, so a server
/// that was slow once gets measured again.
const REMEASURE_EVERY: u32 = 16;

/// How a route picks among its servers (`strategy` in `[upstream]` and `[[route]]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Healthy servers in the listed order, one after the other.
    #[default]
    Failover,
    /// Healthy servers by smoothed RTT, lowest first.
    Fastest,
    /// Every healthy server at once; the first good answer wins.
    Parallel,
}

impl FromStr for Strategy {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "failover" => Ok(Self::Failover),
            "fastest" => Ok(Self::Fastest),
            "parallel" => Ok(Self::Parallel),
            _ => Err("expected \"failover\", \"fastest\" or \"parallel\""),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Failover => "failover",
            Self::Fastest => "fastest",
            Self::Parallel => "parallel",
        })
    }
}

/// One server's record: failures in a row, smoothed RTT, last probe.
#[derive(Debug, Default)]
pub struct Health {
    failures_in_a_row: AtomicU32,
    /// Smoothed RTT in microseconds; 0 until the first answer.
    srtt_us: AtomicU32,
    /// When the last probe went out; locked only while the server is down.
    last_probe: Mutex<Option<Instant>>,
}

impl Health {
    pub fn is_up(&self) -> bool {
        self.failures_in_a_row.load(Ordering::Relaxed) < DOWN_AFTER
    }

    /// An answer came back after `rtt`: the server is up, and the RTT moves
    /// 1/8 of the way to it (the weight TCP gives its SRTT, RFC 6298 §2).
    pub fn succeeded(&self, rtt: Duration) {
        let was_down = !self.is_up();
        self.failures_in_a_row.store(0, Ordering::Relaxed);
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
        if was_down {
            tracing::info!("upstream server answers again");
        }
    }

    /// Returns true when this failure took the server down.
    pub fn failed(&self) -> bool {
        self.failures_in_a_row.fetch_add(1, Ordering::Relaxed) + 1 == DOWN_AFTER
    }

    pub fn srtt(&self) -> Duration {
        Duration::from_micros(u64::from(self.srtt_us.load(Ordering::Relaxed)))
    }

    /// Whether a down server is due a probe at `now`; claims it if so, so
    /// concurrent queries send one probe between them.
    pub fn claim_probe(&self, now: Instant) -> bool {
        if self.is_up() {
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

/// The order to ask servers in, as indices into `servers`: up servers only
/// (all of them when none is up), arranged by `strategy`. `turn` is a counter
/// that varies between queries, used by `fastest` to re-measure.
pub fn order(strategy: Strategy, servers: &[&Health], turn: u32) -> Vec<usize> {
    let mut up: Vec<usize> = (0..servers.len()).filter(|&i| servers[i].is_up()).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_failures_in_a_row_take_a_server_down_and_an_answer_brings_it_back() {
        let h = Health::default();
        assert!(!h.failed() && !h.failed());
        assert!(h.is_up());
        assert!(
            h.failed(),
            "the third failure is the one that takes it down"
        );
        assert!(!h.is_up());
        h.succeeded(Duration::from_millis(3));
        assert!(h.is_up());
    }

    #[test]
    fn probes_are_at_most_every_five_seconds_and_only_when_down() {
        let h = Health::default();
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
        let (a, b) = (Health::default(), Health::default());
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
        let (slow, fast) = (Health::default(), Health::default());
        slow.succeeded(Duration::from_millis(80));
        fast.succeeded(Duration::from_millis(2));
        assert_eq!(order(Strategy::Fastest, &[&slow, &fast], 1), [1, 0]);
        assert_eq!(order(Strategy::Fastest, &[&slow, &fast], 0), [0, 1]);
    }

    #[test]
    fn srtt_moves_an_eighth_of_the_way() {
        let h = Health::default();
        h.succeeded(Duration::from_micros(800));
        h.succeeded(Duration::from_micros(1600));
        assert_eq!(h.srtt(), Duration::from_micros(900));
    }
}
