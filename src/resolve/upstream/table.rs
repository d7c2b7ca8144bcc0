//! A UDP thread's queries in flight at upstream servers, as a table rather
//! than a task each: dnsdist's design (a table of IDs per backend, read by a
//! responder loop), with a random source port per query as well.
//!
//! A slot is one query: its payload (what the caller turns the reply into an
//! answer with), its server, ID and deadline, and a UDP socket the slot keeps
//! from one query to the next. Every slot's socket is registered once with
//! the thread's epoll instance, under the slot's index, so one
//! `epoll_wait` tells the thread's loop which queries have replies, and
//! the replies are read there, with no task, timer or allocation per query.
//!
//! The port: a slot's socket is never bound. Sending from it makes the
//! kernel bind it to a port drawn at random from the whole ephemeral range
//! (RFC 5452 §9.2); once the query is answered, `connect(AF_UNSPEC)`
//! dissolves it, which gives that port back, so the slot's next query draws a
//! new one. The socket stays registered, so that is one system call per
//! query (BENCHMARKS.md, "The port of a query", measures it against the
//! alternatives). A socket whose query failed is closed instead: it may hold
//! an ICMP error or a late reply. A socket serves servers of one address
//! family, so free slots are kept by the family of theirs ([`FreeSlots`]),
//! with as many idle sockets at most as a server's pool keeps.
//!
//! Deadlines: one queue per distinct timeout, linked through the slots.
//! Queries of one timeout end in the order they began, so a queue is kept in
//! order by appending, and a query that ends early unlinks itself; the loop
//! expires the heads that are due.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::dns::question::Question;
use crate::dns::wire;
use crate::observe::failure::Failure;

use super::exchange::{UDP_REPLY_BUFFER, answers, same_endpoint};
use super::server::{NameServer, usable};
use super::sockets::{MAX_IDLE_SOCKETS, dissolve, hear_icmp_errors};

/// Slots per thread at most; a miss beyond them goes its slower way.
const MAX_SLOTS: usize = 4096;
/// Readiness events taken per `epoll_wait`.
const EVENTS: usize = 64;
/// The end of a deadline queue.
const NONE: u32 = u32::MAX;

/// What the caller keeps with a query of the table: it holds the question
/// as sent, which the reply must match.
pub(crate) trait Asking {
    fn question(&self) -> Question;
}

/// A UDP thread's queries in flight at upstream servers; `T` is what the
/// caller keeps with each.
pub(crate) struct UdpTable<T> {
    epoll: OwnedFd,
    slots: Vec<QuerySlot<T>>,
    /// Slots with no query, to take first.
    free: FreeSlots,
    queues: Vec<Deadlines>,
    events: Box<[libc::epoll_event; EVENTS]>,
    reply: Box<[u8; UDP_REPLY_BUFFER]>,
    query: Vec<u8>,
}

struct QuerySlot<T> {
    /// `None` until its first query, and after a query that failed.
    socket: Option<UdpSocket>,
    query: Option<InFlight<T>>,
    /// Neighbours in its deadline queue.
    prev: u32,
    next: u32,
}

/// Slots with no query: those whose socket is kept, by its address family,
/// and those without one. A socket reaches only servers of its own family
/// (an IPv4 one cannot send to IPv6; an IPv6 one would reach IPv4 from a
/// mapped address that no reply could be matched to), and at most
/// [`MAX_IDLE_SOCKETS`] of each are kept, as a server's pool keeps, so that
/// a burst does not leave a descriptor open per slot it made. The slot
/// ended last is taken first.
#[derive(Default)]
struct FreeSlots {
    open: [Vec<u32>; 2],
    closed: Vec<u32>,
}

#[derive(Clone, Copy)]
enum Family {
    V4 = 0,
    V6 = 1,
}

/// What becomes of a free slot's socket when the slot is taken.
enum ItsSocket {
    Kept,
    /// Of the other family: closed, and a new one opened.
    Replaced,
}

impl Family {
    fn of(server: SocketAddr) -> Self {
        if server.is_ipv6() { Self::V6 } else { Self::V4 }
    }
}

