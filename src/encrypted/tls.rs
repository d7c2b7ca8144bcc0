//! DNS over TLS (RFC 7858): hickory-net's multiplexed TLS stream.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_net::NetError;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::xfer::DnsExchange;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

/// Connects and completes the handshake; queries are then pipelined on the stream.
pub(crate) async fn connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
) -> Result<DnsExchange<TokioRuntimeProvider>, NetError> {
    let name = ServerName::try_from(name.to_string())
        .map_err(|_| NetError::from(format!("{name:?} is not a name to verify")))?;
    // hickory clones the config: the clone shares the session cache, so
    // reconnections resume the session.
    hickory_net::tls::tls_exchange(
        addr,
        name,
        (*config).clone(),
        super::MAX_BACKOFF,
        Some(super::MAX_PIPELINED),
        TokioRuntimeProvider::default(),
    )
    .await
}
