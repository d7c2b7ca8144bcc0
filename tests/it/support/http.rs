//! A one-request HTTP/1 client for the metrics endpoint, on hyper's client connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::client::REPLY_WAIT;

/// How often [`wait_for`] scrapes.
const SCRAPE_EVERY: Duration = Duration::from_millis(20);

/// GETs `path` and returns the status code and the body.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let exchange = async {
        let stream = TcpStream::connect(addr).await.expect("connect to metrics");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        let request = Request::get(path)
            .header("host", addr.to_string())
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.expect("HTTP request");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.expect("HTTP body");
        (status, String::from_utf8(body.to_bytes().to_vec()).unwrap())
    };
    timeout(REPLY_WAIT, exchange)
        .await
        .unwrap_or_else(|_| panic!("no HTTP answer from {addr}{path}"))
}

/// The value of the sample written exactly as `series` (name and labels), if present.
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(
            value
                .parse()
                .unwrap_or_else(|_| panic!("bad sample: {line}")),
        )
    })
}

/// `/metrics` from `addr`, asserting it answers 200.
pub(crate) async fn scrape(addr: SocketAddr) -> String {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The sample's value, failing with the whole exposition when it is missing.
#[track_caller]
pub(crate) fn value(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

/// Scrapes `addr` until the sample `series` satisfies `done`, and returns its value; fails
/// with the last exposition when it has not after [`REPLY_WAIT`].
pub(crate) async fn wait_for(addr: SocketAddr, series: &str, done: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + REPLY_WAIT;
    loop {
        let text = scrape(addr).await;
        let got = sample(&text, series);
        if let Some(got) = got
            && done(got)
        {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{series} still {got:?} after {REPLY_WAIT:?}:\n{text}"
        );
        tokio::time::sleep(SCRAPE_EVERY).await;
    }
}
