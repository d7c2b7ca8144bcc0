//! A fake upstream DNS server: UDP and TCP on the same 127.0.0.1 port, answering from a
//! [`Zone`], with a switchable [`Mode`] for failures, and a log of every query it receives.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use super::a;
use super::fixtures::Zone;

/// How the fake answers. Every query is logged whatever the mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Answer from the zone; over UDP, set TC=1 if the answer exceeds the query's limit.
    Normal,
    /// Never answer.
    Dead,
    /// Answer normally after this delay.
    Slow(Duration),
    ServFail,
    Refused,
    /// First a reply with a wrong ID (and a bogus A 6.6.6.6 answer), then the right one if asked.
    WrongId {
        then_right: bool,
    },
    /// First a reply with the right ID but another question (`spoof.invalid. A` → 6.6.6.6),
    /// then the right one if asked.
    WrongQuestion {
        then_right: bool,
    },
    /// Over UDP always TC=1 with no records; over TCP the full answer.
    AlwaysTc,
    /// First a reply with the right ID and question (and a bogus A 6.6.6.6) from another
    /// port of 127.0.0.1, as an off-path spoofer would race it; then the right one if asked.
    WrongPort {
        then_right: bool,
    },
    /// Every reply sent twice over UDP, as a server behind a duplicating link does.
    Twice,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Proto {
    Udp,
    Tcp,
}

/// The IP a misbehaving reply carries, so a test can tell if it was (wrongly) used.
pub(crate) const BOGUS_IP: &str = "6.6.6.6";
/// Delay between a bogus reply and the right one.
const RIGHT_REPLY_DELAY: Duration = Duration::from_millis(50);

struct Shared {
    zone: Zone,
    mode: Mutex<Mode>,
    lowercase: AtomicBool,
    seen: Mutex<Vec<(Proto, Message)>>,
    /// Source address and ID of every UDP query, in arrival order.
    udp_sources: Mutex<Vec<(SocketAddr, u16)>>,
}

pub(crate) struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// The serving tasks, aborted when the fake is dropped.
    _tasks: JoinSet<()>,
}

impl FakeUpstream {
    pub(crate) async fn start(zone: Zone) -> Self {
        let (udp, tcp) = bind_pair().await;
        Self::serve(zone, udp, tcp)
    }

    /// Serves on sockets the caller bound (in a network namespace, on port 53, ...).
    pub(crate) fn start_on(
        zone: Zone,
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
    ) -> Self {
        udp.set_nonblocking(true).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let udp = UdpSocket::from_std(udp).unwrap();
        let tcp = TcpListener::from_std(tcp).unwrap();
        Self::serve(zone, udp, tcp)
    }

    fn serve(zone: Zone, udp: UdpSocket, tcp: TcpListener) -> Self {
        let addr = udp.local_addr().unwrap();
        let shared = Arc::new(Shared {
            zone,
            mode: Mutex::new(Mode::Normal),
            lowercase: AtomicBool::new(false),
            seen: Mutex::new(Vec::new()),
            udp_sources: Mutex::new(Vec::new()),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_udp(Arc::new(udp), shared.clone()));
        tasks.spawn(serve_tcp(tcp, shared.clone()));
        Self {
            addr,
            shared,
            _tasks: tasks,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().unwrap() = mode;
    }

    /// Echo the question lower-cased, like Consul 1.19+ does.
    pub(crate) fn lowercase_questions(&self) {
        self.shared.lowercase.store(true, Ordering::SeqCst);
    }

    /// Every query received so far, in arrival order.
    pub(crate) fn queries(&self) -> Vec<(Proto, Message)> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Where each UDP query came from, with its ID.
    pub(crate) fn udp_sources(&self) -> Vec<(SocketAddr, u16)> {
        self.shared.udp_sources.lock().unwrap().clone()
    }

    pub(crate) fn total(&self) -> usize {
        self.shared.seen.lock().unwrap().len()
    }

    pub(crate) fn count_proto(&self, proto: Proto) -> usize {
        self.queries().iter().filter(|(p, _)| *p == proto).count()
    }

    /// Queries received for `qname` (any case) and `qtype`, over either protocol.
    pub(crate) fn count(&self, qname: &str, qtype: RecordType) -> usize {
        let qname = super::name(qname);
        self.queries()
            .iter()
            .filter(|(_, m)| {
                m.queries
                    .first()
                    .is_some_and(|q| *q.name() == qname && q.query_type() == qtype)
            })
            .count()
    }

    #[track_caller]
    pub(crate) fn last_query(&self) -> Message {
        self.queries()
            .pop()
            .map(|(_, m)| m)
            .expect("the upstream received no query")
    }
}

/// Binds UDP on an ephemeral port, then TCP on the same port (retrying if TCP's is taken).
pub(crate) async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = bind_udp();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
            return (udp, tcp);
        }
    }
    panic!("no free port for both UDP and TCP");
}

