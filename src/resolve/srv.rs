//! SRV completion: service discovery in one round trip.
//!
//! A client that asks for `_web._tcp.service.consul SRV` next asks for the A and
//! AAAA of every target. The addresses that came in the SRV reply's additional
//! section are stored as cache entries of their own, so those follow-up queries
//! are hits; targets the upstream sent no address for are resolved here, through
//! splitdns's own routing and cache, and added to the additional section before
//! the client gets the SRV answer.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use tokio::task::JoinSet;

use crate::dns::answer::Answer;
use crate::dns::question::Question;
use crate::dns::wire::{self, NameBuf, Section};
use crate::resolve::cache::{Cache, CacheKey};
use crate::resolve::dnssec::Validator;
use crate::resolve::router::Router;

/// Resolves a target's address through splitdns's own routing and cache (an
/// async fn cannot contain itself, hence the box).
pub(crate) type Lookup<'a> = &'a (dyn Fn(Question) -> Looked + Sync);

/// A target's address on its way.
pub(crate) type Looked = Pin<Box<dyn Future<Output = Option<Arc<Answer>>> + Send>>;

/// Where completion stores and looks things up: the routing table and
/// epoch of the query's state, and the cache.
pub(crate) struct Context<'a> {
    pub router: &'a Router,
    pub cache: &'a Cache,
    pub epoch: u64,
    /// `[dnssec] validate`'s validator: an address it would validate is not
    /// stored unvalidated from an additional section.
    pub validator: Option<&'a Validator>,
}

/// Stores the SRV reply's target addresses and fills in the missing ones within
/// `budget`. Returns the answer to give the client (the same one when nothing
/// was missing or nothing could be added).
pub(crate) async fn complete(
    cx: Context<'_>,
    lookup: Lookup<'_>,
    answer: Arc<Answer>,
    budget: Duration,
) -> Arc<Answer> {
    match begin(&cx, answer) {
        Completion::Done(answer) => answer,
        Completion::Missing(missing) => finish(&cx, lookup, missing, budget).await,
    }
}

/// What is left of completing an SRV answer once the addresses its reply
/// carried are stored.
pub(crate) enum Completion {
    /// Nothing is missing: the answer as it is.
    Done(Arc<Answer>),
    /// Targets the reply had no address for: [`finish`] resolves them.
    Missing(Missing),
}

/// An SRV answer with targets to resolve.
pub(crate) struct Missing {
    answer: Arc<Answer>,
    msg: Message,
    targets: Vec<Name>,
}

/// The part of [`complete`] that needs no waiting: stores the addresses the
/// reply carried, and says which targets are left.
pub(crate) fn begin(cx: &Context<'_>, answer: Arc<Answer>) -> Completion {
    if !has_work(cx, answer.bytes()) {
        return Completion::Done(answer);
    }
    let Ok(msg) = Message::from_vec(answer.bytes()) else {
        return Completion::Done(answer);
    };
    let targets: Vec<Name> = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) if !srv.target.is_root() => Some(srv.target.to_lowercase()),
            _ => None,
        })
        .collect();
    if targets.is_empty() {
        return Completion::Done(answer);
    }
    let addresses = addresses_by_owner(&msg.additionals);
    for ((owner, rtype), records) in &addresses {
        if targets.contains(owner) {
            store_addresses(cx, owner, *rtype, records);
        }
    }
    let missing: Vec<Name> = dedup(&targets)
        .into_iter()
        .filter(|t| !addresses.keys().any(|(owner, _)| owner == *t))
        .cloned()
        .collect();
    if missing.is_empty() {
        return Completion::Done(answer);
    }
    Completion::Missing(Missing {
        answer,
        msg,
        targets: missing,
    })
}

/// Resolves the targets [`begin`] left, within `budget`, and adds their
/// addresses to the answer.
pub(crate) async fn finish(
    cx: &Context<'_>,
    lookup: Lookup<'_>,
    missing: Missing,
    budget: Duration,
) -> Arc<Answer> {
    let Missing {
        answer,
        mut msg,
        targets,
    } = missing;
    let targets: Vec<&Name> = targets.iter().collect();
    let found = resolve_targets(lookup, &targets, budget).await;
    if found.is_empty() {
        return answer;
    }
    msg.additionals.extend(found);
    let policy = cx.router.route(answer_lower(&answer)).ttl;
    match msg.to_vec() {
        Ok(bytes) => Answer::from_reply(&bytes, answer_lower(&answer), policy, Instant::now())
            .map(|mut completed| {
                completed.set_security(answer.security());
                Arc::new(completed)
            })
            .unwrap_or(answer),
        Err(_) => answer,
    }
}

/// Whether completing this SRV answer could change anything: a target with no
/// address in the additional section, or an address that would be cached.
/// Read off the wire form, so that the usual Consul answer (every target's
/// address included, all with TTL 0) costs a walk over its records and no
/// parse. Errs towards yes: the full path decides.
fn has_work(cx: &Context<'_>, bytes: &[u8]) -> bool {
    let Some(question_end) = wire::question_end(bytes) else {
        return true;
    };
    let mut targets = Vec::new();
    let mut owners = Vec::new();
    for record in wire::Records::new(bytes, question_end) {
        let name_at = match (record.section, record.rtype) {
            (Section::Answer, wire::TYPE_SRV) => record.rdata.start + 6,
            (Section::Additional, wire::TYPE_A | wire::TYPE_AAAA) => record.start,
            _ => continue,
        };
        let Some(name) = wire::read_name(bytes, name_at) else {
            return true;
        };
        if record.section == Section::Answer {
            if name.as_bytes() != [0] {
                targets.push(name);
            }
        } else if record.ttl(bytes) > 0 || cx.router.route(name.as_bytes()).ttl.min > 0 {
            return true;
        } else {
            owners.push(name);
        }
    }
    !targets
        .iter()
        .all(|t| owners.iter().any(|o| o.as_bytes() == t.as_bytes()))
}

