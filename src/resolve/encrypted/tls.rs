//! DNS over TLS (RFC 7858): hickory-net's TLS stream under its multiplexer,
//! which pipelines queries and matches answers by ID.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_net::NetError;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::xfer::{DnsExchange, DnsMultiplexer};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

use super::transport::{Background, Exchange};

/// Queries in flight on one connection (hickory's default is 32).
const MAX_PIPELINED: usize = 1024;

/// Connects and completes the handshake. The caller spawns the background
/// task that drives the connection; it ends when the connection does.
pub(crate) async fn connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<(Exchange, Background), NetError> {
    let name = ServerName::try_from(name.to_string())
        .map_err(|_| NetError::from(format!("{name:?} is not a name to verify")))?;
    let (stream, handle) =
        hickory_net::tls::tls_client_connect(addr, name, config, TokioRuntimeProvider::default());
    let multiplexer = DnsMultiplexer::new(stream.await?, handle)
        .with_timeout(timeout)
        .with_max_active_requests(MAX_PIPELINED);
    let (exchange, background) = DnsExchange::from_stream(multiplexer);
    Ok((exchange, Box::pin(background)))
}
