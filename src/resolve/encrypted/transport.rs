//! What an encrypted transport (`tls.rs`, `https.rs`) hands back once it has
//! connected: the exchange queries are sent on, and the task that drives the
//! connection. The client above them keeps both.

use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::xfer::DnsExchange;

/// The handle queries are sent on, cloned by every query on the connection.
pub(super) type Exchange = DnsExchange<TokioRuntimeProvider>;
/// The task that drives one connection; it returns when the connection ends.
pub(super) type Background = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
