//! One route's upstream servers: failover, fastest or parallel over the healthy
//! ones (see [`crate::health`]), UDP then TCP on truncation, reply validation,
//! and a bound on queries in flight.
//!
//! Every query gets a fresh random ID and goes out from a socket bound to a
//! random port, connected to the server so the kernel drops datagrams from any
//! other address; a reply is taken only if its ID and question match, anything
//! else is dropped and the wait goes on (RFC 5452 §9). Sockets are pooled and
//! replaced after a few dozen queries, so ports keep changing without a socket
//! per query.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{Notify, Semaphore, oneshot};

use crate::health::{self, Health, Strategy};
use crate::wire::{self, Message};

/// Why a route's upstreams gave no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("too many queries in flight for this route")]
    Busy,
    #[error("the route has no servers")]
    NoServers,
    #[error("every server failed (last: {0})")]
    AllFailed(Failure),
}

/// How one attempt at one server failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("timeout")]
    Timeout,
    #[error("SERVFAIL")]
    ServFail,
    #[error("REFUSED")]
    Refused,
    #[error("bad reply")]
    BadReply,
    #[error("network error")]
    Network,
}

/// The question being asked upstream, lowercased.
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    pub lower: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    pub dnssec_ok: bool,
    pub checking_disabled: bool,
}

impl Ask<'_> {
    fn to_owned(self) -> OwnedAsk {
        OwnedAsk {
            lower: self.lower.into(),
            qtype: self.qtype,
            qclass: self.qclass,
            dnssec_ok: self.dnssec_ok,
            checking_disabled: self.checking_disabled,
        }
    }
}

/// An [`Ask`] that a background task can own (probes, parallel queries).
struct OwnedAsk {
    lower: Box<[u8]>,
    qtype: u16,
    qclass: u16,
    dnssec_ok: bool,
    checking_disabled: bool,
}

impl OwnedAsk {
    fn as_ask(&self) -> Ask<'_> {
        Ask {
            lower: &self.lower,
            qtype: self.qtype,
            qclass: self.qclass,
            dnssec_ok: self.dnssec_ok,
            checking_disabled: self.checking_disabled,
        }
    }
}

/// The servers of one route and how to choose among them.
pub struct Upstream {
    servers: Vec<Arc<Server>>,
    timeout: Duration,
    in_flight: Semaphore,
    strategy: Strategy,
    /// Counts queries, so `fastest` can re-measure now and then.
    turn: AtomicU32,
}

impl Upstream {
    pub fn new(
        servers: Vec<SocketAddr>,
        timeout: Duration,
        max_in_flight: usize,
        strategy: Strategy,
    ) -> Self {
        Self {
            servers: servers
                .into_iter()
                .map(|addr| Arc::new(Server::new(addr)))
                .collect(),
            timeout,
            in_flight: Semaphore::new(max_in_flight.max(1)),
            strategy,
            turn: AtomicU32::new(0),
        }
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn servers(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.addr).collect()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Asks the route's servers as its strategy says until one gives a usable
    /// reply: a timeout, SERVFAIL, REFUSED or a malformed reply counts as a
    /// failure of that server and moves on. Servers that are down are skipped
    /// (and probed in the background) unless every server is down.
    pub async fn ask(&self, ask: Ask<'_>) -> Result<Vec<u8>, UpstreamError> {
        if self.servers.is_empty() {
            return Err(UpstreamError::NoServers);
        }
        let _permit = self
            .in_flight
            .try_acquire()
            .map_err(|_| UpstreamError::Busy)?;
        let healths: Vec<&Health> = self.servers.iter().map(|s| &s.health).collect();
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let order = health::order(self.strategy, &healths, turn);
        self.probe_skipped(ask, &order);
        if self.strategy == Strategy::Parallel && order.len() > 1 {
            return self.ask_parallel(ask, &order).await;
        }
        let mut last = Failure::Timeout;
        for &i in &order {
            match self.servers[i].ask(ask, self.timeout).await {
                Ok(reply) => return Ok(reply),
                Err(failure) => last = failure,
            }
        }
        Err(UpstreamError::AllFailed(last))
    }

    /// Every server at once; the first usable reply wins and the others are
    /// abandoned.
    async fn ask_parallel(&self, ask: Ask<'_>, order: &[usize]) -> Result<Vec<u8>, UpstreamError> {
        let owned = Arc::new(ask.to_owned());
        let mut attempts = tokio::task::JoinSet::new();
        for &i in order {
            let server = Arc::clone(&self.servers[i]);
            let (owned, timeout) = (Arc::clone(&owned), self.timeout);
            attempts.spawn(async move { server.ask(owned.as_ask(), timeout).await });
        }
        let mut last = Failure::Timeout;
        while let Some(done) = attempts.join_next().await {
            match done {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(failure)) => last = failure,
                Err(_) => last = Failure::Network,
            }
        }
        Err(UpstreamError::AllFailed(last))
    }