/// A UDP socket with a large receive buffer, so bursts in the load test are not dropped here.
fn bind_udp() -> UdpSocket {
    let sock = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .unwrap();
    let _ = sock.set_recv_buffer_size(4 << 20);
    sock.set_nonblocking(true).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    sock.bind(&addr.into()).unwrap();
    UdpSocket::from_std(sock.into()).unwrap()
}

async fn serve_udp(sock: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((len, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Some(replies) = receive(&shared, &buf[..len], Proto::Udp) else {
            continue;
        };
        let id = u16::from_be_bytes([buf[0], buf[1]]);
        shared.udp_sources.lock().unwrap().push((peer, id));
        let spoof_first = matches!(*shared.mode.lock().unwrap(), Mode::WrongPort { .. });
        let sock = sock.clone();
        tokio::spawn(async move {
            for (i, (delay, bytes)) in replies.into_iter().enumerate() {
                tokio::time::sleep(delay).await;
                if i == 0 && spoof_first {
                    let spoofer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
                    let _ = spoofer.send_to(&bytes, peer).await;
                } else {
                    let _ = sock.send_to(&bytes, peer).await;
                }
            }
        });
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_tcp_conn(stream, shared.clone()));
    }
}

/// Serves pipelined queries on one connection; each reply is written as soon as it is ready.
async fn serve_tcp_conn(stream: TcpStream, shared: Arc<Shared>) {
    let (mut reader, writer) = stream.into_split();
    let writer = Arc::new(tokio::sync::Mutex::new(writer));
    while let Some(buf) = read_frame(&mut reader).await {
        let Some(replies) = receive(&shared, &buf, Proto::Tcp) else {
            continue;
        };
        tokio::spawn(write_tcp_replies(writer.clone(), replies));
    }
}

/// The next length-prefixed DNS message on a TCP stream (RFC 1035 §4.2.2); `None` at its end.
pub(crate) async fn read_frame(reader: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    reader.read_exact(&mut len).await.ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    reader.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

/// `bytes` with its two-byte length prefix, ready to write to a TCP stream.
pub(crate) fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    framed
}

async fn write_tcp_replies(
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    replies: Vec<(Duration, Vec<u8>)>,
) {
    for (delay, bytes) in replies {
        tokio::time::sleep(delay).await;
        let _ = writer.lock().await.write_all(&frame(&bytes)).await;
    }
}