impl FreeSlots {
    fn len(&self) -> usize {
        self.open[0].len() + self.open[1].len() + self.closed.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Gives slot `index` back: with its socket kept, of `family`, or
    /// (`None`) without one.
    fn put(&mut self, index: u32, socket: Option<Family>) {
        match socket {
            Some(family) => self.open[family as usize].push(index),
            None => self.closed.push(index),
        }
    }

    /// A free slot for a server of `family`: one with a socket of that
    /// family, else one without, else (when no new slot `may_grow`) one with
    /// a socket of the other family.
    fn take(&mut self, family: Family, may_grow: bool) -> Option<(u32, ItsSocket)> {
        if let Some(index) = self.open[family as usize].pop() {
            return Some((index, ItsSocket::Kept));
        }
        if let Some(index) = self.closed.pop() {
            return Some((index, ItsSocket::Kept));
        }
        if may_grow {
            return None;
        }
        let other = 1 - family as usize;
        self.open[other]
            .pop()
            .map(|index| (index, ItsSocket::Replaced))
    }

    /// Whether an ended query's socket of `family` is kept for the next.
    fn keeps(&self, family: Family) -> bool {
        self.open[family as usize].len() < MAX_IDLE_SOCKETS
    }
}

/// One query in flight.
struct InFlight<T> {
    payload: T,
    server: Arc<NameServer>,
    id: u16,
    sent: Instant,
    deadline: Instant,
    queue: usize,
}

/// The queries of one timeout, oldest first.
struct Deadlines {
    timeout: Duration,
    head: u32,
    tail: u32,
}

/// How a query of the table ended, handed to the caller with its payload.
pub(crate) enum Ended<'a> {
    /// A usable reply (not SERVFAIL, REFUSED, truncated or malformed), from
    /// `server`, read `at`.
    Answered {
        reply: &'a mut [u8],
        server: SocketAddr,
        at: Instant,
    },
    /// The reply was truncated: ask the server again over TCP. Not yet
    /// counted as an attempt's outcome; the TCP attempt is.
    Truncated(Arc<NameServer>),
    /// The server failed (timeout, SERVFAIL, REFUSED, a refusal or a bad
    /// reply), counted so: ask the next one.
    Failed(Failure),
}

/// Why [`UdpTable::ask`] did not take a query.
pub(crate) enum NotSent {
    /// The table is full, or the server has no ID left: ask some other way.
    Full,
    /// Sending failed, counted as the server's failure: ask the next one.
    Failed(Failure),
}

