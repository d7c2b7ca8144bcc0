//! The fake agent's catalog: nodes, service instances and their checks, with a raft-like index.
//!
//! Every change bumps the index by one and stamps it on what changed: the node or service's
//! `ModifyIndex`, and the per-service index a blocking `/v1/health/service/<name>` waits on
//! (Consul's `maxIndexForService`: the service's own index entry, falling back to the
//! `services` table index for a name with none). A node's check changing bumps every service
//! on that node, as Consul's `updateAllServiceIndexesOfNode` does.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// A check's status, as `api.HealthPassing`/`HealthWarning`/`HealthCritical` spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Health {
    Passing,
    Warning,
    Critical,
}

impl Health {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Passing => "passing",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Check {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) status: Health,
    pub(crate) create_index: u64,
    pub(crate) modify_index: u64,
}

impl Check {
    fn new(id: &str, name: &str, status: Health) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            status,
            create_index: 0,
            modify_index: 0,
        }
    }
}

/// A catalog node. [`Node::new`] gives what an agent registers for itself: tagged addresses
/// `lan`/`wan` and the family-specific `lan_ipv4`/`wan_ipv4` (or `_ipv6`), the meta key
/// `consul-network-segment` = "", and a passing `serfHealth` check.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) name: String,
    /// `None`: the agent's own datacenter.
    pub(crate) datacenter: Option<String>,
    pub(crate) address: String,
    pub(crate) tagged_addresses: BTreeMap<String, String>,
    pub(crate) meta: BTreeMap<String, String>,
    pub(crate) checks: Vec<Check>,
    pub(crate) create_index: u64,
    pub(crate) modify_index: u64,
}

impl Node {
    pub(crate) fn new(name: &str, address: &str) -> Self {
        let mut tagged_addresses = BTreeMap::new();
        let family = match address.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => Some("ipv6"),
            Ok(IpAddr::V4(_)) => Some("ipv4"),
            Err(_) => None,
        };
        for zone in ["lan", "wan"] {
            tagged_addresses.insert(zone.to_string(), address.to_string());
            if let Some(family) = family {
                tagged_addresses.insert(format!("{zone}_{family}"), address.to_string());
            }
        }
        Self {
            name: name.to_string(),
            datacenter: None,
            address: address.to_string(),
            tagged_addresses,
            meta: BTreeMap::from([("consul-network-segment".to_string(), String::new())]),
            checks: vec![Check::new(
                "serfHealth",
                "Serf Health Status",
                Health::Passing,
            )],
            create_index: 0,
            modify_index: 0,
        }
    }

    pub(crate) fn dc(mut self, datacenter: &str) -> Self {
        self.datacenter = Some(datacenter.to_string());
        self
    }

    pub(crate) fn meta(mut self, key: &str, value: &str) -> Self {
        self.meta.insert(key.to_string(), value.to_string());
        self
    }

    pub(crate) fn tagged(mut self, key: &str, address: &str) -> Self {
        self.tagged_addresses
            .insert(key.to_string(), address.to_string());
        self
    }

    /// Sets the status of `serfHealth` (a node-level check: it counts for every service on the node).
    pub(crate) fn health(mut self, status: Health) -> Self {
        self.checks[0].status = status;
        self
    }
}

/// One service instance on one node. The ID defaults to the name, as the agent's does.
#[derive(Clone, Debug)]
pub(crate) struct Service {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) node: String,
    pub(crate) tags: Vec<String>,
    /// `None`: the instance uses its node's address.
    pub(crate) address: Option<String>,
    pub(crate) port: u16,
    /// `Weights.Passing` and `Weights.Warning` (both 1 by default).
    pub(crate) weights: (u16, u16),
    pub(crate) meta: BTreeMap<String, String>,
    pub(crate) checks: Vec<Check>,
    pub(crate) create_index: u64,
    pub(crate) modify_index: u64,
}

impl Service {
    pub(crate) fn new(name: &str, node: &str, port: u16) -> Self {
        Self {
            id: name.to_string(),
            name: name.to_string(),
            node: node.to_string(),
            tags: Vec::new(),
            address: None,
            port,
            weights: (1, 1),
            meta: BTreeMap::new(),
            checks: Vec::new(),
            create_index: 0,
            modify_index: 0,
        }
    }

