//! One route's upstream servers: failover, fastest or parallel over the ones
//! in rotation (see [`crate::health`]), UDP then TCP on truncation, reply
//! validation, and a bound on queries in flight.
//!
//! Every query gets a fresh random ID and goes out from a socket bound to a
//! random port, connected to the server so the kernel drops datagrams from any
//! other address; a reply is taken only if its ID and question match, anything
//! else is dropped and the wait goes on (RFC 5452 §9). Sockets are pooled and
//! replaced after a few dozen queries, so ports keep changing without a socket
//! per query.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{Notify, Semaphore, oneshot};

use crate::encrypted::{self, ServerSpec};
use crate::health::{self, ServerHealth, Strategy};
use crate::metrics::{Metrics, ServerMetrics};
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
    #[error("network error: {0}")]
    Network(io::ErrorKind),
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
    /// The query message for this question with `id`.
    pub(crate) fn query(&self, id: u16) -> Vec<u8> {
        wire::build_query(
            id,
            self.lower,
            self.qtype,
            self.qclass,
            self.dnssec_ok,
            self.checking_disabled,
        )
    }
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
                .map(|spec| Arc::new(Server::new(&spec)))
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
            let server = Arc::get_mut(server).expect("servers are not shared before they serve");
            server.metrics = metrics.server(route, &server.label);
            if let Some(client) = &server.encrypted {
                client.observed(metrics.encrypted(route, &server.label));
            }
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

    pub fn members(&self) -> &[Arc<Server>] {
        &self.servers
    }

    pub fn servers(&self) -> Vec<SocketAddr> {
        self.servers.iter().map(|s| s.addr).collect()
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
            .find(|s| s.udp.is_pending(id, question))
            .map(|s| s.addr)
    }

    /// Asks the route's servers as its strategy says until one gives a usable
    /// reply: a timeout, SERVFAIL, REFUSED or a malformed reply counts as a
    /// failure of that server and moves on. Servers out of rotation are
    /// skipped (and probed in the background) unless every server is.
    /// Returns the reply and the server that gave it.
    pub async fn ask(&self, ask: Ask<'_>) -> Result<(Vec<u8>, SocketAddr), UpstreamError> {
        if self.servers.is_empty() {
            return Err(UpstreamError::NoServers);
        }
        let _permit = self
            .in_flight
            .try_acquire()
            .map_err(|_| UpstreamError::Busy)?;
        let healths: Vec<&ServerHealth> = self.servers.iter().map(|s| &s.health).collect();
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
                Ok(reply) => return Ok((reply, server.addr)),
                Err(failure) => last = failure,
            }
        }
        Err(UpstreamError::AllFailed(last))
    }

    /// Every server at once; the first usable reply wins and the others are
    /// abandoned.
    async fn ask_parallel(
        &self,
        ask: Ask<'_>,
        order: &[usize],
    ) -> Result<(Vec<u8>, SocketAddr), UpstreamError> {
        let owned = Arc::new(ask.to_owned());
        let mut attempts = tokio::task::JoinSet::new();
        for &i in order {
            let server = Arc::clone(&self.servers[i]);
            let (owned, timeout) = (Arc::clone(&owned), self.timeout);
            attempts.spawn(async move {
                let reply = server.attempt(owned.as_ask(), timeout).await;
                reply.map(|reply| (reply, server.addr))
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
    fn probe_skipped(&self, ask: Ask<'_>, order: &[usize]) {
        let now = Instant::now();
        for (i, server) in self.servers.iter().enumerate() {
            if order.contains(&i) || !server.health.claim_probe(now) {
                continue;
            }
            let (server, owned, timeout) = (Arc::clone(server), ask.to_owned(), self.timeout);
            tracing::debug!(server = %server.label, "probing a server out of rotation");
            tokio::spawn(async move {
                let _ = server.attempt(owned.as_ask(), timeout).await;
            });
        }
    }
}

/// One upstream server and its pooled UDP sockets, or its encrypted connection.
pub struct Server {
    addr: SocketAddr,
    /// The entry as written: the address for UDP servers, `tls://ADDR#NAME` and
    /// `https://ADDR/PATH#NAME` for encrypted ones.
    label: String,
    udp: UdpPool,
    encrypted: Option<encrypted::Client>,
    metrics: ServerMetrics,
    health: ServerHealth,
}

impl Server {
    fn new(spec: &ServerSpec) -> Self {
        Self {
            addr: spec.addr,
            label: spec.to_string(),
            udp: UdpPool::new(spec.addr),
            encrypted: encrypted::Client::new(spec),
            metrics: ServerMetrics::default(),
            health: ServerHealth::default(),
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

    /// One attempt, with its outcome written into the server's metrics and health.
    async fn attempt(&self, ask: Ask<'_>, timeout: Duration) -> Result<Vec<u8>, Failure> {
        let sent = Instant::now();
        let result = self.ask(ask, timeout).await;
        match &result {
            Ok(_) => {
                self.metrics.latency.observe(sent.elapsed());
                self.health.answered(sent.elapsed());
            }
            Err(failure) => {
                self.metrics.failed(*failure);
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
        result
    }

    async fn ask(&self, ask: Ask<'_>, timeout: Duration) -> Result<Vec<u8>, Failure> {
        self.metrics.queries.inc();
        if let Some(client) = &self.encrypted {
            let reply = client.exchange(ask, Instant::now() + timeout).await?;
            return usable(reply);
        }
        let reply = self.udp.exchange(ask, timeout).await?;
        let reply = if wire::Reply::header(&reply).is_some_and(|r| r.truncated()) {
            self.metrics.queries.inc();
            tcp_exchange(self.addr, ask, timeout).await?
        } else {
            reply
        };
        usable(reply)
    }
}

/// `reply` unless its RCODE is SERVFAIL or REFUSED, or it is still truncated.
fn usable(reply: Vec<u8>) -> Result<Vec<u8>, Failure> {
    let msg = Message::parse(&reply).ok_or(Failure::BadReply)?;
    match msg.rcode() {
        wire::RCODE_SERVFAIL => Err(Failure::ServFail),
        wire::RCODE_REFUSED => Err(Failure::Refused),
        _ if msg.truncated() => Err(Failure::BadReply),
        _ => Ok(reply),
    }
}

/// Whether `reply` answers `ask` with this ID: QR set, opcode QUERY, same question.
/// Only the header and question are read here; the records are checked once,
/// when the reply is stored.
fn answers(reply: &[u8], id: u16, ask: Ask<'_>) -> bool {
    wire::Reply::header(reply)
        .is_some_and(|r| r.id() == id && r.asks(ask.lower, ask.qtype, ask.qclass))
}

/// Replace a pooled socket after this many queries, so the source port keeps moving.
const USES_PER_SOCKET: u32 = 64;
const SOCKETS_PER_SERVER: usize = 8;
/// Room for any UDP reply that keeps to the size splitdns advertises, with
/// slack for servers that round it up to the old 4096 default.
const UDP_REPLY_BUFFER: usize = 4096;

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
        let (socket, id, rx) = self.checkout(ask).map_err(|e| Failure::Network(e.kind()))?;
        let mut pending = PendingGuard {
            socket: &socket,
            id: Some(id),
        };
        let query = ask.query(id);
        socket
            .socket
            .send(&query)
            .await
            .map_err(|e| Failure::Network(e.kind()))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => {
                // The reader removed the entry with the reply; from now on the
                // ID may belong to another query, which must stay registered.
                pending.id = None;
                Ok(reply)
            }
            Ok(Err(_)) => Err(Failure::Network(io::ErrorKind::BrokenPipe)),
            Err(_) => Err(Failure::Timeout),
        }
    }

    /// Whether a pooled socket waits for a reply to `id` asking `question`.
    /// Sockets already replaced are not looked at.
    fn is_pending(&self, id: u16, question: &[u8]) -> bool {
        self.slots.iter().any(|slot| {
            let socket = slot.lock().expect("socket slot lock").clone();
            socket.is_some_and(|s| {
                s.pending
                    .lock()
                    .expect("pending lock")
                    .get(&id)
                    .is_some_and(|w| *w.question == *question)
            })
        })
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
        // Upstreams are asked for at most EDNS_UDP_SIZE bytes over UDP; a
        // larger datagram breaks that and arrives cut, fails to parse and is
        // dropped. A small buffer matters: sockets are replaced every few
        // dozen queries, and 64 KiB each would scatter the heap.
        let mut buf = vec![0u8; UDP_REPLY_BUFFER];
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
    /// `None` once the reply arrived (the reader already removed the entry).
    id: Option<u16>,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.socket
                .pending
                .lock()
                .expect("pending lock")
                .remove(&id);
        }
        if self.socket.is_finished() {
            self.socket.wake_reader.notify_one();
        }
    }
}

/// One query over a new TCP connection (RFC 7766), for replies truncated over UDP.
async fn tcp_exchange(
    server: SocketAddr,
    ask: Ask<'_>,
    timeout: Duration,
) -> Result<Vec<u8>, Failure> {
    let id: u16 = rand::random();
    let query = ask.query(id);
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
        .map_err(|e| Failure::Network(e.kind()))?;
    if answers(&reply, id, ask) {
        Ok(reply)
    } else {
        Err(Failure::BadReply)
    }
}
