//! The watches and the manager that owns what they read.
//!
//! Each watch is a loop of blocking queries (Consul's "Blocking Queries"
//! docs): ask with the last `X-Consul-Index` and a `wait`, get the whole
//! result back when it changes or the wait ends, and ask again. The rules of
//! those docs are kept: an index that goes backwards starts over at 0, an
//! index of 0 is taken as 1, requests are spaced (at least [`MIN_GAP`]
//! apart), errors back off with jitter. Every response carries the whole
//! result, so the longest a missed change could stick is one `wait`
//! ([`WAIT`]): the watch re-reads everything at least that often. After an
//! error the next request does not block (index 0), so a restarted agent is
//! seen as back at once, and a restored one's lower index is taken up.
//!
//! The manager task is the only writer: it starts the watches queries ask
//! for (up to `max_watches`), stops those idle for `watch_idle`, tracks
//! whether the agent answers, and publishes a new [`View`] after each change.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::catalog::{self, AgentDns};
use super::http::{Client, Failed, Response};
use super::names;
use super::view::{Datacenter, Hub, Listing, View, Want, WatchState, Watched};
use crate::dns::answer;
use crate::dns::zone::Zone;
use crate::observe::metrics::{Forwarded, MirrorMetrics, WatchError};

/// How long a blocking query waits at the agent for a change. Consul's
/// default is 5 minutes; the agent adds up to `wait/16` of jitter.
const WAIT: Duration = Duration::from_secs(300);
/// Blocking queries of one watch start at least this far apart.
const MIN_GAP: Duration = Duration::from_millis(100);
/// The backoff after an error: doubled per failure, up to the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// A 403 or an unknown datacenter is asked again this often: an ACL fix or
/// a new datacenter is picked up, never a request loop.
const REFUSED_RETRY: Duration = Duration::from_secs(60);
/// The manager's clock: idle watches, the stale limit, the age gauge.
const TICK: Duration = Duration::from_secs(1);

/// What a watch tells the manager.
enum Event {
    Agent(AgentDns),
    Listing {
        datacenter: String,
        listing: Listing,
    },
    Instances {
        datacenter: String,
        service: String,
        state: WatchState,
    },
    /// The agent answered (`true`) or could not be reached (`false`).
    Contact(bool),
}

/// What the manager owns: the published view's parts, and the tasks.
struct Book {
    mirror: Arc<Hub>,
    token: Option<String>,
    events: mpsc::UnboundedSender<Event>,
    agent: Option<Arc<AgentDns>>,
    agent_task: Option<JoinHandle<()>>,
    datacenters: HashMap<String, DcBook>,
    lost: Option<Instant>,
    expired: bool,
    generation: u64,
}

struct DcBook {
    listing: Listing,
    listing_task: JoinHandle<()>,
    watches: HashMap<String, WatchBook>,
    /// Services queries asked for while the listing was being read.
    pending: Vec<String>,
    /// When a query last asked for this datacenter.
    touched: Instant,
}

struct WatchBook {
    state: WatchState,
    touched: Arc<AtomicU32>,
    task: JoinHandle<()>,
}

impl Drop for DcBook {
    fn drop(&mut self) {
        self.listing_task.abort();
    }
}

impl Drop for WatchBook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs the mirror: reads the agent's settings, then keeps its watches.
pub(super) async fn manage(mirror: Arc<Hub>, token: Option<String>) {
    let (events, mut inbox) = mpsc::unbounded_channel();
    let mut book = Book {
        mirror,
        token,
        events,
        agent: None,
        agent_task: None,
        datacenters: HashMap::new(),
        lost: None,
        expired: false,
        generation: 0,
    };
    book.read_agent();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let changed = tokio::select! {
            Some(event) = inbox.recv() => book.apply(event),
            _ = book.mirror.wake.notified() => book.take_wants(),
            _ = tick.tick() => book.tick(Instant::now()),
        };
        if changed {
            book.publish();
        }
    }
}

impl Book {
    fn client(&self) -> Client {
        Client::new(self.mirror.config.http, self.token.clone())
    }

    fn metrics(&self) -> MirrorMetrics {
        self.mirror.metrics.clone()
    }

