//! Answering TCP: a task per connection, taking pipelined queries and
//! answering each as soon as it is ready (RFC 7766 §6.2.1.1), within the
//! limits of [`TcpConfig`]: a cap on connections (the one idle longest makes
//! room, see [`Connections`]), an idle timeout, a deadline per message and
//! for each write, and a number of queries per connection. Every connection
//! is its own task, so none of this can hold up UDP.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

use crate::config::TcpConfig;
use crate::dns::wire::Protocol;
use crate::serve::connections::{Connections, Slot};
use crate::serve::handler::{Handler, Step};

/// Pipelined queries of one connection being resolved at once.
const TCP_PIPELINE: usize = 32;

pub(crate) async fn serve_tcp(handler: Handler, listener: TcpListener, limits: TcpConfig) {
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
        while let Some(response) = rx.recv().await {
            let mut framed = Vec::with_capacity(response.len() + 2);
            framed.extend_from_slice(&(response.len() as u16).to_be_bytes());
            framed.extend_from_slice(&response);
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
            Step::Respond => {
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
                    let response = handler.answer_miss(miss).await;
                    let _ = tx.send(response).await;
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
