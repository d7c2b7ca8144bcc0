//! While serving: [`Control`]s from signals, and changes of the host that
//! splitdns follows on its own (interfaces coming and going, resolv.conf
//! being rewritten), each turned into a new [`State`] swapped in at once.
//!
//! A query holds the state it started with, so a swap never changes routing
//! under it. The cache lives outside the state: a swap keeps every entry
//! whose name is routed the same way before and after, and drops the rest.
//! Each new routing table gets the next epoch; an answer fetched under an
//! older one is not stored and no later query waits on its fetch, so what the
//! swap dropped cannot come back.
//! A reload that fails (bad config, an address that cannot be bound) leaves
//! everything as it was and says why, in the words `splitdns check` uses.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use tokio::sync::oneshot;

use crate::config::{Config, ConfigError};
use crate::host::local_data::{self, LocalData};
use crate::host::signal::Control;
use crate::host::{interfaces, notify, resolv};
use crate::resolve::router::Router;
use crate::serve::listeners::{BindError, Listeners};
use crate::state::{Shared, State, StateParts};

/// First wait before binding again an interface address that failed; it
/// doubles up to [`RETRY_MAX`] while the failures go on.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Where a reload reads the config from.
pub type Loader = Box<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// A reload asked for over the control socket, with where its outcome goes.
pub(crate) type ReloadRequest = oneshot::Sender<Result<String, ReloadError>>;

/// Why a reload was rejected, in the words `splitdns check` uses; the
/// running config stays.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Local(#[from] local_data::LoadError),
    #[error(transparent)]
    Bind(#[from] BindError),
}

/// Owns the listeners and the config while the server runs.
pub(crate) struct Supervisor {
    config: Config,
    loader: Loader,
    shared: Arc<Shared>,
    listeners: Listeners,
    resolv: Option<resolv::Watch>,
    retry: Option<(Instant, Duration)>,
}

impl Supervisor {
    pub(crate) fn new(
        config: Config,
        loader: Loader,
        shared: Arc<Shared>,
        listeners: Listeners,
    ) -> Self {
        Self {
            resolv: watch_resolv(&config),
            config,
            loader,
            shared,
            listeners,
            retry: None,
        }
    }

    /// Serves until [`Control::Shutdown`] or until `controls` closes; hands
    /// back the listeners, still open, for the caller to close.
    /// `reloads` are reloads asked for over the control socket: the same
    /// reload as SIGHUP's, its outcome sent back.
    pub(crate) async fn run(
        mut self,
        mut controls: mpsc::Receiver<Control>,
        mut reloads: mpsc::Receiver<ReloadRequest>,
    ) -> Listeners {
        self.listeners.serve(&self.shared);
        notify::ready(&self.status());
        notify::spawn_watchdog();
        let mut changes = interfaces::Changes::subscribe();
        let mut resolv_poll = tokio::time::interval(resolv::POLL);
        loop {
            let retry_at = self.retry.map(|(at, _)| at);
            tokio::select! {
                control = controls.recv() => match control {
                    Some(Control::Reload) => { let _ = self.reload(); }
                    Some(Control::Shutdown) | None => break,
                },
                Some(reply) = reloads.recv() => {
                    let _ = reply.send(self.reload());
                }
                () = changes.next() => self.follow_interfaces(),
                () = sleep_until(retry_at), if retry_at.is_some() => self.follow_interfaces(),
                _ = resolv_poll.tick() => self.check_resolv(),
            }
        }
        notify::stopping();
        self.listeners
    }

    /// SIGHUP or `splitdns control reload`: the new config replaces the old
    /// only if it is valid, its local data loads and its new listen addresses
    /// can all be bound. Says what happened, in the words `splitdns check`
    /// uses when the config was rejected.
    pub(crate) fn reload(&mut self) -> Result<String, ReloadError> {
        notify::reloading();
        tracing::info!("reloading {}", self.config.origin);
        let outcome = match self.try_reload() {
            Ok(()) => {
                self.shared.metrics().reloaded(Ok(&self.config));
                tracing::info!(config = %self.config.origin, "reloaded");
                Ok(format!("{}: reloaded", self.config.origin))
            }
            Err(error) => {
                self.shared.metrics().reloaded(Err(()));
                tracing::error!("reload rejected, still serving the previous config: {error}");
                notify::status(&format!("reload rejected: {error}"));
                Err(error)
            }
        };
        notify::ready(&self.status());
        outcome
    }