    pub(crate) fn id(mut self, id: &str) -> Self {
        self.id = id.to_string();
        self
    }

    pub(crate) fn tags(mut self, tags: &[&str]) -> Self {
        self.tags = tags.iter().map(|t| t.to_string()).collect();
        self
    }

    pub(crate) fn address(mut self, address: &str) -> Self {
        self.address = Some(address.to_string());
        self
    }

    pub(crate) fn weights(mut self, passing: u16, warning: u16) -> Self {
        self.weights = (passing, warning);
        self
    }

    pub(crate) fn meta(mut self, key: &str, value: &str) -> Self {
        self.meta.insert(key.to_string(), value.to_string());
        self
    }

    /// Gives the instance a check `service:<id>` with `status`.
    pub(crate) fn health(mut self, status: Health) -> Self {
        let id = format!("service:{}", self.id);
        let name = format!("Service '{}' check", self.name);
        self.checks = vec![Check::new(&id, &name, status)];
        self
    }
}

/// `dns_config` and the agent settings the DNS side reads; the defaults are Consul's
/// (`agent/config/default.go`): domain `consul.`, datacenter `dc1`, every TTL 0,
/// `udp_answer_limit` 3, `enable_truncate` false, `enable_additional_node_meta_txt` true,
/// SOA `{refresh 3600, retry 600, expire 86400, min_ttl 0}`.
#[derive(Clone, Debug)]
pub(crate) struct DnsConfig {
    pub(crate) datacenter: String,
    pub(crate) node_name: String,
    /// With the trailing dot, lower case.
    pub(crate) domain: String,
    pub(crate) alt_domain: Option<String>,
    pub(crate) only_passing: bool,
    /// `service_ttl`: exact names, `prefix*` and `*`, in seconds.
    pub(crate) service_ttl: Vec<(String, u32)>,
    pub(crate) node_ttl: u32,
    /// 0: unlimited.
    pub(crate) a_record_limit: usize,
    pub(crate) udp_answer_limit: usize,
    pub(crate) enable_truncate: bool,
    pub(crate) node_meta_txt: bool,
    pub(crate) soa: Soa,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Soa {
    pub(crate) refresh: u32,
    pub(crate) retry: u32,
    pub(crate) expire: u32,
    pub(crate) min_ttl: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            datacenter: "dc1".to_string(),
            node_name: "agent-one".to_string(),
            domain: "consul.".to_string(),
            alt_domain: None,
            only_passing: false,
            service_ttl: Vec::new(),
            node_ttl: 0,
            a_record_limit: 0,
            udp_answer_limit: 3,
            enable_truncate: false,
            node_meta_txt: true,
            soa: Soa {
                refresh: 3600,
                retry: 600,
                expire: 86400,
                min_ttl: 0,
            },
        }
    }
}

impl DnsConfig {
    /// MS `getTTLForResult`: the exact name, then the longest `prefix*`, then `*`; with none
    /// matching, v2 falls back to `node_ttl`.
    pub(crate) fn service_ttl(&self, service: &str) -> u32 {
        let service = service.to_ascii_lowercase();
        if let Some((_, ttl)) = self.service_ttl.iter().find(|(k, _)| *k == service) {
            return *ttl;
        }
        let prefix = self
            .service_ttl
            .iter()
            .filter_map(|(k, ttl)| Some((k.strip_suffix('*')?, ttl)))
            .filter(|(p, _)| service.starts_with(p))
            .max_by_key(|(p, _)| p.len());
        prefix.map_or(self.node_ttl, |(_, ttl)| *ttl)
    }
}

/// One instance as a lookup sees it: the node, the service, and the worst of their checks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Instance<'a> {
    pub(crate) node: &'a Node,
    pub(crate) service: &'a Service,
    pub(crate) health: Health,
    pub(crate) datacenter: &'a str,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Catalog {
    pub(crate) config: DnsConfig,
    /// Datacenters with no node of their own that still "exist" (reachable over the WAN).
    pub(crate) extra_datacenters: Vec<String>,
    nodes: Vec<Node>,
    services: Vec<Service>,
    index: u64,
    /// The `services` table index: the last change to any service or check.
    services_index: u64,
    /// Per `(datacenter, service name)`, the last change to one of its instances.
    service_indexes: HashMap<(String, String), u64>,
}

