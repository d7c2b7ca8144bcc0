//! Encrypted upstreams: DNS over TLS (RFC 7858) and over HTTPS (RFC 8484),
//! on hickory-net's TLS and HTTP/2 clients.
//!
//! A [`Client`] is the transport under one [`NameServer`](super::upstream::NameServer): the
//! failover, health, timeout and serve-stale rules above it are the same as for
//! UDP servers. It keeps one connection and pipelines every query on it
//! (RFC 7766 §6.2.1: many in flight, answers matched by ID; for HTTPS one
//! HTTP/2 stream each, ID 0 per RFC 8484 §4.1). The handshake runs in a task
//! of its own that every query arriving meanwhile waits on, so no query starts
//! a second one, and a query that gives up does not abort it. A connection
//! idle for [`IDLE_TIMEOUT`] is closed; one that breaks is replaced at once
//! and its queries resent on the new one; a connect that fails is retried
//! after a backoff that doubles up to [`MAX_BACKOFF`]. Reconnections resume
//! the TLS session (rustls' session cache lives in the shared client config).

mod https;
mod tls;
mod transport;
mod verify;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use hickory_net::proto::op::{DnsRequest, DnsRequestOptions, Message};
use hickory_net::{DnsHandle as _, NetError};
use rustls::ClientConfig;
use tokio::sync::watch;

use crate::config::server_spec::{ServerSpec, Transport};
use crate::config::trust::Trust;
use crate::dns::question::Question;
use crate::dns::wire;
use crate::observe::failure::Failure;
use crate::observe::metrics::TransportMetrics;

use self::transport::Exchange;

/// A connection with no query for this long is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The first wait before connecting again after a failed connect.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How many connections a query is tried on when the one it was sent on breaks.
const RESENDS: usize = 3;
/// How long a query waits for room when the connection's queue is full.
const BUSY_WAIT: Duration = Duration::from_millis(2);
/// RFC 8467 §4.1: queries padded to a multiple of 128 octets.
const PAD_BLOCK: usize = 128;

/// The encrypted transport of one server.
pub(crate) struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// The entry as written (`tls://192.0.2.1:853#ns.example`), for logs.
    label: String,
    addr: SocketAddr,
    https: bool,
    name: String,
    path: String,
    trust: Arc<Trust>,
    metrics: OnceLock<TransportMetrics>,
    config: OnceLock<Result<Arc<ClientConfig>, String>>,
    slot: Mutex<ConnectionSlot>,
}

/// The server's one connection through its life: what it is now, which
/// connection it is, and when to try again after a failed connect.
struct ConnectionSlot {
    state: ConnectionState,
    /// Bumped at each new connection, so a failure on an old one is not blamed on its successor.
    generation: u64,
    backoff: Duration,
    last_used: Instant,
}

/// The connection, the handshake that will give it, or when to try again.
enum ConnectionState {
    Down {
        retry_at: Instant,
    },
    /// The handshake under way; the value is set to its outcome.
    Connecting(watch::Receiver<Option<Result<(), Failure>>>),
    /// The connection; `closed` is set when its background task ends.
    Up {
        exchange: Exchange,
        closed: Arc<AtomicBool>,
    },
}

impl Client {
    /// The transport for `spec`, or `None` for a plain (UDP/TCP) entry.
    pub(crate) fn new(spec: &ServerSpec) -> Option<Self> {
        let target = spec.target()?;
        Some(Self {
            inner: Arc::new(Inner {
                label: spec.to_string(),
                addr: spec.addr,
                https: matches!(spec.transport, Transport::Https(_)),
                name: target.name.clone(),
                path: target.path.clone(),
                trust: target.trust.clone().unwrap_or_default(),
                metrics: OnceLock::new(),
                config: OnceLock::new(),
                slot: Mutex::new(ConnectionSlot {
                    state: ConnectionState::Down {
                        retry_at: Instant::now(),
                    },
                    generation: 0,
                    backoff: FIRST_BACKOFF,
                    last_used: Instant::now(),
                }),
            }),
        })
    }

    /// Counts this server's connections and handshake failures (set once, before serving).
    pub(crate) fn observed(&self, metrics: TransportMetrics) {
        let _ = self.inner.metrics.set(metrics);
    }

