//! Upstream health, as `/health` and `splitdns_upstream_healthy` report it.
//!
//! Passive, from real traffic: a server is down once its attempts have kept
//! failing, without one good reply, for the health window, and up again at its
//! next good reply. A server never asked counts as up. A route is healthy while
//! one of its servers is up.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::handler::State;
use crate::router::Action;

/// One server's recent outcome, updated with relaxed atomics by every attempt.
#[derive(Debug, Default)]
pub struct ServerHealth {
    /// When the current run of failures began ([`millis`]); 0 while answering.
    failing_since: AtomicU64,
}

impl ServerHealth {
    /// A usable reply: the server is up.
    pub fn answered(&self) {
        if self.failing_since.load(Ordering::Relaxed) != 0 {
            self.failing_since.store(0, Ordering::Relaxed);
        }
    }

    /// A timeout, SERVFAIL, REFUSED or bad reply.
    pub fn failed(&self) {
        let _ = self.failing_since.compare_exchange(
            0,
            millis(Instant::now()),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Up unless it has been failing for at least `window`.
    pub fn is_up(&self, window: Duration, now: Instant) -> bool {
        match self.failing_since.load(Ordering::Relaxed) {
            0 => true,
            since => u128::from(millis(now).saturating_sub(since)) < window.as_millis(),
        }
    }
}

/// Milliseconds since the first call, plus one so that 0 can mean "not failing".
fn millis(now: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    now.saturating_duration_since(epoch).as_millis() as u64 + 1
}

/// `Ok` when every forwarding route has a server that is up; otherwise the
/// routes that have none, one per line, for the `/health` body.
pub fn check(state: &State, window: Duration) -> Result<(), String> {
    let now = Instant::now();
    let mut problems = String::new();
    for route in state.router.routes() {
        let Action::Forward(upstream) = &route.action else {
            continue;
        };
        let servers = upstream.members();
        if servers.is_empty() {
            let _ = writeln!(problems, "route {}: no upstream servers", route.zone);
        } else if !servers.iter().any(|s| s.health().is_up(window, now)) {
            let names: Vec<String> = servers.iter().map(|s| s.addr().to_string()).collect();
            let _ = writeln!(
                problems,
                "route {}: no answer from {} for {:?} or more",
                route.zone,
                names.join(", "),
                window
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
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
        h.answered();
        assert!(h.is_up(window, Instant::now() + window));
    }
}
