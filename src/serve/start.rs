//! Start-up: binding the listeners and building the state a config
//! describes, then serving until shutdown. A reload builds its new router
//! itself, so that it can compare it with the one in force, and then its state
//! through the same [`State::assemble`] as [`State::build`] does.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::config::{self, Config, Listen};
use crate::host::interfaces;
use crate::host::local_data;
use crate::host::signal::{self, Control};
use crate::observe::http;
use crate::observe::metrics::Metrics;
use crate::resolve::cache;
use crate::resolve::consul::{self, Mirror};
use crate::resolve::dnssec;
use crate::serve::control;
use crate::serve::listeners::{self, BindError, Listeners};
use crate::serve::reload::{self, Loader};
use crate::serve::udp_threads::UdpThreads;
use crate::state::{self, Shared, State, ratelimit};

/// How long shutdown waits for queries already being resolved.
const DRAIN: Duration = Duration::from_secs(5);

/// Why splitdns could not start, or why `check` says it would not.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Local(#[from] local_data::LoadError),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error(
        "[metrics] listen {addr}: cannot listen: {source}; pick a free port or remove the [metrics] table"
    )]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the threads that answer UDP: {0}")]
    UdpThreads(std::io::Error),
    #[error(transparent)]
    Consul(#[from] consul::TokenError),
}

/// A bound, not yet serving, splitdns.
pub struct Server {
    shared: Arc<Shared>,
    listeners: Listeners,
    config: Config,
    loader: Loader,
    /// The `[metrics]` endpoint, when configured.
    http: Option<http::Endpoint>,
    /// The `[control]` socket, when configured.
    control: Option<control::Socket>,
}

impl Server {
    /// Binds every listener of `config`, the control socket included, and
    /// builds the routing table. An `IFNAME:PORT` whose interface is missing
    /// is waited for, not an error.
    pub async fn bind(config: Config) -> Result<Self, StartError> {
        let control = control::Socket::bind(&config)?;
        Self::bind_with_control(config, control).await
    }

    /// [`Server::bind`] with the control socket bound already (before the
    /// switch to `[server] user`, which may not create files where it goes).
    pub async fn bind_with_control(
        config: Config,
        control: Option<control::Socket>,
    ) -> Result<Self, StartError> {
        let udp_threads = UdpThreads::start(config.threads).map_err(StartError::UdpThreads)?;
        let listeners = Listeners::bind(&config.listen, Arc::new(udp_threads))?;
        let http = match &config.metrics {
            Some(m) => {
                Some(
                    http::Endpoint::bind(m)
                        .await
                        .map_err(|source| StartError::Metrics {
                            addr: m.listen,
                            source,
                        })?,
                )
            }
            None => None,
        };
        let metrics = Metrics::new();
        let state = State::build(&config, &listeners.addrs(), &metrics)?;
        metrics.config_loaded(&config);
        let cache = cache::Cache::new(config.cache.size)
            .with_serve_stale(config.cache.serve_stale)
            .with_prefetch(config.cache.prefetch);
        let guards = state::Guards {
            rate_limit: ratelimit::RateLimit::new(config.guard.rate_limit),
            tcp: config.tcp.clone(),
        };
        let mirror = match &config.consul {
            Some(consul) => {
                let zones = config.routes.iter().flat_map(|r| &r.zones);
                let zones = zones.map(ToString::to_string);
                Some(Mirror::start(consul, zones.collect(), &metrics)?)
            }
            None => None,
        };
        let kept = state::Kept { cache, mirror };
        let shared = Shared::new(state, kept, metrics, guards);
        let source = config.source.clone();
        Ok(Self {
            shared,
            listeners,
            config,
            loader: Box::new(move || match &source {
                Some(path) => Config::load(path),
                None => Config::builtin_default(),
            }),
            http,
            control,
        })
    }

