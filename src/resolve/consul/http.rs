//! GETs against the agent's HTTP API, one keep-alive connection per watch:
//! a blocking query holds its connection for as long as it waits, so watches
//! cannot share one (HTTP/1.1 answers in order).

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The largest body read: a service with thousands of instances and long
/// node metadata stays well under it, and a broken agent cannot fill memory.
const MAX_BODY: usize = 32 << 20;

/// What one request got.
pub(super) struct Response {
    pub(super) status: u16,
    /// `X-Consul-Index`; 0 when missing.
    pub(super) index: u64,
    /// `X-Consul-Results-Filtered-By-ACLs: true`: the token hid some results.
    pub(super) filtered: bool,
    pub(super) body: Bytes,
}

/// Why a request got no response. The token never appears in one.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failed {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("the connection broke: {0}")]
    Broken(String),
    #[error("no response in {0:?}")]
    Timeout(Duration),
}

/// A client of one agent, keeping its connection between requests.
pub(super) struct Client {
    addr: SocketAddr,
    token: Option<String>,
    sender: Option<SendRequest<Empty<Bytes>>>,
}

impl Client {
    pub(super) fn new(addr: SocketAddr, token: Option<String>) -> Self {
        Self {
            addr,
            token,
            sender: None,
        }
    }

    /// GETs `path_and_query`, waiting at most `timeout` for the whole response.
    pub(super) async fn get(
        &mut self,
        path_and_query: &str,
        timeout: Duration,
    ) -> Result<Response, Failed> {
        match tokio::time::timeout(timeout, self.exchange(path_and_query)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(failed)) => {
                self.sender = None;
                Err(failed)
            }
            Err(_) => {
                self.sender = None;
                Err(Failed::Timeout(timeout))
            }
        }
    }

    async fn exchange(&mut self, path_and_query: &str) -> Result<Response, Failed> {
        let sender = match &mut self.sender {
            Some(sender) if sender.is_ready() => sender,
            _ => self.sender.insert(self.connect().await?),
        };
        let mut request = hyper::Request::get(path_and_query)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(hyper::header::USER_AGENT, "splitdns");
        if let Some(token) = &self.token {
            request = request.header("X-Consul-Token", token);
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| Failed::Broken(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| Failed::Broken(e.to_string()))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let index = header("x-consul-index")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let filtered = header("x-consul-results-filtered-by-acls").as_deref() == Some("true");
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| Failed::Broken(e.to_string()))?
            .to_bytes();
        Ok(Response {
            status,
            index,
            filtered,
            body,
        })
    }

    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>, Failed> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(Failed::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failed::Broken(e.to_string()))?;
        // Ends when the connection closes or the sender is dropped.
        tokio::spawn(connection);
        Ok(sender)
    }
}
