//! One route's upstream servers: failover, fastest or parallel over the ones
//! in rotation (see [`crate::resolve::health`]), a bound on queries in
//! flight, and probes of the servers out of rotation.
//!
//! Below the route, one server at a time: [`server`] (an attempt at one
//! server, over its encrypted connection or UDP then TCP, and what counts as
//! a usable reply), [`exchange`] (one query and its reply over UDP or TCP),
//! [`sockets`] (a server's idle UDP sockets, one pool per reactor) and
//! [`outstanding`] (the IDs a server has queries in flight under).

mod exchange;
mod outstanding;
mod server;
mod sockets;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::config::Strategy;
use crate::config::server_spec::ServerSpec;
use crate::dns::question::Question;
use crate::observe::failure::Failure;
use crate::observe::metrics::Metrics;
use crate::resolve::health::{self, ServerHealth};

pub(crate) use self::server::NameServer;
/// For the UDP threads, which each run a reactor of their own.
pub(crate) use self::sockets::use_own_sockets;

/// Why a route's upstreams gave no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("too many queries in flight for this route")]
    Busy,
    #[error("the route has no servers")]
    NoServers,
    #[error("every server failed (last: {0})")]
    AllFailed(Failure),
}

/// The servers of one route and how to choose among them.
pub struct Upstream {
    servers: Vec<Arc<NameServer>>,
    timeout: Duration,
    in_flight: Semaphore,
    /// The route its servers are counted under (`.` for the default upstreams).
    route: String,
    strategy: Strategy,
    /// Counts queries, so `fastest` can re-measure now and then.
    turn: AtomicU32,
}

impl Upstream {
    pub fn new(
        servers: Vec<ServerSpec>,
        timeout: Duration,
        max_in_flight: usize,
        strategy: Strategy,
    ) -> Self {
        Self {
            servers: servers
                .into_iter()
                .map(|spec| Arc::new(NameServer::new(&spec)))
                .collect(),
            timeout,
            in_flight: Semaphore::new(max_in_flight.max(1)),
            route: String::new(),
            strategy,
            turn: AtomicU32::new(0),
        }
    }

    /// Counts its servers' queries, failures and latency under `route` in `metrics`.
    pub fn observed(mut self, metrics: &Metrics, route: &str) -> Self {
        for server in &mut self.servers {
            Arc::get_mut(server)
                .expect("servers are not shared before they serve")
                .observe(metrics, route);
        }
        self.route = route.to_string();
        self
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The route its servers are counted under.
    pub fn route(&self) -> &str {
        &self.route
    }

    pub fn members(&self) -> &[Arc<NameServer>] {
        &self.servers
    }

    pub fn servers(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.addr()).collect()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The server this exact query (ID, and question as lowercased name,
    /// type and class) is outstanding at over UDP, if any: how a query of
    /// ours that comes back to us is recognised (see `loops`).
    pub fn outstanding(&self, id: u16, question: &[u8]) -> Option<SocketAddr> {
        self.servers
            .iter()
            .find(|s| s.is_asking(id, question))
            .map(|s| s.addr())
    }

    /// Asks the route's servers as its strategy says until one gives a usable
    /// reply: a timeout, SERVFAIL, REFUSED or a malformed reply counts as a
    /// failure of that server and moves on. Servers out of rotation are
    /// skipped (and probed in the background) unless every server is.
    /// Returns the reply and the server that gave it.
    pub(crate) async fn ask(&self, ask: &Question) -> Result<(Vec<u8>, SocketAddr), UpstreamError> {
        if self.servers.is_empty() {
            return Err(UpstreamError::NoServers);
        }
        let _permit = self
            .in_flight
            .try_acquire()
            .map_err(|_| UpstreamError::Busy)?;
        if let [server] = self.servers.as_slice() {
            // One server is asked whatever its health or the strategy.
            let reply = server.attempt(ask, self.timeout).await;
            return reply
                .map(|reply| (reply, server.addr()))
                .map_err(UpstreamError::AllFailed);
        }
        let healths: Vec<&ServerHealth> = self.servers.iter().map(|s| s.health()).collect();
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let order = health::order(self.strategy, &healths, turn);
        self.probe_skipped(ask, &order);
        if self.strategy == Strategy::Parallel && order.len() > 1 {
            return self.ask_parallel(ask, &order).await;
        }
        let mut last = Failure::Timeout;
        for &i in &order {
            let server = &self.servers[i];
            match server.attempt(ask, self.timeout).await {
                Ok(reply) => return Ok((reply, server.addr())),
                Err(failure) => last = failure,
            }
        }
        Err(UpstreamError::AllFailed(last))
    }

    /// Every server at once; the first usable reply wins and the others are
    /// abandoned.
    async fn ask_parallel(
        &self,
        ask: &Question,
        order: &[usize],
    ) -> Result<(Vec<u8>, SocketAddr), UpstreamError> {
        let owned = Arc::new(*ask);
        let mut attempts = tokio::task::JoinSet::new();
        for &i in order {
            let server = Arc::clone(&self.servers[i]);
            let (owned, timeout) = (Arc::clone(&owned), self.timeout);
            attempts.spawn(async move {
                let reply = server.attempt(&owned, timeout).await;
                reply.map(|reply| (reply, server.addr()))
            });
        }
        let mut last = Failure::Timeout;
        while let Some(done) = attempts.join_next().await {
            match done {
                Ok(Ok(answered)) => return Ok(answered),
                Ok(Err(failure)) => last = failure,
                Err(_) => last = Failure::Timeout,
            }
        }
        Err(UpstreamError::AllFailed(last))
    }

    /// Sends this question, in the background, to each skipped server that is
    /// due a probe: its answer, if any, puts it back in rotation.
    fn probe_skipped(&self, ask: &Question, order: &[usize]) {
        if order.len() == self.servers.len() {
            return; // none skipped: the usual case, and no clock read
        }
        let now = Instant::now();
        for (i, server) in self.servers.iter().enumerate() {
            if order.contains(&i) || !server.health().claim_probe(now) {
                continue;
            }
            let (server, owned, timeout) = (Arc::clone(server), *ask, self.timeout);
            tracing::debug!(server = %server.label(), "probing a server out of rotation");
            tokio::spawn(async move {
                let _ = server.attempt(&owned, timeout).await;
            });
        }
    }
}