    /// Where `/metrics`, `/health` and `/ready` are served, if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(http::Endpoint::addr)
    }

    /// Replaces how a reload gets the new config (by default: the file the
    /// config was loaded from, else the built-in default).
    pub fn reload_from(mut self, loader: Loader) -> Self {
        self.loader = loader;
        self
    }

    /// The addresses bound now, in listen order.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.addrs()
    }

    /// Serves until `shutdown` completes, then lets queries in flight finish
    /// (for at most a few seconds).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        self.serve(signal::shutdown_on(shutdown)).await
    }

    /// Serves, reloading on [`Control::Reload`], until [`Control::Shutdown`]
    /// or the channel closes; then lets queries in flight finish.
    pub async fn serve(self, controls: mpsc::Receiver<Control>) -> Result<(), StartError> {
        let mut tasks = tokio::task::JoinSet::new();
        let shared = Arc::clone(&self.shared);
        let window = self
            .config
            .metrics
            .as_ref()
            .map_or(config::DEFAULT_HEALTH_WINDOW, |m| m.health_window);
        tasks.spawn(signal::on_stats_request(move || shared.log_stats(window)));
        if let Some(http) = self.http {
            tracing::info!(addr = %http.addr(), "serving /metrics, /health and /ready over HTTP");
            tasks.spawn(http.serve(Arc::clone(&self.shared)));
        }
        tasks.spawn(Arc::clone(&self.shared).watch_local_data());
        let (reload_tx, reloads) = mpsc::channel(4);
        if let Some(socket) = self.control {
            let shared = Arc::clone(&self.shared);
            tasks.spawn(control::serve(socket, shared, reload_tx, window));
        }
        let shared = Arc::clone(&self.shared);
        let supervisor = reload::Supervisor::new(self.config, self.loader, shared, self.listeners);
        self.shared.set_serving(true);
        let listeners = supervisor.run(controls, reloads).await;
        tracing::info!("shutting down");
        self.shared.set_serving(false);
        tasks.abort_all();
        let udp_threads = listeners.udp_threads();
        drop(listeners);
        self.shared.drain(DRAIN).await;
        drop(udp_threads);
        Ok(())
    }
}

/// `splitdns check`: the config's routing table as text, or why it is not valid.
pub fn check(config: &Config) -> Result<String, StartError> {
    let state = State::build(config, &literal_listen_addrs(config), &Metrics::default())?;
    let mut out = format!("{}: ok\n", config.origin);
    for file in &config.included {
        out.push_str(&format!("{}: ok\n", file.display()));
    }
    out.push_str(&state.router.to_string());
    if config.dnssec.validate {
        out.push_str(&dnssec::summary(&config.dnssec, &state.router));
    }
    Ok(out)
}

/// `check --bind`: binds every listen address, and every present address of
/// the listened interfaces, for a moment, as `run` would; the first one that
/// cannot be bound (another DNS server holds it, or the port needs root) is
/// the error. Returns the addresses tried.
pub fn check_bind(config: &Config) -> Result<Vec<SocketAddr>, StartError> {
    let nets = interfaces::addresses();
    let mut tried = Vec::new();
    for listen in &config.listen {
        let addrs = match listen {
            Listen::Addr(addr) => vec![*addr],
            Listen::Interface { name, port } => interfaces::listen_ips(&nets, name)
                .into_iter()
                .map(|ip| SocketAddr::new(ip, *port))
                .collect(),
        };
        for addr in addrs {
            listeners::probe(addr)?;
            tried.push(addr);
        }
    }
    Ok(tried)
}

/// The listen addresses written as addresses (not interfaces), for `check`,
/// which binds nothing but should still skip them in resolv.conf.
pub(crate) fn literal_listen_addrs(config: &Config) -> Vec<SocketAddr> {
    config
        .listen
        .iter()
        .filter_map(|l| match l {
            Listen::Addr(addr) => Some(*addr),
            Listen::Interface { .. } => None,
        })
        .collect()
}
