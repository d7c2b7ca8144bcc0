//! One query, top to bottom: admit (access list, rate limit), route, answer
//! locally (local rules, ANY), from the Consul mirror or from the cache, else
//! fetch upstream (one fetch
//! per key at a time), screen it for rebinding, store, and shape the response
//! for the client. When the fetch fails or is slow and an expired answer is at
//! hand, the client gets that, stale (RFC 8767); a hit near the end of its
//! entry's life may start a prefetch.
//!
//! The path is a [`Handler`], which holds the [`Shared`] state, and is split
//! where it may have to wait: [`Handler::answer_now`] does everything that
//! needs no I/O and runs inline in the listener loop, so cache hits cost no
//! task. On a UDP thread a miss goes on in [`Handler::start_miss`], still
//! inline, as far as it gets without waiting: a plain fetch's query is sent
//! from the thread's table and its reply comes back to
//! [`Handler::answer_asked`]; what has to wait longer goes on as a task in
//! [`Handler::finish_miss`], as a TCP query's miss does from the start
//! ([`Handler::answer_miss`]). All of them end in [`Handler::answered`], which
//! counts the query and writes its log line.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dns::answer::{Answer, Security, TtlPolicy};
use crate::dns::minimal;
use crate::dns::question::Question;
use crate::dns::unsigned;
use crate::dns::wire::{self, Protocol, Query, Reject};
use crate::host::local_data::{Home, LocalData};
use crate::observe::failure::Failure;
use crate::observe::metrics::Dropped;
use crate::observe::querylog::{self, AnsweredBy};
use crate::resolve::cache::{CacheKey, Cached, Flight, Follower, Leader, Served, Shareable};
use crate::resolve::consul::Mirrored;
use crate::resolve::dnssec::{self, Validator, Verdict};
use crate::resolve::loops;
use crate::resolve::rebind;
use crate::resolve::router::{Action, Route, RouteId, Router};
use crate::resolve::srv;
use crate::resolve::upstream::{NameServer, Plan, Upstream, UpstreamError};
use crate::serve::chaos;
use crate::serve::local;
use crate::state::{MissGuard, Shared, State};

/// Who asked, over what, and when: what the accounting at the end needs.
#[derive(Clone, Copy)]
struct Arrival {
    client: IpAddr,
    protocol: Protocol,
    at: Instant,
}

/// The outcome of the synchronous part of a query.
#[allow(clippy::large_enum_variant)] // a miss moves once, and a box would be an allocation per miss
pub(crate) enum Step {
    /// The response is in `out`: send it.
    Respond,
    /// Send nothing (not a query, or not worth an answer).
    Drop,
    /// Needs an upstream: run [`Handler::answer_miss`], or on a UDP thread
    /// [`Handler::start_miss`].
    Miss(Miss),
}

/// A question on its way to an answer, with what is worked out once for it:
/// its cache key and its route (in the router of the state it is resolved under).
#[derive(Clone, Copy)]
struct RoutedQuestion {
    question: Question,
    key: CacheKey,
    route: RouteId,
}

impl RoutedQuestion {
    fn new(router: &Router, question: Question) -> Self {
        Self {
            key: CacheKey::of_question(&question),
            route: router.route_id(question.lower.as_bytes(), question.qtype),
            question,
        }
    }
}

/// A query that has to wait for an upstream. Its question and cache key are
/// read from its query when they are needed, rather than kept twice: a miss
/// is moved a few times on its way, and every byte of it is copied each time.
pub(crate) struct Miss {
    query: Query,
    route: RouteId,
    /// The cache holds an expired answer it may serve stale (RFC 8767).
    stale: bool,
    client: IpAddr,
    state: Arc<State>,
    limit: usize,
    arrival: Arrival,
    _counted: MissGuard,
}

impl Miss {
    fn routed(&self) -> RoutedQuestion {
        RoutedQuestion {
            question: Question::from(&self.query),
            key: CacheKey::of(&self.query),
            route: self.route,
        }
    }
}

/// TCP responses are limited only by the 16-bit length prefix.
pub(crate) const TCP_LIMIT: usize = 65_535;
/// With a stale answer at hand, the longest a client waits for a fresh one
/// (RFC 8767 §5, the client response timer).
pub(crate) const CLIENT_RESPONSE_TIMER: Duration = Duration::from_millis(1800);
/// The TTL of stale records in a response (RFC 8767 §4 recommends 30 s).
pub(crate) const STALE_TTL: u32 = 30;

/// One query's way from packet to response, over the state every listener
/// shares. Each listener task holds one; a clone is one more reference to
/// the same [`Shared`].
#[derive(Clone)]
pub(crate) struct Handler {
    shared: Arc<Shared>,
}

