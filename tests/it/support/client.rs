//! A small DNS client over UDP and TCP, built on hickory-proto's `Message`.
//!
//! Every call uses a fresh socket, so concurrent calls never see each other's replies.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use super::name;

/// How long a test waits for a reply it expects.
pub(crate) const REPLY_WAIT: Duration = Duration::from_secs(5);
/// How long [`udp_maybe_reply`] waits before giving up. Silence this long proves nothing on a
/// loaded machine: it is for polling something that will answer, asked again on `None`. To
/// show that a packet got no reply, see [`udp_reply_after`]; that nothing listens,
/// [`assert_refused`].
pub(crate) const SILENCE_WAIT: Duration = Duration::from_millis(400);
/// How long [`assert_refused`] waits on one probe before sending the next.
const PROBE_WAIT: Duration = Duration::from_millis(100);

/// A standard query (random ID, RD=1, no EDNS) for `qname` and `qtype`; the name's case is kept.
pub(crate) fn query(qname: &str, qtype: RecordType) -> Message {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name(qname), qtype));
    msg
}

/// Like [`query`], with an EDNS0 OPT advertising `udp_size`.
pub(crate) fn query_with_edns(qname: &str, qtype: RecordType, udp_size: u16) -> Message {
    let mut msg = query(qname, qtype);
    let mut edns = Edns::new();
    edns.set_max_payload(udp_size);
    msg.set_edns(edns);
    msg
}

pub(crate) fn encode(msg: &Message) -> Vec<u8> {
    msg.to_vec().expect("encode query")
}

#[track_caller]
pub(crate) fn decode(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).unwrap_or_else(|e| panic!("undecodable reply ({e}): {bytes:02x?}"))
}

pub(crate) async fn udp_socket() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind client socket")
}

/// Sends `bytes` over UDP and returns the first reply whose ID matches `id` (the raw bytes).
pub(crate) async fn udp_exchange_raw(server: SocketAddr, bytes: &[u8], id: u16) -> Vec<u8> {
    let sock = if server.is_ipv6() {
        UdpSocket::bind("[::1]:0")
            .await
            .expect("bind client socket")
    } else {
        udp_socket().await
    };
    sock.send_to(bytes, server).await.expect("send");
    let mut buf = vec![0u8; 65535];
    let wait = async {
        loop {
            let (len, from) = sock.recv_from(&mut buf).await.expect("recv");
            if from == server && len >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
                return buf[..len].to_vec();
            }
        }
    };
    timeout(REPLY_WAIT, wait)
        .await
        .unwrap_or_else(|_| panic!("no UDP reply from {server} for id {id}"))
}

/// Sends a query over UDP and decodes the reply.
pub(crate) async fn udp(server: SocketAddr, msg: &Message) -> Message {
    decode(&udp_exchange_raw(server, &encode(msg), msg.metadata.id).await)
}

