//! SRV completion: service discovery in one round trip.
//!
//! A client that asks for `_web._tcp.service.consul SRV` next asks for the A and
//! AAAA of every target. The addresses that came in the SRV reply's additional
//! section are stored as cache entries of their own, so those follow-up queries
//! are hits; targets the upstream sent no address for are resolved here, through
//! splitdns's own routing and cache, and added to the additional section before
//! the client gets the SRV answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{Record, RecordType};
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

/// An SRV answer with targets to resolve: their names, lowercased.
pub(crate) struct Missing {
    answer: Arc<Answer>,
    targets: Vec<NameBuf>,
}

/// The part of [`complete`] that needs no waiting: stores the addresses the
/// reply carried, and says which targets are left. Read off the answer's
/// wire form.
pub(crate) fn begin(cx: &Context<'_>, answer: Arc<Answer>) -> Completion {
    if !has_work(cx, answer.bytes()) {
        return Completion::Done(answer);
    }
    let bytes = answer.bytes();
    let Some(msg) = wire::Message::parse(bytes) else {
        return Completion::Done(answer);
    };
    let mut targets: Vec<NameBuf> = Vec::new();
    for record in &msg.records {
        if record.section != Section::Answer || record.rtype != wire::TYPE_SRV {
            continue;
        }
        let Some(target) = wire::read_name(bytes, record.rdata.start + 6) else {
            continue;
        };
        let target = target.to_lowercase();
        if target.as_bytes() != [0] && !targets.contains(&target) {
            targets.push(target);
        }
    }
    // The additional section's addresses, with their owners lowercased.
    let addresses: Vec<_> = msg
        .records
        .iter()
        .filter(|r| {
            r.section == Section::Additional && matches!(r.rtype, wire::TYPE_A | wire::TYPE_AAAA)
        })
        .filter_map(|r| Some((wire::read_name(bytes, r.start)?.to_lowercase(), r)))
        .collect();
    for (i, (owner, first)) in addresses.iter().enumerate() {
        let of_group = |(o, r): &&(NameBuf, &wire::Record)| o == owner && r.rtype == first.rtype;
        let seen = addresses[..i].iter().any(|earlier| of_group(&earlier));
        if seen || !targets.contains(owner) {
            continue;
        }
        let records = addresses
            .iter()
            .filter(of_group)
            .map(|(_, r)| (r.class, r.ttl(bytes), &bytes[r.rdata.clone()]));
        store_addresses(cx, owner, first.rtype, records);
    }
    targets.retain(|t| !addresses.iter().any(|(owner, _)| owner == t));
    if targets.is_empty() {
        return Completion::Done(answer);
    }
    Completion::Missing(Missing { answer, targets })
}

