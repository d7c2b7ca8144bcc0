//! The counters read back, as the SIGUSR1 dump that dnsmasq users know
//! (cache size, entries, hits, misses, evictions, then one line per upstream
//! server with its queries, failures and health), which `splitdns control
//! stats` prints. `Shared::stats` and `Shared::scrape` (in `state.rs`) fill
//! them in from the running state.

use std::fmt;
use std::net::SocketAddr;

/// What SIGUSR1 logs and `splitdns control stats` prints.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    /// `[cache] size`, in entries.
    pub size: u64,
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
    pub insertions: u64,
    pub evictions: u64,
    /// Every upstream server, in route order.
    pub servers: Vec<ServerStats>,
}

/// One upstream server's counters, for the route it serves.
#[derive(Debug, Clone)]
pub(crate) struct ServerStats {
    pub addr: SocketAddr,
    pub route: String,
    pub queries: u64,
    pub failed: u64,
    /// `timeout 2, servfail 1`: the kinds that happened.
    pub failures: String,
    /// Not failing for longer than the health window (what `/health` says).
    pub up: bool,
}

impl ServerStats {
    pub(crate) fn health(&self) -> &'static str {
        if self.up { "up" } else { "down" }
    }
}

/// One `key value` line for the cache, then one per server.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cache size {} entries {} hits {} misses {} insertions {} evictions {}",
            self.size, self.entries, self.hits, self.misses, self.insertions, self.evictions
        )?;
        for s in &self.servers {
            write!(
                f,
                "server {} route {} queries {} failed {} health {}",
                s.addr,
                s.route,
                s.queries,
                s.failed,
                s.health()
            )?;
            if !s.failures.is_empty() {
                write!(f, " ({})", s.failures)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
