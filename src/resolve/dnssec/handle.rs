//! hickory's validator asks its questions (the DNSKEY, DS and NS sets a chain
//! needs) through a `DnsHandle`: this one sends them through splitdns's own
//! routes and upstream client, with DO and CD set, so the upstream hands
//! over its signatures unvalidated and the checking is ours (RFC 4035 §3.2.2).

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::stream::{self, Stream};
use hickory_net::NetError;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::xfer::DnsHandle;
use hickory_proto::op::{DnsRequest, DnsResponse};
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::BinEncodable;

use super::keys::KeyCache;
use crate::dns::question::Question;
use crate::dns::wire::{self, NameBuf};
use crate::resolve::router::{Action, Router};

/// The replies being validated, by lowercased wire name and type: splitdns
/// has them already, so the validator's own question for one is answered
/// from here instead of asking again.
type AtHand = Mutex<HashMap<(Vec<u8>, u16), Vec<u8>>>;

/// The validator's questions, sent where the router sends their names.
/// Clones share everything.
#[derive(Clone)]
pub(super) struct RoutedHandle {
    router: Arc<Router>,
    keys: Arc<KeyCache>,
    at_hand: Arc<AtHand>,
}

/// Keeps a reply at hand while it is validated; takes it away when dropped.
pub(super) struct Held<'a> {
    at_hand: &'a AtHand,
    key: (Vec<u8>, u16),
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.at_hand.lock().expect("not poisoned").remove(&self.key);
    }
}

impl RoutedHandle {
    pub(super) fn new(router: Arc<Router>) -> Self {
        Self {
            router,
            keys: Arc::default(),
            at_hand: Arc::default(),
        }
    }

    /// The replies the chains fetched, kept for their TTL.
    pub(super) fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// Holds `reply`, the answer to `question`, at hand until the guard is
    /// dropped: the validator asking that question gets it. Two validations
    /// of one question at once (one for DO clients, one for the others) hold
    /// replies from the same upstream, either of which serves both.
    pub(super) fn hold(&self, question: &Question, reply: Vec<u8>) -> Held<'_> {
        let key = (question.lower.as_bytes().to_vec(), question.qtype);
        self.at_hand
            .lock()
            .expect("not poisoned")
            .insert(key.clone(), reply);
        Held {
            at_hand: &self.at_hand,
            key,
        }
    }

    /// The reply to `lower`/`qtype`, from the reply at hand, the key cache or
    /// the upstreams of the name's route.
    pub(super) async fn reply(&self, lower: NameBuf, qtype: u16) -> Result<Vec<u8>, NetError> {
        let key = (lower.as_bytes().to_vec(), qtype);
        if let Some(reply) = self.at_hand.lock().expect("not poisoned").get(&key) {
            return Ok(reply.clone());
        }
        let kept = KeyCache::keeps(qtype);
        if kept && let Some(reply) = self.keys.get(lower.as_bytes(), qtype, Instant::now()) {
            return Ok(reply);
        }
        let reply = self.ask(lower, qtype).await?;
        if kept {
            self.keys
                .put(lower.as_bytes(), qtype, &reply, Instant::now());
        }
        Ok(reply)
    }

    /// Asks the upstreams of the route the name is sent to. A DS set lives
    /// on the parent's side of a zone cut (RFC 4034 §5), so a DS question
    /// goes where the parent's names go.
    async fn ask(&self, lower: NameBuf, qtype: u16) -> Result<Vec<u8>, NetError> {
        let name = lower.as_bytes();
        let routed_by = match (qtype == u16::from(RecordType::DS), name.first()) {
            (true, Some(&len)) if len > 0 => &name[usize::from(len) + 1..],
            _ => name,
        };
        let route = self.router.route_for(routed_by, qtype);
        let routed = NameBuf::from_wire(routed_by).ok_or("name too long")?;
        let target = self
            .router
            .effective_route(route, &routed)
            .ok_or("no route")?;
        let Action::Forward(upstream) = target.action else {
            return Err(NetError::from(format!(
                "{} is answered locally, not validated",
                route.zone
            )));
        };
        let question = Question {
            lower,
            qtype,
            qclass: wire::CLASS_IN,
            dnssec_ok: true,
            checking_disabled: true,
        };
        match upstream.ask(&question).await {
            Ok((reply, _)) => Ok(reply),
            Err(error) => {
                // Seen by `watching`, in the validation this question is for.
                let _ = UNANSWERED.try_with(|unanswered| unanswered.set(true));
                Err(NetError::from(error.to_string()))
            }
        }
    }
}

tokio::task_local! {
    /// Set when a question of the validation running in this task got no
    /// answer from its upstreams.
    static UNANSWERED: Cell<bool>;
}

/// Runs a validation, also telling whether one of its questions got no
/// answer: hickory calls such a chain bogus, where it is an upstream's
/// failure, not proof of an attack. hickory polls its questions inside the
/// future it returns, so they run in this task.
pub(super) async fn watching<F: Future>(validation: F) -> (F::Output, bool) {
    UNANSWERED
        .scope(Cell::new(false), async {
            let output = validation.await;
            (output, UNANSWERED.with(Cell::get))
        })
        .await
}

impl DnsHandle for RoutedHandle {
    type Response = Pin<Box<dyn Stream<Item = Result<DnsResponse, NetError>> + Send>>;
    type Runtime = TokioRuntimeProvider;

    fn send(&self, request: DnsRequest) -> Self::Response {
        let this = self.clone();
        Box::pin(stream::once(async move {
            let query = request.queries.first().ok_or("no question")?;
            let wire_name = query
                .name()
                .to_lowercase()
                .to_bytes()
                .map_err(|e| NetError::from(e.to_string()))?;
            let lower = NameBuf::from_wire(&wire_name).ok_or("name too long")?;
            let reply = this.reply(lower, query.query_type().into()).await?;
            DnsResponse::from_buffer(reply).map_err(|e| NetError::from(e.to_string()))
        }))
    }
}
