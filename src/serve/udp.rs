//! Answering UDP: one loop per socket, on the UDP thread that owns it. Each
//! wake-up takes a burst of datagrams ([`Batch`]); cache hits and local
//! answers are written inline, and the burst's answers leave together in one
//! sendmmsg. A plain miss goes to the thread's table of upstream queries
//! ([`miss_table`]), whose loop answers it; any other miss gets a task on the
//! same thread, whose answer waits in the socket's outbox to go out with the
//! next burst's.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::dns::wire::Protocol;
use crate::serve::batch::{self, BATCH, Batch, Received};
use crate::serve::handler::{Handler, Started, Step};
use crate::serve::listening::{AnswerTo, Listening, OutboxClosed, wait};
use crate::serve::miss_table;

/// Answers a burst of queries per wake-up: hits and local answers go back in
/// one sendmmsg, plain misses go to the thread's table, other misses each get
/// a task on this UDP thread, and their answers wait in the socket's outbox
/// to go out with the next burst's.
pub(crate) async fn serve_udp(handler: Handler, socket: std::net::UdpSocket, read: Counter) {
    let listening = match UdpSocket::from_std(socket) {
        Ok(socket) => Arc::new(Listening::new(socket)),
        Err(error) => {
            tracing::error!(%error, "cannot serve a UDP socket");
            return;
        }
    };
    let socket = &listening.socket;
    let fd = socket.as_raw_fd();
    let mut batch = Batch::new();
    let _closed = OutboxClosed(Arc::clone(&listening));
    loop {
        let readable = tokio::select! {
            biased;
            ready = socket.readable() => ready.is_ok(),
            () = listening.posted.notified() => false,
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
            let Some(Received {
                packet,
                client,
                source,
                out,
            }) = batch.query(i)
            else {
                continue;
            };
            let miss = match handler.answer_now(packet, client.ip(), Protocol::Udp, out) {
                Step::Respond => {
                    batch.mark_ready(i);
                    continue;
                }
                Step::Drop => continue,
                Step::Miss(miss) => miss,
            };
            match handler.start_miss(miss, out) {
                Started::Respond => batch.mark_ready(i),
                Started::Ask(asked, server) => {
                    let to = AnswerTo {
                        listening: Arc::clone(&listening),
                        client,
                        source,
                    };
                    miss_table::ask(&handler, asked, server, to);
                }
                Started::Wait(miss, stage) => {
                    let to = AnswerTo {
                        listening: Arc::clone(&listening),
                        client,
                        source,
                    };
                    wait(handler.clone(), miss, stage, to);
                }
            }
        }
        if received > 0 {
            miss_table::read_now();
        }
        let queued = listening.take();
        let sent = batch.send(fd, received, &queued);
        for (response, to) in batch.outgoing(received, &queued).skip(sent) {
            let _ = batch::send_one(socket, response, to).await;
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