    /// Asks `ask` over the connection, opening it if need be, before `deadline`.
    /// The reply is checked against the question; the caller reads its RCODE.
    pub(crate) async fn exchange(
        &self,
        ask: &Question,
        deadline: Instant,
    ) -> Result<Vec<u8>, Failure> {
        tokio::time::timeout_at(deadline.into(), self.exchange_until(ask, deadline))
            .await
            .unwrap_or(Err(Failure::Timeout))
    }

    async fn exchange_until(&self, ask: &Question, deadline: Instant) -> Result<Vec<u8>, Failure> {
        let query = padded(ask.query(0));
        let inner = &self.inner;
        for _ in 0..RESENDS {
            let connection = inner.connection(deadline).await?;
            match send(&connection, &query, deadline).await {
                Ok(reply) if answers(&reply, ask) => return Ok(reply),
                Ok(_) => return Err(Failure::BadReply),
                Err(Sent::Timeout) => return Err(Failure::Timeout),
                Err(Sent::Refused(e)) => {
                    tracing::debug!(server = %inner.label, error = %e, "query failed on the connection");
                    return Err(Failure::BadReply);
                }
                // Sent again on a fresh connection.
                Err(Sent::Broken(e)) => inner.broken(connection.generation, &e),
            }
        }
        Err(Failure::Network(io::ErrorKind::ConnectionReset))
    }
}

impl Inner {
    fn metrics(&self) -> &TransportMetrics {
        self.metrics.get_or_init(TransportMetrics::default)
    }