/// The lowercased question name of a normalised answer.
fn answer_lower(answer: &Answer) -> &[u8] {
    let bytes = answer.bytes();
    let mut end = wire::HEADER_LEN;
    while let Some(&len) = bytes.get(end) {
        end += usize::from(len) + 1;
        if len == 0 {
            break;
        }
    }
    &bytes[wire::HEADER_LEN..end.min(bytes.len())]
}

fn addresses_by_owner(additionals: &[Record]) -> BTreeMap<(Name, RecordType), Vec<Record>> {
    let mut by_owner: BTreeMap<(Name, RecordType), Vec<Record>> = BTreeMap::new();
    for record in additionals {
        if matches!(record.record_type(), RecordType::A | RecordType::AAAA) {
            by_owner
                .entry((record.name.to_lowercase(), record.record_type()))
                .or_default()
                .push(record.clone());
        }
    }
    by_owner
}

fn dedup(names: &[Name]) -> Vec<&Name> {
    let mut seen: Vec<&Name> = Vec::new();
    for name in names {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen
}

/// Caches `records` as the answer to `owner rtype`, under the TTL rules of the
/// owner's own route.
fn store_addresses(cx: &Context<'_>, owner: &Name, rtype: RecordType, records: &[Record]) {
    let Ok(wire) = owner.to_bytes() else { return };
    let route = cx.router.route(&wire);
    if let (Some(validator), Some(lower)) = (cx.validator, NameBuf::from_wire(&wire)) {
        let question = Question {
            lower,
            qtype: rtype.into(),
            qclass: wire::CLASS_IN,
            dnssec_ok: false,
            checking_disabled: false,
        };
        if validator.covers(route, &question) {
            // Additional records prove nothing (RFC 4035 §5): the client's
            // own question for the address is validated when it comes.
            return;
        }
    }
    let policy = route.ttl;
    let shortest = records.iter().map(|r| r.ttl).min().unwrap_or(0);
    if shortest.max(policy.min) == 0 {
        // Consul's default TTL 0: nothing to keep, so nothing to build.
        return;
    }
    let mut msg = Message::response(0, hickory_proto::op::OpCode::Query);
    msg.add_query(hickory_proto::op::Query::query(owner.clone(), rtype));
    msg.add_answers(records.iter().cloned());
    let Ok(bytes) = msg.to_vec() else { return };
    if let Ok(answer) = Answer::from_reply(&bytes, &wire, policy, Instant::now()) {
        let key = CacheKey::new(&wire, u16::from(rtype), wire::CLASS_IN, false, false);
        cx.cache
            .insert_fetched(&key, &answer, Instant::now(), cx.epoch);
    }
}

/// A and AAAA of every target, asked concurrently, whatever arrives within `budget`.
async fn resolve_targets(lookup: Lookup<'_>, targets: &[&Name], budget: Duration) -> Vec<Record> {
    let mut lookups = JoinSet::new();
    for target in targets {
        let Some(lower) = target.to_bytes().ok().and_then(|w| NameBuf::from_wire(&w)) else {
            continue;
        };
        for qtype in [RecordType::A, RecordType::AAAA] {
            let question = Question {
                lower,
                qtype: qtype.into(),
                qclass: wire::CLASS_IN,
                dnssec_ok: false,
                checking_disabled: false,
            };
            lookups.spawn(lookup(question));
        }
    }
    let mut found = Vec::new();
    let collect = async {
        while let Some(result) = lookups.join_next().await {
            let Ok(Some(answer)) = result else { continue };
            if let Ok(msg) = Message::from_vec(answer.bytes()) {
                found.extend(
                    msg.answers
                        .into_iter()
                        .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA)),
                );
            }
        }
    };
    let _ = tokio::time::timeout(budget, collect).await;
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use hickory_proto::rr::rdata::A;

    /// With validation on, an SRV target's address on a validated route is not
    /// cached from the additional section, where nothing proves it (RFC 4035
    /// §5); one on a route validation leaves alone (Consul's) still is.
    #[test]
    fn additional_addresses_of_validated_names_are_not_stored() {
        let text = "rules = [\"server=/consul/127.0.0.1#8600\"]\n[dnssec]\nvalidate = true";
        let config = Config::from_toml(text, std::path::Path::new("t.toml")).unwrap();
        let router = Arc::new(Router::new(&config, vec!["192.0.2.53:53".parse().unwrap()]));
        let validator = Validator::new(&config.dnssec, Arc::clone(&router)).unwrap();
        let cache = Cache::new(100);
        let cx = Context {
            router: &router,
            cache: &cache,
            epoch: 0,
            validator: Some(&validator),
        };
        for name in ["node-a.node.dc1.consul.", "www.example.com."] {
            let owner = Name::from_ascii(name).unwrap();
            let a = Record::from_rdata(owner.clone(), 60, RData::A(A::new(192, 0, 2, 1)));
            store_addresses(&cx, &owner, RecordType::A, &[a]);
        }
        let key = |name: &str| {
            let wire = Name::from_ascii(name).unwrap().to_bytes().unwrap();
            CacheKey::new(&wire, 1, wire::CLASS_IN, false, false)
        };
        let now = Instant::now();
        assert!(cache.lookup(&key("node-a.node.dc1.consul."), now).is_some());
        assert!(cache.lookup(&key("www.example.com."), now).is_none());
    }
}
