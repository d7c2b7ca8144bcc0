//! One route's upstream servers: failover, fastest or parallel over the ones
//! in rotation (see [`crate::resolve::health`]), a bound on queries in
//! flight, and probes of the servers out of rotation.
//!
//! Below the route, one server at a time: [`server`] (an attempt at one
//! server, over its encrypted connection or UDP then TCP, and what counts as
//! a usable reply), [`exchange`] (one query and its reply over UDP or TCP),
//! [`sockets`] (a server's idle UDP sockets, one pool per reactor),
//! [`outstanding`] (the IDs a server has queries in flight under) and
//! [`table`] (a UDP thread's queries in flight, read in its own loop).
//!
//! A route's servers are asked in the order of a [`Plan`], made when its
//! query starts. The common case, a plain UDP server that answers, is sent and
//! read by the UDP thread's [`UdpTable`]; anything after it (the next server,
//! TCP after truncation, parallel and encrypted queries) continues the same
//! plan in [`Upstream::ask_planned`], as a task.

mod exchange;
mod outstanding;
mod server;
mod sockets;
mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Strategy;
use crate::config::server_spec::ServerSpec;
use crate::dns::question::Question;
use crate::observe::failure::Failure;
use crate::observe::metrics::Metrics;
use crate::resolve::health::{self, ServerHealth};

pub(crate) use self::server::NameServer;
pub(crate) use self::sockets::enable_flag;
/// For the UDP threads, which each run a reactor of their own.
pub(crate) use self::sockets::use_own_sockets;
pub(crate) use self::table::{Asking, Ended, NotSent, UdpTable};

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
    in_flight: Arc<Semaphore>,
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
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
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
        let plan = self.plan(ask)?;
        self.ask_planned(ask, plan).await
    }

    /// The order `ask` tries the servers in, holding its place among the
    /// route's queries in flight until it is dropped.
    pub(crate) fn plan(&self, ask: &Question) -> Result<Plan, UpstreamError> {
        if self.servers.is_empty() {
            return Err(UpstreamError::NoServers);
        }
        let permit = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| UpstreamError::Busy)?;
        let order = if self.servers.len() == 1 {
            // One server is asked whatever its health or the strategy.
            Order::One
        } else {
            let healths: Vec<&ServerHealth> = self.servers.iter().map(|s| s.health()).collect();
            let turn = self.turn.fetch_add(1, Ordering::Relaxed);
            let order = health::order(self.strategy, &healths, turn);
            self.probe_skipped(ask, &order);
            Order::Many(order)
        };
        Ok(Plan {
            _permit: permit,
            order,
            next: 0,
            last: Failure::Timeout,
        })
    }

    /// The server `plan` asks next, if it can be asked from a UDP thread's
    /// table: plain UDP, and not one of several asked at once.
    pub(crate) fn next_over_udp(&self, plan: &Plan) -> Option<Arc<NameServer>> {
        let parallel = self.strategy == Strategy::Parallel && plan.remaining() > 1;
        let server = &self.servers[plan.peek()?];
        (!parallel && !server.is_encrypted()).then(|| Arc::clone(server))
    }

    /// Asks the servers `plan` has not tried yet; see [`Upstream::ask`].
    pub(crate) async fn ask_planned(
        &self,
        ask: &Question,
        mut plan: Plan,
    ) -> Result<(Vec<u8>, SocketAddr), UpstreamError> {
        if self.strategy == Strategy::Parallel && plan.remaining() > 1 {
            return self.ask_parallel(ask, &mut plan).await;
        }
        while let Some(i) = plan.take() {
            let server = &self.servers[i];
            match server.attempt(ask, self.timeout).await {
                Ok(reply) => return Ok((reply, server.addr())),
                Err(failure) => plan.last = failure,
            }
        }
        Err(UpstreamError::AllFailed(plan.last))
    }

    /// After `server` (the one `plan` asked last) truncated its UDP reply:
    /// the same question to it over TCP, then the servers `plan` has left.
    pub(crate) async fn ask_after_truncation(
        &self,
        ask: &Question,
        server: &NameServer,
        mut plan: Plan,
    ) -> Result<(Vec<u8>, SocketAddr), UpstreamError> {
        match server.attempt_tcp(ask, self.timeout).await {
            Ok(reply) => Ok((reply, server.addr())),
            Err(failure) => {
                plan.last = failure;
                self.ask_planned(ask, plan).await
            }
        }
    }

    /// Every server at once; the first usable reply wins and the others are
    /// abandoned.
    async fn ask_parallel(
        &self,
        ask: &Question,
        plan: &mut Plan,
    ) -> Result<(Vec<u8>, SocketAddr), UpstreamError> {
        let owned = Arc::new(*ask);
        let mut attempts = tokio::task::JoinSet::new();
        while let Some(i) = plan.take() {
            let server = Arc::clone(&self.servers[i]);
            let (owned, timeout) = (Arc::clone(&owned), self.timeout);
            attempts.spawn(async move {
                let reply = server.attempt(&owned, timeout).await;
                reply.map(|reply| (reply, server.addr()))
            });
        }
        let mut last = plan.last;
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

/// The order one query tries a route's servers in, and how far it got; it
/// holds the query's place among the route's queries in flight
/// (`max_in_flight`) until it is dropped.
pub(crate) struct Plan {
    _permit: OwnedSemaphorePermit,
    order: Order,
    /// Servers of `order` tried so far.
    next: usize,
    /// How the last server tried failed.
    last: Failure,
}

/// A route's servers by index, in the order they are tried.
enum Order {
    /// The only server, which needs no order worked out.
    One,
    Many(Vec<usize>),
}

impl Plan {
    fn peek(&self) -> Option<usize> {
        match &self.order {
            Order::One => (self.next == 0).then_some(0),
            Order::Many(order) => order.get(self.next).copied(),
        }
    }

    fn take(&mut self) -> Option<usize> {
        let i = self.peek()?;
        self.next += 1;
        Some(i)
    }

    fn remaining(&self) -> usize {
        let len = match &self.order {
            Order::One => 1,
            Order::Many(order) => order.len(),
        };
        len - self.next
    }

    /// The server [`Upstream::next_over_udp`] gave was asked, and failed so.
    pub(crate) fn failed(&mut self, failure: Failure) {
        self.next += 1;
        self.last = failure;
    }

    /// The server [`Upstream::next_over_udp`] gave was asked.
    pub(crate) fn asked(&mut self) {
        self.next += 1;
    }
}
