//! One route's upstream servers: failover, fastest or parallel over the ones
//! in rotation (see [`crate::resolve::health`]), UDP then TCP on truncation, reply
//! validation, and a bound on queries in flight.
//!
//! Every UDP query gets a random ID and a source port of its own, drawn at
//! random by the kernel when the query is sent and given back when it is
//! answered (RFC 5452 §9.2); a reply is taken only if it comes from the
//! server's address and port and its ID and question match, anything else is
//! dropped and the wait goes on. A refused query (ICMP port unreachable)
//! fails that server at once.
//!
//! Why this file is long: the socket pool, the three strategies and the TCP
//! fallback share one server's state (sockets, IDs in flight, health) and
//! are easiest to check read together.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use socket2::{Domain, SockAddr, SockAddrStorage, SockRef, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use crate::config::Strategy;
use crate::config::server_spec::ServerSpec;
use crate::dns::question::Question;
use crate::dns::wire::{self, Message};
use crate::observe::failure::Failure;
use crate::observe::metrics::{Metrics, ServerMetrics};
use crate::resolve::encrypted;
use crate::resolve::health::{self, ServerHealth};

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

    pub fn members(&self) -> &[Arc<NameServer>] {
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
            .find(|s| s.outstanding.contains(id, question))
            .map(|s| s.addr)
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
                .map(|reply| (reply, server.addr))
                .map_err(UpstreamError::AllFailed);
        }
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
    fn probe_skipped(&self, ask: &Question, order: &[usize]) {
        if order.len() == self.servers.len() {
            return; // none skipped: the usual case, and no clock read
        }
        let now = Instant::now();
        for (i, server) in self.servers.iter().enumerate() {
            if order.contains(&i) || !server.health.claim_probe(now) {
                continue;
            }
            let (server, owned, timeout) = (Arc::clone(server), *ask, self.timeout);
            tracing::debug!(server = %server.label, "probing a server out of rotation");
            tokio::spawn(async move {
                let _ = server.attempt(&owned, timeout).await;
            });
        }
    }
}

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
    fn new(spec: &ServerSpec) -> Self {
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
    async fn attempt(&self, ask: &Question, timeout: Duration) -> Result<Vec<u8>, Failure> {
        let sent = Instant::now();
        let result = self.ask(ask, timeout).await;
        match &result {
            Ok(_) => {
                let rtt = sent.elapsed();
                self.metrics.latency.observe(rtt);
                self.health.answered(rtt);
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

    async fn ask(&self, ask: &Question, timeout: Duration) -> Result<Vec<u8>, Failure> {
        self.metrics.queries.inc();
        if let Some(client) = &self.encrypted {
            let reply = client.exchange(ask, Instant::now() + timeout).await?;
            return usable(reply);
        }
        let outstanding = self.outstanding.register(ask);
        let reply = udp_exchange(&self.sockets, self.addr, ask, outstanding.id, timeout).await?;
        drop(outstanding);
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
fn answers(reply: &[u8], id: u16, ask: &Question) -> bool {
    wire::Reply::header(reply)
        .is_some_and(|r| r.id() == id && r.asks(ask.lower.as_bytes(), ask.qtype, ask.qclass))
}

/// Room for any UDP reply that keeps to the size splitdns advertises, with
/// slack for servers that round it up to the old 4096 default. Upstreams are
/// asked for at most EDNS_UDP_SIZE bytes over UDP; a larger datagram breaks
/// that and arrives cut, fails to parse and is dropped.
const UDP_REPLY_BUFFER: usize = 4096;

/// The queries outstanding at one server over UDP, by ID, with their question
/// (lowercased name, type and class): IDs are unique among them, and `loops`
/// looks a query that came back up here.
#[derive(Default)]
struct OutstandingIds(Mutex<HashMap<u16, Box<[u8]>>>);

impl OutstandingIds {
    /// Takes a random ID no query in flight at this server has, for `ask`.
    fn register(&self, ask: &Question) -> Outstanding<'_> {
        let mut question = Vec::with_capacity(ask.lower.as_bytes().len() + 4);
        question.extend_from_slice(ask.lower.as_bytes());
        question.extend_from_slice(&ask.qtype.to_be_bytes());
        question.extend_from_slice(&ask.qclass.to_be_bytes());
        let mut table = self.0.lock().expect("in-flight table lock");
        let id = loop {
            let id: u16 = rand::random();
            if !table.contains_key(&id) {
                break id;
            }
        };
        table.insert(id, question.into());
        Outstanding { table: self, id }
    }

    fn contains(&self, id: u16, question: &[u8]) -> bool {
        let table = self.0.lock().expect("in-flight table lock");
        table.get(&id).is_some_and(|q| **q == *question)
    }
}

/// A query's entry in its server's [`OutstandingIds`] table, removed however the wait ends.
struct Outstanding<'a> {
    table: &'a OutstandingIds,
    id: u16,
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        let mut table = self.table.0.lock().expect("in-flight table lock");
        table.remove(&self.id);
    }
}

/// Idle sockets kept per server; past this many, a finished query's socket is
/// closed. Above what a busy server has in flight at once, so a load that
/// ebbs and flows does not close sockets only to open them again; a burst
/// beyond it opens sockets that are closed again when it is over.
const MAX_IDLE_SOCKETS: usize = 256;

/// A server's UDP sockets between queries. None is ever bound explicitly, so
/// each gets a port only when a query is sent from it, drawn by the kernel at
/// random from the whole ephemeral range, and gives that port back when the
/// query is answered and the socket is dissolved (`connect` to `AF_UNSPEC`;
/// Linux `udp_disconnect` releases a port it chose itself). Between queries a
/// socket holds no port and can receive nothing. Reusing the socket rather
/// than opening one per query saves its socket(), close() and two epoll
/// registrations; the port changes all the same.
///
/// A socket is registered with the reactor of the thread that opened it, so
/// each reactor has its own idle sockets (see [`use_own_sockets`]): a query
/// then sends, waits and reads on one thread.
struct UdpSockets {
    idle: Box<[Mutex<Vec<UdpSocket>>]>,
}

impl Default for UdpSockets {
    fn default() -> Self {
        Self {
            idle: (0..POOLS).map(|_| Mutex::default()).collect(),
        }
    }
}

/// Idle socket pools per server: one per reactor, up to this many (more
/// reactors share pools, which is correct, only slower).
const POOLS: usize = 64;

thread_local! {
    /// The pool this thread's queries use: 0 for the threads of the main
    /// runtime, which share one reactor.
    static POOL: Cell<usize> = const { Cell::new(0) };
}

/// Says that the calling thread runs a reactor of its own (the `index`th,
/// from 0): its queries use their own idle sockets.
pub(crate) fn use_own_sockets(index: usize) {
    POOL.with(|p| p.set(1 + index % (POOLS - 1)));
}

impl UdpSockets {
    fn pool(&self) -> &Mutex<Vec<UdpSocket>> {
        &self.idle[POOL.with(Cell::get)]
    }

    /// An idle socket, or a new one registered with the reactor.
    fn take(&self, server: SocketAddr) -> io::Result<UdpSocket> {
        if let Some(socket) = self.pool().lock().expect("idle sockets lock").pop() {
            return Ok(socket);
        }
        let socket = Socket::new(Domain::for_address(server), Type::DGRAM.nonblocking(), None)?;
        hear_icmp_errors(&socket, server)?;
        UdpSocket::from_std(socket.into())
    }

    /// Releases the port of a socket whose query was answered, and keeps the
    /// socket for another query. A socket whose query failed is closed
    /// instead: it may hold an ICMP error or a late reply that the next query
    /// must not see.
    fn give_back(&self, socket: UdpSocket) {
        if dissolve(&socket).is_err() {
            return;
        }
        // The reply was read without draining the socket, so the reactor
        // still marks it readable; forget that without a read. A duplicate
        // reply that came in before the port was released is still queued:
        // the next query reads and drops it (its ID is that of a finished
        // query), and its own reply wakes it, as every datagram that arrives
        // does.
        let _ = socket.try_io(Interest::READABLE, || {
            Err::<(), _>(io::ErrorKind::WouldBlock.into())
        });
        let mut idle = self.pool().lock().expect("idle sockets lock");
        if idle.len() < MAX_IDLE_SOCKETS {
            idle.push(socket);
        }
    }
}

/// `IP_RECVERR` (`IPV6_RECVERR`): a socket with no connected peer hears of
/// ICMP errors only with it (ip(7)), and a port unreachable is how a stopped
/// Consul agent answers.
fn hear_icmp_errors(socket: &Socket, server: SocketAddr) -> io::Result<()> {
    let (level, name) = if server.is_ipv4() {
        (libc::IPPROTO_IP, libc::IP_RECVERR)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
    };
    let on: libc::c_int = 1;
    // SAFETY: the option value is a c_int that outlives the call, and its
    // size is the length passed.
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// connect(2) to an `AF_UNSPEC` address, which dissolves any association
/// and gives back the port the kernel chose for the socket.
fn dissolve(socket: &UdpSocket) -> io::Result<()> {
    let storage = SockAddrStorage::zeroed();
    let len = storage.size_of();
    // SAFETY: an all-zero sockaddr_storage is an AF_UNSPEC address (family 0),
    // and `len` is that storage's own size.
    let unspecified = unsafe { SockAddr::new(storage, len) };
    SockRef::from(socket).connect(&unspecified)
}

/// A socket lent to one query: given back once the query is answered
/// ([`Lease::answered`]), closed however else the query ends.
struct Lease<'a> {
    sockets: &'a UdpSockets,
    socket: Option<UdpSocket>,
}

impl Lease<'_> {
    fn answered(mut self) {
        if let Some(socket) = self.socket.take() {
            self.sockets.give_back(socket);
        }
    }
}

/// One query over UDP from a port of its own (RFC 5452 §9.2: an unpredictable
/// source port for every query): sending from a socket with no port binds it
/// to one the kernel draws at random from the whole ephemeral range. The
/// reply is read here, in the waiting future, with no task of its own. A
/// refusal (ICMP port unreachable: nothing listens there) ends the wait at
/// once.
async fn udp_exchange(
    sockets: &UdpSockets,
    server: SocketAddr,
    ask: &Question,
    id: u16,
    timeout: Duration,
) -> Result<Vec<u8>, Failure> {
    let lease = Lease {
        sockets,
        socket: Some(sockets.take(server).map_err(network)?),
    };
    let socket = lease.socket.as_ref().expect("a lease holds its socket");
    let query = ask.query(id);
    // Sent straight away: a new socket's send readiness is only known after a
    // turn of the reactor, and a UDP socket with nothing queued has room.
    match SockRef::from(socket).send_to(&query, &server.into()) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            socket.send_to(&query, server).await.map_err(network)?;
        }
        sent => {
            sent.map_err(network)?;
        }
    }
    let reply = tokio::time::timeout(timeout, read_reply(socket, server, id, ask))
        .await
        .map_err(|_| Failure::Timeout)??;
    lease.answered();
    Ok(reply)
}

