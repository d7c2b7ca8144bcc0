//! Listeners: UDP and TCP on every listen address.
//!
//! Each UDP address gets one socket per UDP thread (SO_REUSEPORT, see
//! [`Shards`]), so the kernel spreads clients over the threads; a cache hit is
//! answered inline in the socket's loop. TCP connections take
//! pipelined queries and answer each as soon as it is ready (RFC 7766 §6.2.1.1),
//! within the limits of [`TcpConfig`]: a cap on connections (the one idle
//! longest makes room), an idle timeout, a deadline per message and for each
//! write, and a number of queries per connection. Every connection is its own
//! task, so none of this can hold up UDP.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use socket2::{Domain, SockAddr, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Notify, Semaphore, mpsc};

use crate::config::TcpConfig;
use crate::dns::wire::Protocol;
use crate::serve::batch::{BATCH, Batch};
use crate::serve::connections::{Connections, Slot};
use crate::serve::handler::{Handler, Step};
use crate::serve::shards::Shards;
use crate::state::Shared;

/// Pipelined queries of one connection being resolved at once.
const TCP_PIPELINE: usize = 32;

/// A bind that failed, worded for the operator.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({protocol}): {source}{hint}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub protocol: &'static str,
    pub source: io::Error,
    pub hint: &'static str,
}

impl BindError {
    fn new(addr: SocketAddr, protocol: &'static str, source: io::Error) -> Self {
        let hint = match source.kind() {
            io::ErrorKind::PermissionDenied => {
                "; ports below 1024 need root or CAP_NET_BIND_SERVICE (the systemd unit grants it)"
            }
            io::ErrorKind::AddrInUse => {
                "; another DNS server (dnsmasq, systemd-resolved, a second splitdns) holds it: stop it or pick another address"
            }
            io::ErrorKind::AddrNotAvailable => "; no interface has this address: check `ip addr`",
            _ => "",
        };
        Self {
            addr,
            protocol,
            source,
            hint,
        }
    }
}

/// The sockets bound for one listen address.
pub(crate) struct Listener {
    pub addr: SocketAddr,
    /// One per shard; each is registered with its shard's reactor when it starts serving.
    udp: Vec<std::net::UdpSocket>,
    tcp: TcpListener,
}

