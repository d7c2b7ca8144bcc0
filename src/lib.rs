//! splitdns: a DNS forwarder and split resolver for hosts that run Consul and Docker.
//!
//! Who owns what, in the order a query meets them:
//! - [`server`]: UDP and TCP listeners; hands each packet to the handler;
//!   [`connections`] caps TCP connections.
//! - [`handler`]: one query top to bottom: admit, route, cache, upstream, respond.
//! - [`wire`]: the byte-level reads and patches of the hot path.
//! - [`router`]: zone -> route by longest suffix; [`zone`] is the name form it keys on.
//! - [`local`]: answers of local rules (`address=`, `local=`) and of ANY (RFC 8482).
//! - [`ratelimit`]: queries per second per client; [`rebind`]: no private
//!   addresses from the internet.
//! - [`cache`]: the answer cache and the single-flight table; [`answer`] is what it holds.
//! - [`upstream`]: one route's servers: failover, TCP fallback, reply validation;
//!   [`health`] decides which servers to ask and in what order.
//! - [`srv`]: SRV completion: targets' addresses cached and filled in.
//! - [`config`]: TOML and dnsmasq rule lines -> a validated [`Config`]; [`resolv`] reads resolv.conf.
//! - [`signal`]: OS signals -> shutdown.
//! - [`fuzzing`]: the entry points of the fuzz targets.

pub mod answer;
pub mod cache;
pub mod cli;
pub mod config;
pub mod connections;
pub mod fuzzing;
pub mod handler;
pub mod health;
pub mod local;
pub mod ratelimit;
pub mod rebind;
pub mod resolv;
pub mod router;
pub mod server;
pub mod signal;
pub mod srv;
pub mod upstream;
pub mod wire;
pub mod zone;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

pub use config::Config;
use config::{ConfigError, Listen};
use handler::{Shared, State};
use router::Router;
use server::{BindError, Listener};

/// How long shutdown waits for queries already being resolved.
const DRAIN: Duration = Duration::from_secs(5);

/// Why splitdns could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("listen {entry}: {problem}")]
    Interface { entry: String, problem: String },
    #[error("no listen address could be bound")]
    NothingBound,
}

/// A bound, not yet serving, splitdns.
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<Listener>,
    tcp: config::TcpConfig,
}

impl Server {
    /// Binds every listener of `config` and builds the routing table.
    pub async fn bind(config: Config) -> Result<Self, Error> {
        let workers = std::thread::available_parallelism().map_or(1, usize::from);
        let mut listeners = Vec::new();
        for addr in listen_addrs(&config.listen)? {
            match Listener::bind(addr, workers) {
                Ok(listener) => listeners.push(listener),
                Err(e) if addr.is_ipv6() && ipv6_missing(&e) => {
                    tracing::warn!(%addr, error = %e, "skipping an IPv6 listener: this host has no IPv6 there");
                }
                Err(e) => return Err(e.into()),
            }
        }
        if listeners.is_empty() {
            return Err(Error::NothingBound);
        }
        let bound: Vec<SocketAddr> = listeners.iter().map(|l| l.addr).collect();
        let state = build_state(&config, &bound);
        let cache = cache::Cache::new(config.cache.size)
            .with_serve_stale(config.cache.serve_stale)
            .with_prefetch(config.cache.prefetch);
        let rate_limit = ratelimit::RateLimit::new(config.guard.rate_limit);
        let shared = Shared::new(state, cache, rate_limit);
        Ok(Self {
            shared,
            listeners,
            tcp: config.tcp,
        })
    }

    /// The addresses actually bound, in listen order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.addr).collect()
    }

    /// Serves until `shutdown` completes, then lets queries in flight finish
    /// (for at most a few seconds).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let mut tasks = tokio::task::JoinSet::new();
        for listener in self.listeners {
            tracing::info!(addr = %listener.addr, "listening (UDP and TCP)");
            listener.spawn(&self.shared, &self.tcp, &mut tasks);
        }
        shutdown.await;
        tracing::info!("shutting down");
        tasks.abort_all();
        self.shared.drain(DRAIN).await;
        Ok(())
    }
}

/// The routing table and access list for `config`, given the bound addresses.
pub fn build_state(config: &Config, bound: &[SocketAddr]) -> State {
    let default_servers = if config.upstream.servers.is_empty() {
        resolv::upstreams(&config.upstream.resolv_conf, bound)
    } else {
        config.upstream.servers.clone()
    };
    if default_servers.is_empty() {
        tracing::warn!("no default upstream servers: names outside routed zones get SERVFAIL");
    }
    State {
        router: Router::new(config, default_servers),
        allow: config.allow.clone().unwrap_or_else(|| default_allow(bound)),
        rebind: rebind::Rebind::new(&config.guard),
    }
}

/// The listen addresses written as addresses (not interfaces), for `check`,
/// which binds nothing but should still skip them in resolv.conf.
pub fn literal_listen_addrs(config: &Config) -> Vec<SocketAddr> {
    config
        .listen
        .iter()
        .filter_map(|l| match l {
            Listen::Addr(addr) => Some(*addr),
            Listen::Interface { .. } => None,
        })
        .collect()
}

/// Expands `IFNAME:PORT` entries to the interface's addresses (IPv4 and
/// non-link-local IPv6).
fn listen_addrs(listen: &[Listen]) -> Result<Vec<SocketAddr>, Error> {
    let mut addrs = Vec::new();
    for entry in listen {
        match entry {
            Listen::Addr(addr) => addrs.push(*addr),
            Listen::Interface { name, port } => {
                let found: Vec<SocketAddr> = interfaces()
                    .into_iter()
                    .filter(|(ifname, net)| ifname == name && !is_link_local(net.addr()))
                    .map(|(_, net)| SocketAddr::new(net.addr(), *port))
                    .collect();
                if found.is_empty() {
                    return Err(Error::Interface {
                        entry: entry.to_string(),
                        problem: format!("interface {name} does not exist or has no address"),
                    });
                }
                addrs.extend(found);
            }
        }
    }
    Ok(addrs)
}

fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

/// Every interface address with its prefix.
fn interfaces() -> Vec<(String, IpNet)> {
    let Ok(ifaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    ifaces
        .into_iter()
        .filter_map(|i| {
            let net = match &i.addr {
                if_addrs::IfAddr::V4(a) => IpNet::new(a.ip.into(), a.prefixlen),
                if_addrs::IfAddr::V6(a) => IpNet::new(a.ip.into(), a.prefixlen),
            };
            net.ok().map(|n| (i.name, n))
        })
        .collect()
}

/// Loopback plus the subnets of the interfaces that hold a listened address:
/// never the world.
fn default_allow(bound: &[SocketAddr]) -> Vec<IpNet> {
    let mut allow: Vec<IpNet> = vec![
        "127.0.0.0/8".parse().expect("literal"),
        "::1/128".parse().expect("literal"),
    ];
    let nets = interfaces();
    for addr in bound {
        let ip = addr.ip();
        if ip.is_unspecified() {
            allow.extend(nets.iter().map(|(_, n)| n.trunc()));
        } else if let Some((_, net)) = nets.iter().find(|(_, n)| n.addr() == ip) {
            allow.push(net.trunc());
        }
    }
    allow.sort();
    allow.dedup();
    allow
}

fn ipv6_missing(e: &BindError) -> bool {
    matches!(e.source.raw_os_error(), Some(code) if code == 97 /* EAFNOSUPPORT */ || code == 99 /* EADDRNOTAVAIL */)
}
