//! DNS over HTTPS (RFC 8484): hickory-net's HTTP/2 client, POST of
//! `application/dns-message`, one stream per query on one connection.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_net::NetError;
use hickory_net::h2::HttpsClientStream;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::xfer::DnsExchange;
use rustls::ClientConfig;

/// Connects, completes the TLS handshake and the HTTP/2 preface.
pub(crate) async fn connect(
    addr: SocketAddr,
    name: &str,
    path: &str,
    config: Arc<ClientConfig>,
) -> Result<DnsExchange<TokioRuntimeProvider>, NetError> {
    let mut builder = HttpsClientStream::builder(config, TokioRuntimeProvider::default());
    builder.request_timeout(super::MAX_BACKOFF);
    builder.exchange(addr, name.into(), path.into()).await
}