    fn client_config(&self) -> Result<Arc<ClientConfig>, Failure> {
        let counters = self.metrics().failures.clone();
        let alpn = self.https.then_some(&b"h2"[..]);
        let config = self.config.get_or_init(|| {
            verify::client_config(&self.trust, &self.label, counters, alpn)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        config.clone().map_err(|error| {
            tracing::warn!(server = %self.label, %error, "cannot set up TLS for this server");
            Failure::Network(io::ErrorKind::InvalidInput)
        })
    }

    /// The open connection, or the outcome of the handshake this call starts
    /// or joins. Waits out a backoff that ends before `deadline`.
    async fn connection(self: &Arc<Self>, deadline: Instant) -> Result<Connection, Failure> {
        loop {
            let next = {
                let mut slot = self.slot.lock().expect("connection lock");
                let now = Instant::now();
                slot.last_used = now;
                match &slot.state {
                    ConnectionState::Up { exchange, closed } => {
                        return Ok(Connection {
                            exchange: exchange.clone(),
                            closed: Arc::clone(closed),
                            generation: slot.generation,
                        });
                    }
                    ConnectionState::Connecting(rx) => Next::Wait(rx.clone()),
                    ConnectionState::Down { retry_at } if *retry_at > now => Next::Sleep(*retry_at),
                    ConnectionState::Down { .. } => {
                        let (tx, rx) = watch::channel(None);
                        slot.state = ConnectionState::Connecting(rx.clone());
                        tokio::spawn(Arc::clone(self).connect(tx));
                        Next::Wait(rx)
                    }
                }
            };
            let mut outcome = match next {
                Next::Wait(rx) => rx,
                Next::Sleep(retry_at) if retry_at >= deadline => {
                    return Err(Failure::Network(io::ErrorKind::NotConnected));
                }
                Next::Sleep(retry_at) => {
                    tokio::time::sleep_until(retry_at.into()).await;
                    continue;
                }
            };
            let result = outcome
                .wait_for(Option::is_some)
                .await
                .map(|r| r.expect("waited for an outcome"));
            match result {
                Ok(Ok(())) => continue,
                // A certificate or TLS failure will not mend by itself: the
                // server fails now, and failover moves on.
                Ok(Err(failure @ Failure::Network(io::ErrorKind::InvalidData))) => {
                    return Err(failure);
                }
                // Refused or reset (a server restarting): again after the
                // backoff, while the query has time.
                Ok(Err(failure)) if Instant::now() >= deadline => return Err(failure),
                Ok(Err(_)) => continue,
                Err(_) => return Err(Failure::Network(io::ErrorKind::ConnectionAborted)),
            }
        }
    }

    /// Opens a connection and records the outcome for every query waiting on it.
    async fn connect(self: Arc<Self>, tx: watch::Sender<Option<Result<(), Failure>>>) {
        let result = match self.client_config() {
            Ok(config) => {
                let open = async {
                    if self.https {
                        https::connect(self.addr, &self.name, &self.path, config, MAX_BACKOFF).await
                    } else {
                        tls::connect(self.addr, &self.name, config, MAX_BACKOFF).await
                    }
                };
                match tokio::time::timeout(MAX_BACKOFF, open).await {
                    Ok(result) => result,
                    Err(_) => Err(NetError::Timeout),
                }
            }
            Err(failure) => {
                let _ = tx.send(Some(Err(failure)));
                self.set_down(MAX_BACKOFF);
                return;
            }
        };
        let outcome = match result {
            Ok((exchange, background)) => {
                let closed = Arc::new(AtomicBool::new(false));
                let generation = {
                    let mut slot = self.slot.lock().expect("connection lock");
                    slot.state = ConnectionState::Up {
                        exchange,
                        closed: Arc::clone(&closed),
                    };
                    slot.generation += 1;
                    slot.backoff = FIRST_BACKOFF;
                    slot.generation
                };
                // Weak: a server dropped with its routing table (a reload)
                // takes its connection with it.
                let me = Arc::downgrade(&self);
                tokio::spawn(async move {
                    background.await;
                    closed.store(true, Ordering::Release);
                    if let Some(me) = me.upgrade() {
                        me.broken(generation, &NetError::from("connection closed"));
                    }
                });
                self.metrics().connections.inc();
                tracing::debug!(server = %self.label, "connected");
                tokio::spawn(close_when_idle(Arc::downgrade(&self), generation));
                Ok(())
            }
            Err(error) => {
                tracing::warn!(server = %self.label, %error, "could not connect to the upstream");
                let backoff = {
                    let slot = self.slot.lock().expect("connection lock");
                    slot.backoff
                };
                self.set_down(backoff);
                Err(match error {
                    NetError::Timeout => Failure::Timeout,
                    NetError::Io(e) => Failure::Network(e.kind()),
                    _ => Failure::Network(io::ErrorKind::ConnectionAborted),
                })
            }
        };
        let _ = tx.send(Some(outcome));
    }

    fn set_down(&self, wait: Duration) {
        let mut slot = self.slot.lock().expect("connection lock");
        slot.state = ConnectionState::Down {
            retry_at: Instant::now() + wait,
        };
        slot.backoff = (wait * 2).min(MAX_BACKOFF);
    }

    /// The connection of `generation` failed under a query: the next query opens another.
    fn broken(&self, generation: u64, error: &NetError) {
        let mut slot = self.slot.lock().expect("connection lock");
        if slot.generation == generation && matches!(slot.state, ConnectionState::Up { .. }) {
            tracing::debug!(server = %self.label, %error, "connection lost; reconnecting");
            slot.state = ConnectionState::Down {
                retry_at: Instant::now(),
            };
        }
    }
}

/// Drops the connection of `generation` once no query has used it for [`IDLE_TIMEOUT`].
async fn close_when_idle(inner: Weak<Inner>, generation: u64) {
    let mut wake = Instant::now() + IDLE_TIMEOUT;
    loop {
        tokio::time::sleep_until(wake.into()).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mut slot = inner.slot.lock().expect("connection lock");
        if slot.generation != generation || !matches!(slot.state, ConnectionState::Up { .. }) {
            return;
        }
        let idle_until = slot.last_used + IDLE_TIMEOUT;
        if idle_until <= Instant::now() {
            tracing::debug!(server = %inner.label, "closing an idle connection");
            slot.state = ConnectionState::Down {
                retry_at: Instant::now(),
            };
            return;
        }
        wake = idle_until;
    }
}

/// The open connection as a query takes it.
struct Connection {
    exchange: Exchange,
    closed: Arc<AtomicBool>,
    generation: u64,
}

/// What a query does after looking at the connection.
enum Next {
    /// Wait on the handshake under way.
    Wait(watch::Receiver<Option<Result<(), Failure>>>),
    /// Wait out the backoff, then connect.
    Sleep(Instant),
}

enum Sent {
    Timeout,
    /// The connection is gone: the query may be resent on a new one.
    Broken(NetError),
    /// The server answered with an error of its own (an HTTP status, a bad message).
    Refused(NetError),
}

async fn send(connection: &Connection, query: &[u8], deadline: Instant) -> Result<Vec<u8>, Sent> {
    let message =
        Message::from_vec(query).map_err(|e| Sent::Refused(NetError::from(e.to_string())))?;
    let request = DnsRequest::new(message, DnsRequestOptions::default());
    loop {
        let mut replies = connection.exchange.send(request.clone());
        let reply = tokio::time::timeout_at(deadline.into(), replies.next())
            .await
            .map_err(|_| Sent::Timeout)?;
        return match reply {
            Some(Ok(reply)) => Ok(reply.into_buffer()),
            // The connection's queue is full for a moment (a burst): wait
            // for room rather than open another connection.
            // hickory reports a queue whose connection has ended as busy too.
            Some(Err(e)) if is_busy(&e) && connection.closed.load(Ordering::Acquire) => {
                Err(Sent::Broken(e))
            }
            Some(Err(e)) if is_busy(&e) => {
                tokio::time::sleep(BUSY_WAIT).await;
                continue;
            }
            Some(Err(NetError::Timeout)) => Err(Sent::Timeout),
            Some(Err(e @ (NetError::Io(_) | NetError::H2(_)))) => Err(Sent::Broken(e)),
            Some(Err(e)) if is_closed(&e) => Err(Sent::Broken(e)),
            Some(Err(e)) => Err(Sent::Refused(e)),
            None => Err(Sent::Broken(NetError::from("connection closed"))),
        };
    }
}

/// hickory's queues towards the connection are full: `Busy`, or a message.
fn is_busy(error: &NetError) -> bool {
    matches!(error, NetError::Busy) || error.to_string().contains("channel is full")
}

/// hickory reports a closed or dead connection as a message.
fn is_closed(error: &NetError) -> bool {
    let text = error.to_string();
    [
        "closed",
        "canceled",
        "shutdown",
        "stream errored",
        "NoConnections",
    ]
    .iter()
    .any(|s| text.contains(s))
}

/// Whether `reply` answers `ask`: QR set, same question. hickory matched the
/// ID on the connection (for HTTPS there is one stream per query).
fn answers(reply: &[u8], ask: &Question) -> bool {
    wire::Reply::header(reply).is_some_and(|r| r.asks(ask.lower.as_bytes(), ask.qtype, ask.qclass))
}

/// Adds an EDNS Padding option (RFC 7830) so the query is a multiple of
/// 128 octets long (RFC 8467 §4.1). `query` ends with the OPT record that
/// [`wire::write_query`] writes, its RDLENGTH 0.
fn padded(mut query: Vec<u8>) -> Vec<u8> {
    const OPTION_HEADER: usize = 4;
    let len = query.len() + OPTION_HEADER;
    let pad = (PAD_BLOCK - len % PAD_BLOCK) % PAD_BLOCK;
    let rdlen = query.len() - 2;
    query[rdlen..].copy_from_slice(&((OPTION_HEADER + pad) as u16).to_be_bytes());
    query.extend_from_slice(&12u16.to_be_bytes());
    query.extend_from_slice(&(pad as u16).to_be_bytes());
    query.resize(query.len() + pad, 0);
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_padded_to_128_octets_and_stay_so_through_hickory() {
        for name in [
            &b"\x01a\x00"[..],
            b"\x07example\x03com\x00",
            &[0x3f; 200][..],
        ] {
            let mut lower = name.to_vec();
            if lower.len() == 200 {
                // Three 63-octet labels.
                lower = [
                    &[63][..],
                    &[b'a'; 63],
                    &[63],
                    &[b'b'; 63],
                    &[63],
                    &[b'c'; 63],
                    &[0],
                ]
                .concat();
            }
            let query = padded(wire::build_query(0, &lower, 1, 1, true, false));
            assert_eq!(query.len() % PAD_BLOCK, 0, "{} octets", query.len());
            let message = Message::from_vec(&query).expect("a padded query parses");
            let again = DnsRequest::new(message, DnsRequestOptions::default())
                .to_vec()
                .unwrap();
            assert_eq!(
                again.len() % PAD_BLOCK,
                0,
                "re-encoded: {} octets",
                again.len()
            );
        }
    }
}
