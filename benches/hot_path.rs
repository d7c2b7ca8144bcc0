//! The pieces a cache hit goes through, one by one: parsing the query, finding
//! its route, looking up and patching the cached answer.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, MessageType, OpCode, Query as HQuery};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use splitdns::config::Config;
use splitdns::parts::Query;
use splitdns::parts::Router;
use splitdns::parts::{Answer, TtlPolicy};
use splitdns::parts::{Cache, CacheKey};

const POLICY: TtlPolicy = TtlPolicy {
    min: 0,
    max: 86_400,
    max_negative: 3_600,
};

fn client_query() -> Vec<u8> {
    let mut q = Message::new(0x1234, MessageType::Query, OpCode::Query);
    q.metadata.recursion_desired = true;
    q.add_query(HQuery::query(
        Name::from_ascii("H123.bench.test.").unwrap(),
        RecordType::A,
    ));
    q.to_vec().unwrap()
}

fn upstream_reply() -> Vec<u8> {
    reply_to("h123.bench.test.")
}

/// An upstream's answer to `name A`: one A record, TTL 3600.
fn reply_to(name: &str) -> Vec<u8> {
    let name = Name::from_ascii(name).unwrap();
    let mut m = Message::new(7, MessageType::Response, OpCode::Query);
    m.add_query(HQuery::query(name.clone(), RecordType::A));
    m.add_answer(Record::from_rdata(
        name,
        3600,
        RData::A(A::new(192, 0, 2, 1)),
    ));
    m.to_vec().unwrap()
}

fn hot_path(c: &mut Criterion) {
    let packet = client_query();
    c.bench_function("query_parse", |b| {
        b.iter(|| Query::parse(black_box(&packet)).ok())
    });

    let config = Config::from_toml(
        "rules = [\"server=/consul/127.0.0.1#8600\", \"rev-server=10.0.0.0/8,127.0.0.1#8600\"]",
        Path::new("bench.toml"),
    )
    .unwrap();
    let router = Router::new(&config, vec!["192.0.2.53:53".parse().unwrap()]);
    let query = Query::parse(&packet).unwrap();
    c.bench_function("route_lookup", |b| {
        b.iter(|| router.route(black_box(query.lower.as_bytes())).ttl)
    });

    let now = Instant::now();
    let answer =
        Answer::from_reply(&upstream_reply(), query.lower.as_bytes(), POLICY, now).unwrap();
    let cache = Cache::new(200_000);
    cache.insert(&CacheKey::of(&query), &answer, now);
    let mut out = Vec::with_capacity(512);
    c.bench_function("cache_hit_and_patch", |b| {
        b.iter(|| {
            let key = &CacheKey::of(black_box(&query));
            cache.serve(key, &query, now, 512, &mut out)
        })
    });

    let reply = upstream_reply();
    c.bench_function("store_upstream_reply", |b| {
        b.iter(|| {
            Answer::from_reply(black_box(&reply), query.lower.as_bytes(), POLICY, now).unwrap()
        })
    });
}

/// Cache hits from several threads at once, as the UDP threads serve them:
/// each thread on names of its own (spread over the cache's shards), or all on
/// one name (one shard, one lock: a service every container asks for). The
/// time is per hit and per thread, so flat from 1 to 2 threads means the
/// shared cache costs nothing extra for the second thread.
fn hits_from_threads(c: &mut Criterion) {
    let now = Instant::now();
    let cache = Arc::new(Cache::new(200_000));
    let names: Vec<Vec<u8>> = (0..2_000)
        .map(|i| named_query(&format!("h{i}.bench.test.")))
        .collect();
    for packet in &names {
        let query = Query::parse(packet).unwrap();
        let answer = Answer::from_reply(
            &reply_to(&query.lower.to_string()),
            query.lower.as_bytes(),
            POLICY,
            now,
        )
        .unwrap();
        cache.insert(&CacheKey::of(&query), &answer, now);
    }
    let names = Arc::new(names);
    let mut group = c.benchmark_group("hits_from_threads");
    for (label, shared_name) in [("own_names", false), ("one_name", true)] {
        for threads in [1, 2] {
            group.bench_function(format!("{label}/{threads}"), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    std::thread::scope(|scope| {
                        for t in 0..threads {
                            let (cache, names) = (&cache, &names);
                            scope.spawn(move || {
                                let mut out = Vec::with_capacity(512);
                                for i in 0..iters as usize {
                                    let n = if shared_name {
                                        0
                                    } else {
                                        (i * 2 + t) % names.len()
                                    };
                                    let query = Query::parse(&names[n]).unwrap();
                                    let key = &CacheKey::of(&query);
                                    black_box(cache.serve(key, &query, now, 512, &mut out));
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

fn named_query(name: &str) -> Vec<u8> {
    let mut q = Message::new(0x1234, MessageType::Query, OpCode::Query);
    q.add_query(HQuery::query(
        Name::from_ascii(name).unwrap(),
        RecordType::A,
    ));
    q.to_vec().unwrap()
}

criterion_group!(benches, hot_path, hits_from_threads);
criterion_main!(benches);