impl Catalog {
    /// An empty catalog at index 1 with Consul's default configuration.
    pub(crate) fn new() -> Self {
        Self {
            index: 1,
            services_index: 1,
            ..Self::default()
        }
    }

    pub(crate) fn configure(mut self, f: impl FnOnce(&mut DnsConfig)) -> Self {
        f(&mut self.config);
        self
    }

    pub(crate) fn with_node(mut self, node: Node) -> Self {
        self.add_node(node);
        self
    }

    pub(crate) fn with_service(mut self, service: Service) -> Self {
        self.register(service);
        self
    }

    pub(crate) fn index(&self) -> u64 {
        self.index
    }

    pub(crate) fn services_index(&self) -> u64 {
        self.services_index
    }

    fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    fn touch_service(&mut self, datacenter: String, name: String, index: u64) {
        self.services_index = index;
        self.service_indexes
            .insert((datacenter, name.to_ascii_lowercase()), index);
    }

    /// The datacenter `node` is in.
    pub(crate) fn node_dc<'a>(&'a self, node: &'a Node) -> &'a str {
        node.datacenter
            .as_deref()
            .unwrap_or(&self.config.datacenter)
    }

    /// Every datacenter: the agent's, those of the nodes, and the extra ones.
    pub(crate) fn datacenters(&self) -> Vec<String> {
        let mut dcs = vec![self.config.datacenter.clone()];
        dcs.extend(self.nodes.iter().map(|n| self.node_dc(n).to_string()));
        dcs.extend(self.extra_datacenters.iter().cloned());
        dcs.sort();
        dcs.dedup();
        dcs
    }

    pub(crate) fn knows_dc(&self, datacenter: &str) -> bool {
        self.datacenters()
            .iter()
            .any(|dc| dc.eq_ignore_ascii_case(datacenter))
    }

    /// The index a blocking health query on `name` in `datacenter` compares with.
    pub(crate) fn service_index(&self, datacenter: &str, name: &str) -> u64 {
        let key = (datacenter.to_string(), name.to_ascii_lowercase());
        self.service_indexes
            .get(&key)
            .copied()
            .unwrap_or(self.services_index)
    }