    /// Sends this question, in the background, to each skipped server that is
    /// due a probe: its answer, if any, puts it back in rotation.
    fn probe_skipped(&self, ask: Ask<'_>, order: &[usize]) {
        let now = Instant::now();
        for (i, server) in self.servers.iter().enumerate() {
            if order.contains(&i) || !server.health.claim_probe(now) {
                continue;
            }
            let (server, owned, timeout) = (Arc::clone(server), ask.to_owned(), self.timeout);
            tracing::debug!(server = %server.addr, "probing a server that is down");
            tokio::spawn(async move {
                let _ = server.ask(owned.as_ask(), timeout).await;
            });
        }
    }
}

/// One upstream server and its pooled UDP sockets.
pub struct Server {
    addr: SocketAddr,
    udp: UdpPool,
    queries: AtomicU64,
    failures: AtomicU64,
    health: Health,
}

impl Server {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            udp: UdpPool::new(addr),
            queries: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            health: Health::default(),
        }
    }

    /// One attempt, with its outcome written into the server's health.
    async fn ask(&self, ask: Ask<'_>, timeout: Duration) -> Result<Vec<u8>, Failure> {
        let started = Instant::now();
        let result = self.exchange(ask, timeout).await;
        match &result {
            Ok(_) => self.health.succeeded(started.elapsed()),
            Err(failure) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(server = %self.addr, %failure, "upstream attempt failed");
                if self.health.failed() {
                    tracing::warn!(
                        server = %self.addr,
                        %failure,
                        "upstream server is down after {} failures in a row; probing it every {}s",
                        health::DOWN_AFTER,
                        health::PROBE_EVERY.as_secs()
                    );
                }
            }
        }
        result
    }

    async fn exchange(&self, ask: Ask<'_>, timeout: Duration) -> Result<Vec<u8>, Failure> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let reply = self.udp.exchange(ask, timeout).await?;
        let reply = if Message::parse(&reply).is_some_and(|m| m.truncated()) {
            self.queries.fetch_add(1, Ordering::Relaxed);
            tcp_exchange(self.addr, ask, timeout).await?
        } else {
            reply
        };
        let msg = Message::parse(&reply).ok_or(Failure::BadReply)?;
        match msg.rcode() {
            wire::RCODE_SERVFAIL => Err(Failure::ServFail),
            wire::RCODE_REFUSED => Err(Failure::Refused),
            _ if msg.truncated() => Err(Failure::BadReply),
            _ => Ok(reply),
        }
    }
}

/// Whether `reply` answers `ask` with this ID: QR set, opcode QUERY, same question.
fn answers(reply: &[u8], id: u16, ask: Ask<'_>) -> bool {
    let Some(msg) = Message::parse(reply) else {
        return false;
    };
    msg.id() == id
        && msg.is_response()
        && msg.opcode() == 0
        && msg.asks(ask.lower, ask.qtype, ask.qclass)
}

/// Replace a pooled socket after this many queries, so the source port keeps moving.
const USES_PER_SOCKET: u32 = 64;
const SOCKETS_PER_SERVER: usize = 8;

struct UdpPool {
    server: SocketAddr,
    slots: Vec<Mutex<Option<Arc<PooledSocket>>>>,
    next: AtomicUsize,
}

struct PooledSocket {
    socket: UdpSocket,
    pending: Mutex<HashMap<u16, Waiter>>,
    /// Every ID this socket has sent: never two queries with the same
    /// (source port, ID), so a late reply can never match a newer query.
    issued: Mutex<Vec<u16>>,
    uses: AtomicU32,
    /// Set when the pool has replaced this socket: its reader stops once no
    /// query waits on it any more.
    retired: AtomicBool,
    wake_reader: Notify,
}

struct Waiter {
    question: Box<[u8]>,
    tx: oneshot::Sender<Vec<u8>>,
}

impl UdpPool {
    fn new(server: SocketAddr) -> Self {
        Self {
            server,
            slots: (0..SOCKETS_PER_SERVER).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
        }
    }