/// Logs the query and returns the replies to send, each after its delay.
/// `None` when the packet is not a query we can parse (a real server would drop or FORMERR it).
fn receive(shared: &Shared, bytes: &[u8], proto: Proto) -> Option<Vec<(Duration, Vec<u8>)>> {
    let query = Message::from_vec(bytes).ok()?;
    if query.metadata.message_type != MessageType::Query || query.queries.len() != 1 {
        return None;
    }
    shared.seen.lock().unwrap().push((proto, query.clone()));
    let mode = *shared.mode.lock().unwrap();
    let answer = || encode(shared, &query, proto, answer(shared, &query));
    let now = Duration::ZERO;
    let replies = match mode {
        Mode::Normal => vec![(now, answer())],
        Mode::Twice if proto == Proto::Udp => vec![(now, answer()), (now, answer())],
        Mode::Twice => vec![(now, answer())],
        Mode::Dead => vec![],
        Mode::Slow(delay) => vec![(delay, answer())],
        Mode::ServFail => vec![(now, error(&query, ResponseCode::ServFail))],
        Mode::Refused => vec![(now, error(&query, ResponseCode::Refused))],
        Mode::WrongId { then_right } => {
            let mut bogus = bogus_answer(shared, &query);
            bogus.metadata.id = query.metadata.id.wrapping_add(1);
            let mut replies = vec![(now, bogus.to_vec().unwrap())];
            if then_right {
                replies.push((RIGHT_REPLY_DELAY, answer()));
            }
            replies
        }
        Mode::WrongQuestion { then_right } => {
            let mut bogus = bogus_answer(shared, &query);
            let spoof = Query::query(super::name("spoof.invalid."), RecordType::A);
            bogus.queries = vec![spoof];
            bogus.answers = vec![a("spoof.invalid.", 300, BOGUS_IP)];
            let mut replies = vec![(now, bogus.to_vec().unwrap())];
            if then_right {
                replies.push((RIGHT_REPLY_DELAY, answer()));
            }
            replies
        }
        Mode::AlwaysTc if proto == Proto::Udp => {
            let mut tc = reply_header(shared, &query);
            tc.metadata.truncation = true;
            vec![(now, tc.to_vec().unwrap())]
        }
        Mode::AlwaysTc => vec![(now, answer())],
        Mode::WrongPort { then_right } => {
            let bogus = bogus_answer(shared, &query).to_vec().unwrap();
            let mut replies = vec![(now, bogus)];
            if then_right {
                replies.push((RIGHT_REPLY_DELAY, answer()));
            }
            replies
        }
    };
    Some(replies)
}

/// A response skeleton: ID, question (lower-cased if configured), RD copied, OPT echoed.
fn reply_header(shared: &Shared, query: &Message) -> Message {
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    let mut question = query.queries[0].clone();
    if shared.lowercase.load(Ordering::SeqCst) {
        question.set_name(question.name().to_lowercase());
    }
    reply.add_query(question);
    if let Some(edns) = &query.edns {
        let mut echoed = hickory_proto::op::Edns::new();
        echoed.set_max_payload(edns.max_payload());
        reply.set_edns(echoed);
    }
    reply
}

fn answer(shared: &Shared, query: &Message) -> Message {
    let q = &query.queries[0];
    let found = shared.zone.lookup(q.name(), q.query_type());
    let mut reply = reply_header(shared, query);
    reply.metadata.response_code = found.rcode;
    reply.metadata.authoritative =
        shared.zone.authoritative && found.rcode != ResponseCode::Refused;
    reply.answers = found.answers;
    reply.authorities = found.authorities;
    reply.additionals = found.additionals;
    reply
}

fn bogus_answer(shared: &Shared, query: &Message) -> Message {
    let mut reply = reply_header(shared, query);
    let owner: &Name = query.queries[0].name();
    reply.answers = vec![a(&owner.to_ascii(), 300, BOGUS_IP)];
    reply
}

fn error(query: &Message, rcode: ResponseCode) -> Vec<u8> {
    let mut reply = Message::error_msg(query.metadata.id, query.metadata.op_code, rcode);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.add_queries(query.queries.iter().cloned());
    reply.to_vec().unwrap()
}

/// Encodes `reply`; over UDP, a reply larger than the query allows becomes TC=1 with no
/// records (RFC 1035 §4.2.1, RFC 6891 §6.2.5), as real servers do.
fn encode(shared: &Shared, query: &Message, proto: Proto, reply: Message) -> Vec<u8> {
    let bytes = reply.to_vec().unwrap();
    let limit = query
        .edns
        .as_ref()
        .map_or(512, |e| e.max_payload().max(512)) as usize;
    if proto == Proto::Tcp || bytes.len() <= limit {
        return bytes;
    }
    let mut tc = reply_header(shared, query);
    tc.metadata.truncation = true;
    tc.metadata.authoritative = reply.metadata.authoritative;
    tc.to_vec().unwrap()
}