impl Handler {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The state this handler works on, for the listeners' own counters.
    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Answers `packet` if that needs no waiting: bad input, refused clients,
    /// local rules and cache hits. Everything else comes back as a [`Step::Miss`].
    pub(crate) fn answer_now(
        &self,
        packet: &[u8],
        client: IpAddr,
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> Step {
        let state = self.shared.state();
        let arrival = Arrival {
            client: client.to_canonical(),
            protocol,
            at: Instant::now(),
        };
        let allowed = state.allow.iter().any(|net| net.contains(&arrival.client));
        let query = match Query::parse(packet) {
            Ok(query) => query,
            Err(reject) => return self.reject(packet, reject, allowed, protocol, out),
        };
        // Answers made here without a route: refusals, errors, CHAOS.
        let answered_here =
            |rcode: u16| self.answered(&state, &query, arrival, None, AnsweredBy::Local, rcode);
        if !allowed || !self.shared.admit(arrival.client, arrival.at) {
            query.write_error(wire::RCODE_REFUSED.into(), out);
            return answered_here(rcode_of(out));
        }
        if query.edns.is_some_and(|e| e.version > 0) {
            query.write_error(wire::EXT_RCODE_BADVERS, out);
            return answered_here(wire::EXT_RCODE_BADVERS);
        }
        let limit = match protocol {
            Protocol::Udp => query.udp_limit(),
            Protocol::Tcp => TCP_LIMIT,
        };
        if chaos::answer(&self.shared, &state, &query, limit, out) {
            return answered_here(rcode_of(out));
        }
        if let Some(rcode) = query.unserved() {
            query.write_error(rcode.into(), out);
            return answered_here(rcode.into());
        }
        let route_id = state.router.route_id(query.lower.as_bytes(), query.qtype);
        let route = state.router.get(route_id);
        let local = state.local.load();
        let at = LocalAnswer {
            state: &state,
            data: &local,
            query: &query,
            route: route_id,
        };
        if let Some(by) =
            answer_local_data(at, limit, out).or_else(|| answer_locally(at, limit, out))
        {
            return self.answered(&state, &query, arrival, Some(route), by, rcode_of(out));
        }
        if let Some(by) = self.answer_mirrored(&query, route, arrival.at, limit, out) {
            return self.answered(&state, &query, arrival, Some(route), by, rcode_of(out));
        }
        if query.qtype == wire::TYPE_ANY {
            // RFC 8482: never forwarded, so never amplified.
            local::rfc8482(&query, limit, out);
            route.metrics.local.inc();
            return self.answered(
                &state,
                &query,
                arrival,
                Some(route),
                AnsweredBy::Local,
                rcode_of(out),
            );
        }
        let key = CacheKey::of(&query);
        let served = self
            .shared
            .cache()
            .serve(&key, &query, arrival.at, limit, out);
        let routed = |query: &Query| RoutedQuestion {
            question: Question::from(query),
            key,
            route: route_id,
        };
        if let Served::Hit | Served::HitRefresh = served {
            if served == Served::HitRefresh {
                self.prefetch(&state, routed(&query));
            }
            route.metrics.hits.inc();
            return self.answered(
                &state,
                &query,
                arrival,
                Some(route),
                AnsweredBy::Cache,
                rcode_of(out),
            );
        }
        route.metrics.misses.inc();
        Step::Miss(Miss {
            route: route_id,
            stale: served == Served::Stale,
            query,
            client,
            state: arc_swap::Guard::into_inner(state),
            limit,
            arrival,
            _counted: self.shared.miss_started(),
        })
    }

    /// The Consul mirror's answer, for a query of the route it serves; `None`
    /// when there is no mirror, or it leaves the query to the route's servers.
    fn answer_mirrored(
        &self,
        query: &Query,
        route: &Route,
        now: Instant,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Option<AnsweredBy> {
        let mirror = self.shared.mirror()?;
        match mirror.answer(query, &route.zones, route.ttl, now, limit, out)? {
            Mirrored::Fresh => Some(AnsweredBy::Mirror),
            Mirrored::Stale => Some(AnsweredBy::MirrorStale),
            Mirrored::Forward => None,
        }
    }

    /// Refreshes a hot entry before it expires, in the background.
    fn prefetch(&self, state: &Arc<State>, routed: RoutedQuestion) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(self.clone().fetch(Arc::clone(state), routed));
    }

    /// A packet that is not a query we answer normally: dropped, or answered
    /// with the RCODE it earned; strangers learn nothing from us but REFUSED.
    fn reject(
        &self,
        packet: &[u8],
        reject: Reject,
        allowed: bool,
        protocol: Protocol,
        out: &mut Vec<u8>,
    ) -> Step {
        match reject {
            Reject::Drop => {
                self.shared
                    .metrics()
                    .dropped(if packet.len() < wire::HEADER_LEN {
                        Dropped::TooShort
                    } else {
                        Dropped::NotAQuery
                    });
                return Step::Drop;
            }
            Reject::Respond { .. } if !allowed => {
                *out = wire::error_reply(packet, wire::RCODE_REFUSED, None, None);
            }
            Reject::Respond {
                rcode,
                question_end,
                edns,
            } => {
                *out = wire::error_reply(packet, rcode, question_end, edns);
            }
        }
        self.shared
            .metrics()
            .queries
            .count(protocol, 0, rcode_of(out));
        Step::Respond
    }

    /// Counts an answered query and writes its log line when the log is on.
    fn answered(
        &self,
        state: &State,
        query: &Query,
        arrival: Arrival,
        route: Option<&Route>,
        by: AnsweredBy,
        rcode: u16,
    ) -> Step {
        self.shared
            .metrics()
            .queries
            .count(arrival.protocol, query.qtype, rcode);
        if state.log_queries {
            let zone = route.map(|r| &r.zone);
            querylog::log(arrival.client, query, zone, by, rcode, arrival.at);
        }
        Step::Respond
    }

    /// Fetches the answer for a miss and writes the client's response.
    pub(crate) async fn answer_miss(&self, miss: Miss) -> Vec<u8> {
        self.finish_miss(miss, Stage::Start).await
    }

    /// On a UDP thread: takes a miss as far as it goes without waiting (the
    /// cache was asked a moment ago, in [`Handler::answer_now`]). A
    /// plain fetch comes back as [`Started::Ask`], its query for the thread's
    /// table to send; what else has to wait (for a fetch under way, a stale
    /// answer's timer, DNSSEC, parallel or encrypted servers) comes back as
    /// [`Started::Wait`], for a task.
    pub(crate) fn start_miss(&self, miss: Miss, out: &mut Vec<u8>) -> Started {
        if loops::came_back(&miss.state.router, &miss.query, miss.client) {
            self.respond(&miss, None, AnsweredBy::Local, out);
            return Started::Respond;
        }
        if miss.stale {
            // The fetch races the client response timer, as a task.
            return Started::Wait(miss, Stage::Start);
        }
        let (fetch, plan) = match self.lead(&miss.state, miss.routed()) {
            Lead::Done => {
                self.respond(&miss, None, AnsweredBy::None, out);
                return Started::Respond;
            }
            Lead::Follow(follower) => return Started::Wait(miss, Stage::Follow(follower)),
            Lead::Fetch(fetch, plan) => (fetch, plan),
        };
        match fetch
            .upstream
            .next_over_udp(&plan)
            .filter(|_| !fetch.validating)
        {
            Some(server) => Started::Ask(TableMiss { miss, fetch, plan }, server),
            None => Started::Wait(miss, Stage::Ask(fetch, plan)),
        }
    }

    /// A usable reply to a query of [`Started::Ask`], read by the UDP thread's
    /// table from `server` at `received`: the answer is stored and handed to
    /// the followers, and the client's response written into `out`. An SRV
    /// answer whose targets have to be looked up comes back with the rest,
    /// for a task.
    pub(crate) fn answer_asked(
        &self,
        asked: TableMiss,
        reply: &mut [u8],
        (server, received): (SocketAddr, Instant),
        out: &mut Vec<u8>,
    ) -> Option<(Miss, Stage)> {
        let TableMiss { miss, fetch, .. } = asked;
        let security = self.unvalidated(&fetch, reply);
        let Some(answer) = self.shape(&fetch, reply, security, received) else {
            self.respond(&miss, None, AnsweredBy::None, out);
            return None;
        };
        if fetch.question.qtype == wire::TYPE_SRV && answer.rcode() == wire::RCODE_NOERROR {
            match srv::begin(&self.srv_context(&fetch.state), Arc::new(answer)) {
                srv::Completion::Done(done) => {
                    self.store(fetch, &done, received);
                    self.respond(&miss, Some(&done), AnsweredBy::Server(server), out);
                }
                srv::Completion::Missing(missing) => {
                    return Some((miss, Stage::Complete(fetch, missing, server)));
                }
            }
            return None;
        }
        self.store(fetch, &answer, received);
        self.respond(&miss, Some(&answer), AnsweredBy::Server(server), out);
        None
    }

    /// Where SRV completion stores what it finds, for a fetch under `state`.
    fn srv_context<'a>(&'a self, state: &'a State) -> srv::Context<'a> {
        srv::Context {
            router: &state.router,
            cache: self.shared.cache(),
            epoch: state.epoch,
            validator: state.dnssec.as_deref(),
        }
    }

    /// The rest of a miss, from `stage`, as a task; returns the client's response.
    pub(crate) async fn finish_miss(&self, miss: Miss, stage: Stage) -> Vec<u8> {
        let (answer, by) = match stage {
            Stage::Start if loops::came_back(&miss.state.router, &miss.query, miss.client) => {
                (None, AnsweredBy::Local)
            }
            Stage::Start => {
                self.clone()
                    .resolve_traced(Arc::clone(&miss.state), miss.routed())
                    .await
            }
            Stage::Follow(follower) => (follower.answer().await, AnsweredBy::Coalesced),
            Stage::Ask(fetch, plan) => {
                let reply = fetch.upstream.ask_planned(&fetch.ask(), plan).await;
                self.fetched(fetch, reply).await
            }
            Stage::Complete(fetch, missing, server) => {
                let state = Arc::clone(&fetch.state);
                let lookup = |question| resolve_boxed(self.clone(), Arc::clone(&state), question);
                let cx = self.srv_context(&state);
                let budget = fetch.upstream.timeout();
                let answer = srv::finish(&cx, &lookup, missing, budget).await;
                self.store(fetch, &answer, Instant::now());
                (Some(answer), AnsweredBy::Server(server))
            }
            Stage::Truncated(fetch, plan, server) => {
                let reply = fetch
                    .upstream
                    .ask_after_truncation(&fetch.ask(), &server, plan)
                    .await;
                self.fetched(fetch, reply).await
            }
        };
        let mut out = Vec::new();
        self.respond(&miss, answer.as_deref(), by, &mut out);
        out
    }

    /// Writes the client's response to a miss into `out`, and accounts for it.
    fn respond(&self, miss: &Miss, answer: Option<&Answer>, by: AnsweredBy, out: &mut Vec<u8>) {
        let query = &miss.query;
        match answer {
            Some(answer) => answer.write_response(query, Instant::now(), miss.limit, out),
            None => query.write_error(wire::RCODE_SERVFAIL.into(), out),
        }
        let route = miss.state.router.get(miss.route);
        // The query was counted as a miss when it left for the upstream; a stale
        // answer is counted once more, as stale, so an operator sees how much of
        // the route's traffic lives on expired data.
        if by == AnsweredBy::Stale {
            route.metrics.stale.inc();
        }
        self.answered(
            &miss.state,
            query,
            miss.arrival,
            Some(route),
            by,
            rcode_of(out),
        );
    }

    /// The answer to `question` through its route: from the cache, from a fetch
    /// already in flight, or from a new fetch; when that fails or is slow and
    /// an expired answer is at hand, that one, stale (RFC 8767). `None` when
    /// the upstreams failed and there is nothing stale to give.
    pub(crate) async fn resolve(
        self,
        state: Arc<State>,
        question: Question,
    ) -> Option<Arc<Answer>> {
        let routed = RoutedQuestion::new(&state.router, question);
        self.resolve_traced(state, routed).await.0
    }

    /// [`Handler::resolve`], also telling where the answer came from.
    async fn resolve_traced(
        self,
        state: Arc<State>,
        routed: RoutedQuestion,
    ) -> (Option<Arc<Answer>>, AnsweredBy) {
        let stale = match self.shared.cache().lookup(&routed.key, Instant::now()) {
            Some(Cached::Fresh(answer)) => return (Some(Arc::new(answer)), AnsweredBy::Cache),
            Some(Cached::Stale(stale)) => stale,
            None => return self.fetch(state, routed).await,
        };
        // The fetch runs on its own, so it still refreshes the cache when the
        // client has been given the stale answer.
        let fetch = tokio::spawn(self.clone().fetch(state, routed));
        if let Ok(Ok((Some(answer), by))) = tokio::time::timeout(CLIENT_RESPONSE_TIMER, fetch).await
        {
            return (Some(answer), by);
        }
        tracing::info!(name = %routed.question.lower, "serving a stale answer: the upstreams failed or are slow");
        let stale = stale.to_stale(Instant::now(), STALE_TTL);
        (Some(Arc::new(stale)), AnsweredBy::Stale)
    }

    /// Asks the route's upstreams (one fetch per key at a time), stores the
    /// answer and hands it to every query that waited on it.
    async fn fetch(
        self,
        state: Arc<State>,
        routed: RoutedQuestion,
    ) -> (Option<Arc<Answer>>, AnsweredBy) {
        match self.lead(&state, routed) {
            Lead::Done => (None, AnsweredBy::None),
            Lead::Follow(follower) => (follower.answer().await, AnsweredBy::Coalesced),
            Lead::Fetch(fetch, plan) => {
                let reply = fetch.upstream.ask_planned(&fetch.ask(), plan).await;
                self.fetched(fetch, reply).await
            }
        }
    }

    /// A fetch's beginning, which needs no waiting: where the question goes,
    /// whether a fetch of it is under way already, how it is asked (validated
    /// answers are asked with DO and CD: the upstream hands over its
    /// signatures, and the checking is ours, RFC 4035 §3.2.2), and the order
    /// of the route's servers.
    fn lead(&self, state: &Arc<State>, routed: RoutedQuestion) -> Lead {
        let question = routed.question;
        let route = state.router.get(routed.route);
        let Some(target) = state.router.effective_route(route, &question.lower) else {
            return Lead::Done;
        };
        let Action::Forward(upstream) = target.action else {
            return Lead::Done;
        };
        let leader = match self.shared.flights().join(&routed.key, state.epoch) {
            Flight::Follower(follower) => return Lead::Follow(follower),
            Flight::Leader(leader) => leader,
        };
        let validating = state.dnssec.as_deref().is_some_and(|v| {
            !question.checking_disabled && target.rewrite.is_none() && v.covers(route, &question)
        });
        let fetch = Fetch {
            state: Arc::clone(state),
            question,
            route: routed.route,
            leader,
            upstream: Arc::clone(upstream),
            ttl: target.ttl,
            validating,
        };
        let plan = match upstream.plan(&fetch.ask()) {
            Ok(plan) => plan,
            Err(error) => {
                tracing::warn!(name = %question.lower, zone = %route.zone, %error, "no answer from upstream");
                return Lead::Done;
            }
        };
        Lead::Fetch(fetch, plan)
    }

    /// What a fetch makes of its upstreams' reply: validated or passed on,
    /// shaped for the cache, its SRV targets completed, stored and handed
    /// to the queries that waited on it.
    async fn fetched(
        &self,
        fetch: Fetch,
        reply: Result<(Vec<u8>, SocketAddr), UpstreamError>,
    ) -> (Option<Arc<Answer>>, AnsweredBy) {
        let question = fetch.question;
        let (mut reply, server) = match reply {
            Ok(reply) => reply,
            Err(error) => {
                let zone = &fetch.state.router.get(fetch.route).zone;
                tracing::warn!(name = %question.lower, %zone, %error, "no answer from upstream");
                return (None, AnsweredBy::None);
            }
        };
        let security = if fetch.validating {
            match self.validate(&fetch, reply).await {
                Checked::Reply(validated, security) => {
                    reply = validated;
                    security
                }
                Checked::Failed => return (None, AnsweredBy::None),
                Checked::Bogus(bogus) => {
                    let answer = Arc::new(bogus);
                    self.store(fetch, &answer, Instant::now());
                    return (Some(answer), AnsweredBy::Server(server));
                }
            }
        } else {
            self.unvalidated(&fetch, &mut reply)
        };
        let received = Instant::now();
        let Some(answer) = self.shape(&fetch, &reply, security, received) else {
            return (None, AnsweredBy::None);
        };
        let mut answer = Arc::new(answer);
        if question.qtype == wire::TYPE_SRV && answer.rcode() == wire::RCODE_NOERROR {
            let state = &fetch.state;
            let lookup = |question| resolve_boxed(self.clone(), Arc::clone(state), question);
            let cx = self.srv_context(state);
            answer = srv::complete(cx, &lookup, answer, fetch.upstream.timeout()).await;
        }
        self.store(fetch, &answer, received);
        (Some(answer), AnsweredBy::Server(server))
    }

    /// A reply that is not validated: with validation on, passed on
    /// insecure, without the upstream's AD, which is not ours to vouch for.
    fn unvalidated(&self, fetch: &Fetch, reply: &mut [u8]) -> Security {
        if fetch.state.dnssec.is_none() || fetch.question.checking_disabled {
            return Security::Unchecked;
        }
        wire::set_authentic(reply, false);
        self.shared.metrics().dnssec().insecure.inc();
        Security::Insecure
    }

    /// The reply as it is kept: translated back through the route's rewrite,
    /// screened for rebinding, and read into an [`Answer`] with its DNSSEC
    /// state, as received at `received`. `None` when it cannot be used.
    fn shape(
        &self,
        fetch: &Fetch,
        reply: &[u8],
        security: Security,
        received: Instant,
    ) -> Option<Answer> {
        let state = &fetch.state;
        let lower = fetch.question.lower;
        let route = state.router.get(fetch.route);
        let mut reply = Cow::Borrowed(reply);
        if route.rewrite.is_some() {
            let target = state.router.effective_route(route, &lower)?;
            if let Some(rewrite) = &target.rewrite {
                reply = Cow::Owned(rewrite.back(&reply, lower.as_bytes())?);
            }
        }
        if state
            .rebind
            .guards(&state.router, &fetch.upstream, lower.as_bytes())
        {
            reply = rebind::screen(reply, &lower)?;
        }
        let mut answer = Answer::from_reply(&reply, lower.as_bytes(), fetch.ttl, received).ok()?;
        answer.set_security(security);
        Some(answer)
    }

    /// Keeps a fetch's answer (not when a reload changed the routes while it
    /// was fetched) and hands it to the queries that waited on it.
    fn store(&self, fetch: Fetch, answer: &impl Shareable, received: Instant) {
        let key = CacheKey::of_question(&fetch.question);
        let Fetch { leader, state, .. } = fetch;
        self.shared
            .cache()
            .insert_fetched(&key, answer.borrow(), received, state.epoch);
        leader.finish(answer);
    }
}

/// Where [`Handler::start_miss`] leaves a miss.
#[allow(clippy::large_enum_variant)] // moved once, where a box would be an allocation per miss
pub(crate) enum Started {
    /// Answered: the response is in `out`.
    Respond,
    /// Its query goes to this server, from the UDP thread's table; the
    /// reply goes to [`Handler::answer_asked`].
    Ask(TableMiss, Arc<NameServer>),
    /// The rest has to wait: [`Handler::finish_miss`], as a task.
    Wait(Miss, Stage),
}

/// Where [`Handler::finish_miss`] takes a miss up.
#[allow(clippy::large_enum_variant)] // moved once, where a box would be an allocation per miss
pub(crate) enum Stage {
    /// From the cache on, as a TCP query goes.
    Start,
    /// A fetch of the same question is under way: its answer.
    Follow(Follower),
    /// Asking the servers of the plan not yet tried.
    Ask(Fetch, Plan),
    /// The server asked last truncated its reply: ask it over TCP, then the
    /// servers of the plan not yet tried.
    Truncated(Fetch, Plan, Arc<NameServer>),
    /// `server` answered an SRV question whose targets have to be looked up.
    Complete(Fetch, srv::Missing, SocketAddr),
}

/// A miss whose query a UDP thread's table has sent, with its fetch and the
/// plan of its route's servers.
pub(crate) struct TableMiss {
    pub(crate) miss: Miss,
    pub(crate) fetch: Fetch,
    pub(crate) plan: Plan,
}

impl TableMiss {
    /// The question as it went upstream.
    pub(crate) fn ask(&self) -> Question {
        self.fetch.ask()
    }

