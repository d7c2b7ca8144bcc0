//! A UDP thread's plain misses, waiting for their upstream's reply in the
//! thread's table ([`UdpTable`]) rather than in a task each, and the loop
//! that reads the replies, answers the clients and ends the queries that
//! time out.
//!
//! A miss is plain when one UDP server is asked and its reply needs no more
//! waiting: no DNSSEC to validate, no SRV targets to complete (see
//! [`Handler::start_miss`]). Its query is sent from the thread that read the
//! client's query, as soon as that query is read, and the reply is read, made
//! into an answer and sent on the same thread, by this loop, with the other
//! replies of the same wake-up in one sendmmsg per listening socket. A miss
//! that needs more (the next server after a failure, TCP after truncation)
//! leaves the table for a task ([`listening::wait`]).

use std::cell::RefCell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use crate::dns::question::Question;
use crate::resolve::upstream::{Asking, Ended, NameServer, NotSent, UdpTable};
use crate::serve::batch::{self, Destination, To};
use crate::serve::handler::{Handler, TableMiss};
use crate::serve::listening::{self, AnswerTo, Listening};

thread_local! {
    /// This UDP thread's table, made with its first plain miss.
    static TABLE: RefCell<Option<Misses>> = const { RefCell::new(None) };
}

/// A UDP thread's plain misses in flight.
struct Misses {
    queries: UdpTable<Waiting>,
    handler: Handler,
    /// The deadline the loop will wake up for, if any; a query that has to
    /// end sooner wakes it to say so.
    armed: Option<Instant>,
    wake: Arc<Notify>,
    answers: Answers,
}

/// A miss in the table, and where its answer goes.
struct Waiting {
    asked: TableMiss,
    to: AnswerTo,
}

impl Asking for Waiting {
    fn question(&self) -> Question {
        self.asked.ask()
    }
}

/// Idle response buffers kept for the next answers, at most.
const SPARE_BUFFERS: usize = 256;

/// Sends a plain miss's query from this thread's table; when the table cannot
/// take it, or the send fails, the miss goes on as a task.
pub(super) fn ask(handler: &Handler, asked: TableMiss, server: Arc<NameServer>, to: AnswerTo) {
    let timeout = asked.timeout();
    let waiting = Waiting { asked, to };
    let refused = TABLE.with_borrow_mut(|table| {
        if table.is_none() {
            match Misses::start(handler) {
                Ok(started) => *table = Some(started),
                Err(error) => {
                    tracing::warn!(%error, "cannot make this thread's table of upstream queries; misses go on as tasks");
                    return Some((waiting, NotSent::Full));
                }
            }
        }
        let table = table.as_mut().expect("made above");
        match table.queries.ask(server, timeout, waiting) {
            Ok(deadline) => {
                if table.armed.is_none_or(|armed| deadline < armed) {
                    table.wake.notify_one();
                }
                None
            }
            Err(refused) => Some(refused),
        }
    });
    match refused {
        None => {}
        Some((waiting, NotSent::Full)) => {
            let (miss, stage) = waiting.asked.unsent();
            listening::wait(handler.clone(), miss, stage, waiting.to);
        }
        Some((waiting, NotSent::Failed(failure))) => {
            let (miss, stage) = waiting.asked.failed(failure);
            listening::wait(handler.clone(), miss, stage, waiting.to);
        }
    }
}

