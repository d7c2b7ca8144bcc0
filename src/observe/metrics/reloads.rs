//! What runs: the config in force (its hash), how its reloads went, and
//! the splitdns version.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::register::registered;
use crate::config::Config;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HashLabel {
    hash: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

pub(super) struct ConfigMetrics {
    reloads_ok: Counter,
    reloads_failed: Counter,
    config_info: Family<HashLabel, Gauge>,
    config_hash: Mutex<String>,
}

impl ConfigMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let reloads = Family::<ResultLabel, Counter>::default();
        let reloads_ok = reloads.get_or_create_owned(&ResultLabel { result: "ok" });
        let reloads_failed = reloads.get_or_create_owned(&ResultLabel { result: "failed" });
        registry.register("config_reloads", "Config reloads, by result", reloads);
        let config_info = registered(
            registry,
            "config_info",
            "1, labelled with the SHA-256 of the config in force: of the config file, then of each file it includes, as read",
        );
        let build = Family::<VersionLabel, Gauge>::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "1, labelled with the splitdns version", build);
        Self {
            reloads_ok,
            reloads_failed,
            config_info,
            config_hash: Mutex::default(),
        }
    }

    pub(super) fn loaded(&self, config: &Config) {
        let hash = config.hash.clone();
        let mut current = self.config_hash.lock().expect("config hash lock");
        if *current != hash {
            self.config_info.remove(&HashLabel {
                hash: current.clone(),
            });
            self.config_info
                .get_or_create(&HashLabel { hash: hash.clone() })
                .set(1);
            *current = hash;
        }
    }

    pub(super) fn reloaded(&self, outcome: Result<&Config, ()>) {
        match outcome {
            Ok(config) => {
                self.reloads_ok.inc();
                self.loaded(config);
            }
            Err(()) => {
                self.reloads_failed.inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::observe::metrics::{Metrics, Scrape};

    #[test]
    fn config_hash_label_follows_the_config() {
        let m = Metrics::new();
        let a = Config::builtin();
        m.config_loaded(&a);
        let first = m.encode(&Scrape::default());
        let b = Config::from_toml("[cache]\nsize = 1\n", std::path::Path::new("b.toml")).unwrap();
        m.reloaded(Ok(&b));
        m.reloaded(Err(()));
        let second = m.encode(&Scrape::default());
        let info = |t: &str| {
            t.lines()
                .find(|l| l.starts_with("splitdns_config_info{"))
                .unwrap()
                .to_string()
        };
        assert_ne!(info(&first), info(&second));
        assert_eq!(
            second.matches("splitdns_config_info{").count(),
            1,
            "{second}"
        );
        assert!(
            second.contains("splitdns_config_reloads_total{result=\"ok\"} 1"),
            "{second}"
        );
        assert!(
            second.contains("splitdns_config_reloads_total{result=\"failed\"} 1"),
            "{second}"
        );
    }
}