    /// How long each of its route's servers gets.
    pub(crate) fn timeout(&self) -> Duration {
        self.fetch.upstream.timeout()
    }

    /// The server it was sent to failed so: what is left of the plan, as a task.
    pub(crate) fn failed(self, failure: Failure) -> (Miss, Stage) {
        let Self {
            miss,
            fetch,
            mut plan,
        } = self;
        plan.failed(failure);
        (miss, Stage::Ask(fetch, plan))
    }

    /// The server it was sent to truncated its reply: TCP to it, as a task.
    pub(crate) fn truncated(self, server: Arc<NameServer>) -> (Miss, Stage) {
        let Self {
            miss,
            fetch,
            mut plan,
        } = self;
        plan.asked();
        (miss, Stage::Truncated(fetch, plan, server))
    }

    /// The table could not send it: the whole plan, as a task.
    pub(crate) fn unsent(self) -> (Miss, Stage) {
        (self.miss, Stage::Ask(self.fetch, self.plan))
    }
}

/// How a fetch begins.
#[allow(clippy::large_enum_variant)] // moved once, where a box would be an allocation per miss
enum Lead {
    /// No upstream to ask (a local route after a rewrite, a busy route, no
    /// servers): SERVFAIL.
    Done,
    Follow(Follower),
    Fetch(Fetch, Plan),
}

/// One fetch, led by one miss: what its reply is made into an answer with.
pub(crate) struct Fetch {
    state: Arc<State>,
    /// The client's question (its key is the leader's).
    question: Question,
    route: RouteId,
    leader: Leader,
    upstream: Arc<Upstream>,
    ttl: TtlPolicy,
    validating: bool,
}

impl Fetch {
    /// The question as it is sent upstream: rewritten, with DO and CD when
    /// it is validated. Worked out when it is needed rather than kept: a
    /// fetch is moved a few times on its way.
    fn ask(&self) -> Question {
        let question = self.question;
        let router = &self.state.router;
        let route = router.get(self.route);
        let lower = if route.rewrite.is_some() {
            router
                .effective_route(route, &question.lower)
                .map_or(question.lower, |target| target.ask)
        } else {
            question.lower
        };
        Question {
            lower,
            dnssec_ok: question.dnssec_ok || self.validating,
            checking_disabled: question.checking_disabled || self.validating,
            ..question
        }
    }
}

/// What DNSSEC made of an upstream's reply.
enum Checked {
    /// The reply as the client gets it, and its state.
    Reply(Vec<u8>, Security),
    /// Bogus: this SERVFAIL instead.
    Bogus(Answer),
    /// No verdict: the reply could not be read, or an upstream failed a
    /// question of its chain. SERVFAIL, or a stale answer, as when the
    /// upstreams fail.
    Failed,
}

impl Handler {
    /// Validates `reply`, the answer to the fetch's question as sent upstream.
    async fn validate(&self, fetch: &Fetch, reply: Vec<u8>) -> Checked {
        let validator = fetch
            .state
            .dnssec
            .as_deref()
            .expect("a validating fetch has a validator");
        let reply = minimal::minimal(reply);
        match validator.validate(&fetch.ask(), reply.clone()).await {
            Some(verdict) => self.validated(validator, &fetch.question, verdict, reply),
            None => Checked::Failed,
        }
    }

