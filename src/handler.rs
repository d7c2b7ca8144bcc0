//! One query, top to bottom: admit (access list, rate limit), route, answer
//! locally (local rules, ANY) or from the cache, else fetch upstream (one fetch
//! per key at a time), screen it for rebinding, store, and shape the response
//! for the client. When the fetch fails or is slow and an expired answer is at
//! hand, the client gets that, stale (RFC 8767); a hit near the end of its
//! entry's life may start a prefetch.
//!
//! The path is split where it may have to wait: [`Shared::answer_now`] does
//! everything that needs no I/O and runs inline in the listener loop, so cache
//! hits cost no task; [`Shared::answer_miss`] is the rest, run as its own task.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ipnet::IpNet;
use tokio::sync::Notify;

use crate::answer::Answer;
use crate::cache::{self, Cache, Flight, Flights, Served};
use crate::local;
use crate::ratelimit::RateLimit;
use crate::rebind::{self, Rebind};
use crate::router::{Action, Router};
use crate::srv;
use crate::upstream::Ask;
use crate::wire::{self, NameBuf, Query, Reject};

/// What a reload replaces as a whole: a query works on one snapshot throughout.
pub struct State {
    pub router: Router,
    pub allow: Vec<IpNet>,
    pub rebind: Rebind,
}

/// Everything the listeners share. The cache lives outside [`State`], so a
/// reload keeps it.
pub struct Shared {
    pub state: ArcSwap<State>,
    pub cache: Cache,
    flights: Flights,
    in_flight: InFlight,
    rate_limit: RateLimit,
    /// Itself, so a cache hit can start a prefetch task that outlives it.
    me: Weak<Self>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Udp,
    Tcp,
}

/// The outcome of the synchronous part of a query.
pub enum Step {
    /// The response is in `out`: send it.
    Reply,
    /// Send nothing (not a query, or not worth an answer).
    Drop,
    /// Needs an upstream: run [`Shared::answer_miss`].
    Miss(Box<Miss>),
}

/// A query that has to wait for an upstream.
pub struct Miss {
    query: Query,
    state: Arc<State>,
    limit: usize,
    _in_flight: InFlightGuard,
}

/// A question splitdns resolves, from a client or for itself (SRV targets).
#[derive(Clone, Copy)]
pub struct Question {
    pub lower: NameBuf,
    pub qtype: u16,
    pub qclass: u16,
    pub dnssec_ok: bool,
    pub checking_disabled: bool,
}

/// TCP responses are limited only by the 16-bit length prefix.
pub const TCP_LIMIT: usize = 65_535;
/// With a stale answer at hand, the longest a client waits for a fresh one
/// (RFC 8767 §5, the client response timer).
pub const CLIENT_RESPONSE_TIMER: Duration = Duration::from_millis(1800);
/// The TTL of stale records in a response (RFC 8767 §4 recommends 30 s).
pub const STALE_TTL: u32 = 30;

impl From<&Query> for Question {
    fn from(query: &Query) -> Self {
        Self {
            lower: query.lower,
            qtype: query.qtype,
            qclass: query.qclass,
            dnssec_ok: query.dnssec_ok(),
            checking_disabled: query.checking_disabled(),
        }
    }
}

