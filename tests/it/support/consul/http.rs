//! The fake agent's HTTP API: `/v1/agent/self`, `/v1/catalog/services` and
//! `/v1/health/service/<name>`, with blocking queries as `agent/blockingquery.Query` runs them
//! and the response headers `agent/http.go` `setMeta` writes; plus a small client for tests.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderMap;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::RngExt;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout};

use super::Shared;
use super::catalog::{Catalog, Check, Instance, Node};
use crate::support::client::REPLY_WAIT;

/// What the ACL system does with one service's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acl {
    /// `/v1/health/service/<name>` answers 403 "Permission denied"; the name is left out of
    /// `/v1/catalog/services` (with the filtered header).
    Deny,
    /// Left out silently: `[]` from `/v1/health/service/<name>` and missing from
    /// `/v1/catalog/services`, each with `X-Consul-Results-Filtered-By-ACLs: true`.
    Filter,
}

/// `blockingquery` caps `wait` at 10 minutes and defaults it to 5.
const MAX_WAIT: Duration = Duration::from_secs(600);
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// Binds `addr` (port 0 for a new one) with SO_REUSEADDR, so a restart gets the same port.
pub(super) fn bind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().expect("HTTP socket");
    socket.set_reuseaddr(true).unwrap();
    socket
        .bind(addr)
        .unwrap_or_else(|e| panic!("bind HTTP {addr}: {e}"));
    socket.listen(128).expect("listen")
}

/// Accepts until aborted; dropping this future drops every connection with it.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let service = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The query string's pairs, percent-decoded, in order (a key may repeat: `tag`).
fn params(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Go's `time.ParseDuration` for the forms a `wait` takes: `10s`, `5m`, `1m30s`, `100ms`, `0`.
pub(crate) fn go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += Duration::from_secs_f64(value * scale);
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Go's `time.Duration.String()` for whole seconds, as `config.Sanitized` writes durations.
pub(crate) fn go_duration_string(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let params = params(req.uri().query());
    shared.count_request(&path);
    let token = req
        .headers()
        .get("x-consul-token")
        .and_then(|v| v.to_str().ok())
        .or(param(&params, "token"))
        .map(str::to_string);
    if let Some(token) = token {
        shared.tokens.lock().unwrap().push(token);
    }
    let delay = shared.faults.lock().unwrap().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if req.method() != hyper::Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, String::new());
    }
    let response = match path.as_str() {
        "/v1/agent/self" => Ok(agent_self(&shared)),
        "/v1/catalog/services" => catalog_services(&shared, &params).await,
        _ => match path.strip_prefix("/v1/health/service/") {
            Some(service) => health_service(&shared, &decode(service), &params).await,
            None => Err((StatusCode::NOT_FOUND, String::new())),
        },
    };
    response.unwrap_or_else(|(status, body)| reply(status, body))
}

type Answer = Result<Response<Full<Bytes>>, (StatusCode, String)>;

/// `agent/http.go` `parse`: `dc` (the agent's by default; unknown → 500 "No path to
/// datacenter"), `index`, `wait`, and the consistency mode.
struct QueryOptions {
    datacenter: String,
    min_index: u64,
    wait: Duration,
    consistency: &'static str,
    cached: bool,
}

fn query_options(
    catalog: &Catalog,
    params: &[(String, String)],
) -> Result<QueryOptions, (StatusCode, String)> {
    let datacenter = param(params, "dc")
        .filter(|dc| !dc.is_empty())
        .unwrap_or(&catalog.config.datacenter)
        .to_string();
    if !catalog.knows_dc(&datacenter) {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            "No path to datacenter".to_string(),
        ));
    }
    let min_index = match param(params, "index") {
        None => 0,
        Some(text) => text
            .parse()
            .map_err(|_| (StatusCode::BAD_REQUEST, "Invalid index".to_string()))?,
    };
    let wait = match param(params, "wait") {
        None => DEFAULT_WAIT,
        Some(text) => go_duration(text)
            .ok_or((StatusCode::BAD_REQUEST, "Invalid wait time".to_string()))?
            .min(MAX_WAIT),
    };
    let consistency = if param(params, "stale").is_some() {
        "stale"
    } else if param(params, "consistent").is_some() {
        "consistent"
    } else {
        "leader"
    };
    Ok(QueryOptions {
        datacenter,
        min_index,
        wait,
        consistency,
        cached: param(params, "cached").is_some(),
    })
}