    /// A validated reply as the client gets it: AD set only when secure,
    /// DNSSEC records only for a client that set DO (RFC 4035 §3.2.1), the
    /// verdict counted; bogus, the SERVFAIL with its Extended DNS Error (RFC
    /// 8914) to give instead, kept for [`dnssec::BOGUS_TTL`]. `question` is
    /// the client's, with its own DO bit.
    fn validated(
        &self,
        validator: &Validator,
        question: &Question,
        verdict: Verdict,
        mut reply: Vec<u8>,
    ) -> Checked {
        let metrics = self.shared.metrics().dnssec();
        let security = match verdict {
            Verdict::Secure => {
                metrics.secure.inc();
                Security::Secure
            }
            Verdict::Insecure => {
                metrics.insecure.inc();
                Security::Insecure
            }
            Verdict::Indeterminate => {
                metrics.indeterminate.inc();
                Security::Indeterminate
            }
            Verdict::Bogus(reason) => {
                metrics.bogus(reason);
                validator.warn_bogus(question, reason);
                let lower = question.lower.as_bytes();
                let mut asked = Vec::with_capacity(lower.len() + 4);
                asked.extend_from_slice(lower);
                asked.extend_from_slice(&question.qtype.to_be_bytes());
                asked.extend_from_slice(&question.qclass.to_be_bytes());
                let code = dnssec::ede_code(reason);
                let now = Instant::now();
                return Checked::Bogus(Answer::bogus(&asked, code, dnssec::BOGUS_TTL, now));
            }
        };
        wire::set_authentic(&mut reply, security == Security::Secure);
        if !question.dnssec_ok {
            reply = unsigned::strip(reply, question.qtype).unwrap_or_default();
        }
        Checked::Reply(reply, security)
    }
}

/// What a local answer to one query works from: the state, its local data
/// (loaded once per query), and the query's route.
#[derive(Clone, Copy)]
struct LocalAnswer<'a> {
    state: &'a State,
    data: &'a LocalData,
    query: &'a Query,
    route: RouteId,
}

