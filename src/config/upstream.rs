//! The `strategy` key of `[upstream]` and `[[route]]`: how a route picks
//! among its servers.

use std::fmt;
use std::str::FromStr;

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