/// One run of a blocking query: the index it reports, the body, and whether ACLs filtered it.
struct Run {
    index: u64,
    body: Value,
    filtered: bool,
}

/// Counts a query as blocked for as long as it is, even if its connection goes away.
struct BlockedGuard<'a>(&'a Shared);

impl Drop for BlockedGuard<'_> {
    fn drop(&mut self) {
        self.0.blocked.send_modify(|n| *n -= 1);
    }
}

/// `blockingquery.Query`: with `index` 0 run at once; otherwise run, and while the result's
/// index is not past `index`, wait for a change or the timeout (`wait` plus up to `wait/16` of
/// jitter, `lib.RandomStagger`), running again after each change. A snapshot restore
/// ("the state store has been abandoned") ends the wait at once, whatever the index.
/// `SetQueryMeta` never reports index 0.
async fn blocking(shared: &Shared, opts: &QueryOptions, query: impl Fn(&Catalog) -> Run) -> Run {
    let jitter = opts.wait.mul_f64(rand::rng().random_range(0.0..1.0) / 16.0);
    let deadline = Instant::now() + opts.wait + jitter;
    let mut guard = None;
    loop {
        // The run, the subscription and the restore count it ran on, all under the lock: a
        // change or restore after this wakes the wait below.
        let (mut run, mut changes, epoch) = {
            let catalog = shared.catalog.lock().unwrap();
            let changes = shared.changes.subscribe();
            let epoch = changes.borrow().restores;
            (query(&catalog), changes, epoch)
        };
        run.index = run.index.max(1);
        if opts.min_index == 0 || run.index > opts.min_index {
            return run;
        }
        if guard.is_none() {
            shared.blocked.send_modify(|n| *n += 1);
            guard = Some(BlockedGuard(shared));
        }
        tokio::select! {
            _ = changes.changed() => {
                if changes.borrow().restores != epoch {
                    let mut run = query(&shared.catalog.lock().unwrap());
                    run.index = run.index.max(1);
                    return run;
                }
            }
            _ = sleep_until(deadline) => {
                let mut run = query(&shared.catalog.lock().unwrap());
                run.index = run.index.max(1);
                return run;
            }
        }
    }
}

/// `setMeta`: the index and leader headers every blocking endpoint sends.
fn json_reply(run: &Run, opts: &QueryOptions) -> Response<Full<Bytes>> {
    let mut response = reply(StatusCode::OK, run.body.to_string());
    let headers = response.headers_mut();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("x-consul-index", run.index.into());
    headers.insert("x-consul-knownleader", "true".parse().unwrap());
    headers.insert("x-consul-lastcontact", 0.into());
    headers.insert(
        "x-consul-effective-consistency",
        opts.consistency.parse().unwrap(),
    );
    headers.insert("x-consul-default-acl-policy", "allow".parse().unwrap());
    if run.filtered {
        headers.insert("x-consul-results-filtered-by-acls", "true".parse().unwrap());
    }
    if opts.cached {
        headers.insert("x-cache", "MISS".parse().unwrap());
    }
    response
}

/// `/v1/catalog/services`: service name → its tags, at the `services` table index.
async fn catalog_services(shared: &Shared, params: &[(String, String)]) -> Answer {
    let opts = query_options(&shared.catalog.lock().unwrap(), params)?;
    let acl = shared.faults.lock().unwrap().acl.clone();
    let run = blocking(shared, &opts, |catalog| {
        let mut names = catalog.service_names(&opts.datacenter);
        let before = names.len();
        names.retain(|name, _| !acl.contains_key(name));
        Run {
            index: catalog.services_index(),
            filtered: names.len() != before,
            body: json!(names),
        }
    })
    .await;
    Ok(json_reply(&run, &opts))
}

