//! Which addresses splitdns listens on, as the config and the host change.
//!
//! A literal `ADDR:PORT` is bound once and must bind: failing is an error at
//! start and rejects a reload. An `IFNAME:PORT` follows its interface: each
//! of its addresses is bound when it appears and closed when it goes, and an
//! interface that does not exist yet is waited for (dnsmasq's
//! `bind-dynamic`). Other listeners are never touched by these changes.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::config::Listen;
use crate::host::interfaces;
use crate::serve::server::{BindError, Listener};
use crate::serve::shards::Shards;
use crate::state::Shared;

/// The listeners held, in the order they were bound.
pub(crate) struct Listeners {
    /// The threads that answer UDP; each listener has a socket on every one.
    shards: Arc<Shards>,
    held: Vec<Held>,
    /// `IFNAME:PORT` entries known to have no address, so each wait is
    /// logged once.
    waiting: HashSet<String>,
}

struct Held {
    /// The listen entry this socket serves.
    entry: Listen,
    addr: SocketAddr,
    /// Bound, not yet answering (until [`Listeners::serve`]).
    pending: Option<Listener>,
    /// The tasks answering on it; dropping them closes the sockets.
    tasks: JoinSet<()>,
}

/// What [`Listeners::follow`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Followed {
    /// A listener was opened or closed.
    pub changed: bool,
    /// An address could not be bound; try again later.
    pub retry: bool,
}

impl Listeners {
    /// Binds the literal entries of `listen` (an error if one cannot be
    /// bound) and the present addresses of its interfaces.
    pub(crate) fn bind(listen: &[Listen], shards: Arc<Shards>) -> Result<Self, BindError> {
        let mut listeners = Self {
            shards,
            held: Vec::new(),
            waiting: HashSet::new(),
        };
        listeners.bind_literals(listen)?;
        listeners.follow(listen);
        Ok(listeners)
    }

    /// The UDP threads, to keep them running past the listeners (so that
    /// queries in flight at shutdown are still answered).
    pub(crate) fn shards(&self) -> Arc<Shards> {
        Arc::clone(&self.shards)
    }

    /// How many threads answer UDP.
    pub(crate) fn threads(&self) -> usize {
        self.shards.len()
    }

    /// The addresses bound now, in listen order.
    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        self.held.iter().map(|h| h.addr).collect()
    }

    /// Starts answering on every listener bound since the last call.
    pub(crate) fn serve(&mut self, shared: &Arc<Shared>) {
        for held in &mut self.held {
            if let Some(listener) = held.pending.take() {
                tracing::info!(addr = %held.addr, entry = %held.entry, "listening (UDP and TCP)");
                listener.spawn(shared, &self.shards, &mut held.tasks);
            }
        }
    }

    /// Applies a new listen list: binds its new literal entries first (if one
    /// fails, nothing changes), then closes entries no longer listed and
    /// follows the interfaces.
    pub(crate) fn apply(&mut self, listen: &[Listen]) -> Result<Followed, BindError> {
        let before = self.held.len();
        self.bind_literals(listen)?;
        let mut followed = Followed {
            changed: self.held.len() != before,
            retry: false,
        };
        let unlisted = self.held.len();
        self.held.retain(|h| {
            let keep = listen.contains(&h.entry);
            if !keep {
                tracing::info!(addr = %h.addr, entry = %h.entry, "stopped listening: no longer in the config");
            }
            keep
        });
        self.waiting.retain(|name| {
            listen
                .iter()
                .any(|l| matches!(l, Listen::Interface { name: n, .. } if n == name))
        });
        followed.changed |= self.held.len() != unlisted;
        let more = self.follow(listen);
        followed.changed |= more.changed;
        followed.retry = more.retry;
        Ok(followed)
    }

    /// Binds literal entries not held yet; on an error, closes the ones this
    /// call bound, so a failed reload leaves the listeners as they were.
    fn bind_literals(&mut self, listen: &[Listen]) -> Result<(), BindError> {
        let before = self.held.len();
        for entry in listen {
            let Listen::Addr(addr) = entry else { continue };
            if self.held.iter().any(|h| &h.entry == entry) {
                continue;
            }
            match Listener::bind(*addr, self.shards.len()) {
                Ok(listener) => self.hold(entry.clone(), listener),
                Err(e) if addr.is_ipv6() && ipv6_missing(&e) => {
                    tracing::warn!(%addr, error = %e, "skipping an IPv6 listener: this host has no IPv6 there");
                }
                Err(e) => {
                    self.held.truncate(before);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Matches the `IFNAME:PORT` listeners to the interfaces' addresses now:
    /// binds the new ones, closes the gone ones.
    pub(crate) fn follow(&mut self, listen: &[Listen]) -> Followed {
        let addresses = interfaces::addresses();
        let mut followed = Followed::default();
        self.held.retain(|h| {
            let Listen::Interface { name, .. } = &h.entry else {
                return true;
            };
            let present = interfaces::listen_ips(&addresses, name).contains(&h.addr.ip());
            if !present {
                tracing::info!(addr = %h.addr, entry = %h.entry, "stopped listening: the interface lost this address");
                followed.changed = true;
            }
            present
        });
        for entry in listen {
            let Listen::Interface { name, port } = entry else {
                continue;
            };
            let ips = interfaces::listen_ips(&addresses, name);
            self.note_waiting(entry, name, ips.is_empty());
            for ip in ips {
                let addr = SocketAddr::new(ip, *port);
                if self
                    .held
                    .iter()
                    .any(|h| &h.entry == entry && h.addr == addr)
                {
                    continue;
                }
                match Listener::bind(addr, self.shards.len()) {
                    Ok(listener) => {
                        self.hold(entry.clone(), listener);
                        followed.changed = true;
                    }
                    Err(error) => {
                        tracing::warn!(%error, entry = %entry, "cannot listen on a new interface address yet; trying again");
                        followed.retry = true;
                    }
                }
            }
        }
        followed
    }

    fn note_waiting(&mut self, entry: &Listen, name: &str, absent: bool) {
        if absent && self.waiting.insert(name.to_string()) {
            tracing::warn!(entry = %entry, "interface {name} does not exist or has no address yet: listening as soon as it has one");
        } else if !absent {
            self.waiting.remove(name);
        }
    }

    fn hold(&mut self, entry: Listen, listener: Listener) {
        self.held.push(Held {
            entry,
            addr: listener.addr,
            pending: Some(listener),
            tasks: JoinSet::new(),
        });
    }
}

fn ipv6_missing(e: &BindError) -> bool {
    matches!(e.source.raw_os_error(), Some(code) if code == 97 /* EAFNOSUPPORT */ || code == 99 /* EADDRNOTAVAIL */)
}