    /// Reads `/v1/agent/self` until it answers: at start, and each time the
    /// agent is back after an outage (a restart may bring a new config).
    fn read_agent(&mut self) {
        if let Some(task) = self.agent_task.take() {
            task.abort();
        }
        let (mut client, events, metrics) = (self.client(), self.events.clone(), self.metrics());
        self.agent_task = Some(tokio::spawn(async move {
            let mut failures = 0;
            loop {
                let failure = match client.get("/v1/agent/self", Duration::from_secs(10)).await {
                    Ok(r) if r.status == 200 => match AgentDns::parse(&r.body) {
                        Ok(agent) => {
                            let _ = events.send(Event::Agent(agent));
                            return;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "consul mirror: cannot read the agent's /v1/agent/self");
                            WatchError::decode
                        }
                    },
                    Ok(r) if r.status == 403 => {
                        tracing::warn!(
                            "consul mirror: the ACL token may not read /v1/agent/self (agent:read); nothing is mirrored"
                        );
                        WatchError::acl_denied
                    }
                    Ok(r) => {
                        tracing::warn!(status = r.status, "consul mirror: /v1/agent/self failed");
                        WatchError::status
                    }
                    Err(error) => {
                        tracing::debug!(%error, "consul mirror: agent unreachable");
                        WatchError::connect
                    }
                };
                metrics.error(failure);
                failures += 1;
                tokio::time::sleep(backoff(failures)).await;
            }
        }));
    }

    fn apply(&mut self, event: Event) -> bool {
        match event {
            Event::Agent(agent) => {
                let first = self.agent.is_none();
                if self.agent.as_deref() != Some(&agent) {
                    tracing::info!(
                        domain = %agent.domain,
                        alt_domain = agent.alt_domain.as_deref().unwrap_or(""),
                        datacenter = %agent.datacenter,
                        "consul mirror: read the agent's DNS settings"
                    );
                }
                if !self.mirror.zones.contains(&agent.domain) {
                    tracing::warn!(
                        domain = %agent.domain,
                        "consul mirror: no route has the agent's domain as its zone, so nothing is mirrored; add rules = [\"server=/{}/127.0.0.1#8600\"] or a [[route]] for it",
                        agent.domain.trim_end_matches('.')
                    );
                }
                let datacenter = agent.datacenter.clone();
                if first {
                    self.datacenter(&datacenter);
                    self.take_early(&agent);
                }
                self.agent = Some(Arc::new(agent));
                true
            }
            Event::Listing {
                datacenter,
                listing,
            } => match self.datacenters.get_mut(&datacenter) {
                Some(dc) if dc.listing != listing => {
                    dc.listing = listing;
                    let mut waiting = std::mem::take(&mut dc.pending);
                    // What the listing shows does not exist needs no watch:
                    // the mirror answers NXDOMAIN from the listing.
                    match &dc.listing {
                        Listing::Known { names, filtered } => {
                            waiting.retain(|s| *filtered || names.contains(s))
                        }
                        _ => waiting.clear(),
                    }
                    for service in waiting {
                        self.start_watch(&datacenter, service);
                    }
                    true
                }
                _ => false,
            },
            Event::Instances {
                datacenter,
                service,
                state,
            } => match self
                .datacenters
                .get_mut(&datacenter)
                .and_then(|dc| dc.watches.get_mut(&service))
            {
                // A wait that ended with nothing new changes nothing.
                Some(watch) if watch.state != state => {
                    watch.state = state;
                    true
                }
                _ => false,
            },
            Event::Contact(true) => {
                let Some(lost) = self.lost.take() else {
                    return false;
                };
                tracing::info!(
                    after = ?lost.elapsed(),
                    "consul mirror: the agent answers again; the mirror is current"
                );
                self.expired = false;
                self.mirror.metrics.age.set(0);
                self.read_agent();
                true
            }
            Event::Contact(false) => {
                if self.lost.is_some() {
                    return false;
                }
                tracing::warn!(
                    stale_limit = %humantime::format_duration(self.mirror.config.stale_limit),
                    "consul mirror: the agent's HTTP API does not answer; answering from the last copy of the catalog, marked stale"
                );
                self.lost = Some(Instant::now());
                true
            }
        }
    }

    /// The datacenter's entry, its listing watched from now.
    fn datacenter(&mut self, datacenter: &str) -> &mut DcBook {
        if !self.datacenters.contains_key(datacenter) {
            let path = format!(
                "/v1/catalog/services?dc={}&stale&cached",
                encode(datacenter)
            );
            let events = self.events.clone();
            let name = datacenter.to_string();
            let task = self.spawn_watch(path, move |response| {
                let listing = match response {
                    Got::Unknown => Listing::Unknown,
                    Got::Denied => Listing::Known {
                        names: Arc::default(),
                        filtered: true,
                    },
                    Got::Body(response) => Listing::Known {
                        names: Arc::new(catalog::service_names(&response.body).ok()?),
                        filtered: response.filtered,
                    },
                };
                let _ = events.send(Event::Listing {
                    datacenter: name.clone(),
                    listing,
                });
                Some(())
            });
            self.datacenters.insert(
                datacenter.to_string(),
                DcBook {
                    listing: Listing::Syncing,
                    listing_task: task,
                    watches: HashMap::new(),
                    pending: Vec::new(),
                    touched: Instant::now(),
                },
            );
        }
        self.datacenters.get_mut(datacenter).expect("just inserted")
    }

    /// Starts what the queries since the last call asked for; a service of
    /// a datacenter whose listing is still being read waits for it.
    fn take_wants(&mut self) -> bool {
        let wants = std::mem::take(&mut *self.mirror.wants.lock().expect("wants lock"));
        let mut changed = false;
        for Want {
            datacenter,
            service,
        } in wants
        {
            changed |= !self.datacenters.contains_key(&datacenter);
            let dc = self.datacenter(&datacenter);
            dc.touched = Instant::now();
            let Some(service) = service else { continue };
            match dc.listing {
                Listing::Syncing if !dc.pending.contains(&service) => dc.pending.push(service),
                Listing::Known { .. } => changed |= self.start_watch(&datacenter, service),
                _ => {}
            }
        }
        changed
    }

    /// The queries that came before the agent's settings were read, as
    /// wants now that its domains are known.
    fn take_early(&mut self, agent: &AgentDns) {
        let early = std::mem::take(&mut *self.mirror.early.lock().expect("early lock"));
        let mut wants = Vec::new();
        for (lower, qtype) in early.iter() {
            let Some(domain) = names::domain_of(lower, agent) else {
                continue;
            };
            self.mirror.metrics.forwarded(Forwarded::syncing);
            wants.extend(names::wanted(lower, *qtype, agent, domain));
        }
        self.mirror.wants.lock().expect("wants lock").extend(wants);
        self.take_wants();
    }

    /// Starts watching `service` in `datacenter` unless it is watched or
    /// `max_watches` are running; whether it started.
    fn start_watch(&mut self, datacenter: &str, service: String) -> bool {
        let watched = self
            .datacenters
            .get(datacenter)
            .is_some_and(|dc| dc.watches.contains_key(&service));
        if watched || self.watch_count() >= self.mirror.config.max_watches {
            return false;
        }
        let path = format!(
            "/v1/health/service/{}?dc={}&stale&cached",
            encode(&service),
            encode(datacenter)
        );
        let events = self.events.clone();
        let metrics = self.metrics();
        let (dc_name, name) = (datacenter.to_string(), service.clone());
        let task = self.spawn_watch(path, move |response| {
            let state = match response {
                Got::Denied | Got::Unknown => WatchState::Hidden,
                Got::Body(response) => {
                    let instances = match catalog::instances(&response.body, &dc_name) {
                        Ok(instances) => instances,
                        Err(error) => {
                            tracing::warn!(service = %name, %error, "consul mirror: cannot read a health response");
                            return None;
                        }
                    };
                    if response.filtered {
                        metrics.error(WatchError::acl_filtered);
                        tracing::warn!(service = %name, "consul mirror: the ACL token filtered this service's instances; its names are forwarded");
                        WatchState::Hidden
                    } else {
                        WatchState::Ready(Arc::new(instances))
                    }
                }
            };
            let _ = events.send(Event::Instances {
                datacenter: dc_name.clone(),
                service: name.clone(),
                state,
            });
            Some(())
        });
        let Some(dc) = self.datacenters.get_mut(datacenter) else {
            return false;
        };
        dc.watches.insert(
            service,
            WatchBook {
                state: WatchState::Syncing,
                touched: Arc::new(AtomicU32::new(answer::seconds(Instant::now()))),
                task,
            },
        );
        true
    }

    fn watch_count(&self) -> usize {
        self.datacenters.values().map(|dc| dc.watches.len()).sum()
    }

    /// Stops idle watches and datacenters; marks the mirror expired once the
    /// agent has been away for `stale_limit`.
    fn tick(&mut self, now: Instant) -> bool {
        let config = &self.mirror.config;
        let idle = config.watch_idle;
        let idle_secs = idle.as_secs() as u32;
        let now_secs = answer::seconds(now);
        let mut changed = false;
        let home = self.agent.as_ref().map(|a| a.datacenter.clone());
        for dc in self.datacenters.values_mut() {
            let before = dc.watches.len();
            dc.watches.retain(|_, w| {
                now_secs.saturating_sub(w.touched.load(Ordering::Relaxed)) < idle_secs
            });
            changed |= dc.watches.len() != before;
        }
        let before = self.datacenters.len();
        self.datacenters.retain(|name, dc| {
            Some(name) == home.as_ref()
                || !dc.watches.is_empty()
                || now.saturating_duration_since(dc.touched) < idle
        });
        changed |= self.datacenters.len() != before;
        if let Some(lost) = self.lost {
            let away = now.saturating_duration_since(lost);
            self.mirror.metrics.age.set(away.as_secs() as i64);
            if !self.expired && away >= config.stale_limit {
                tracing::warn!(
                    stale_limit = %humantime::format_duration(config.stale_limit),
                    "consul mirror: the agent has been unreachable for longer than stale_limit; forwarding its names"
                );
                self.expired = true;
                changed = true;
            }
        }
        changed
    }

    /// Puts what the book holds now in force for the queries from now on.
    fn publish(&mut self) {
        self.generation += 1;
        let watches = self.watch_count();
        self.mirror.metrics.watches.set(watches as i64);
        let datacenters = self
            .datacenters
            .iter()
            .map(|(name, dc)| {
                let mut view = Datacenter {
                    listing: dc.listing.clone(),
                    ..Datacenter::default()
                };
                for (service, watch) in &dc.watches {
                    if let WatchState::Ready(instances) = &watch.state {
                        for instance in instances.iter() {
                            view.nodes
                                .entry(instance.node.name.to_ascii_lowercase())
                                .or_insert_with(|| Arc::clone(&instance.node));
                        }
                    }
                    view.watched.insert(
                        service.clone(),
                        Arc::new(Watched {
                            state: watch.state.clone(),
                            touched: Arc::clone(&watch.touched),
                        }),
                    );
                }
                (name.clone(), view)
            })
            .collect();
        let domains = self.agent.as_ref().map_or_else(Vec::new, |agent| {
            [Some(&agent.domain), agent.alt_domain.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|text| Some(Box::from(Zone::parse(text).ok()?.wire())))
                .collect()
        });
        self.mirror.view.store(Arc::new(View {
            generation: self.generation,
            agent: self.agent.clone(),
            domains,
            datacenters,
            lost: self.lost,
            expired: self.expired,
            watches,
        }));
    }

    /// A watch of `path` (its query string started), each response handed
    /// to `deliver`; `None` from it counts a decode error and backs off.
    fn spawn_watch(
        &self,
        path: String,
        deliver: impl Fn(Got) -> Option<()> + Send + 'static,
    ) -> JoinHandle<()> {
        let watch = Watch {
            client: self.client(),
            events: self.events.clone(),
            metrics: self.metrics(),
            path,
        };
        tokio::spawn(watch.run(deliver))
    }
}