impl Listener {
    /// Binds UDP (one socket per UDP thread) and TCP on `addr`. Port 0 picks a port
    /// free for both protocols.
    pub(crate) fn bind(addr: SocketAddr, threads: usize) -> Result<Self, BindError> {
        let attempts = if addr.port() == 0 { 20 } else { 1 };
        let mut last = None;
        for _ in 0..attempts {
            match Self::bind_once(addr, threads) {
                Ok(listener) => return Ok(listener),
                Err(e) if addr.port() == 0 && e.source.kind() == io::ErrorKind::AddrInUse => {
                    last = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    fn bind_once(addr: SocketAddr, threads: usize) -> Result<Self, BindError> {
        let first = udp_socket(addr).map_err(|e| BindError::new(addr, "UDP", e))?;
        let bound = first
            .local_addr()
            .map_err(|e| BindError::new(addr, "UDP", e))?;
        let mut udp = vec![first];
        for _ in 1..threads.max(1) {
            udp.push(udp_socket(bound).map_err(|e| BindError::new(bound, "UDP", e))?);
        }
        let tcp = tcp_listener(bound).map_err(|e| BindError::new(bound, "TCP", e))?;
        let tcp = TcpListener::from_std(tcp).map_err(|e| BindError::new(bound, "TCP", e))?;
        Ok(Self {
            addr: bound,
            udp,
            tcp,
        })
    }

    /// Serves until the returned tasks are aborted: UDP on the shards, one
    /// socket each, TCP on the calling runtime.
    pub(crate) fn spawn(
        self,
        shared: &Arc<Shared>,
        shards: &Shards,
        tasks: &mut tokio::task::JoinSet<()>,
    ) {
        for (i, socket) in self.udp.into_iter().enumerate() {
            let read = shared.metrics().udp_thread(i);
            let handler = Handler::new(Arc::clone(shared));
            tasks.spawn_on(serve_udp(handler, socket, read), shards.handle(i));
        }
        let limits = shared.tcp().clone();
        let handler = Handler::new(Arc::clone(shared));
        tasks.spawn(serve_tcp(handler, self.tcp, limits));
    }
}

/// Binds `addr` for UDP and TCP as [`Listener::bind`] would, and closes both
/// again: whether splitdns could listen there now.
pub(crate) fn probe(addr: SocketAddr) -> Result<(), BindError> {
    let udp = udp_socket(addr).map_err(|e| BindError::new(addr, "UDP", e))?;
    let bound = udp
        .local_addr()
        .map_err(|e| BindError::new(addr, "UDP", e))?;
    tcp_listener(bound).map_err(|e| BindError::new(bound, "TCP", e))?;
    Ok(())
}

fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    // A deeper queue absorbs bursts; the kernel caps it at rmem_max.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Answers a burst of queries per wake-up: hits and local answers go back in
/// one sendmmsg, misses each get a task on this shard, and their answers wait
/// in the [`Outbox`] to go out with the next burst's.
async fn serve_udp(handler: Handler, socket: std::net::UdpSocket, read: Counter) {
    let socket = match UdpSocket::from_std(socket) {
        Ok(socket) => Arc::new(socket),
        Err(error) => {
            tracing::error!(%error, "cannot serve a UDP socket");
            return;
        }
    };
    let fd = socket.as_raw_fd();
    let mut batch = Batch::new();
    let outbox = Arc::new(Outbox::default());
    let _closed = OutboxClosed(Arc::clone(&outbox), Arc::clone(&socket));
    loop {
        let readable = tokio::select! {
            biased;
            ready = socket.readable() => ready.is_ok(),
            () = outbox.posted.notified() => false,
        };
        let received = if readable {
            match socket.try_io(Interest::READABLE, || batch.recv(fd)) {
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
                Err(error) => {
                    tracing::debug!(%error, "UDP receive failed");
                    0
                }
            }
        } else {
            0
        };
        if received > 0 {
            read.inc_by(received as u64);
        }
        if received > 0 && received < BATCH {
            // Fewer than asked for: the queue was empty when read. Forget the
            // readiness now rather than learn it from one more receive that
            // would fail: a datagram that arrives after the read is reported
            // by the reactor afresh, and the reactor runs on this thread, so
            // it cannot have seen one in between.
            let _ = socket.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
        for i in 0..received {
            let Some((packet, client, out)) = batch.query(i) else {
                continue;
            };
            match handler.answer_now(packet, client.ip(), Protocol::Udp, out) {
                Step::Reply => batch.reply[i] = true,
                Step::Drop => {}
                Step::Miss(miss) => {
                    let handler = handler.clone();
                    let (outbox, socket) = (Arc::clone(&outbox), Arc::clone(&socket));
                    tokio::spawn(async move {
                        let reply = handler.answer_miss(miss).await;
                        outbox.post(reply, client, &socket).await;
                    });
                }
            }
        }
        let queued = outbox.take();
        let sent = batch.send(fd, received, &queued);
        for (reply, to) in batch.outgoing(received, &queued).skip(sent) {
            if let Some(client) = to.socket_addr() {
                let _ = socket.send_to(reply, client).await;
            }
        }
        if received == BATCH {
            // More may be waiting, and waiting for readiness would not wait:
            // let this thread's other work run first (the misses just
            // spawned, upstream replies, timers, the other sockets), so a
            // flood is answered in turns rather than starving them.
            tokio::task::yield_now().await;
        }
    }
}

/// Answers to misses of one UDP socket, waiting for its loop to send them
/// together with its next burst: one sendmmsg for the answers that came in
/// together, rather than a sendto each.
#[derive(Default)]
struct Outbox {
    /// Each answer with its client's address in the form sendmmsg takes.
    queue: Mutex<Vec<(Vec<u8>, SockAddr)>>,
    posted: Notify,
    /// The loop is gone (the listener closed): answers go out directly.
    closed: AtomicBool,
}

impl Outbox {
    async fn post(&self, reply: Vec<u8>, client: SocketAddr, socket: &UdpSocket) {
        if !self.closed.load(Ordering::Acquire) {
            let mut queue = self.queue.lock().expect("outbox lock");
            queue.push((reply, SockAddr::from(client)));
            if queue.len() == 1 {
                self.posted.notify_one();
            }
            return;
        }
        let _ = socket.send_to(&reply, client).await;
    }

    fn take(&self) -> Vec<(Vec<u8>, SockAddr)> {
        std::mem::take(&mut *self.queue.lock().expect("outbox lock"))
    }
}

/// Marks the outbox closed when the loop that empties it ends, and sends
/// what it still holds.
struct OutboxClosed(Arc<Outbox>, Arc<UdpSocket>);

impl Drop for OutboxClosed {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        let mut waiting: Vec<(Vec<u8>, SocketAddr)> = self
            .0
            .take()
            .into_iter()
            .filter_map(|(reply, to)| Some((reply, to.as_socket()?)))
            .collect();
        waiting.retain(|(reply, client)| {
            matches!(self.1.try_send_to(reply, *client), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        });
        // A full send buffer: the rest go out as it drains, if the runtime
        // is still there to send them.
        if let (false, Ok(runtime)) = (waiting.is_empty(), tokio::runtime::Handle::try_current()) {
            let socket = Arc::clone(&self.1);
            runtime.spawn(async move {
                for (reply, client) in waiting {
                    let _ = socket.send_to(&reply, client).await;
                }
            });
        }
    }
}

async fn serve_tcp(handler: Handler, listener: TcpListener, limits: TcpConfig) {
    let connections = Connections::new(limits.max_connections);
    let limits = Arc::new(limits);
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(slot) = connections.admit() else {
            tracing::debug!(%client, "TCP connection closed: every connection has queries in flight");
            continue;
        };
        let (handler, limits) = (handler.clone(), Arc::clone(&limits));
        let counted = handler.shared().metrics().tcp_connection();
        tokio::spawn(async move {
            tokio::select! {
                () = serve_connection(handler, stream, client, &slot, &limits) => {}
                () = slot.closed() => tracing::debug!(%client, "closed an idle TCP connection to make room"),
            }
            drop(counted);
        });
    }
}

/// Reads length-prefixed queries until the client goes idle, is too slow with
/// a message, or has sent its quota; responses go out as they are ready, in
/// any order.
async fn serve_connection(
    handler: Handler,
    stream: TcpStream,
    client: SocketAddr,
    slot: &Slot,
    limits: &TcpConfig,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(TCP_PIPELINE);
    let write_timeout = limits.read_timeout;
    let write = tokio::spawn(async move {
        while let Some(reply) = rx.recv().await {
            let mut framed = Vec::with_capacity(reply.len() + 2);
            framed.extend_from_slice(&(reply.len() as u16).to_be_bytes());
            framed.extend_from_slice(&reply);
            // A client that does not read its answers is given up on.
            let written = tokio::time::timeout(write_timeout, writer.write_all(&framed)).await;
            if !matches!(written, Ok(Ok(()))) {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    let pipeline = Arc::new(Semaphore::new(TCP_PIPELINE));
    let mut out = Vec::new();
    for _ in 0..limits.max_queries {
        let Some(packet) = read_message(&mut reader, limits).await else {
            break;
        };
        slot.queried();
        match handler.answer_now(&packet, client.ip(), Protocol::Tcp, &mut out) {
            Step::Reply => {
                if tx.send(std::mem::take(&mut out)).await.is_err() {
                    break;
                }
            }
            Step::Drop => {}
            Step::Miss(miss) => {
                let Ok(permit) = Arc::clone(&pipeline).acquire_owned().await else {
                    break;
                };
                let handler = handler.clone();
                let tx = tx.clone();
                let busy = slot.conn.busy();
                tokio::spawn(async move {
                    let reply = handler.answer_miss(miss).await;
                    let _ = tx.send(reply).await;
                    drop((permit, busy));
                });
            }
        }
    }
    drop(tx);
    let _ = write.await;
}

/// One length-prefixed message: its first byte within the idle timeout, the
/// rest within the read timeout (RFC 7766 §6.2.3), so a client trickling
/// bytes holds a connection for a bounded time. `None` when the connection
/// should close.
async fn read_message(reader: &mut OwnedReadHalf, limits: &TcpConfig) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    let got = tokio::time::timeout(limits.idle_timeout, reader.read(&mut len))
        .await
        .ok()?
        .ok()?;
    if got == 0 {
        return None;
    }
    let rest = async {
        if got == 1 {
            reader.read_exact(&mut len[1..]).await?;
        }
        let mut packet = vec![0; usize::from(u16::from_be_bytes(len))];
        reader.read_exact(&mut packet).await?;
        io::Result::Ok(packet)
    };
    tokio::time::timeout(limits.read_timeout, rest)
        .await
        .ok()?
        .ok()
}
