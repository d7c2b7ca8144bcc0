//! One upstream server: an attempt at it, over its encrypted connection or
//! over UDP with TCP on truncation, and what counts as a usable reply; each
//! attempt's outcome goes into the server's metrics and health.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::server_spec::ServerSpec;
use crate::dns::question::Question;
use crate::dns::wire;
use crate::observe::failure::Failure;
use crate::observe::metrics::{Metrics, ServerMetrics};
use crate::resolve::encrypted;
use crate::resolve::health::{self, ServerHealth};

use super::exchange::{tcp_exchange, udp_exchange};
use super::outstanding::{Outstanding, OutstandingIds};
use super::sockets::UdpSockets;

/// One upstream server and the queries outstanding at it, or its encrypted connection.
pub struct NameServer {
    addr: SocketAddr,
    /// The entry as written: the address for UDP servers, `tls://ADDR#NAME` and
    /// `https://ADDR/PATH#NAME` for encrypted ones.
    label: String,
    outstanding: OutstandingIds,
    sockets: UdpSockets,
    encrypted: Option<encrypted::Client>,
    metrics: ServerMetrics,
    health: ServerHealth,
}

impl NameServer {
    pub(super) fn new(spec: &ServerSpec) -> Self {
        Self {
            addr: spec.addr,
            label: spec.to_string(),
            outstanding: OutstandingIds::default(),
            sockets: UdpSockets::default(),
            encrypted: encrypted::Client::new(spec),
            metrics: ServerMetrics::default(),
            health: ServerHealth::default(),
        }
    }

    /// Counts its queries, failures and latency under `route` in `metrics`.
    pub(super) fn observe(&mut self, metrics: &Metrics, route: &str) {
        self.metrics = metrics.server(route, &self.label);
        if let Some(client) = &self.encrypted {
            client.observed(metrics.encrypted(route, &self.label));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server as configured, with its transport.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// `"udp"` (with TCP fallback), `"tls"` or `"https"`.
    pub fn transport(&self) -> &'static str {
        match &self.encrypted {
            None => "udp",
            Some(_) if self.label.starts_with("https://") => "https",
            Some(_) => "tls",
        }
    }

    pub fn metrics(&self) -> &ServerMetrics {
        &self.metrics
    }

    pub fn health(&self) -> &ServerHealth {
        &self.health
    }

    /// Whether the query with this ID and question (lowercased name, type
    /// and class) is outstanding here over UDP.
    pub(super) fn is_asking(&self, id: u16, question: &[u8]) -> bool {
        self.outstanding.contains(id, question)
    }

    /// The IDs of the queries outstanding here over UDP.
    pub(super) fn ids(&self) -> &OutstandingIds {
        &self.outstanding
    }

    pub(super) fn is_encrypted(&self) -> bool {
        self.encrypted.is_some()
    }

    /// One attempt, with its outcome written into the server's metrics and health.
    pub(super) async fn attempt(
        &self,
        ask: &Question,
        timeout: Duration,
    ) -> Result<Vec<u8>, Failure> {
        let sent = Instant::now();
        let result = self.ask(ask, timeout).await;
        self.record(result.as_ref().map(|_| sent.elapsed()).map_err(|f| *f));
        result
    }

    /// One attempt over TCP (after a truncated UDP reply), recorded as [`NameServer::attempt`] is.
    pub(super) async fn attempt_tcp(
        &self,
        ask: &Question,
        timeout: Duration,
    ) -> Result<Vec<u8>, Failure> {
        let sent = Instant::now();
        self.metrics.queries.inc();
        let result = tcp_exchange(self.addr, ask, timeout)
            .await
            .and_then(|reply| usable(&reply).map(|()| reply));
        self.record(result.as_ref().map(|_| sent.elapsed()).map_err(|f| *f));
        result
    }

    /// Counts a query sent to this server.
    pub(super) fn sent(&self) {
        self.metrics.queries.inc();
    }

    /// Writes the outcome of an attempt (its round trip when answered) into
    /// the server's metrics and health.
    pub(super) fn record(&self, outcome: Result<Duration, Failure>) {
        match outcome {
            Ok(rtt) => {
                self.metrics.latency.observe(rtt);
                self.health.answered(rtt);
            }
            Err(failure) => {
                self.metrics.failed(failure);
                tracing::debug!(server = %self.label, %failure, "upstream attempt failed");
                if self.health.failed() {
                    tracing::warn!(
                        server = %self.label,
                        %failure,
                        "upstream server out of rotation after {} failures in a row; probing it every {}s",
                        health::DOWN_AFTER,
                        health::PROBE_EVERY.as_secs()
                    );
                }
            }
        }
    }

    async fn ask(&self, ask: &Question, timeout: Duration) -> Result<Vec<u8>, Failure> {
        self.sent();
        if let Some(client) = &self.encrypted {
            let reply = client.exchange(ask, Instant::now() + timeout).await?;
            return usable(&reply).map(|()| reply);
        }
        let outstanding = Outstanding::claim(&self.outstanding, ask)
            .ok_or(Failure::Network(io::ErrorKind::WouldBlock))?;
        let reply = udp_exchange(&self.sockets, self.addr, ask, outstanding.id, timeout).await?;
        drop(outstanding);
        let reply = if wire::Reply::header(&reply).is_some_and(|r| r.truncated()) {
            self.sent();
            tcp_exchange(self.addr, ask, timeout).await?
        } else {
            reply
        };
        usable(&reply).map(|()| reply)
    }
}

/// Whether `reply` is usable: well formed, not SERVFAIL or REFUSED, and not
/// truncated. Its records are walked, not kept: they are read again when
/// the answer is made.
pub(super) fn usable(reply: &[u8]) -> Result<(), Failure> {
    let msg = wire::Reply::header(reply)
        .filter(wire::Reply::well_formed)
        .ok_or(Failure::BadReply)?;
    match msg.rcode() {
        wire::RCODE_SERVFAIL => Err(Failure::ServFail),
        wire::RCODE_REFUSED => Err(Failure::Refused),
        _ if msg.truncated() => Err(Failure::BadReply),
        _ => Ok(()),
    }
}
