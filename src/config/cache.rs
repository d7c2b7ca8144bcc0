//! `[cache]`: its size, the bounds on the TTLs it keeps, serving stale
//! answers (RFC 8767) and prefetch.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::ConfigError;
use super::text::ConfigText;

/// `[cache]`: TTL bounds are in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Entries; 0 disables the cache.
    pub size: u64,
    pub min_ttl: u32,
    pub max_ttl: u32,
    pub max_negative_ttl: u32,
    /// How long past expiry an entry may still be served when the upstreams
    /// fail (RFC 8767), in seconds; 0 turns serving stale off. Default 1 h.
    pub serve_stale: u32,
    /// Refresh an entry in the background when it is asked for in the last
    /// 10% of its TTL. Default off.
    pub prefetch: bool,
}

/// The default ceiling on cached TTLs: one day, in seconds.
const DEFAULT_MAX_TTL: u32 = 86_400;
/// RFC 8767 §5 suggests one to three days; an hour covers an agent restart or
/// an outage upstream without serving data that has long gone wrong.
const DEFAULT_SERVE_STALE: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawCache {
    pub(super) size: u64,
    /// Spanned, so that a floor above the ceiling is reported at its line.
    pub(super) min_ttl: Option<Spanned<u32>>,
    pub(super) max_ttl: Option<u32>,
    pub(super) max_negative_ttl: u32,
    pub(super) serve_stale: Option<Spanned<String>>,
    pub(super) prefetch: bool,
}

impl Default for RawCache {
    fn default() -> Self {
        Self {
            size: 10_000,
            min_ttl: None,
            max_ttl: None,
            max_negative_ttl: 3_600,
            serve_stale: None,
            prefetch: false,
        }
    }
}

impl ConfigText<'_> {
    pub(super) fn cache(&self, raw: RawCache) -> Result<CacheConfig, ConfigError> {
        let max_ttl = raw.max_ttl.unwrap_or(DEFAULT_MAX_TTL);
        let min_ttl = raw.min_ttl.as_ref().map_or(0, |m| *m.get_ref());
        if let Some(min) = &raw.min_ttl
            && min_ttl > max_ttl
        {
            return Err(self.invalid_at(
                "[cache] min_ttl",
                min.span(),
                min_ttl,
                format!("is above max_ttl = {max_ttl}: lower min_ttl or raise max_ttl"),
            ));
        }
        let serve_stale = self.duration(
            "[cache] serve_stale",
            raw.serve_stale.as_ref(),
            DEFAULT_SERVE_STALE,
            Duration::ZERO,
        )?;
        Ok(CacheConfig {
            size: raw.size,
            min_ttl,
            max_ttl,
            max_negative_ttl: raw.max_negative_ttl,
            serve_stale: u32::try_from(serve_stale.as_secs()).unwrap_or(u32::MAX),
            prefetch: raw.prefetch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    /// A floor above the ceiling is refused where it is written: the line of
    /// `min_ttl`, in the located form every other value error has.
    #[test]
    fn min_ttl_above_max_ttl_names_its_line() {
        let err = parse("[cache]\nmax_ttl = 60\nmin_ttl = 120").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "test.toml:3: [cache] min_ttl = 120: is above max_ttl = 60: \
             lower min_ttl or raise max_ttl"
        );
        let c = parse("[cache]\nmax_ttl = 60\nmin_ttl = 60").unwrap();
        assert_eq!((c.cache.min_ttl, c.cache.max_ttl), (60, 60));
    }
}