impl LocalAnswer<'_> {
    /// The route of `lower`, a name of this query's answer: the query's own
    /// for its name, worked out once; a CNAME's target is routed here.
    fn route_of(&self, lower: &[u8]) -> RouteId {
        if lower == self.query.lower.as_bytes() {
            self.route
        } else {
            self.state.router.route_id(lower, self.query.qtype)
        }
    }

    /// The SOA of the zone `zone` bytes into a name, with `[local] ttl`.
    fn soa(&self, zone: usize) -> local::Soa {
        local::Soa {
            zone,
            ttl: self.data.ttl(),
        }
    }

    /// Where `lower`, routed by `id`, lies among the zones splitdns answers
    /// wholly, as its offset in the name: its local zone (`local=/lan/` for
    /// `web.lan`), or the zone a `[local]` switch keeps it home in (the RFC
    /// 6303 zone under bogus_priv, the root for a single label under
    /// domain_needed). `None`: it lies in none.
    fn zone_of(&self, lower: &[u8], id: RouteId) -> Option<usize> {
        let route = self.state.router.get(id);
        if route.is_default() {
            return match self.data.home_zone(lower)? {
                Home::Zone(zone) => Some(zone),
                // A single label lies in the root zone, the only zone that
                // could hold it.
                Home::Label => Some(lower.len() - 1),
            };
        }
        matches!(route.action, Action::Local).then(|| route.zone_in(lower))
    }

    /// What `lower`, routed by `id`, gets without records of its own, when a
    /// zone splitdns answers wholly holds it, with no `address=` lines there.
    fn negative(&self, lower: &[u8], id: RouteId) -> Option<local::Negative> {
        if !self.state.router.get(id).addresses.is_empty() {
            return None;
        }
        let zone = self.zone_of(lower, id)?;
        Some(self.negative_in(lower, id, zone))
    }

    /// NXDOMAIN or NODATA for `lower` in the zone `zone` bytes into it. A
    /// name kept here that exists all the same (RFC 8020 §2: NXDOMAIN says
    /// nothing is at or below it) gets NODATA, with the SOA of its zone; the
    /// SOA comes with NXDOMAIN too, so that it may be cached (RFC 2308 §3,
    /// §5). The zone's apex (0) owns the zone's SOA, so it exists (RFC 6303
    /// §3: SOA, NS and NODATA "for queries for the zone name itself";
    /// Unbound answers its RFC 6303 zones so, dnsmasq 2.90 says NXDOMAIN).
    fn negative_in(&self, lower: &[u8], id: RouteId, zone: usize) -> local::Negative {
        let exists = zone == 0 || self.data.has_below(lower) || self.state.router.holds(lower, id);
        if exists {
            local::Negative::NoData(self.soa(zone))
        } else {
            local::Negative::NxDomain(self.soa(zone))
        }
    }
}

