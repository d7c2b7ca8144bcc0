//! What the watches and the queries share: the published [`View`] of the
//! catalog, and the services queries want watched ([`Hub`]). The manager
//! (`watch.rs`) writes both; queries (`mod.rs`) read the view and add wants.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;

use super::catalog::{AgentDns, Instance, NodeInfo};
use crate::config::ConsulConfig;
use crate::observe::metrics::MirrorMetrics;

/// The mirror's shared state.
pub(super) struct Hub {
    pub(super) view: ArcSwap<View>,
    pub(super) metrics: MirrorMetrics,
    pub(super) config: ConsulConfig,
    /// Services (and datacenters) queries asked for that nobody watches yet.
    pub(super) wants: Mutex<Vec<Want>>,
    pub(super) wake: tokio::sync::Notify,
    /// The routes' zones at start, to warn when none is the agent's domain.
    pub(super) zones: Vec<String>,
    /// Questions (lowercased name, type) asked before the agent's settings
    /// were read, when no one knew yet which route the mirror serves.
    pub(super) early: Mutex<Vec<(Box<[u8]>, u16)>>,
    /// Questions offered to `early`, kept or not.
    pub(super) early_count: AtomicUsize,
}

impl Hub {
    /// Keeps a question asked before the agent's domain was known, so its
    /// service is watched once it is.
    /// Once [`MAX_WANTS`] are kept, the rest cost no lock: an agent that
    /// never answers must not slow every query down.
    pub(super) fn early(&self, lower: &[u8], qtype: u16) {
        if self.early_count.fetch_add(1, Ordering::Relaxed) >= MAX_WANTS {
            return;
        }
        self.early
            .lock()
            .expect("early lock")
            .push((Box::from(lower), qtype));
    }

    /// Asks the manager to watch what a query wanted.
    pub(super) fn want(&self, want: Want) {
        let mut wants = self.wants.lock().expect("wants lock");
        if wants.len() < MAX_WANTS && !wants.contains(&want) {
            wants.push(want);
        }
        drop(wants);
        self.wake.notify_one();
    }
}

/// A watch a query asked for: the datacenter's listing, and the service's
/// instances when named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Want {
    pub(super) datacenter: String,
    pub(super) service: Option<String>,
}

/// A queue of wants the manager has not read yet never holds more than this.
const MAX_WANTS: usize = 1024;

/// What the mirror knows, as of one change.
#[derive(Default)]
pub(super) struct View {
    /// One more with every published view: a rendered answer is valid for
    /// the view it was made from.
    pub(super) generation: u64,
    /// `None` until `/v1/agent/self` has been read: nothing is mirrored.
    pub(super) agent: Option<Arc<AgentDns>>,
    /// The agent's domain and alt domain, in wire form.
    pub(super) domains: Vec<Box<[u8]>>,
    pub(super) datacenters: HashMap<String, Datacenter>,
    /// When the agent stopped answering; `None` while it answers.
    pub(super) lost: Option<Instant>,
    /// Unreachable for longer than `stale_limit`: forward everything.
    pub(super) expired: bool,
    /// Service watches running.
    pub(super) watches: usize,
}

/// One datacenter's services.
#[derive(Default, Clone)]
pub(super) struct Datacenter {
    pub(super) listing: Listing,
    pub(super) watched: HashMap<String, Arc<Watched>>,
    /// The nodes of the watched instances, by lowercased name.
    pub(super) nodes: HashMap<String, Arc<NodeInfo>>,
}

/// `/v1/catalog/services` for a datacenter.
#[derive(Default, Clone, PartialEq, Eq)]
pub(super) enum Listing {
    #[default]
    Syncing,
    /// The service names; `filtered`: the token hid some, so a name missing
    /// here is no proof that it does not exist.
    Known {
        names: Arc<HashSet<String>>,
        filtered: bool,
    },
    /// "No path to datacenter".
    Unknown,
}

/// One watched service.
pub(super) struct Watched {
    pub(super) state: WatchState,
    /// When a query last wanted it, in [`answer::seconds`]: the manager
    /// stops it after `watch_idle`.
    pub(super) touched: Arc<AtomicU32>,
}

#[derive(Clone, PartialEq, Eq)]
pub(super) enum WatchState {
    Syncing,
    /// Every instance, healthy or not, as of the last response.
    Ready(Arc<Vec<Instance>>),
    /// A 403, or results the token filtered: not ours to answer.
    Hidden,
}
