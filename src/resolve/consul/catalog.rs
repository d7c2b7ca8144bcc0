//! The catalog as the mirror keeps it: what `/v1/health/service/<name>`,
//! `/v1/catalog/services` and `/v1/agent/self` return (field names as in
//! Consul's `api` package), read into what DNS answers need and no more.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

/// A check's status, worst last, so the worst of several is their maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Health {
    Passing,
    Warning,
    Critical,
}

impl Health {
    /// `api.HealthPassing`, `HealthWarning`; anything else (`critical`,
    /// `maintenance`) excludes the instance as critical does.
    fn of(status: &str) -> Self {
        match status {
            "passing" => Self::Passing,
            "warning" => Self::Warning,
            _ => Self::Critical,
        }
    }
}

/// A node as a health entry carries it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct NodeInfo {
    pub(super) name: String,
    pub(super) datacenter: String,
    pub(super) address: String,
    pub(super) lan_ipv4: Option<String>,
    pub(super) lan_ipv6: Option<String>,
    pub(super) meta: BTreeMap<String, String>,
}

/// One instance of a service, with the worst of its node's and its own checks.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Instance {
    pub(super) node: Arc<NodeInfo>,
    /// The service's own address; `None` when it uses its node's.
    pub(super) address: Option<String>,
    pub(super) port: u16,
    /// Lowercased: DNS matches tags without regard to case.
    pub(super) tags: Vec<String>,
    /// `Weights.Passing`, `Weights.Warning`.
    pub(super) weights: (u16, u16),
    pub(super) health: Health,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawEntry {
    node: RawNode,
    service: RawService,
    #[serde(default)]
    checks: Option<Vec<RawCheck>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawNode {
    node: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    datacenter: String,
    #[serde(default)]
    tagged_addresses: Option<HashMap<String, String>>,
    #[serde(default)]
    meta: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawService {
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    address: String,
    #[serde(default)]
    port: u16,
    #[serde(default)]
    weights: Option<RawWeights>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawWeights {
    passing: u16,
    warning: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawCheck {
    status: String,
}

/// The instances of one `/v1/health/service/<name>` body, all of them: the
/// health filter depends on the agent's `only_passing` and is applied per
/// answer. Nodes met twice are shared.
pub(super) fn instances(body: &[u8], datacenter: &str) -> Result<Vec<Instance>, serde_json::Error> {
    let entries: Vec<RawEntry> = serde_json::from_slice(body)?;
    let mut nodes: HashMap<String, Arc<NodeInfo>> = HashMap::new();
    Ok(entries
        .into_iter()
        .map(|entry| {
            let raw = entry.node;
            let node = nodes.entry(raw.node.clone()).or_insert_with(|| {
                let mut tagged = raw.tagged_addresses.unwrap_or_default();
                Arc::new(NodeInfo {
                    datacenter: if raw.datacenter.is_empty() {
                        datacenter.to_string()
                    } else {
                        raw.datacenter
                    },
                    name: raw.node,
                    address: raw.address,
                    lan_ipv4: tagged.remove("lan_ipv4"),
                    lan_ipv6: tagged.remove("lan_ipv6"),
                    meta: raw.meta.unwrap_or_default(),
                })
            });
            let health = entry
                .checks
                .unwrap_or_default()
                .iter()
                .map(|c| Health::of(&c.status))
                .max()
                .unwrap_or(Health::Passing);
            let service = entry.service;
            Instance {
                node: Arc::clone(node),
                address: Some(service.address).filter(|a| !a.is_empty()),
                port: service.port,
                tags: service
                    .tags
                    .unwrap_or_default()
                    .iter()
                    .map(|t| t.to_ascii_lowercase())
                    .collect(),
                weights: service.weights.map_or((1, 1), |w| (w.passing, w.warning)),
                health,
            }
        })
        .collect())
}

/// The names `/v1/catalog/services` lists, lowercased.
pub(super) fn service_names(body: &[u8]) -> Result<HashSet<String>, serde_json::Error> {
    let names: HashMap<String, serde_json::Value> = serde_json::from_slice(body)?;
    Ok(names.into_keys().map(|n| n.to_ascii_lowercase()).collect())
}

/// The agent's DNS settings (`dns_config`), from `/v1/agent/self`'s
/// `DebugConfig`, so the mirror answers as this agent is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AgentDns {
    pub(super) datacenter: String,
    /// Lowercased, with the trailing dot.
    pub(super) domain: String,
    pub(super) alt_domain: Option<String>,
    pub(super) only_passing: bool,
    /// `service_ttl`: exact names, `prefix*`, `*`; seconds.
    pub(super) service_ttl: Vec<(String, u32)>,
    pub(super) node_ttl: u32,
    /// 0: no limit.
    pub(super) a_record_limit: usize,
    pub(super) node_meta_txt: bool,
    pub(super) soa: Soa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct Soa {
    pub(super) refresh: u32,
    pub(super) retry: u32,
    pub(super) expire: u32,
    pub(super) minttl: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawSelf {
    debug_config: RawDebugConfig,
}

/// `config.RuntimeConfig` as `/v1/agent/self` sanitizes it: durations as Go
/// prints them (`30s`, `1m0s`).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawDebugConfig {
    datacenter: String,
    #[serde(rename = "DNSDomain")]
    dns_domain: String,
    #[serde(rename = "DNSAltDomain", default)]
    dns_alt_domain: String,
    #[serde(rename = "DNSOnlyPassing", default)]
    dns_only_passing: bool,
    #[serde(rename = "DNSServiceTTL", default)]
    dns_service_ttl: Option<HashMap<String, String>>,
    #[serde(rename = "DNSNodeTTL", default)]
    dns_node_ttl: Option<String>,
    #[serde(rename = "DNSARecordLimit", default)]
    dns_a_record_limit: usize,
    #[serde(rename = "DNSNodeMetaTXT", default = "yes")]
    dns_node_meta_txt: bool,
    #[serde(rename = "DNSSOA", default)]
    dns_soa: Option<Soa>,
}

fn yes() -> bool {
    true
}

/// Consul's defaults (`agent/config/default.go`): SOA refresh 3600, retry
/// 600, expire 86400, min_ttl 0.
const DEFAULT_SOA: Soa = Soa {
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minttl: 0,
};

/// A Go duration as `time.Duration.String()` writes it, in whole seconds:
/// `0s`, `30s`, `1m30s`, `1h0m0s`, `1.5s`; `None` for anything else.
fn go_seconds(text: &str) -> Option<u32> {
    if text == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .filter(|&n| n > 0)?;
        let value: f64 = rest[..digits].parse().ok()?;
        let unit_len = rest[digits..]
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len() - digits);
        let scale = match &rest[digits..digits + unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[digits + unit_len..];
    }
    Some(
        Duration::from_secs_f64(total)
            .as_secs()
            .min(u64::from(u32::MAX)) as u32,
    )
}

/// A domain as Consul normalises it: lowercased, with the trailing dot.
fn fqdn(domain: &str) -> String {
    let lower = domain.trim().to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

impl AgentDns {
    /// Reads `/v1/agent/self`; a TTL that does not read as a Go duration is
    /// an error, so the mirror never answers with a TTL the agent would not.
    pub(super) fn parse(body: &[u8]) -> Result<Self, String> {
        let raw: RawSelf = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let c = raw.debug_config;
        let ttl = |text: &str| go_seconds(text).ok_or_else(|| format!("TTL {text:?}"));
        let mut service_ttl = Vec::new();
        for (name, text) in c.dns_service_ttl.unwrap_or_default() {
            service_ttl.push((name.to_ascii_lowercase(), ttl(&text)?));
        }
        Ok(Self {
            datacenter: c.datacenter.to_ascii_lowercase(),
            domain: fqdn(&c.dns_domain),
            alt_domain: Some(c.dns_alt_domain)
                .filter(|d| !d.trim().is_empty())
                .map(|d| fqdn(&d)),
            only_passing: c.dns_only_passing,
            service_ttl,
            node_ttl: c.dns_node_ttl.as_deref().map(ttl).transpose()?.unwrap_or(0),
            a_record_limit: c.dns_a_record_limit,
            node_meta_txt: c.dns_node_meta_txt,
            soa: c.dns_soa.unwrap_or(DEFAULT_SOA),
        })
    }

    /// MS `getTTLForResult`: the exact name, then the longest `prefix*`
    /// (`*` alone is the empty prefix); with none, v2 falls back to `node_ttl`.
    pub(super) fn service_ttl(&self, service: &str) -> u32 {
        if let Some((_, ttl)) = self.service_ttl.iter().find(|(k, _)| k == service) {
            return *ttl;
        }
        self.service_ttl
            .iter()
            .filter_map(|(k, ttl)| Some((k.strip_suffix('*')?, *ttl)))
            .filter(|(prefix, _)| service.starts_with(prefix))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.node_ttl, |(_, ttl)| ttl)
    }

    /// Whether an instance of this health is answered (QF `fetchService`,
    /// `CheckServiceNodes.Filter`): never when critical; with `only_passing`,
    /// not when warning either.
    pub(super) fn answers(&self, health: Health) -> bool {
        match health {
            Health::Passing => true,
            Health::Warning => !self.only_passing,
            Health::Critical => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `time.Duration.String()`.
    #[test]
    fn go_durations() {
        assert_eq!(go_seconds("0s"), Some(0));
        assert_eq!(go_seconds("30s"), Some(30));
        assert_eq!(go_seconds("1m30s"), Some(90));
        assert_eq!(go_seconds("1h0m0s"), Some(3600));
        assert_eq!(go_seconds("1.5s"), Some(1));
        assert_eq!(go_seconds("500ms"), Some(0));
        assert_eq!(go_seconds("soon"), None);
        assert_eq!(go_seconds("5"), None);
    }

    /// D-cfgref `service_ttl`: "You may use the wildcard character (*) to
    /// match all services" and prefixes `db*`; the exact name wins.
    #[test]
    fn service_ttl_exact_then_longest_prefix_then_node_ttl() {
        let agent = AgentDns {
            datacenter: "dc1".into(),
            domain: "consul.".into(),
            alt_domain: None,
            only_passing: false,
            service_ttl: vec![("*".into(), 5), ("web".into(), 30), ("db*".into(), 10)],
            node_ttl: 7,
            a_record_limit: 0,
            node_meta_txt: true,
            soa: DEFAULT_SOA,
        };
        assert_eq!(agent.service_ttl("web"), 30);
        assert_eq!(agent.service_ttl("dbx"), 10);
        assert_eq!(agent.service_ttl("api"), 5);
        let no_star = AgentDns {
            service_ttl: vec![("web".into(), 30)],
            ..agent
        };
        assert_eq!(no_star.service_ttl("api"), 7);
    }
}
