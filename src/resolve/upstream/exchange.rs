//! One query and its reply, as a task waits for it: over UDP from a port of
//! its own, or over a new TCP connection when the UDP reply was truncated.
//! (A UDP thread's plain misses are sent and read by its table instead,
//! [`super::table`], under the same rules.)
//!
//! Every UDP query gets a random ID and a source port of its own, drawn at
//! random by the kernel when the query is sent and given back when it is
//! answered (RFC 5452 §9.2); a reply is taken only if it comes from the
//! server's address and port and its ID and question match, anything else is
//! dropped and the wait goes on. A refused query (ICMP port unreachable)
//! fails that server at once.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UdpSocket};

use crate::dns::question::Question;
use crate::dns::wire;
use crate::observe::failure::Failure;

use super::sockets::UdpSockets;

/// Room for any UDP reply that keeps to the size splitdns advertises, with
/// slack for servers that round it up to the old 4096 default. Upstreams are
/// asked for at most EDNS_UDP_SIZE bytes over UDP; a larger datagram breaks
/// that and arrives cut, fails to parse and is dropped.
pub(super) const UDP_REPLY_BUFFER: usize = 4096;

/// One query over UDP from a port of its own (RFC 5452 §9.2: an unpredictable
/// source port for every query): sending from a socket with no port binds it
/// to one the kernel draws at random from the whole ephemeral range. The
/// reply is read here, in the waiting future, with no task of its own. A
/// refusal (ICMP port unreachable: nothing listens there) ends the wait at
/// once.
pub(super) async fn udp_exchange(
    sockets: &UdpSockets,
    server: SocketAddr,
    ask: &Question,
    id: u16,
    timeout: Duration,
) -> Result<Vec<u8>, Failure> {
    let lease = sockets.lend(server).map_err(network)?;
    let socket = lease.socket();
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

/// One query over a new TCP connection (RFC 7766), for replies truncated over UDP.
pub(super) async fn tcp_exchange(
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

/// Whether `reply` answers `ask` with this ID: QR set, opcode QUERY, same question.
/// Only the header and question are read here; the records are checked once,
/// when the reply is stored.
pub(super) fn answers(reply: &[u8], id: u16, ask: &Question) -> bool {
    wire::Reply::header(reply)
        .is_some_and(|r| r.id() == id && r.asks(ask.lower.as_bytes(), ask.qtype, ask.qclass))
}

/// Same address and port (an IPv6 flow label or scope may differ).
pub(super) fn same_endpoint(from: SocketAddr, server: SocketAddr) -> bool {
    from.ip() == server.ip() && from.port() == server.port()
}
