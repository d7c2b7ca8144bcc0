//! The one clock splitdns counts from: cache entries keep their expiry as
//! seconds since it, server health its failure runs as milliseconds since it.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The time since the first time anything asked (`now` before that counts as 0).
pub(crate) fn since_start(now: Instant) -> Duration {
    static START: OnceLock<Instant> = OnceLock::new();
    now.saturating_duration_since(*START.get_or_init(Instant::now))
}
