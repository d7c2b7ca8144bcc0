//! A server's UDP sockets between the queries asked from tasks, one pool per
//! reactor, and the socket options that make a per-query port and a refused
//! query work (the UDP threads' tables use them too).

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Mutex;

use socket2::{Domain, SockAddr, SockAddrStorage, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Idle sockets kept per server; past this many, a finished query's socket is
/// closed. Above what a busy server has in flight at once, so a load that
/// ebbs and flows does not close sockets only to open them again; a burst
/// beyond it opens sockets that are closed again when it is over.
pub(super) const MAX_IDLE_SOCKETS: usize = 256;

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
pub(super) struct UdpSockets {
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
    /// A socket for one query to `server`, given back to this pool if the
    /// query is answered.
    pub(super) fn lend(&self, server: SocketAddr) -> io::Result<Lease<'_>> {
        Ok(Lease {
            sockets: self,
            socket: Some(self.take(server)?),
        })
    }

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
pub(super) fn hear_icmp_errors(socket: &Socket, server: SocketAddr) -> io::Result<()> {
    let (level, name) = if server.is_ipv4() {
        (libc::IPPROTO_IP, libc::IP_RECVERR)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
    };
    enable_flag(socket, level, name)
}

/// Turns on a socket's on/off option `name` of `level` (`IPPROTO_IP`,
/// `IP_RECVERR`): the IP-level flags socket2 does not set.
pub(crate) fn enable_flag(
    socket: &Socket,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<()> {
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
pub(super) fn dissolve(socket: &impl AsFd) -> io::Result<()> {
    let storage = SockAddrStorage::zeroed();
    let len = storage.size_of();
    // SAFETY: an all-zero sockaddr_storage is an AF_UNSPEC address (family 0),
    // and `len` is that storage's own size.
    let unspecified = unsafe { SockAddr::new(storage, len) };
    SockRef::from(socket).connect(&unspecified)
}

/// A socket lent to one query: given back once the query is answered
/// ([`Lease::answered`]), closed however else the query ends.
pub(super) struct Lease<'a> {
    sockets: &'a UdpSockets,
    socket: Option<UdpSocket>,
}

impl Lease<'_> {
    pub(super) fn socket(&self) -> &UdpSocket {
        self.socket.as_ref().expect("a lease holds its socket")
    }

    pub(super) fn answered(mut self) {
        if let Some(socket) = self.socket.take() {
            self.sockets.give_back(socket);
        }
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
