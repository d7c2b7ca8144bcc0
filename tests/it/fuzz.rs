//! The fuzz targets' entry points (`splitdns::fuzzing`) under a bounded random and
//! mutation loop, so every `cargo test` runs them: arbitrary bytes, and the seeds of
//! `fuzz/seeds/` with random bytes overwritten, inserted and cut. Crashers that a fuzzing
//! run found are kept in `fuzz/regressions/TARGET/` and replayed here.

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use splitdns::fuzzing;

/// Cases per property, per strategy: enough to cover every branch of the parsers often,
/// cheap enough for every run (the long runs are `scripts/fuzz.sh`).
const CASES: u32 = 3000;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// A seed with up to 8 edits: overwrite a byte, insert one, or cut the tail.
fn mutated(target: &str) -> impl Strategy<Value = Vec<u8>> {
    let edits = vec((0u8..3, any::<usize>(), any::<u8>()), 0..8);
    (select(seeds(target)), edits).prop_map(|(mut bytes, edits)| {
        for (kind, at, byte) in edits {
            let at = at % (bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ => bytes.truncate(at),
            }
        }
        bytes
    })
}

fn replay_regressions(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        run(&std::fs::read(entry.unwrap().path()).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn query_handler_survives_arbitrary_bytes(bytes in vec(any::<u8>(), 0..600)) {
        fuzzing::query_handler(&bytes);
    }

    #[test]
    fn query_handler_survives_mutated_queries(bytes in mutated("query_handler")) {
        fuzzing::query_handler(&bytes);
    }

    #[test]
    fn upstream_reply_survives_arbitrary_bytes(bytes in vec(any::<u8>(), 0..600)) {
        fuzzing::upstream_reply(&bytes);
    }

    #[test]
    fn upstream_reply_survives_mutated_replies(bytes in mutated("upstream_reply")) {
        fuzzing::upstream_reply(&bytes);
    }

    #[test]
    fn config_loader_survives_mutated_configs(bytes in mutated("config_toml")) {
        fuzzing::config_toml(&bytes);
    }

    #[test]
    fn dnsmasq_rule_parser_survives_arbitrary_and_mutated_lines(
        bytes in prop_oneof![mutated("dnsmasq_rule"), vec(any::<u8>(), 0..120)]
    ) {
        fuzzing::dnsmasq_rule(&bytes);
    }
}

#[test]
fn crashers_found_by_fuzzing_stay_fixed() {
    replay_regressions("query_handler", fuzzing::query_handler);
    replay_regressions("upstream_reply", fuzzing::upstream_reply);
    replay_regressions("config_toml", fuzzing::config_toml);
    replay_regressions("dnsmasq_rule", fuzzing::dnsmasq_rule);
}
