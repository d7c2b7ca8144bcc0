//! hickory's validator asks its questions (the DNSKEY, DS and NS sets a chain
//! needs) through a `DnsHandle`: this one sends them through splitdns's own
//! routes and upstream client, with DO and CD set, so the upstream hands
//! over its signatures unvalidated and the checking is ours (RFC 4035 §3.2.2).

use std::pin::Pin;
use std::sync::Arc;
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

/// The reply splitdns already has for the question being validated.
struct First {
    lower: NameBuf,
    qtype: u16,
    reply: Vec<u8>,
}

/// Questions of one validation, sent where the router sends their names.
#[derive(Clone)]
pub(super) struct RoutedHandle {
    router: Arc<Router>,
    keys: Arc<KeyCache>,
    first: Option<Arc<First>>,
}

impl RoutedHandle {
    pub(super) fn new(router: Arc<Router>, keys: Arc<KeyCache>) -> Self {
        Self {
            router,
            keys,
            first: None,
        }
    }

    /// The handle for validating `reply`, the answer to `question`: asked
    /// that question, it hands `reply` over instead of asking again.
    pub(super) fn answering(&self, question: &Question, reply: Vec<u8>) -> Self {
        Self {
            first: Some(Arc::new(First {
                lower: question.lower,
                qtype: question.qtype,
                reply,
            })),
            ..self.clone()
        }
    }

    /// The reply to `lower`/`qtype`, from the reply at hand, the key cache or
    /// the upstreams of the name's route.
    pub(super) async fn reply(&self, lower: NameBuf, qtype: u16) -> Result<Vec<u8>, NetError> {
        if let Some(first) = &self.first
            && first.qtype == qtype
            && first.lower.as_bytes() == lower.as_bytes()
        {
            return Ok(first.reply.clone());
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
            Err(error) => Err(NetError::from(error.to_string())),
        }
    }
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
