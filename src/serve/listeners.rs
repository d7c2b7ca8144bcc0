//! Which addresses splitdns listens on, as the config and the host change.
//!
//! A literal `ADDR:PORT` is bound once and must bind: failing is an error at
//! start and rejects a reload. An `IFNAME:PORT` follows its interface: each
//! of its addresses is bound when it appears and closed when it goes, and an
//! interface that does not exist yet is waited for (dnsmasq's
//! `bind-dynamic`). Other listeners are never touched by these changes.
//!
//! One address is a [`Listener`]: a UDP socket for every UDP thread
//! (SO_REUSEPORT, see [`UdpThreads`]), so the kernel spreads clients over the
//! threads, and a TCP listener on the runtime that started the server.

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::config::Listen;
use crate::host::interfaces;
use crate::resolve::upstream;
use crate::serve::handler::Handler;
use crate::serve::udp_threads::UdpThreads;
use crate::serve::{tcp, udp};
use crate::state::Shared;

/// The listeners held, in the order they were bound.
pub(crate) struct Listeners {
    /// The UDP threads; each listener has a socket on every one.
    udp_threads: Arc<UdpThreads>,
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
    pub(crate) fn bind(listen: &[Listen], udp_threads: Arc<UdpThreads>) -> Result<Self, BindError> {
        let mut listeners = Self {
            udp_threads,
            held: Vec::new(),
            waiting: HashSet::new(),
        };
        listeners.bind_literals(listen)?;
        listeners.follow(listen);
        Ok(listeners)
    }

    /// The UDP threads, to keep them running past the listeners (so that
    /// queries in flight at shutdown are still answered).
    pub(crate) fn udp_threads(&self) -> Arc<UdpThreads> {
        Arc::clone(&self.udp_threads)
    }

    /// How many UDP threads there are.
    pub(crate) fn udp_thread_count(&self) -> usize {
        self.udp_threads.len()
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
                listener.spawn(shared, &self.udp_threads, &mut held.tasks);
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
            match Listener::bind(*addr, self.udp_threads.len()) {
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
                match Listener::bind(addr, self.udp_threads.len()) {
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
    /// One per UDP thread; each is registered with its thread's reactor when it starts serving.
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

    /// Serves until the returned tasks are aborted: UDP on the UDP threads, one
    /// socket each, TCP on the calling runtime.
    pub(crate) fn spawn(
        self,
        shared: &Arc<Shared>,
        udp_threads: &UdpThreads,
        tasks: &mut tokio::task::JoinSet<()>,
    ) {
        for (i, socket) in self.udp.into_iter().enumerate() {
            let read = shared.metrics().udp_thread(i);
            let handler = Handler::new(Arc::clone(shared));
            tasks.spawn_on(udp::serve_udp(handler, socket, read), udp_threads.handle(i));
        }
        let limits = shared.tcp().clone();
        let handler = Handler::new(Arc::clone(shared));
        tasks.spawn(tcp::serve_tcp(handler, self.tcp, limits));
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
    if addr.ip().is_unspecified() {
        hear_destinations(&socket, addr)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Has the kernel tell a wildcard socket each datagram's destination
/// address, which its answer leaves from (see [`crate::serve::batch`]).
fn hear_destinations(socket: &Socket, addr: SocketAddr) -> io::Result<()> {
    let (level, name) = if addr.is_ipv4() {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    };
    upstream::enable_flag(socket, level, name)
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