/// Asks `msg` from a socket connected to `server`, as glibc's resolver asks: only a reply
/// from that very address and port reaches it. Fails when none comes within [`REPLY_WAIT`].
pub(crate) async fn udp_connected(server: SocketAddr, msg: &Message) -> Message {
    let local: SocketAddr = if server.is_ipv6() {
        "[::1]:0".parse().unwrap()
    } else {
        "127.0.0.1:0".parse().unwrap()
    };
    let socket = UdpSocket::bind(local).await.expect("bind client socket");
    socket.connect(server).await.expect("connect");
    socket.send(&encode(msg)).await.expect("send");
    let mut buf = vec![0; 65535];
    let len = timeout(REPLY_WAIT, socket.recv(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no answer from {server} to {msg}"))
        .expect("recv");
    decode(&buf[..len])
}

/// Sends raw bytes over UDP and returns whatever comes back within [`SILENCE_WAIT`].
pub(crate) async fn udp_maybe_reply(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let sock = udp_socket().await;
    sock.send_to(bytes, server).await.expect("send");
    let mut buf = vec![0u8; 65535];
    match timeout(SILENCE_WAIT, sock.recv_from(&mut buf)).await {
        Ok(Ok((len, _))) => Some(buf[..len].to_vec()),
        _ => None,
    }
}

/// Sends `packets` from one socket, then `probe`, and returns the probe's reply, failing
/// unless it is the first datagram that comes back. A listener socket reads one client's
/// datagrams in order and sends what it answers at once in that order too, so when the probe
/// is answered at once (a cache hit, say), a reply to any of `packets` would have come
/// before it: the probe's reply coming first shows they got none, with no silence waited out.
pub(crate) async fn udp_reply_after(
    server: SocketAddr,
    packets: &[&[u8]],
    probe: &Message,
) -> Message {
    let sock = udp_socket().await;
    for packet in packets {
        sock.send_to(packet, server).await.expect("send");
    }
    sock.send_to(&encode(probe), server).await.expect("send");
    let mut buf = vec![0u8; 65535];
    let (len, from) = timeout(REPLY_WAIT, sock.recv_from(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no reply from {server} to the probe"))
        .expect("recv");
    let first = &buf[..len];
    let id = (len >= 2).then(|| u16::from_be_bytes([first[0], first[1]]));
    assert!(
        from == server && id == Some(probe.metadata.id),
        "the first datagram back from {from} is not the reply to the probe (id {}): {first:02x?}",
        probe.metadata.id
    );
    decode(first)
}

/// Asserts that nothing listens at `server` any more, over UDP or TCP: a query from a
/// connected UDP socket comes back as ECONNREFUSED (the ICMP port unreachable the kernel
/// sends for a port with no socket), and a TCP connection is refused. A reply, over either,
/// fails at once. A probe met by silence is sent again, for up to [`REPLY_WAIT`]: a socket
/// is closed a moment after its listener is told to stop (by the thread that runs it), and
/// the kernel rate-limits ICMP errors.
pub(crate) async fn assert_refused(server: SocketAddr) {
    let deadline = Instant::now() + REPLY_WAIT;
    let sock = if server.is_ipv6() {
        UdpSocket::bind("[::1]:0").await
    } else {
        UdpSocket::bind("127.0.0.1:0").await
    }
    .expect("bind client socket");
    sock.connect(server).await.expect("connect client socket");
    let mut buf = vec![0u8; 65535];
    loop {
        let msg = query("www.example.", RecordType::A);
        let sent = sock.send(&encode(&msg)).await;
        let got = match sent {
            Err(e) => Ok(Err(e)),
            Ok(_) => timeout(PROBE_WAIT, sock.recv(&mut buf)).await,
        };
        match got {
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => break,
            Ok(Err(e)) => panic!("UDP to {server}: {e}"),
            Ok(Ok(len)) => panic!("{server} still answers over UDP: {:02x?}", &buf[..len]),
            Err(_) => assert!(
                Instant::now() < deadline,
                "UDP to {server} not refused within {REPLY_WAIT:?}"
            ),
        }
    }
    loop {
        match timeout(PROBE_WAIT, TcpStream::connect(server)).await {
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => return,
            // Met a listener as it closed: ask again.
            Ok(Err(e)) if e.kind() == ErrorKind::ConnectionReset => {}
            Ok(Err(e)) => panic!("TCP to {server}: {e}"),
            // Accepted by the kernel into a listener that is about to close: a reply
            // fails; a reset, an end or nothing means ask again.
            Ok(Ok(mut stream)) => {
                let bytes = encode(&query("www.example.", RecordType::A));
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                let _ = stream.write_all(&framed).await;
                let mut len = [0u8; 2];
                if let Ok(Ok(_)) = timeout(PROBE_WAIT, stream.read_exact(&mut len)).await {
                    panic!("{server} still answers over TCP");
                }
            }
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "TCP connections to {server} not refused within {REPLY_WAIT:?}"
        );
    }
}

pub(crate) async fn tcp_connect(server: SocketAddr) -> TcpStream {
    timeout(REPLY_WAIT, TcpStream::connect(server))
        .await
        .expect("TCP connect timed out")
        .expect("TCP connect")
}

pub(crate) async fn tcp_write(stream: &mut TcpStream, bytes: &[u8]) {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.expect("TCP write");
}

/// Reads one length-prefixed message; `None` on EOF.
pub(crate) async fn tcp_read(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let read = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    timeout(REPLY_WAIT, read).await.expect("TCP read timed out")
}

/// Sends a query over a new TCP connection and decodes the reply.
pub(crate) async fn tcp(server: SocketAddr, msg: &Message) -> Message {
    let mut stream = tcp_connect(server).await;
    tcp_write(&mut stream, &encode(msg)).await;
    let reply = tcp_read(&mut stream).await.expect("TCP connection closed");
    decode(&reply)
}

/// Writes every query on one connection before reading, then returns the replies in the
/// order of `msgs` (matched by ID, since a server may answer pipelined queries in any order).
pub(crate) async fn tcp_pipelined(server: SocketAddr, msgs: &[Message]) -> Vec<Message> {
    let mut stream = tcp_connect(server).await;
    let mut all = Vec::new();
    for msg in msgs {
        all.extend_from_slice(&(encode(msg).len() as u16).to_be_bytes());
        all.extend_from_slice(&encode(msg));
    }
    stream.write_all(&all).await.expect("TCP write");
    let mut replies: Vec<Option<Message>> = vec![None; msgs.len()];
    for _ in msgs {
        let reply = decode(&tcp_read(&mut stream).await.expect("TCP connection closed"));
        let slot = msgs
            .iter()
            .position(|m| m.metadata.id == reply.metadata.id)
            .unwrap_or_else(|| panic!("reply with unknown id {}", reply.metadata.id));
        assert!(replies[slot].is_none(), "two replies for one query");
        replies[slot] = Some(reply);
    }
    replies.into_iter().map(Option::unwrap).collect()
}
