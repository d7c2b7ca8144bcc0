//! The Consul mirror: answers for the agent's DNS domain made from a watched
//! copy of its catalog, so a `web.service.consul` query costs no round trip
//! to the agent and survives its restarts (see README, "Consul mirror").
//!
//! Three parts, one way: the watches ([`watch`]) keep blocking HTTP queries
//! open at the agent and hand what they read to one manager task, the only
//! writer; it publishes an immutable [`View`] after each change. A query
//! reads the view it finds ([`Mirror::answer`]): it names a service, node or
//! `.addr.` name ([`names`]) the view holds, and gets the answer Consul would
//! give ([`render`]), made once per view and thread and copied after that;
//! or it is forwarded as before, with the reason counted, and a service
//! nobody watches yet gets a watch for the queries after it.

mod catalog;
mod http;
mod names;
mod render;
mod view;
mod watch;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rand::seq::SliceRandom;

use crate::config::ConsulConfig;
use crate::dns::answer::{self, Answer, TtlPolicy};
use crate::dns::wire::{self, Query, Records, Section};
use crate::dns::zone::Zone;
use crate::observe::metrics::{Forwarded, Metrics};
use catalog::Instance;
use names::Lookup;
use render::Asked;
use view::{Hub, Listing, View, Want, WatchState};

/// What became of a query in the mirrored zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mirrored {
    /// Answered from a copy of the catalog the agent keeps current.
    Fresh,
    /// Answered while the agent does not answer, within `stale_limit`.
    Stale,
    /// Left to the route's servers, as without the mirror.
    Forward,
}

/// Why the mirror cannot start: the token file named in the config.
#[derive(Debug, thiserror::Error)]
#[error("cannot read [consul] token_file {path}: {source}")]
pub struct TokenError {
    path: String,
    source: std::io::Error,
}

/// The mirror of one agent, shared by every listener; it outlives reloads.
pub(crate) struct Mirror {
    hub: Arc<Hub>,
}

impl Mirror {
    /// The mirror for `config`; its manager runs on the current runtime from
    /// now. `zones` are the configured routes' zones, in presentation form:
    /// the agent's domain should be one of them.
    pub(crate) fn start(
        config: &ConsulConfig,
        zones: Vec<String>,
        metrics: &Metrics,
    ) -> Result<Arc<Self>, TokenError> {
        let token = token(config)?;
        let hub = Arc::new(Hub {
            view: ArcSwap::from_pointee(View::default()),
            metrics: metrics.consul().clone(),
            config: config.clone(),
            wants: Mutex::new(Vec::new()),
            wake: tokio::sync::Notify::new(),
            zones,
            early: Mutex::default(),
            early_count: AtomicUsize::new(0),
        });
        tokio::spawn(watch::manage(Arc::clone(&hub), token));
        Ok(Arc::new(Self { hub }))
    }

    /// The config it was started with: a reload cannot change it.
    pub(crate) fn config(&self) -> &ConsulConfig {
        &self.hub.config
    }