/// `/v1/health/service/<name>` (`healthServiceNodes`): every instance with its node and
/// checks; `?passing` drops instances with any non-passing check (`filterNonPassing`), each
/// `?tag` must be among the instance's tags.
async fn health_service(shared: &Shared, name: &str, params: &[(String, String)]) -> Answer {
    if name.is_empty() {
        return Err((StatusCode::BAD_REQUEST, "Missing service name".to_string()));
    }
    let opts = query_options(&shared.catalog.lock().unwrap(), params)?;
    // `getBoolQueryParam`: present without a value means true.
    let passing = match param(params, "passing") {
        None => false,
        Some("" | "true" | "1" | "t" | "T" | "TRUE" | "True") => true,
        Some("false" | "0" | "f" | "F" | "FALSE" | "False") => false,
        Some(_) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "Invalid value for ?passing".to_string(),
            ));
        }
    };
    let tags: Vec<&str> = params
        .iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| v.as_str())
        .collect();
    let acl = shared.faults.lock().unwrap().acl.get(name).copied();
    if acl == Some(Acl::Deny) {
        return Err((StatusCode::FORBIDDEN, "Permission denied".to_string()));
    }
    let run = blocking(shared, &opts, |catalog| {
        let index = catalog.service_index(&opts.datacenter, name);
        if acl == Some(Acl::Filter) {
            return Run {
                index,
                body: json!([]),
                filtered: true,
            };
        }
        let entries: Vec<Value> = catalog
            .instances(&opts.datacenter, name)
            .into_iter()
            .filter(|i| {
                tags.iter()
                    .all(|tag| i.service.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)))
            })
            .filter(|i| {
                !passing
                    || i.node
                        .checks
                        .iter()
                        .chain(&i.service.checks)
                        .all(|c| c.status.as_str() == "passing")
            })
            .map(|i| health_entry(catalog, &i))
            .collect();
        Run {
            index,
            body: Value::Array(entries),
            filtered: false,
        }
    })
    .await;
    Ok(json_reply(&run, &opts))
}

fn node_json(catalog: &Catalog, node: &Node) -> Value {
    let position = catalog
        .nodes()
        .iter()
        .position(|n| n.name == node.name)
        .unwrap_or(0);
    json!({
        "ID": format!("00000000-0000-4000-8000-{position:012x}"),
        "Node": node.name,
        "Address": node.address,
        "Datacenter": catalog.node_dc(node),
        "TaggedAddresses": node.tagged_addresses,
        "Meta": node.meta,
        "CreateIndex": node.create_index,
        "ModifyIndex": node.modify_index,
    })
}

fn check_json(check: &Check, node: &str, service: Option<(&str, &str, &[String])>) -> Value {
    let (service_id, service_name, tags) = service.unwrap_or(("", "", &[]));
    json!({
        "Node": node,
        "CheckID": check.id,
        "Name": check.name,
        "Status": check.status.as_str(),
        "Notes": "",
        "Output": "",
        "ServiceID": service_id,
        "ServiceName": service_name,
        "ServiceTags": tags,
        "Type": if service.is_some() { "ttl" } else { "" },
        "Interval": "",
        "Timeout": "",
        "ExposedPort": 0,
        "Definition": {},
        "CreateIndex": check.create_index,
        "ModifyIndex": check.modify_index,
    })
}

/// One element of the `/v1/health/service` array: `{Node, Service, Checks}`.
fn health_entry(catalog: &Catalog, instance: &Instance<'_>) -> Value {
    let (node, svc) = (instance.node, instance.service);
    // The agent adds `lan_ipv4`/`wan_ipv4` (or `_ipv6`) tagged addresses for an IP service
    // address.
    let mut tagged = BTreeMap::new();
    if let Some(address) = &svc.address
        && let Ok(ip) = address.parse::<IpAddr>()
    {
        let family = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
        for zone in ["lan", "wan"] {
            tagged.insert(
                format!("{zone}_{family}"),
                json!({"Address": address, "Port": svc.port}),
            );
        }
    }
    let mut service = json!({
        "ID": svc.id,
        "Service": svc.name,
        "Tags": svc.tags,
        "Address": svc.address.clone().unwrap_or_default(),
        "Meta": svc.meta,
        "Port": svc.port,
        "Weights": {"Passing": svc.weights.0, "Warning": svc.weights.1},
        "EnableTagOverride": false,
        "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
        "Connect": {},
        "PeerName": "",
        "CreateIndex": svc.create_index,
        "ModifyIndex": svc.modify_index,
    });
    if !tagged.is_empty() {
        service["TaggedAddresses"] = json!(tagged);
    }
    let mut checks: Vec<Value> = node
        .checks
        .iter()
        .map(|c| check_json(c, &node.name, None))
        .collect();
    checks.extend(
        svc.checks
            .iter()
            .map(|c| check_json(c, &node.name, Some((&svc.id, &svc.name, &svc.tags)))),
    );
    json!({"Node": node_json(catalog, node), "Service": service, "Checks": checks})
}

