//! The one clock splitdns counts from: cache entries keep their expiry as
//! seconds since it, server health its failure runs as milliseconds since it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How far before the first reading the clock starts, so that an `Instant` taken just
/// before anything read the clock (a test's `now`, a packet's arrival) still counts
/// its seconds whole instead of being cut to 0 and losing a fraction against later ones.
const HEADROOM: Duration = Duration::from_secs(60);

/// The time since the clock's start, [`HEADROOM`] before the first time anything asked
/// (where the platform can go back that far); `now` before the start counts as 0.
pub(crate) fn since_start(now: Instant) -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(|| {
        let first = Instant::now();
        first.checked_sub(HEADROOM).unwrap_or(first)
    });
    now.saturating_duration_since(*start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instant taken before the clock's first reading keeps whole seconds: 12 s
    /// after it is 12 s after it on this clock too, as the cache's countdown needs.
    #[test]
    fn an_instant_from_before_the_first_reading_counts_whole_seconds() {
        let before = Instant::now();
        std::thread::sleep(Duration::from_millis(5));
        let later = before + Duration::from_secs(12);
        assert_eq!(
            since_start(later).as_secs() - since_start(before).as_secs(),
            12
        );
    }
}