    /// Answers `query`, routed by the route of `zones`, into `out`, or says
    /// it is to be forwarded, counting why; `None` when none of `zones` is
    /// the agent's domain or its alt domain. `policy` is
    /// the route's TTL bounds, which the answers keep as forwarded ones do.
    pub(crate) fn answer(
        &self,
        query: &Query,
        zones: &[Zone],
        policy: TtlPolicy,
        now: Instant,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Option<Mirrored> {
        let view = self.hub.view.load();
        if view.agent.is_none() {
            // The agent's domain is some route's zone, never the root's.
            if zones.iter().any(|zone| !zone.wire().starts_with(&[0])) {
                self.hub.early(query.lower.as_bytes(), query.qtype);
            }
            return None;
        }
        let served = |zone: &Zone| view.domains.iter().any(|wire| **wire == *zone.wire());
        if !zones.iter().any(served) {
            return None;
        }
        if view.expired {
            self.hub.metrics.forwarded(Forwarded::stale_limit);
            return Some(Mirrored::Forward);
        }
        let served = MEMO.with_borrow_mut(|memo| {
            let mut key = [0; MEMO_KEY];
            let key = memo_key(query, &mut key);
            let fresh = |m: &Memo| m.generation == view.generation && m.policy == policy;
            let rendered = match memo.get(key) {
                Some(m) if fresh(m) => m,
                _ => {
                    let made = self.render(&view, query, policy, now)?;
                    if memo.len() >= MEMO_ENTRIES {
                        memo.clear();
                    }
                    memo.entry(Box::from(key)).insert(made).into_mut()
                }
            };
            if let Some(touched) = &rendered.touched {
                touch(touched, now);
            }
            rendered.write(query, limit, out);
            Ok(())
        });
        Some(match served {
            Err(reason) => {
                self.hub.metrics.forwarded(reason);
                Mirrored::Forward
            }
            Ok(()) if view.lost.is_some() => {
                self.hub.metrics.stale.inc();
                Mirrored::Stale
            }
            Ok(()) => {
                self.hub.metrics.fresh.inc();
                Mirrored::Fresh
            }
        })
    }

    /// The answer to `query` from `view`, or why there is none.
    fn render(
        &self,
        view: &View,
        query: &Query,
        policy: TtlPolicy,
        now: Instant,
    ) -> Result<Memo, Forwarded> {
        let agent = view.agent.as_deref().ok_or(Forwarded::syncing)?;
        let lower = query.lower.as_bytes();
        let domain = names::domain_of(lower, agent).ok_or(Forwarded::unmirrored)?;
        let asked = Asked {
            lower,
            qtype: query.qtype,
            domain,
        };
        let labels = domain.split_terminator('.').count();
        let mut touched = None;
        let reply = match names::parse(lower, labels, query.qtype) {
            Lookup::Unmirrored => return Err(Forwarded::unmirrored),
            Lookup::Addr(ip) => Some(render::addr(agent, asked, ip)),
            Lookup::Node { node, datacenter } => {
                let dc = datacenter.unwrap_or(&agent.datacenter);
                let node = view
                    .datacenters
                    .get(dc)
                    .and_then(|d| d.nodes.get(node))
                    .ok_or(Forwarded::unmirrored)?;
                render::node(agent, asked, node)
            }
            Lookup::Service {
                service,
                tag,
                datacenter,
            } => {
                let dc = datacenter.unwrap_or(&agent.datacenter);
                let want = || Want {
                    datacenter: dc.to_string(),
                    service: Some(service.to_string()),
                };
                let Some(datacenter) = view.datacenters.get(dc) else {
                    self.hub.want(want());
                    return Err(Forwarded::syncing);
                };
                let watched = match (datacenter.watched.get(service), &datacenter.listing) {
                    (Some(watched), _) => watched,
                    (None, Listing::Known { names, filtered })
                        if !filtered && !names.contains(service) =>
                    {
                        let reply = render::nxdomain(agent, asked).ok_or(Forwarded::unmirrored)?;
                        let mut memo = Memo::made(&reply, asked, policy, now, 0, None)?;
                        memo.generation = view.generation;
                        return Ok(memo);
                    }
                    (None, Listing::Unknown) => return Err(Forwarded::unmirrored),
                    (None, Listing::Syncing) => {
                        self.hub.want(want());
                        return Err(Forwarded::syncing);
                    }
                    (None, Listing::Known { .. })
                        if view.watches >= self.hub.config.max_watches =>
                    {
                        return Err(Forwarded::watch_cap);
                    }
                    (None, Listing::Known { .. }) => {
                        self.hub.want(want());
                        return Err(Forwarded::unwatched);
                    }
                };
                touch(&watched.touched, now);
                let instances = match &watched.state {
                    WatchState::Syncing => return Err(Forwarded::syncing),
                    WatchState::Hidden => return Err(Forwarded::acl),
                    WatchState::Ready(instances) => instances,
                };
                touched = Some(Arc::clone(&watched.touched));
                let chosen: Vec<&Instance> = instances
                    .iter()
                    .filter(|i| agent.answers(i.health))
                    .filter(|i| tag.is_none_or(|tag| i.tags.iter().any(|t| t == tag)))
                    .collect();
                if chosen.iter().any(|i| render::has_host_name(i)) {
                    return Err(Forwarded::unmirrored);
                }
                render::service(agent, asked, service, &chosen)
            }
        };
        let reply = reply.ok_or(Forwarded::unmirrored)?;
        let keep = match query.qtype {
            wire::TYPE_A | wire::TYPE_AAAA | wire::TYPE_ANY => agent.a_record_limit,
            _ => 0,
        };
        let mut memo = Memo::made(&reply, asked, policy, now, keep, touched)?;
        memo.generation = view.generation;
        Ok(memo)
    }

    /// The mirror's state as `splitdns control routes` and `/health` show it.
    pub(crate) fn status(&self, now: Instant) -> Status {
        let view = self.hub.view.load();
        Status {
            agent: view.agent.as_ref().map(|a| {
                let mut domains = a.domain.clone();
                if let Some(alt) = &a.alt_domain {
                    domains.push_str(&format!(" and {alt}"));
                }
                format!("{domains} (datacenter {})", a.datacenter)
            }),
            watches: view.watches,
            stale_for: view.lost.map(|lost| now.saturating_duration_since(lost)),
            expired: view.expired,
            stale_limit: self.hub.config.stale_limit,
        }
    }
}

/// What [`Mirror::status`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    /// The agent's domains and datacenter; `None` until the agent has answered once.
    pub(crate) agent: Option<String>,
    pub(crate) watches: usize,
    /// How long the agent has not answered; `None` while it answers.
    pub(crate) stale_for: Option<Duration>,
    pub(crate) expired: bool,
    pub(crate) stale_limit: Duration,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(agent) = &self.agent else {
            return f.write_str("consul mirror: waiting for the agent's /v1/agent/self");
        };
        write!(
            f,
            "consul mirror: {agent}, {} services watched",
            self.watches
        )?;
        match self.stale_for {
            None => f.write_str(", current"),
            Some(_) if self.expired => write!(
                f,
                ", agent unreachable for longer than stale_limit ({}): forwarding",
                humantime::format_duration(self.stale_limit)
            ),
            Some(for_) => write!(
                f,
                ", stale: agent unreachable for {} s (answers until stale_limit {})",
                for_.as_secs(),
                humantime::format_duration(self.stale_limit)
            ),
        }
    }
}