impl local::Zones for LocalAnswer<'_> {
    /// The zone that holds a name with local data; outside every zone
    /// splitdns answers wholly, the root, the only zone known to hold it. A
    /// SOA owned by the name would make every hosts name a zone's apex (RFC
    /// 1035 §3.3.13), a zone cut to whatever finds zones by their SOA.
    fn soa(&self, lower: &[u8]) -> local::Soa {
        let zone = self.zone_of(lower, self.route_of(lower));
        self.soa(zone.unwrap_or(lower.len() - 1))
    }

    fn missing(&self, lower: &[u8]) -> Option<local::Negative> {
        self.negative(lower, self.route_of(lower))
    }
}

/// Local data (hosts files, records) for the name, ahead of what its route
/// would do; counted as a local answer of that route.
fn answer_local_data(at: LocalAnswer<'_>, limit: usize, out: &mut Vec<u8>) -> Option<AnsweredBy> {
    let records = at.data.lookup(at.query.lower.as_bytes())?;
    local::data(at.query, at.data, records, &at, limit, out);
    at.state.router.get(at.route).metrics.local.inc();
    Some(AnsweredBy::Local)
}

/// Answers splitdns gives for the query's route itself, never forwarding:
/// single-label and private reverse names kept home, local zones, filtered
/// AAAA and address rules. `None`: the name goes upstream (or, for ANY, to
/// the Consul mirror or an RFC 8482 answer).
fn answer_locally(at: LocalAnswer<'_>, limit: usize, out: &mut Vec<u8>) -> Option<AnsweredBy> {
    let (state, query) = (at.state, at.query);
    let lower = query.lower.as_bytes();
    let route = state.router.get(at.route);
    let local_zone = matches!(route.action, Action::Local);
    if let Some(negative) = at.negative(lower, at.route) {
        local::negative(query, negative, limit, out);
    } else if route.filter_aaaa && query.qtype == wire::TYPE_AAAA && !local_zone {
        // A local zone answers for its names whatever the type: a missing
        // name is NXDOMAIN for AAAA as for A (RFC 8020 §2).
        local::filtered(query, limit, out);
    } else if !route.addresses.is_empty() && (route.answers_type(query.qtype) || local_zone) {
        // address= beside local=: the other types get NODATA, not NXDOMAIN
        // (dnsmasq 2.90 by hand: the name has data, of another type).
        let soa = at.soa(route.zone_in(lower));
        local::addresses(query, &route.addresses, soa, limit, out);
    } else {
        let action = match &route.action {
            Action::Reroute => state
                .router
                .effective_route(route, &query.lower)
                .map(|t| t.action),
            action => Some(action),
        };
        match action {
            Some(Action::Forward(_)) => return None,
            // A rewrite route whose rewritten name lands in a local zone.
            Some(Action::Local) => {
                let negative = at.negative_in(lower, at.route, route.zone_in(lower));
                local::negative(query, negative, limit, out);
            }
            Some(Action::Address(ips)) => {
                local::addresses(query, ips, at.soa(route.zone_in(lower)), limit, out)
            }
            // A rewrite too long to apply, or into another rewrite (config refuses those).
            None | Some(Action::Reroute) => {
                query.write_error(wire::RCODE_SERVFAIL.into(), out);
                route.metrics.local.inc();
                return Some(AnsweredBy::None);
            }
        }
    }
    route.metrics.local.inc();
    Some(AnsweredBy::Local)
}

/// [`Handler::resolve`] behind a box, for the SRV completion that calls back
/// into it (an async fn cannot contain itself).
fn resolve_boxed(handler: Handler, state: Arc<State>, question: Question) -> srv::Looked {
    Box::pin(handler.resolve(state, question))
}

/// The RCODE of a response splitdns wrote (the header's four bits).
fn rcode_of(out: &[u8]) -> u16 {
    out.get(3).map_or(0, |b| u16::from(b & 0x0f))
}
