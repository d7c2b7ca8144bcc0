//! The `[metrics]` HTTP endpoint: `/metrics` for Prometheus, `/health` and
//! `/ready` for load balancers, orchestrators and humans with curl.
//!
//! HTTP/1 only, GET or HEAD, a handful of connections at a time with a short
//! header deadline: it is meant for a scraper on loopback, and a slow or
//! hostile client must not hold it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::MetricsConfig;

/// What the endpoint reads from the running server.
pub(crate) trait Report: Send + Sync + 'static {
    /// Whether the listeners serve now (`/ready`).
    fn serving(&self) -> bool;
    /// Every counter now, as OpenMetrics text; `window` decides which
    /// servers are up.
    fn metrics_text(&self, window: Duration) -> String;
    /// `Ok` when every forwarding route has a server that is up; otherwise
    /// the routes that have none, one per line.
    fn health(&self, window: Duration) -> Result<(), String>;
}

/// What Prometheus negotiates for the text that prometheus-client writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const MAX_CONNECTIONS: usize = 16;
const HEADER_DEADLINE: Duration = Duration::from_secs(5);

/// A bound, not yet serving, endpoint.
pub(crate) struct Endpoint {
    listener: TcpListener,
    addr: SocketAddr,
    health_window: Duration,
}

impl Endpoint {
    pub(crate) async fn bind(config: &MetricsConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        Ok(Self {
            addr: listener.local_addr()?,
            listener,
            health_window: config.health_window,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the task is aborted.
    pub(crate) async fn serve<R: Report>(self, shared: Arc<R>) {
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
                return;
            };
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!(%error, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let shared = Arc::clone(&shared);
            let window = self.health_window;
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let response = respond(&req, shared.as_ref(), window);
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_DEADLINE)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                drop(permit);
            });
        }
    }
}

fn respond(
    req: &Request<Incoming>,
    shared: &impl Report,
    window: Duration,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n".into());
    }
    let serving = shared.serving();
    match req.uri().path() {
        "/metrics" => {
            let body = shared.metrics_text(window);
            let mut response = text(StatusCode::OK, body);
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
            response
        }
        "/health" if !serving => text(StatusCode::SERVICE_UNAVAILABLE, "not serving\n".into()),
        "/health" => match shared.health(window) {
            Ok(()) => text(StatusCode::OK, "ok\n".into()),
            Err(problems) => text(StatusCode::SERVICE_UNAVAILABLE, problems),
        },
        "/ready" if serving => text(StatusCode::OK, "ready\n".into()),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not serving\n".into()),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /health or /ready\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