fn network(error: io::Error) -> Failure {
    Failure::Network(error.kind())
}

/// Waits for the datagram from `server` that answers `ask` with `id`;
/// anything else is dropped and the wait goes on (RFC 5452 §9). An ICMP error
/// about the query (ECONNREFUSED for port unreachable) ends the wait.
async fn read_reply(
    socket: &UdpSocket,
    server: SocketAddr,
    id: u16,
    ask: &Question,
) -> Result<Vec<u8>, Failure> {
    loop {
        // An ICMP error marks the socket in error, not readable.
        let ready = socket
            .ready(Interest::READABLE | Interest::ERROR)
            .await
            .map_err(network)?;
        if ready.is_error() {
            if let Some(error) = socket.take_error().map_err(network)? {
                return Err(network(error));
            }
            let _ = socket.try_io(Interest::ERROR, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
        if !ready.is_readable() {
            continue;
        }
        // Read into this thread's buffer, and copied out only when it is the
        // answer: no buffer of the largest size to allocate per query.
        let received = REPLY_BUFFER.with_borrow_mut(|buf| {
            socket.try_recv_from(buf).map(|(len, from)| {
                let wanted = same_endpoint(from, server) && answers(&buf[..len], id, ask);
                (wanted.then(|| buf[..len].to_vec()), from)
            })
        });
        match received {
            Ok((Some(reply), _)) => return Ok(reply),
            Ok((None, from)) => {
                tracing::debug!(id, %from, "dropped a datagram that does not answer the query");
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(network(e)),
        }
    }
}

thread_local! {
    static REPLY_BUFFER: RefCell<[u8; UDP_REPLY_BUFFER]> = const { RefCell::new([0; UDP_REPLY_BUFFER]) };
}

/// Same address and port (an IPv6 flow label or scope may differ).
fn same_endpoint(from: SocketAddr, server: SocketAddr) -> bool {
    from.ip() == server.ip() && from.port() == server.port()
}

/// One query over a new TCP connection (RFC 7766), for replies truncated over UDP.
async fn tcp_exchange(
    server: SocketAddr,
    ask: &Question,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What per-query ports rest on: a socket the kernel bound when it sent
    /// holds no port once dissolved, so its next send draws a new one.
    async fn port_is_given_back(local: &str) {
        let Ok(server) = std::net::UdpSocket::bind(local) else {
            return; // no such loopback address here (IPv6 off)
        };
        let server = server.local_addr().unwrap();
        let sockets = UdpSockets::default();
        let socket = sockets.take(server).unwrap();
        SockRef::from(&socket)
            .send_to(b"query", &server.into())
            .unwrap();
        assert_ne!(socket.local_addr().unwrap().port(), 0);

        sockets.give_back(socket);

        let socket = sockets.take(server).unwrap();
        assert_eq!(socket.local_addr().unwrap().port(), 0);
    }

    #[tokio::test]
    async fn an_answered_query_gives_its_port_back_ipv4() {
        port_is_given_back("127.0.0.1:0").await;
    }

    #[tokio::test]
    async fn an_answered_query_gives_its_port_back_ipv6() {
        port_is_given_back("[::1]:0").await;
    }
}
