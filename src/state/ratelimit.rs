//! Per-client rate limit: a token bucket per source address, in a fixed table.
//!
//! `[server] rate_limit = N` lets each client ask N queries per second with a
//! burst of N; past it the client gets REFUSED (never silence, so a stub
//! resolver fails fast instead of retrying). The table has a fixed number of
//! buckets indexed by a keyed hash of the address (IPv6 by its /64, which one
//! host usually owns whole), so memory stays the same whatever the number of
//! sources, spoofed or not; two clients that share a bucket share its budget.
//! Each bucket is one atomic word: no lock on the query path.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hashbrown::DefaultHashBuilder;

/// Buckets in the table: 128 KiB.
const BUCKETS: usize = 1 << 14;
/// Tokens are counted in thousandths, so refill is exact per millisecond.
const MILLI: u64 = 1000;

pub(crate) struct RateLimit {
    /// Queries per second per client; 0 = no limit.
    rate: u32,
    buckets: Box<[AtomicU64]>,
    hasher: DefaultHashBuilder,
    /// Bucket times are milliseconds since this.
    epoch: Instant,
}

impl RateLimit {
    pub(crate) fn new(rate: u32) -> Self {
        let buckets = if rate == 0 { 0 } else { BUCKETS };
        Self {
            rate,
            buckets: (0..buckets).map(|_| AtomicU64::new(0)).collect(),
            hasher: DefaultHashBuilder::default(),
            epoch: Instant::now(),
        }
    }

    /// Whether `client` may ask one more query at `now`; takes its token if so.
    pub(crate) fn admit(&self, client: IpAddr, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let bucket = &self.buckets[self.bucket_of(client)];
        let now_ms = self.millis(now);
        let capacity = u64::from(self.rate) * MILLI;
        let mut admitted = false;
        let _ = bucket.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |state| {
            let (last_ms, tokens) = ((state >> 32) as u32, state & 0xffff_ffff);
            let elapsed = u64::from(now_ms.wrapping_sub(last_ms));
            // A "negative" elapsed (another thread stored a later time) refills nothing.
            let elapsed = if elapsed > u64::from(u32::MAX / 2) {
                0
            } else {
                elapsed
            };
            let tokens = if state == 0 {
                capacity
            } else {
                (tokens + elapsed * u64::from(self.rate)).min(capacity)
            };
            admitted = tokens >= MILLI;
            let left = if admitted { tokens - MILLI } else { tokens };
            Some(u64::from(now_ms) << 32 | left.min(u64::from(u32::MAX)))
        });
        admitted
    }

    /// Milliseconds since start, wrapping every 49 days (elapsed times are
    /// taken with wrapping arithmetic). Starts at 1: 0 marks an unused bucket.
    fn millis(&self, now: Instant) -> u32 {
        (now.saturating_duration_since(self.epoch).as_millis() as u32).wrapping_add(1)
    }

    fn bucket_of(&self, client: IpAddr) -> usize {
        let key: u128 = match client {
            IpAddr::V4(v4) => u128::from(v4.to_bits()),
            IpAddr::V6(v6) => v6.to_bits() >> 64 | 1 << 127,
        };
        self.hasher.hash_one(key) as usize & (BUCKETS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill_at_the_rate() {
        let limit = RateLimit::new(10);
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        let now = Instant::now();
        assert_eq!((0..20).filter(|_| limit.admit(client, now)).count(), 10);
        let later = now + Duration::from_millis(500);
        assert_eq!((0..20).filter(|_| limit.admit(client, later)).count(), 5);
    }

    #[test]
    fn clients_have_their_own_budget() {
        let limit = RateLimit::new(2);
        let now = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b = (2..=255u8)
            .map(|i| IpAddr::from([192, 0, 2, i]))
            .find(|b| limit.bucket_of(*b) != limit.bucket_of(a))
            .unwrap();
        assert!(limit.admit(a, now) && limit.admit(a, now) && !limit.admit(a, now));
        assert!(
            limit.admit(b, now),
            "another client is not limited by the first"
        );
    }

    #[test]
    fn zero_means_no_limit_and_no_table() {
        let limit = RateLimit::new(0);
        assert!(limit.buckets.is_empty());
        let now = Instant::now();
        assert!((0..10_000).all(|_| limit.admit("192.0.2.1".parse().unwrap(), now)));
    }
}