    async fn exchange(&self, ask: Ask<'_>, timeout: Duration) -> Result<Vec<u8>, Failure> {
        let (socket, id, rx) = self.checkout(ask).map_err(|_| Failure::Network)?;
        let _pending = PendingGuard {
            socket: &socket,
            id,
        };
        let query = wire::build_query(
            id,
            ask.lower,
            ask.qtype,
            ask.qclass,
            ask.dnssec_ok,
            ask.checking_disabled,
        );
        socket
            .socket
            .send(&query)
            .await
            .map_err(|_| Failure::Network)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(Failure::Network),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// A socket from the pool (replacing one that has served its quota) with
    /// `ask` registered on it under a fresh ID. Registering under the slot lock
    /// means a socket is never retired between being handed out and having a
    /// query waiting on it, which would let its reader stop too early.
    fn checkout(
        &self,
        ask: Ask<'_>,
    ) -> io::Result<(Arc<PooledSocket>, u16, oneshot::Receiver<Vec<u8>>)> {
        let slot = &self.slots[self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()];
        let mut slot = slot.lock().expect("socket slot lock");
        let socket = match slot.as_ref() {
            Some(s) if s.uses.fetch_add(1, Ordering::Relaxed) < USES_PER_SOCKET => Arc::clone(s),
            _ => {
                if let Some(old) = slot.take() {
                    old.retire();
                }
                let fresh = PooledSocket::open(self.server)?;
                *slot = Some(Arc::clone(&fresh));
                fresh
            }
        };
        let (id, rx) = socket.register(ask);
        Ok((socket, id, rx))
    }
}

impl Drop for UdpPool {
    fn drop(&mut self) {
        for slot in &self.slots {
            if let Some(s) = slot.lock().expect("socket slot lock").take() {
                s.retire();
            }
        }
    }
}

impl PooledSocket {
    fn open(server: SocketAddr) -> io::Result<Arc<Self>> {
        let local: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let std = std::net::UdpSocket::bind(local)?;
        std.connect(server)?;
        std.set_nonblocking(true)?;
        let socket = Arc::new(Self {
            socket: UdpSocket::from_std(std)?,
            pending: Mutex::new(HashMap::new()),
            issued: Mutex::new(Vec::with_capacity(USES_PER_SOCKET as usize)),
            uses: AtomicU32::new(1),
            retired: AtomicBool::new(false),
            wake_reader: Notify::new(),
        });
        tokio::spawn(Arc::clone(&socket).read_replies());
        Ok(socket)
    }

    /// Takes a random ID this socket has not used before.
    fn register(&self, ask: Ask<'_>) -> (u16, oneshot::Receiver<Vec<u8>>) {
        let (tx, rx) = oneshot::channel();
        let mut question = Vec::with_capacity(ask.lower.len() + 4);
        question.extend_from_slice(ask.lower);
        question.extend_from_slice(&ask.qtype.to_be_bytes());
        question.extend_from_slice(&ask.qclass.to_be_bytes());
        let mut pending = self.pending.lock().expect("pending lock");
        let mut issued = self.issued.lock().expect("issued IDs lock");
        let id = loop {
            let id: u16 = rand::random();
            if !pending.contains_key(&id) && !issued.contains(&id) {
                break id;
            }
        };
        issued.push(id);
        pending.insert(
            id,
            Waiter {
                question: question.into(),
                tx,
            },
        );
        (id, rx)
    }

    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        self.wake_reader.notify_one();
    }

    /// A retired socket with no query waiting is closed by its reader.
    fn is_finished(&self) -> bool {
        self.retired.load(Ordering::Acquire)
            && self.pending.lock().expect("pending lock").is_empty()
    }

    /// Hands each reply to the query waiting on its ID, if the question matches.
    async fn read_replies(self: Arc<Self>) {
        let mut buf = vec![0u8; 65_535];
        while !self.is_finished() {
            tokio::select! {
                // ICMP errors from earlier sends surface as errors; that query times out.
                received = self.socket.recv(&mut buf) => if let Ok(n) = received {
                    self.dispatch(&buf[..n]);
                },
                () = self.wake_reader.notified() => {}
            }
        }
    }

    fn dispatch(&self, reply: &[u8]) {
        let Some(id) = wire::read_u16(reply, 0) else {
            return;
        };
        let mut pending = self.pending.lock().expect("pending lock");
        let Some(waiter) = pending.get(&id) else {
            return;
        };
        let q = &waiter.question;
        let (lower, tail) = q.split_at(q.len() - 4);
        let ask = Ask {
            lower,
            qtype: u16::from_be_bytes([tail[0], tail[1]]),
            qclass: u16::from_be_bytes([tail[2], tail[3]]),
            dnssec_ok: false,
            checking_disabled: false,
        };
        if !answers(reply, id, ask) {
            tracing::debug!(
                id,
                "dropped an upstream reply that does not match its query"
            );
            return;
        }
        if let Some(waiter) = pending.remove(&id) {
            let _ = waiter.tx.send(reply.to_vec());
        }
    }
}

/// Removes a query from its socket's pending table however the wait ends.
struct PendingGuard<'a> {
    socket: &'a PooledSocket,
    id: u16,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.socket
            .pending
            .lock()
            .expect("pending lock")
            .remove(&self.id);
    }
}

/// One query over a new TCP connection (RFC 7766), for replies truncated over UDP.
async fn tcp_exchange(
    server: SocketAddr,
    ask: Ask<'_>,
    timeout: Duration,
) -> Result<Vec<u8>, Failure> {
    let id: u16 = rand::random();
    let query = wire::build_query(
        id,
        ask.lower,
        ask.qtype,
        ask.qclass,
        ask.dnssec_ok,
        ask.checking_disabled,
    );
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
        framed.extend_from_slice(&query);
        stream.write_all(&framed).await?;
        let len = stream.read_u16().await?;
        let mut reply = vec![0; usize::from(len)];
        stream.read_exact(&mut reply).await?;
        io::Result::Ok(reply)
    };
    let reply = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| Failure::Timeout)?
        .map_err(|_| Failure::Network)?;
    if answers(&reply, id, ask) {
        Ok(reply)
    } else {
        Err(Failure::BadReply)
    }
}