/// Resolves the targets [`begin`] left, within `budget`, and adds their
/// addresses to the answer.
pub(crate) async fn finish(
    cx: &Context<'_>,
    lookup: Lookup<'_>,
    missing: Missing,
    budget: Duration,
) -> Arc<Answer> {
    let Missing { answer, targets } = missing;
    let found = resolve_targets(lookup, &targets, budget).await;
    if found.is_empty() {
        return answer;
    }
    let Ok(mut msg) = Message::from_vec(answer.bytes()) else {
        return answer;
    };
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

/// Caches `records` (class, TTL and data each) as the answer to `owner
/// rtype`, under the TTL rules of the owner's own route.
fn store_addresses<'a>(
    cx: &Context<'_>,
    owner: &NameBuf,
    rtype: u16,
    records: impl Iterator<Item = (u16, u32, &'a [u8])> + Clone,
) {
    let route = cx.router.route(owner.as_bytes());
    if let Some(validator) = cx.validator {
        let question = Question {
            lower: *owner,
            qtype: rtype,
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
    let shortest = records.clone().map(|(_, ttl, _)| ttl).min().unwrap_or(0);
    if shortest.max(policy.min) == 0 {
        // Consul's default TTL 0: nothing to keep, so nothing to build.
        return;
    }
    // Room for a target's usual handful of addresses without growing.
    let mut reply = Vec::with_capacity(512);
    wire::write_answers(&mut reply, owner.as_bytes(), rtype, records);
    let now = Instant::now();
    if let Ok(answer) = Answer::from_reply(&reply, owner.as_bytes(), policy, now) {
        let key = CacheKey::new(owner.as_bytes(), rtype, wire::CLASS_IN, false, false);
        cx.cache.insert_fetched(&key, &answer, now, cx.epoch);
    }
}

/// A and AAAA of every target, asked concurrently, whatever arrives within `budget`.
async fn resolve_targets(lookup: Lookup<'_>, targets: &[NameBuf], budget: Duration) -> Vec<Record> {
    let mut lookups = JoinSet::new();
    for &lower in targets {
        for qtype in [wire::TYPE_A, wire::TYPE_AAAA] {
            let question = Question {
                lower,
                qtype,
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
    use crate::resolve::cache::Cached;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, SRV};
    use hickory_proto::rr::{Name, RData};
    use hickory_proto::serialize::binary::BinEncodable;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn key(text: &str, qtype: u16) -> CacheKey {
        let wire = name(text).to_bytes().unwrap();
        CacheKey::new(&wire, qtype, wire::CLASS_IN, false, false)
    }

    /// `_web._tcp.service.consul SRV`, answered with `targets` and, in the
    /// additional section, the addresses given (owner as written, TTL, address).
    fn srv_answer(targets: &[&str], addresses: &[(&str, u32, [u8; 4])]) -> Arc<Answer> {
        let owner = name("_web._tcp.service.consul.");
        let mut m = Message::new(9, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(owner.clone(), RecordType::SRV));
        for target in targets {
            let srv = SRV::new(1, 1, 8080, name(target));
            m.add_answer(Record::from_rdata(owner.clone(), 0, RData::SRV(srv)));
        }
        for (host, ttl, ip) in addresses {
            let a = A::new(ip[0], ip[1], ip[2], ip[3]);
            m.add_additional(Record::from_rdata(name(host), *ttl, RData::A(a)));
        }
        let bytes = m.to_vec().unwrap();
        let lower = owner.to_lowercase().to_bytes().unwrap();
        let policy = crate::dns::answer::TtlPolicy {
            min: 0,
            max: 86_400,
            max_negative: 3_600,
        };
        Arc::new(Answer::from_reply(&bytes, &lower, policy, Instant::now()).unwrap())
    }

    fn router(text: &str) -> Arc<Router> {
        let config = Config::from_toml(text, std::path::Path::new("t.toml")).unwrap();
        Arc::new(Router::new(&config, vec!["192.0.2.53:53".parse().unwrap()]))
    }

    /// RFC 2782: a client that gets an SRV answer asks next for its targets'
    /// addresses. The ones the reply carried are kept as answers of their
    /// own, all of a target's records together, whatever case the server
    /// wrote them in (RFC 4343); a target without one is left to look up.
    #[test]
    fn additional_addresses_are_kept_as_answers_and_the_rest_left_to_look_up() {
        let router = router("rules = [\"server=/consul/127.0.0.1#8600\"]");
        let cache = Cache::new(100);
        let cx = Context {
            router: &router,
            cache: &cache,
            epoch: 0,
            validator: None,
        };
        let answer = srv_answer(
            &["node-a.node.dc1.consul.", "node-b.node.dc1.consul."],
            &[
                ("Node-A.node.dc1.consul.", 60, [192, 0, 2, 1]),
                ("node-a.node.dc1.consul.", 60, [192, 0, 2, 2]),
                ("unrelated.node.dc1.consul.", 60, [192, 0, 2, 9]),
            ],
        );
        let Completion::Missing(missing) = begin(&cx, answer) else {
            panic!("node-b has no address in the reply")
        };
        let left: Vec<String> = missing.targets.iter().map(ToString::to_string).collect();
        assert_eq!(left, ["node-b.node.dc1.consul."]);
        let now = Instant::now();
        let Some(Cached::Fresh(kept)) = cache.lookup(&key("node-a.node.dc1.consul.", 1), now)
        else {
            panic!("node-a's addresses are kept")
        };
        let kept = Message::from_vec(kept.bytes()).unwrap();
        let mut ips: Vec<String> = kept.answers.iter().map(|r| r.data.to_string()).collect();
        ips.sort();
        assert_eq!(ips, ["192.0.2.1", "192.0.2.2"]);
        assert!(kept.answers.iter().all(|r| r.ttl == 60));
        assert!(
            cache
                .lookup(&key("unrelated.node.dc1.consul.", 1), now)
                .is_none(),
            "only targets' addresses are kept"
        );
    }

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
        let targets = ["node-a.node.dc1.consul.", "www.example.com."];
        let answer = srv_answer(
            &targets,
            &[
                (targets[0], 60, [192, 0, 2, 1]),
                (targets[1], 60, [192, 0, 2, 1]),
            ],
        );
        assert!(matches!(begin(&cx, answer), Completion::Done(_)));
        let now = Instant::now();
        assert!(cache.lookup(&key(targets[0], 1), now).is_some());
        assert!(cache.lookup(&key(targets[1], 1), now).is_none());
    }
}
