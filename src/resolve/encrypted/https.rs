//! DNS over HTTPS (RFC 8484): hickory-net's HTTP/2 client, a POST of
//! `application/dns-message` with ID 0 (§4.1), one stream per query on one
//! connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_net::NetError;
use hickory_net::h2::HttpsClientStream;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::xfer::DnsExchange;
use rustls::ClientConfig;

use super::transport::{Background, Exchange};

/// Connects, completes the TLS handshake and the HTTP/2 preface. The caller
/// spawns the background task, which ends when the connection does.
pub(crate) async fn connect(
    addr: SocketAddr,
    name: &str,
    path: &str,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<(Exchange, Background), NetError> {
    let mut builder = HttpsClientStream::builder(config, TokioRuntimeProvider::default());
    builder.request_timeout(timeout);
    let stream = builder.build(addr, name.into(), path.into()).await?;
    let (exchange, background) = DnsExchange::from_stream(stream);
    Ok((exchange, Box::pin(background)))
}