    pub(crate) fn add_node(&mut self, mut node: Node) -> u64 {
        let index = self.bump();
        node.create_index = index;
        node.modify_index = index;
        for check in &mut node.checks {
            check.create_index = index;
            check.modify_index = index;
        }
        self.nodes.retain(|n| n.name != node.name);
        self.nodes.push(node);
        index
    }

    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub(crate) fn node(&self, name: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.name.eq_ignore_ascii_case(name))
    }

    /// Adds or replaces (same node and ID) a service instance; its node must exist.
    pub(crate) fn register(&mut self, mut service: Service) -> u64 {
        let node = self
            .node(&service.node)
            .unwrap_or_else(|| panic!("register {}: no node {}", service.id, service.node));
        let dc = self.node_dc(node).to_string();
        let index = self.bump();
        let old = self
            .services
            .iter()
            .position(|s| s.node == service.node && s.id == service.id);
        service.create_index = match old {
            Some(i) => self.services.remove(i).create_index,
            None => index,
        };
        service.modify_index = index;
        for check in &mut service.checks {
            check.create_index = index;
            check.modify_index = index;
        }
        self.touch_service(dc, service.name.clone(), index);
        self.services.push(service);
        index
    }

    /// Removes the instance `id` on `node`; panics if there is none.
    pub(crate) fn deregister(&mut self, node: &str, id: &str) -> u64 {
        let at = self
            .services
            .iter()
            .position(|s| s.node == node && s.id == id)
            .unwrap_or_else(|| panic!("deregister: no service {id} on {node}"));
        let service = self.services.remove(at);
        let dc = self.node_dc(self.node(node).unwrap()).to_string();
        let index = self.bump();
        self.touch_service(dc, service.name, index);
        index
    }

    /// Sets the status of the check of instance `id` on `node` (adding one if it has none).
    pub(crate) fn set_service_health(&mut self, node: &str, id: &str, status: Health) -> u64 {
        let dc = self
            .node(node)
            .map(|n| self.node_dc(n).to_string())
            .unwrap_or_else(|| panic!("no node {node}"));
        let index = self.bump();
        let service = self
            .services
            .iter_mut()
            .find(|s| s.node == node && s.id == id)
            .unwrap_or_else(|| panic!("set_service_health: no service {id} on {node}"));
        if service.checks.is_empty() {
            let with_check = service.clone().health(status);
            service.checks = with_check.checks;
            service.checks[0].create_index = index;
        }
        for check in &mut service.checks {
            check.status = status;
            check.modify_index = index;
        }
        let name = service.name.clone();
        self.touch_service(dc, name, index);
        index
    }

    /// Sets the status of `node`'s `serfHealth` check; every service on the node changes.
    pub(crate) fn set_node_health(&mut self, node: &str, status: Health) -> u64 {
        let index = self.bump();
        let found = self
            .nodes
            .iter_mut()
            .find(|n| n.name == node)
            .unwrap_or_else(|| panic!("set_node_health: no node {node}"));
        found.checks[0].status = status;
        found.checks[0].modify_index = index;
        let dc = found
            .datacenter
            .clone()
            .unwrap_or_else(|| self.config.datacenter.clone());
        let names: Vec<String> = self
            .services
            .iter()
            .filter(|s| s.node == node)
            .map(|s| s.name.clone())
            .collect();
        for name in names {
            self.touch_service(dc.clone(), name, index);
        }
        index
    }

    /// A raft snapshot restore to `index`: the catalog's data stays, but every index it holds
    /// is at most `index` afterwards, as after a restore of an older snapshot.
    pub(crate) fn restore_index(&mut self, index: u64) {
        self.index = index;
        self.services_index = self.services_index.min(index);
        for value in self.service_indexes.values_mut() {
            *value = (*value).min(index);
        }
        let clamp = |i: &mut u64| *i = (*i).min(index);
        for node in &mut self.nodes {
            clamp(&mut node.create_index);
            clamp(&mut node.modify_index);
            node.checks.iter_mut().for_each(|c| {
                clamp(&mut c.create_index);
                clamp(&mut c.modify_index);
            });
        }
        for service in &mut self.services {
            clamp(&mut service.create_index);
            clamp(&mut service.modify_index);
            service.checks.iter_mut().for_each(|c| {
                clamp(&mut c.create_index);
                clamp(&mut c.modify_index);
            });
        }
    }

    pub(crate) fn services(&self) -> &[Service] {
        &self.services
    }

    /// Every instance of `name` in `datacenter` (case-insensitive), unfiltered, in catalog order.
    pub(crate) fn instances(&self, datacenter: &str, name: &str) -> Vec<Instance<'_>> {
        self.services
            .iter()
            .filter(|s| s.name.eq_ignore_ascii_case(name))
            .filter_map(|service| {
                let node = self.node(&service.node)?;
                let dc = self.node_dc(node);
                dc.eq_ignore_ascii_case(datacenter).then(|| Instance {
                    node,
                    service,
                    health: node
                        .checks
                        .iter()
                        .chain(&service.checks)
                        .map(|c| c.status)
                        .max()
                        .unwrap_or(Health::Passing),
                    datacenter: dc,
                })
            })
            .collect()
    }

    /// The instances DNS answers with (QF `fetchService` → `CheckServiceNodes.Filter`):
    /// any critical check (node or service) excludes an instance; with `only_passing`, any
    /// warning does too. `tag`, when given, must be one of the instance's tags (compared
    /// case-insensitively).
    pub(crate) fn healthy_instances(
        &self,
        datacenter: &str,
        name: &str,
        tag: Option<&str>,
    ) -> Vec<Instance<'_>> {
        let worst = if self.config.only_passing {
            Health::Passing
        } else {
            Health::Warning
        };
        self.instances(datacenter, name)
            .into_iter()
            .filter(|i| i.health <= worst)
            .filter(|i| {
                tag.is_none_or(|tag| i.service.tags.iter().any(|t| t.eq_ignore_ascii_case(tag)))
            })
            .collect()
    }

    /// `/v1/catalog/services` for `datacenter`: every service name with the union of its tags.
    pub(crate) fn service_names(&self, datacenter: &str) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for service in &self.services {
            let Some(node) = self.node(&service.node) else {
                continue;
            };
            if !self.node_dc(node).eq_ignore_ascii_case(datacenter) {
                continue;
            }
            let tags = out.entry(service.name.clone()).or_default();
            tags.extend(service.tags.iter().cloned());
            tags.sort();
            tags.dedup();
        }
        out
    }
}