impl<T: Asking> UdpTable<T> {
    pub(crate) fn new() -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; a valid result is a new fd we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: `fd` was just created and is owned by nothing else.
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
            slots: Vec::new(),
            free: FreeSlots::default(),
            queues: Vec::new(),
            events: Box::new([libc::epoll_event { events: 0, u64: 0 }; EVENTS]),
            reply: Box::new([0; UDP_REPLY_BUFFER]),
            query: Vec::with_capacity(512),
        })
    }

    /// The table's epoll instance (a new descriptor of it): readable when a
    /// query of the table has a reply (or an error) waiting.
    pub(crate) fn epoll(&self) -> io::Result<OwnedFd> {
        self.epoll.try_clone()
    }

    /// Whether no query is in flight.
    pub(crate) fn is_empty(&self) -> bool {
        self.free.len() == self.slots.len()
    }

    /// Sends the payload's question to `server` with a random ID from a
    /// fresh random port, and keeps `payload` until it ends (see
    /// [`UdpTable::read`] and [`UdpTable::expire`]). Returns its deadline.
    pub(crate) fn ask(
        &mut self,
        server: Arc<NameServer>,
        timeout: Duration,
        payload: T,
    ) -> Result<Instant, (T, NotSent)> {
        let ask = &payload.question();
        let family = Family::of(server.addr());
        if self.free.is_empty() && self.slots.len() >= MAX_SLOTS {
            return Err((payload, NotSent::Full));
        }
        let Some(id) = server.ids().claim(ask) else {
            return Err((payload, NotSent::Full));
        };
        let index = match self.free.take(family, self.slots.len() < MAX_SLOTS) {
            Some((index, ItsSocket::Kept)) => index,
            Some((index, ItsSocket::Replaced)) => {
                self.slots[index as usize].socket = None;
                index
            }
            None => {
                self.slots.push(QuerySlot {
                    socket: None,
                    query: None,
                    prev: NONE,
                    next: NONE,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let sent = Instant::now();
        server.sent();
        if let Err(error) = self.send(index, &server, ask, id) {
            server.ids().release(id);
            let failure = Failure::Network(error.kind());
            server.record(Err(failure));
            self.slots[index as usize].socket = None;
            self.free.put(index, None);
            return Err((payload, NotSent::Failed(failure)));
        }
        let queue = self.queue_of(timeout);
        self.slots[index as usize].query = Some(InFlight {
            payload,
            server,
            id,
            sent,
            deadline: sent + timeout,
            queue,
        });
        self.link(index, queue);
        Ok(sent + timeout)
    }

    /// Sends the query from slot `index`'s socket, opening one if it has none.
    fn send(&mut self, index: u32, server: &NameServer, ask: &Question, id: u16) -> io::Result<()> {
        if self.slots[index as usize].socket.is_none() {
            let socket = self.open(index, server.addr())?;
            self.slots[index as usize].socket = Some(socket);
        }
        ask.write_query(id, &mut self.query);
        let socket = self.slots[index as usize].socket.as_ref();
        socket
            .expect("a socket was opened")
            .send_to(&self.query, server.addr())
            .map(drop)
    }

    /// A new socket for slot `index`, registered with the epoll instance
    /// under that index for good: it leaves it when it is closed.
    fn open(&self, index: u32, server: SocketAddr) -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::for_address(server), Type::DGRAM.nonblocking(), None)?;
        hear_icmp_errors(&socket, server)?;
        let mut event = libc::epoll_event {
            // Edge-triggered: a datagram is reported once, when it arrives; a
            // query's reply is read until it is found, so none is missed.
            events: (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLET) as u32,
            u64: u64::from(index),
        };
        // SAFETY: both fds are open, and `event` outlives the call.
        let added = unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                socket.as_raw_fd(),
                &raw mut event,
            )
        };
        if added < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket.into())
    }

    /// The deadline queue of `timeout`, made on first use.
    fn queue_of(&mut self, timeout: Duration) -> usize {
        if let Some(i) = self.queues.iter().position(|q| q.timeout == timeout) {
            return i;
        }
        self.queues.push(Deadlines {
            timeout,
            head: NONE,
            tail: NONE,
        });
        self.queues.len() - 1
    }

    fn link(&mut self, index: u32, queue: usize) {
        let tail = self.queues[queue].tail;
        self.slots[index as usize].prev = tail;
        self.slots[index as usize].next = NONE;
        match tail {
            NONE => self.queues[queue].head = index,
            tail => self.slots[tail as usize].next = index,
        }
        self.queues[queue].tail = index;
    }

    fn unlink(&mut self, index: u32, queue: usize) {
        let (prev, next) = {
            let slot = &self.slots[index as usize];
            (slot.prev, slot.next)
        };
        match prev {
            NONE => self.queues[queue].head = next,
            prev => self.slots[prev as usize].next = next,
        }
        match next {
            NONE => self.queues[queue].tail = prev,
            next => self.slots[next as usize].prev = prev,
        }
    }

    /// Takes slot `index`'s query out of the table; its socket is kept
    /// (dissolved, its port given back) when `keep_socket`, else closed.
    fn end(&mut self, index: u32, keep_socket: bool) -> Option<InFlight<T>> {
        let query = self.slots[index as usize].query.take()?;
        self.unlink(index, query.queue);
        query.server.ids().release(query.id);
        let slot = &mut self.slots[index as usize];
        let family = Family::of(query.server.addr());
        let kept = keep_socket
            && self.free.keeps(family)
            && slot.socket.as_ref().is_some_and(|s| dissolve(s).is_ok());
        if !kept {
            slot.socket = None;
        }
        self.free.put(index, kept.then_some(family));
        Some(query)
    }

    /// Reads the replies waiting, and hands each query that ended, with its
    /// payload and outcome, to `done`. Returns whether that was all: false
    /// when more sockets were ready than one call takes.
    pub(crate) fn read(&mut self, mut done: impl FnMut(T, Ended<'_>)) -> bool {
        // SAFETY: the buffer holds EVENTS events, as the call is told; a
        // timeout of 0 never blocks.
        let ready = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                EVENTS as libc::c_int,
                0,
            )
        };
        let ready = usize::try_from(ready).unwrap_or(0);
        for i in 0..ready {
            let event = self.events[i];
            self.read_slot(event.u64 as u32, &mut done);
        }
        ready < EVENTS
    }

    /// Reads slot `index`'s socket until its query's reply (or an error)
    /// ends the query, or nothing is left; anything else is dropped (RFC
    /// 5452 §9: the reply must come from the server's address and port, with
    /// the query's ID and question).
    fn read_slot(&mut self, index: u32, done: &mut impl FnMut(T, Ended<'_>)) {
        loop {
            let slot = &self.slots[index as usize];
            let Some(socket) = &slot.socket else {
                return;
            };
            let received = socket.recv_from(&mut self.reply[..]);
            let Some(query) = &slot.query else {
                // A late or stray datagram on a slot between queries.
                match received {
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(_) => {
                        // An ICMP error queued for a finished query.
                        self.slots[index as usize].socket = None;
                        return;
                    }
                }
            };
            match received {
                Ok((len, from)) => {
                    let reply = &self.reply[..len];
                    if !same_endpoint(from, query.server.addr())
                        || !answers(reply, query.id, &query.payload.question())
                    {
                        tracing::debug!(id = query.id, %from, "dropped a datagram that does not answer the query");
                        continue;
                    }
                    let truncated = wire::Reply::header(reply).is_some_and(|r| r.truncated());
                    let judged = usable(reply);
                    let query = self.end(index, true).expect("the slot has a query");
                    let outcome = if truncated {
                        Ended::Truncated(query.server)
                    } else {
                        let at = Instant::now();
                        query.server.record(judged.map(|()| at - query.sent));
                        match judged {
                            Ok(()) => Ended::Answered {
                                reply: &mut self.reply[..len],
                                server: query.server.addr(),
                                at,
                            },
                            Err(failure) => Ended::Failed(failure),
                        }
                    };
                    done(query.payload, outcome);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) => {
                    // With IP_RECVERR, an ICMP error about the query (port
                    // unreachable: nothing listens there) comes out of recv.
                    let failure = Failure::Network(error.kind());
                    let query = self.end(index, false).expect("the slot has a query");
                    query.server.record(Err(failure));
                    done(query.payload, Ended::Failed(failure));
                    return;
                }
            }
        }
    }

    /// When the next query times out, if any is in flight.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queues
            .iter()
            .filter_map(|q| self.slots.get(q.head as usize)?.query.as_ref())
            .map(|q| q.deadline)
            .min()
    }

    /// Ends every query whose deadline is past `now`, as a timeout.
    pub(crate) fn expire(&mut self, now: Instant, mut done: impl FnMut(T, Ended<'_>)) {
        for queue in 0..self.queues.len() {
            loop {
                let head = self.queues[queue].head;
                let due = head != NONE
                    && self.slots[head as usize]
                        .query
                        .as_ref()
                        .is_some_and(|q| q.deadline <= now);
                if !due {
                    break;
                }
                let query = self.end(head, false).expect("a queued slot has a query");
                query.server.record(Err(Failure::Timeout));
                done(query.payload, Ended::Failed(Failure::Timeout));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slot goes to a server of its socket's family first (an IPv4 socket
    /// cannot send to IPv6, RFC 4291 §2.5.5.2's mapped addresses make an
    /// IPv6 one useless for IPv4), then one without a socket, then a new
    /// slot; only a full table takes the other family's, replacing its socket.
    #[test]
    fn a_free_slot_is_taken_by_its_socket_family_first() {
        let mut free = FreeSlots::default();
        free.put(1, Some(Family::V4));
        free.put(2, Some(Family::V6));
        free.put(3, None);
        assert!(matches!(
            free.take(Family::V6, true),
            Some((2, ItsSocket::Kept))
        ));
        assert!(matches!(
            free.take(Family::V6, true),
            Some((3, ItsSocket::Kept))
        ));
        assert!(
            free.take(Family::V6, true).is_none(),
            "a new slot, not slot 1"
        );
        assert!(matches!(
            free.take(Family::V6, false),
            Some((1, ItsSocket::Replaced))
        ));
        assert!(free.is_empty());
    }

    /// Idle sockets per family are bounded as a server's pool bounds them:
    /// after a burst, the slots it made keep at most that many open.
    #[test]
    fn idle_sockets_are_kept_up_to_the_pools_bound() {
        let mut free = FreeSlots::default();
        for index in 0..MAX_IDLE_SOCKETS as u32 {
            assert!(free.keeps(Family::V4));
            free.put(index, Some(Family::V4));
        }
        assert!(!free.keeps(Family::V4));
        assert!(free.keeps(Family::V6), "the bound is per family");
    }
}
