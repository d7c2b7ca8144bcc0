//! A fake upstream that answers every name and says who it is: a witness of where a
//! forwarder sent each query. It serves UDP and TCP on one 127.0.0.1 port, logs every
//! question it receives, and answers with TTL 0 so nothing in front of it caches:
//! A `198.51.100.N`, AAAA `2001:db8::N`, PTR `LABEL.witness.`, TXT `LABEL`, and NODATA
//! for other types, where `LABEL` and `N` are the witness's own.
//!
//! [`Witness::settle`] makes the log complete: it asks the witness itself and waits for
//! the reply, and a socket serves its queries in arrival order, so every query sent to
//! it before the call is in the log when the call returns. No waiting on a clock.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::{A, AAAA, PTR, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use super::upstream::{bind_pair, frame, read_frame};
use super::{client, name};

/// The question [`Witness::settle`] asks; never logged.
const SETTLE: &str = "settle.witness.invalid.";

struct Shared {
    label: String,
    number: u8,
    silent: AtomicBool,
    seen: Mutex<Vec<(Name, RecordType)>>,
}

pub(crate) struct Witness {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// The serving tasks, aborted when the witness is dropped.
    _tasks: JoinSet<()>,
}

impl Witness {
    /// A witness answering as `label`, with `number` (1..=254) in its addresses.
    pub(crate) async fn start(label: &str, number: u8) -> Self {
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().unwrap();
        let shared = Arc::new(Shared {
            label: label.to_string(),
            number,
            silent: AtomicBool::new(false),
            seen: Mutex::new(Vec::new()),
        });
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_udp(udp, shared.clone()));
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

    pub(crate) fn label(&self) -> &str {
        &self.shared.label
    }

    /// Answer nothing from now on, like a stopped agent (every query is still logged, and
    /// [`Witness::settle`] still answered).
    pub(crate) fn silence(&self) {
        self.shared.silent.store(true, Ordering::SeqCst);
    }

    /// How many questions the log holds.
    pub(crate) fn len(&self) -> usize {
        self.shared.seen.lock().unwrap().len()
    }

    /// The questions logged from position `from` on, in arrival order.
    pub(crate) fn since(&self, from: usize) -> Vec<(Name, RecordType)> {
        self.shared.seen.lock().unwrap()[from..].to_vec()
    }

    /// Returns once every query sent to this witness before the call is logged.
    pub(crate) async fn settle(&self) {
        let _ = client::udp(self.addr, &client::query(SETTLE, RecordType::TXT)).await;
    }
}

/// Answers each datagram before reading the next, so the log follows arrival order.
async fn serve_udp(sock: UdpSocket, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((len, peer)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = answer(&shared, &buf[..len]) {
            let _ = sock.send_to(&reply, peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(serve_tcp_conn(stream, shared.clone()));
    }
}

async fn serve_tcp_conn(mut stream: TcpStream, shared: Arc<Shared>) {
    while let Some(buf) = read_frame(&mut stream).await {
        let Some(reply) = answer(&shared, &buf) else {
            continue;
        };
        if stream.write_all(&frame(&reply)).await.is_err() {
            return;
        }
    }
}

/// Logs the question and encodes the reply; `None` for anything but a one-question query.
fn answer(shared: &Shared, bytes: &[u8]) -> Option<Vec<u8>> {
    let query = Message::from_vec(bytes).ok()?;
    if query.metadata.message_type != MessageType::Query || query.queries.len() != 1 {
        return None;
    }
    let question = query.queries[0].clone();
    let (qname, qtype) = (question.name().clone(), question.query_type());
    let settle = qname == name(SETTLE);
    if !settle {
        shared.seen.lock().unwrap().push((qname.clone(), qtype));
    }
    if shared.silent.load(Ordering::SeqCst) && !settle {
        return None;
    }
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(question);
    if let Some(data) = rdata(shared, qtype) {
        reply.answers = vec![Record::from_rdata(qname, 0, data)];
    }
    reply.to_vec().ok()
}

/// What this witness answers for `qtype`: data that names it.
fn rdata(shared: &Shared, qtype: RecordType) -> Option<RData> {
    let n = shared.number;
    match qtype {
        RecordType::A => Some(RData::A(A(Ipv4Addr::new(198, 51, 100, n)))),
        RecordType::AAAA => Some(RData::AAAA(AAAA(Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            0,
            0,
            n.into(),
        )))),
        RecordType::PTR => Some(RData::PTR(PTR(name(&format!("{}.witness.", shared.label))))),
        RecordType::TXT => Some(RData::TXT(TXT::new(vec![shared.label.clone()]))),
        _ => None,
    }
}