impl Misses {
    /// The table, and its loop as a task of this thread.
    fn start(handler: &Handler) -> std::io::Result<Self> {
        let queries = UdpTable::new()?;
        let wake = Arc::new(Notify::new());
        let epoll = queries.epoll()?;
        // SAFETY: the AsyncFd owns the descriptor, which stays open as long
        // as it does.
        let epoll = unsafe { AsyncFd::register_with_interest(epoll, Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        tokio::spawn(read_replies(epoll, Arc::clone(&wake)));
        Ok(Self {
            queries,
            handler: handler.clone(),
            armed: None,
            wake,
            answers: Answers::default(),
        })
    }

    /// Reads the replies in and sends their answers; whether that was all.
    fn read(&mut self) -> bool {
        let Self {
            queries,
            handler,
            answers,
            ..
        } = self;
        let drained = queries.read(|waiting, outcome| answers.ended(handler, waiting, outcome));
        answers.send();
        drained
    }

    /// The deadline the loop is to wake up for: the earliest in the table,
    /// unless it already waits for one that comes sooner.
    fn arm(&mut self) -> Option<Instant> {
        let next = self.queries.next_deadline();
        if next.is_none() || next.is_some_and(|next| self.armed.is_none_or(|armed| next < armed)) {
            self.armed = next;
        }
        self.armed
    }

    /// Ends the queries whose time is up.
    fn expire(&mut self) {
        let Self {
            queries,
            handler,
            answers,
            armed,
            ..
        } = self;
        *armed = None;
        queries.expire(Instant::now(), |waiting, outcome| {
            answers.ended(handler, waiting, outcome)
        });
        answers.send();
    }
}

/// The table's loop: reads the replies as they come (when the loops that
/// answer client queries have not, see [`read_now`]), and ends the queries
/// whose time is up; then sends the answers.
async fn read_replies(epoll: AsyncFd<OwnedFd>, wake: Arc<Notify>) {
    let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(sleep);
    loop {
        let armed = TABLE.with_borrow_mut(|table| table.as_mut()?.arm());
        if let Some(armed) = armed
            && sleep.deadline() != tokio::time::Instant::from_std(armed)
        {
            sleep.as_mut().reset(armed.into());
        }
        tokio::select! {
            biased;
            ready = epoll.readable() => {
                let Ok(mut ready) = ready else { return };
                let drained = TABLE.with_borrow_mut(|table| table.as_mut().is_none_or(Misses::read));
                if drained {
                    ready.clear_ready();
                }
            }
            () = &mut sleep, if armed.is_some() => {
                TABLE.with_borrow_mut(|table| {
                    if let Some(table) = table.as_mut() {
                        table.expire();
                    }
                });
            }
            () = wake.notified() => {}
        }
    }
}

/// Reads the replies already in, from the loop that answers client queries,
/// after each burst of them: replies are taken in turn with queries, and do
/// not wait for the table's own loop to get its turn.
pub(super) fn read_now() {
    TABLE.with_borrow_mut(|table| {
        if let Some(table) = table.as_mut().filter(|t| !t.queries.is_empty()) {
            table.read();
        }
    });
}

/// The answers of one reading of the table, to send together.
#[derive(Default)]
struct Answers {
    ready: Vec<Ready>,
    /// Response buffers of answers sent, for the next ones.
    spare: Vec<Vec<u8>>,
}

/// An answer, the socket it leaves from and its client's address as
/// sendmmsg takes it.
struct Ready {
    response: Vec<u8>,
    listening: Arc<Listening>,
    to: Destination,
}

impl Answers {
    /// A query of the table ended: its answer, or the rest as a task.
    fn ended(&mut self, handler: &Handler, waiting: Waiting, outcome: Ended<'_>) {
        let Waiting { asked, to } = waiting;
        match outcome {
            Ended::Answered { reply, server, at } => {
                let mut response = self.spare.pop().unwrap_or_default();
                match handler.answer_asked(asked, reply, (server, at), &mut response) {
                    None => self.ready.push(Ready {
                        response,
                        to: to.destination(),
                        listening: to.listening,
                    }),
                    Some((miss, stage)) => {
                        self.spare.push(response);
                        listening::wait(handler.clone(), miss, stage, to);
                    }
                }
            }
            Ended::Truncated(server) => {
                let (miss, stage) = asked.truncated(server);
                listening::wait(handler.clone(), miss, stage, to);
            }
            Ended::Failed(failure) => {
                let (miss, stage) = asked.failed(failure);
                listening::wait(handler.clone(), miss, stage, to);
            }
        }
    }

    /// Sends the answers, one sendmmsg per listening socket (per
    /// [`batch::BATCH`] answers); an answer a full socket buffer held back
    /// goes out when there is room again.
    fn send(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        self.ready
            .sort_unstable_by_key(|ready| Arc::as_ptr(&ready.listening) as usize);
        let mut rest = self.ready.as_slice();
        while let Some(first) = rest.first() {
            let same = rest
                .iter()
                .take_while(|ready| Arc::ptr_eq(&ready.listening, &first.listening))
                .count();
            let (group, after) = rest.split_at(same);
            let fd = first.listening.socket.as_raw_fd();
            let outgoing = group
                .iter()
                .map(|ready| (ready.response.as_slice(), To::Queued(&ready.to)));
            let sent = batch::send_all(fd, outgoing);
            for ready in &group[sent..] {
                let (response, listening) = (ready.response.clone(), Arc::clone(&ready.listening));
                let to = ready.to.clone();
                tokio::spawn(async move {
                    let _ = batch::send_one(&listening.socket, &response, To::Queued(&to)).await;
                });
            }
            rest = after;
        }
        for ready in self.ready.drain(..) {
            if self.spare.len() < SPARE_BUFFERS {
                let mut response = ready.response;
                response.clear();
                self.spare.push(response);
            }
        }
    }
}