    /// Everything that can fail comes first: reading the config, loading its
    /// local data, binding its new listen addresses (undone if one fails).
    /// Only then is anything replaced, so a rejected reload changes nothing.
    fn try_reload(&mut self) -> Result<(), ReloadError> {
        let config = (self.loader)()?;
        config.warnings.iter().for_each(|w| tracing::warn!("{w}"));
        let local = LocalData::load(&config)?;
        let followed = self.listeners.apply(&config.listen)?;
        // Nothing fails from here on.
        self.listeners.serve(&self.shared);
        self.schedule_retry(followed.retry);
        if config.cache.size != self.config.cache.size {
            tracing::warn!(
                "[cache] size = {} takes effect at the next restart; the cache keeps {} entries until then",
                config.cache.size,
                self.config.cache.size
            );
        }
        let running = self.listeners.udp_thread_count();
        if config.threads != running {
            tracing::warn!(
                "[server] threads = {} takes effect at the next restart; {running} threads answer UDP until then",
                config.threads,
            );
        }
        if config.user != self.config.user {
            tracing::warn!("[server] user takes effect at the next restart");
        }
        if config.control != self.config.control {
            tracing::warn!("[control] socket takes effect at the next restart");
        }
        if config.consul.as_ref() != self.shared.mirror().map(|m| m.config()) {
            tracing::warn!(
                "[consul] takes effect at the next restart; the mirror keeps its watches until then"
            );
        }
        self.resolv = watch_resolv(&config);
        self.config = config;
        self.swap_state(Some(local));
        Ok(())
    }

    fn follow_interfaces(&mut self) {
        let followed = self.listeners.follow(&self.config.listen);
        self.listeners.serve(&self.shared);
        self.schedule_retry(followed.retry);
        // Our own addresses, or the subnets around them, may have changed:
        // the default allow list and the resolv.conf servers splitdns must
        // skip follow them.
        self.swap_state(None);
        if followed.changed {
            notify::status(&self.status());
        }
    }

    fn check_resolv(&mut self) {
        if self.resolv.as_mut().is_some_and(resolv::Watch::changed) {
            tracing::info!(path = %self.config.upstream.resolv_conf.display(), "resolv.conf changed");
            self.swap_state(None);
        }
    }

    /// Builds the state for the config and the addresses bound now and swaps
    /// it in. The router is rebuilt on a reload (which brings freshly loaded
    /// local data) or when the default servers changed; otherwise it is
    /// shared, and only `allow` may be new.
    fn swap_state(&mut self, reloaded: Option<LocalData>) {
        let bound = self.listeners.addrs();
        let servers = resolv::default_servers(&self.config, &bound);
        let allow = interfaces::allow(&self.config, &bound);
        let current = arc_swap::Guard::into_inner(self.shared.state());
        let old_servers = current.router.default_servers();
        let router = if reloaded.is_some() || servers != old_servers {
            if servers != old_servers {
                tracing::info!(?servers, "default upstream servers changed");
            }
            Arc::new(Router::with_metrics(
                &self.config,
                servers,
                self.shared.metrics(),
            ))
        } else if allow == current.allow {
            return;
        } else {
            Arc::clone(&current.router)
        };
        if allow != current.allow {
            tracing::info!(?allow, "clients allowed changed");
        }
        let rerouted = !Arc::ptr_eq(&router, &current.router);
        let epoch = current.epoch + u64::from(rerouted);
        let parts = StateParts {
            router: Arc::clone(&router),
            allow,
            local: match reloaded {
                Some(local) => Arc::new(local),
                None => current.local.load_full(),
            },
            epoch,
            validator: if rerouted {
                None
            } else {
                current.dnssec.clone()
            },
        };
        let state = Arc::new(State::assemble(&self.config, parts));
        if rerouted {
            // Before the swap: no query under the new state finds an entry of
            // a changed route, and fetches begun under the old routes (still
            // running, or started until the swap) are no longer stored.
            let dropped = self
                .shared
                .cache()
                .reroute(epoch, |name| current.router.routes_alike(&router, name));
            tracing::info!(
                dropped,
                kept = self.shared.cache().len(),
                "cache entries of changed routes dropped"
            );
        }
        self.shared.replace_state(state);
    }

    fn schedule_retry(&mut self, needed: bool) {
        self.retry = needed.then(|| {
            let wait = self
                .retry
                .map_or(RETRY_FIRST, |(_, last)| (last * 2).min(RETRY_MAX));
            (Instant::now() + wait, wait)
        });
    }

    fn status(&self) -> String {
        let addrs = self.listeners.addrs();
        let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        format!("answering on {}", addrs.join(", "))
    }
}

/// resolv.conf is watched only when it is where the default servers come from.
fn watch_resolv(config: &Config) -> Option<resolv::Watch> {
    config
        .upstream
        .servers
        .is_empty()
        .then(|| resolv::Watch::new(&config.upstream.resolv_conf))
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}