impl Shared {
    pub fn new(state: State, cache: Cache, rate_limit: RateLimit) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            state: ArcSwap::from_pointee(state),
            cache,
            flights: Flights::default(),
            in_flight: InFlight::default(),
            rate_limit,
            me: me.clone(),
        })
    }

    /// Answers `packet` if that needs no waiting: bad input, refused clients,
    /// local rules and cache hits. Everything else comes back as a [`Step::Miss`].
    pub fn answer_now(
        &self,
        packet: &[u8],
        client: IpAddr,
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> Step {
        let query = match Query::parse(packet) {
            Ok(query) => query,
            Err(Reject::Drop) => return Step::Drop,
            Err(Reject::Respond {
                rcode,
                question_end,
            }) => {
                *out = wire::error_reply(packet, rcode.into(), question_end, false);
                return Step::Reply;
            }
        };
        let state = self.state.load();
        let client = client.to_canonical();
        if !state.allow.iter().any(|net| net.contains(&client)) {
            query.write_error(wire::RCODE_REFUSED.into(), out);
            return Step::Reply;
        }
        let now = Instant::now();
        if !self.rate_limit.admit(client, now) {
            query.write_error(wire::RCODE_REFUSED.into(), out);
            return Step::Reply;
        }
        if query.edns.is_some_and(|e| e.version > 0) {
            query.write_error(wire::EXT_RCODE_BADVERS, out);
            return Step::Reply;
        }
        let limit = match protocol {
            Protocol::Udp => query.udp_limit(),
            Protocol::Tcp => TCP_LIMIT,
        };
        match &state.router.route(query.lower.as_bytes()).action {
            Action::Local => local::nxdomain(&query, out),
            Action::Address(ips) => local::addresses(&query, ips, out),
            Action::Forward(_) if query.qtype == wire::TYPE_ANY => local::rfc8482(&query, out),
            Action::Forward(_) => {
                let mut key = [0; 260];
                let key = cache::key_of(&query, &mut key);
                match self.cache.serve(key, &query, now, limit, out) {
                    Served::Hit => {}
                    Served::HitRefresh => self.prefetch(&state, &query),
                    Served::Miss => {
                        return Step::Miss(Box::new(Miss {
                            query,
                            state: arc_swap::Guard::into_inner(state),
                            limit,
                            _in_flight: self.in_flight.enter(),
                        }));
                    }
                }
            }
        }
        Step::Reply
    }

    /// Refreshes a hot entry before it expires, in the background.
    fn prefetch(&self, state: &Arc<State>, query: &Query) {
        let (Some(me), Ok(runtime)) = (self.me.upgrade(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(me.fetch(Arc::clone(state), Question::from(query)));
    }

    /// Fetches the answer for a miss and writes the client's response.
    pub async fn answer_miss(self: &Arc<Self>, miss: Box<Miss>) -> Vec<u8> {
        let query = &miss.query;
        let question = Question::from(query);
        let mut out = Vec::new();
        match Arc::clone(self)
            .resolve(Arc::clone(&miss.state), question)
            .await
        {
            Some(answer) => answer.write_response(query, Instant::now(), miss.limit, &mut out),
            None => query.write_error(wire::RCODE_SERVFAIL.into(), &mut out),
        }
        out
    }

    /// The answer to `question` through its route: from the cache, from a fetch
    /// already in flight, or from a new fetch; when that fails or is slow and
    /// an expired answer is at hand, that one, stale (RFC 8767). `None` when
    /// the upstreams failed and there is nothing stale to give.
    pub async fn resolve(
        self: Arc<Self>,
        state: Arc<State>,
        question: Question,
    ) -> Option<Arc<Answer>> {
        let mut key = [0; 260];
        let key = question.key(&mut key);
        let now = Instant::now();
        if let Some(answer) = self.cache.get(key, now) {
            return Some(Arc::new(answer));
        }
        let Some(stale) = self.cache.stale(key, now) else {
            return self.fetch(state, question).await;
        };
        // The fetch runs on its own, so it still refreshes the cache when the
        // client has been given the stale answer.
        let fetch = tokio::spawn(Arc::clone(&self).fetch(state, question));
        if let Ok(Ok(Some(answer))) = tokio::time::timeout(CLIENT_RESPONSE_TIMER, fetch).await {
            return Some(answer);
        }
        tracing::info!(name = %question.lower, "serving a stale answer: the upstreams failed or are slow");
        Some(Arc::new(stale.to_stale(Instant::now(), STALE_TTL)))
    }

    /// Asks the route's upstreams (one fetch per key at a time), stores the
    /// answer and hands it to every query that waited on it.
    async fn fetch(self: Arc<Self>, state: Arc<State>, question: Question) -> Option<Arc<Answer>> {
        let route = state.router.route(question.lower.as_bytes());
        let Action::Forward(upstream) = &route.action else {
            return None;
        };
        let mut key = [0; 260];
        let key = question.key(&mut key);
        let leader = match self.flights.join(key) {
            Flight::Follower(rx) => return cache::follow(rx).await,
            Flight::Leader(leader) => leader,
        };
        let ask = Ask {
            lower: question.lower.as_bytes(),
            qtype: question.qtype,
            qclass: question.qclass,
            dnssec_ok: question.dnssec_ok,
            checking_disabled: question.checking_disabled,
        };
        let reply = match upstream.ask(ask).await {
            Ok(reply) => reply,
            Err(error) => {
                tracing::warn!(name = %question.lower, zone = %route.zone, %error, "no answer from upstream");
                return None;
            }
        };
        let reply = if state.rebind.guards(&state.router, route, ask.lower) {
            rebind::screen(reply, &question.lower)?
        } else {
            reply
        };
        let answer = Answer::from_reply(&reply, ask.lower, route.ttl, Instant::now()).ok()?;
        let mut answer = Arc::new(answer);
        if question.qtype == wire::TYPE_SRV && answer.rcode() == wire::RCODE_NOERROR {
            answer = srv::complete(&self, &state, answer, upstream.timeout()).await;
        }
        self.cache.insert(leader.key(), &answer, Instant::now());
        leader.finish(&answer);
        Some(answer)
    }

    /// Waits until no miss is in flight, or `deadline` passes.
    pub async fn drain(&self, deadline: std::time::Duration) {
        let _ = tokio::time::timeout(deadline, self.in_flight.idle()).await;
    }
}

impl Question {
    fn key<'b>(&self, buf: &'b mut [u8; 260]) -> &'b [u8] {
        cache::key_for(
            self.lower.as_bytes(),
            self.qtype,
            self.qclass,
            self.dnssec_ok,
            self.checking_disabled,
            buf,
        )
    }
}

/// [`Shared::resolve`] behind a box, for the SRV completion that calls back
/// into it (an async fn cannot contain itself).
pub fn resolve_boxed(
    shared: Arc<Shared>,
    state: Arc<State>,
    question: Question,
) -> Pin<Box<dyn Future<Output = Option<Arc<Answer>>> + Send>> {
    Box::pin(shared.resolve(state, question))
}

impl Query {
    /// A response with only the header, the question and RCODE (and OPT if the
    /// client sent one; BADVERS puts its upper bits there).
    pub fn write_error(&self, rcode: u16, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.flags);
        out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(self.name.as_bytes());
        out.extend_from_slice(&self.qtype.to_be_bytes());
        out.extend_from_slice(&self.qclass.to_be_bytes());
        let question_end = out.len();
        let mut reply = wire::error_reply(out, rcode, Some(question_end), self.edns.is_some());
        std::mem::swap(out, &mut reply);
    }
}

/// Counts misses in flight, so shutdown can wait for them.
#[derive(Default)]
struct InFlight {
    count: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

struct InFlightGuard {
    count: Arc<AtomicUsize>,
    idle: Arc<Notify>,
}

impl InFlight {
    fn enter(&self) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        InFlightGuard {
            count: Arc::clone(&self.count),
            idle: Arc::clone(&self.idle),
        }
    }

    async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}