/// `[consul] token_file`, else `CONSUL_HTTP_TOKEN_FILE` or `CONSUL_HTTP_TOKEN`
/// as Consul's own tools read them; surrounding white space dropped.
fn token(config: &ConsulConfig) -> Result<Option<String>, TokenError> {
    let file = config
        .token_file
        .clone()
        .or_else(|| std::env::var_os("CONSUL_HTTP_TOKEN_FILE").map(Into::into));
    let token = match file {
        Some(path) => std::fs::read_to_string(&path)
            .map_err(|source| TokenError {
                path: path.display().to_string(),
                source,
            })?
            .trim()
            .to_string(),
        None => std::env::var("CONSUL_HTTP_TOKEN").unwrap_or_default(),
    };
    Ok(Some(token).filter(|t| !t.is_empty()))
}

fn touch(touched: &AtomicU32, now: Instant) {
    let now = answer::seconds(now);
    if touched.load(Ordering::Relaxed) != now {
        touched.store(now, Ordering::Relaxed);
    }
}

/// Rendered answers a thread keeps; past this many it starts over.
const MEMO_ENTRIES: usize = 4096;

thread_local! {
    /// Answers made on this thread, by lowercased name and type: made once
    /// per view, so a hot name costs a copy, as a cache hit does.
    static MEMO: RefCell<hashbrown::HashMap<Box<[u8]>, Memo>> = RefCell::default();
}

/// The longest [`memo_key`]: a name of 255 bytes and the type.
const MEMO_KEY: usize = 257;