/// What a watch's response says.
enum Got {
    Body(Response),
    /// 403: the token may not read it.
    Denied,
    /// "No path to datacenter".
    Unknown,
}

struct Watch {
    client: Client,
    events: mpsc::UnboundedSender<Event>,
    metrics: MirrorMetrics,
    path: String,
}

impl Watch {
    async fn run(mut self, deliver: impl Fn(Got) -> Option<()>) {
        let mut index = 0u64;
        let mut failures = 0u32;
        loop {
            let started = Instant::now();
            let (path, timeout) = if index == 0 {
                (self.path.clone(), Duration::from_secs(30))
            } else {
                (
                    format!("{}&index={index}&wait={}s", self.path, WAIT.as_secs()),
                    WAIT + WAIT / 16 + Duration::from_secs(30),
                )
            };
            let pause = match self.client.get(&path, timeout).await {
                Ok(response) => {
                    // A 5xx says the agent cannot serve the catalog (no leader,
                    // no servers); an unknown datacenter is an answer like any other.
                    let answers = response.status < 500 || unknown_datacenter(&response);
                    let _ = self.events.send(Event::Contact(answers));
                    match self.response(response, &mut index, &deliver) {
                        Ok(()) => {
                            failures = 0;
                            MIN_GAP.saturating_sub(started.elapsed())
                        }
                        Err(pause) => pause,
                    }
                }
                Err(error) => {
                    self.failed(&error);
                    index = 0;
                    failures += 1;
                    backoff(failures)
                }
            };
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// Hands a response on and moves `index`; `Err` is how long to pause.
    fn response(
        &self,
        response: Response,
        index: &mut u64,
        deliver: &impl Fn(Got) -> Option<()>,
    ) -> Result<(), Duration> {
        match response.status {
            200 => {
                if response.index < *index {
                    // "Reset the index if it goes backwards."
                    self.metrics.error(WatchError::index_reset);
                    tracing::info!(path = %self.path, "consul mirror: the agent's index went backwards; reading again from 0");
                    *index = 0;
                } else {
                    // "Sanity check index is greater than zero."
                    *index = response.index.max(1);
                }
                deliver(Got::Body(response)).ok_or_else(|| {
                    self.metrics.error(WatchError::decode);
                    *index = 0;
                    BACKOFF_CAP
                })
            }
            403 => {
                self.metrics.error(WatchError::acl_denied);
                tracing::warn!(path = %self.path, "consul mirror: permission denied (check the token's service:read and node:read); these names are forwarded");
                deliver(Got::Denied);
                *index = 0;
                Err(jitter(REFUSED_RETRY))
            }
            _ if unknown_datacenter(&response) => {
                deliver(Got::Unknown);
                *index = 0;
                Err(jitter(REFUSED_RETRY))
            }
            status => {
                self.metrics.error(WatchError::status);
                tracing::warn!(path = %self.path, status, body = %String::from_utf8_lossy(&response.body).trim(), "consul mirror: request failed");
                *index = 0;
                Err(BACKOFF_CAP)
            }
        }
    }

    fn failed(&self, error: &Failed) {
        self.metrics.error(WatchError::connect);
        tracing::debug!(path = %self.path, %error, "consul mirror: request failed");
        let _ = self.events.send(Event::Contact(false));
    }
}

/// Consul's answer for a datacenter it has no route to (`structs.ErrNoDCPath`).
fn unknown_datacenter(response: &Response) -> bool {
    response.status == 500 && response.body.starts_with(b"No path to datacenter")
}

/// The pause after `failures` failures in a row: doubling from
/// [`BACKOFF_FIRST`] up to [`BACKOFF_CAP`], with jitter so that watches do
/// not come back in step.
fn backoff(failures: u32) -> Duration {
    let doubled = BACKOFF_FIRST.saturating_mul(1 << failures.saturating_sub(1).min(8));
    jitter(doubled.min(BACKOFF_CAP))
}

/// `base` give or take a quarter.
fn jitter(base: Duration) -> Duration {
    base.mul_f64(rand::rng().random_range(0.75..1.25))
}

/// Percent-encodes a path segment or query value (RFC 3986 §2.3: only
/// unreserved characters stay).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