/// `/v1/agent/self`: `Config` and `DebugConfig` (the sanitized `RuntimeConfig`: durations as
/// Go writes them, `DNSSOA` as `RuntimeSOAConfig`). Not a blocking endpoint: no index header.
fn agent_self(shared: &Shared) -> Response<Full<Bytes>> {
    let catalog = shared.catalog.lock().unwrap();
    let c = &catalog.config;
    let service_ttl: BTreeMap<&str, String> = c
        .service_ttl
        .iter()
        .map(|(k, v)| (k.as_str(), go_duration_string(u64::from(*v))))
        .collect();
    let dns = shared.dns_addr;
    let body = json!({
        "Config": {
            "Datacenter": c.datacenter,
            "PrimaryDatacenter": c.datacenter,
            "NodeName": c.node_name,
            "NodeID": "00000000-0000-4000-8000-00000000a9e7",
            "Revision": "fake",
            "Server": false,
            "Version": "1.19.2",
            "BuildDate": "2024-08-27T16:06:44Z",
        },
        "DebugConfig": {
            "Datacenter": c.datacenter,
            "NodeName": c.node_name,
            "DNSDomain": c.domain,
            "DNSAltDomain": c.alt_domain.clone().unwrap_or_default(),
            "DNSOnlyPassing": c.only_passing,
            "DNSServiceTTL": service_ttl,
            "DNSNodeTTL": go_duration_string(u64::from(c.node_ttl)),
            "DNSARecordLimit": c.a_record_limit,
            "DNSUDPAnswerLimit": c.udp_answer_limit,
            "DNSEnableTruncate": c.enable_truncate,
            "DNSNodeMetaTXT": c.node_meta_txt,
            "DNSAllowStale": true,
            "DNSMaxStale": "87600h0m0s",
            "DNSDisableCompression": false,
            "DNSRecursors": [],
            "DNSRecursorStrategy": "sequential",
            "DNSRecursorTimeout": "2s",
            "DNSUseCache": false,
            "DNSCacheMaxAge": "0s",
            "DNSSOA": {
                "Refresh": c.soa.refresh,
                "Retry": c.soa.retry,
                "Expire": c.soa.expire,
                "Minttl": c.soa.min_ttl,
            },
            "DNSPort": dns.port(),
            "DNSAddrs": [format!("tcp://{dns}"), format!("udp://{dns}")],
        },
        "Coord": null,
        "Member": {
            "Name": c.node_name,
            "Addr": "127.0.0.1",
            "Port": 8301,
            "Tags": {"dc": c.datacenter, "role": "node", "segment": ""},
            "Status": 1,
        },
        "Meta": {"consul-network-segment": ""},
    });
    let mut response = reply(StatusCode::OK, body.to_string());
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

/// A reply the test client got.
#[derive(Debug)]
pub(crate) struct HttpReply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

impl HttpReply {
    /// `X-Consul-Index`; panics when missing.
    #[track_caller]
    pub(crate) fn index(&self) -> u64 {
        self.header("x-consul-index")
            .unwrap_or_else(|| panic!("no X-Consul-Index in {self:?}"))
            .parse()
            .unwrap()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// GETs `path` from `addr` on a new connection, failing after [`REPLY_WAIT`].
pub(crate) async fn get(addr: SocketAddr, path: &str) -> HttpReply {
    timeout(REPLY_WAIT, try_get(addr, path))
        .await
        .unwrap_or_else(|_| panic!("no HTTP answer from {addr}{path}"))
        .unwrap_or_else(|e| panic!("GET {addr}{path}: {e}"))
}

/// GETs `path`; an error when nothing listens or the connection breaks.
pub(crate) async fn try_get(addr: SocketAddr, path: &str) -> Result<HttpReply, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(HttpReply {
        status,
        headers,
        body: String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    })
}