/// The key of a query in [`MEMO`], written into `buf`: the lowercased name,
/// then the type.
fn memo_key<'a>(query: &Query, buf: &'a mut [u8; MEMO_KEY]) -> &'a [u8] {
    let lower = query.lower.as_bytes();
    buf[..lower.len()].copy_from_slice(lower);
    buf[lower.len()..lower.len() + 2].copy_from_slice(&query.qtype.to_be_bytes());
    &buf[..lower.len() + 2]
}

/// One rendered answer and how to send it.
struct Memo {
    generation: u64,
    policy: TtlPolicy,
    answer: Answer,
    /// Reorder the answer records per query, as Consul shuffles instances.
    shuffle: bool,
    /// `a_record_limit`: answers kept after the shuffle; 0 keeps all.
    keep: usize,
    /// Pointers into answer records, rewritten after a shuffle.
    fixups: Box<[render::Fixup]>,
    /// The watch the answer came from, kept alive by its queries.
    touched: Option<Arc<AtomicU32>>,
}

impl Memo {
    fn made(
        reply: &render::Reply,
        asked: Asked<'_>,
        policy: TtlPolicy,
        now: Instant,
        keep: usize,
        touched: Option<Arc<AtomicU32>>,
    ) -> Result<Self, Forwarded> {
        let encoded = render::encode(asked, reply).ok_or(Forwarded::unmirrored)?;
        let answer = Answer::from_reply(&encoded.bytes, asked.lower, policy, now)
            .map_err(|_| Forwarded::unmirrored)?;
        // Kept whole, the message's pointers are where they were written;
        // kept to its answer section, nothing points into it but at the
        // question.
        let fixups = if answer.bytes().len() == encoded.bytes.len() {
            encoded.fixups
        } else {
            Vec::new()
        };
        Ok(Self {
            generation: 0,
            policy,
            answer,
            shuffle: reply.shuffled(),
            // Records that others point into stay, all of them.
            keep: if fixups.is_empty() { keep } else { 0 },
            fixups: fixups.into_boxed_slice(),
            touched,
        })
    }

    /// The response to `query`: the stored answer for this client, its
    /// answer records shuffled and cut to `keep`, fitted to `limit`.
    fn write(&self, query: &Query, limit: usize, out: &mut Vec<u8>) {
        let question_end = self.answer.start_response(query, out);
        if self.shuffle || self.keep > 0 {
            reorder(out, question_end, self);
        }
        query.fit_and_finish(out, question_end, limit);
    }
}

/// What [`reorder`] reuses, so a shuffle allocates nothing: the answer
/// records' spans, their new order and places, the new section.
#[derive(Default)]
struct Scratch {
    spans: Vec<(usize, usize)>,
    order: Vec<usize>,
    starts: Vec<usize>,
    section: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Shuffles the answer records of `out` and keeps the first `memo.keep` of
/// them (0: all), then points the pointers into them at their new places.
fn reorder(out: &mut Vec<u8>, question_end: usize, memo: &Memo) {
    SCRATCH.with_borrow_mut(|scratch| {
        let Scratch {
            spans,
            order,
            starts,
            section,
        } = scratch;
        spans.clear();
        spans.extend(
            Records::new(out, question_end)
                .take_while(|r| r.section == Section::Answer)
                .map(|r| (r.start, r.end)),
        );
        let (Some(&(first, _)), Some(&(_, last))) = (spans.first(), spans.last()) else {
            return;
        };
        order.clear();
        order.extend(0..spans.len());
        if memo.shuffle {
            order.shuffle(&mut rand::rng());
        }
        if memo.keep > 0 {
            order.truncate(memo.keep);
        }
        section.clear();
        starts.clear();
        starts.resize(spans.len(), 0);
        for &i in order.iter() {
            starts[i] = first + section.len();
            let (start, end) = spans[i];
            section.extend_from_slice(&out[start..end]);
        }
        out.splice(first..last, section.iter().copied());
        out[6..8].copy_from_slice(&(order.len() as u16).to_be_bytes());
        for fixup in &memo.fixups {
            let to = (starts[fixup.record] + fixup.offset) as u16;
            out[fixup.at..fixup.at + 2].copy_from_slice(&(0xc000 | to).to_be_bytes());
        }
    });
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hickory_proto::op::Message;
    use hickory_proto::rr::RData;

    use std::collections::HashSet;

    use super::catalog::{AgentDns, Health, NodeInfo, Soa};
    use super::*;

    fn agent() -> AgentDns {
        AgentDns {
            datacenter: "dc1".into(),
            domain: "consul.".into(),
            alt_domain: None,
            only_passing: false,
            service_ttl: Vec::new(),
            node_ttl: 0,
            a_record_limit: 0,
            node_meta_txt: true,
            soa: Soa {
                refresh: 3600,
                retry: 600,
                expire: 86400,
                minttl: 0,
            },
        }
    }

    fn instance(i: u8, own_address: bool) -> Instance {
        Instance {
            node: Arc::new(NodeInfo {
                name: format!("Node-{i}"),
                datacenter: "dc1".into(),
                address: format!("10.0.0.{i}"),
                lan_ipv4: None,
                lan_ipv6: None,
                meta: BTreeMap::from([("rack".to_string(), format!("r{i}"))]),
            }),
            address: own_address.then(|| format!("10.0.1.{i}")),
            port: 8000 + u16::from(i),
            tags: Vec::new(),
            weights: (1, 1),
            health: Health::Passing,
        }
    }

    const WEB_SRV: &[u8] = b"\x03web\x07service\x06consul\x00";

    /// RFC 1035 §4.1.4: compression points at a prior occurrence of a name.
    /// The additional records of an SRV answer point into the SRV targets,
    /// as Consul's do; after any shuffle every pointer still lands on the
    /// target its record belongs to.
    #[test]
    fn shuffled_srv_answers_keep_their_pointers_right() {
        let instances: Vec<Instance> = (1..=10).map(|i| instance(i, i % 3 == 0)).collect();
        let chosen: Vec<&Instance> = instances.iter().collect();
        let asked = Asked {
            lower: WEB_SRV,
            qtype: wire::TYPE_SRV,
            domain: "consul.",
        };
        let reply = render::service(&agent(), asked, "web", &chosen).unwrap();
        let policy = TtlPolicy {
            min: 0,
            max: 86_400,
            max_negative: 3_600,
        };
        let memo = Memo::made(&reply, asked, policy, Instant::now(), 0, None).unwrap();
        assert!(
            !memo.fixups.is_empty(),
            "the additional owners point into the answers"
        );
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03WEB\x07service\x06consul\x00\x00\x21\x00\x01");
        let query = Query::parse(&q).unwrap();
        let mut orders = HashSet::new();
        for _ in 0..50 {
            let mut out = Vec::new();
            memo.write(&query, 65_535, &mut out);
            let msg = Message::from_vec(&out).unwrap();
            assert_eq!(msg.answers.len(), 10);
            assert_eq!(
                msg.additionals.len(),
                20,
                "an address and a TXT per instance"
            );
            let targets: Vec<String> = msg
                .answers
                .iter()
                .map(|r| match &r.data {
                    RData::SRV(srv) => srv.target.to_ascii(),
                    other => panic!("not an SRV: {other:?}"),
                })
                .collect();
            for extra in &msg.additionals {
                let owner = extra.name.to_ascii();
                match &extra.data {
                    RData::A(_) => assert!(targets.contains(&owner), "{owner}"),
                    RData::TXT(_) => assert!(owner.starts_with("Node-"), "{owner}"),
                    other => panic!("unexpected {other:?}"),
                }
            }
            orders.insert(targets);
        }
        assert!(orders.len() > 1, "the order changes between queries");
        // Compressed as a server would: far below the 1,300 bytes of the
        // same answer written out in full.
        let mut out = Vec::new();
        memo.write(&query, 65_535, &mut out);
        assert!(out.len() < 900, "{} bytes", out.len());
    }
}
