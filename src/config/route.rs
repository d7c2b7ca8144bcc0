//! `[[route]]` tables and what a route is once its tables and rule lines are
//! merged: its zones, the action that answers them ([`RouteAction`]) and its
//! options; and the checks that run across all routes (a zone defined twice,
//! rewrites that would chain).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::dnsmasq;
use super::error::ConfigError;
use super::server_spec::{self, ServerSpec};
use super::text::ConfigText;
use super::upstream::Strategy;
use crate::dns::zone::Zone;

/// One zone route: its zones and what answers them.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    pub zones: Vec<Zone>,
    /// What answers the route's names, except the types `addresses` answers.
    pub action: RouteAction,
    /// `address=` lines for zones that other lines route too: the query types
    /// they answer are answered here; the others go by `action` (dnsmasq 2.86+).
    pub addresses: Vec<IpAddr>,
    /// Floor for this route's cache TTLs, positive and negative (seconds).
    pub min_ttl: Option<u32>,
    pub timeout: Option<Duration>,
    pub max_inflight: Option<usize>,
    pub strategy: Option<Strategy>,
    /// Names of the zones are asked as the same names under this zone
    /// (`prometheus.infra.local` as `prometheus.service.consul`).
    pub rewrite: Option<Zone>,
    /// Default: `[upstream] filter_aaaa`.
    pub filter_aaaa: Option<bool>,
    /// `dnssec`: whether `[dnssec] validate` covers the route's answers.
    /// Default: true for a route to the default upstreams, false for one
    /// with servers of its own or a rewrite (private zones are not signed).
    pub dnssec: Option<bool>,
    /// `rules[3] (line 4)` or `[[route]] #2 (line 12)`: where it was written.
    pub defined_at: String,
}

/// What answers a route's names: what its `[[route]]` table or the rule
/// lines for its zone come to, once merged.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// Forward to these servers, in order.
    Forward(Vec<ServerSpec>),
    /// Forward to the default upstreams (`[[route]]` without servers,
    /// `server=/x/#`).
    DefaultUpstream,
    /// Answered here; NXDOMAIN for names without local data.
    Local,
    /// These addresses for the zone and every name below it.
    Address(Vec<IpAddr>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) zones: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) servers: Vec<Spanned<String>>,
    pub(super) min_ttl: Option<u32>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) max_inflight: Option<Spanned<usize>>,
    pub(super) strategy: Option<Spanned<String>>,
    pub(super) rewrite: Option<Spanned<String>>,
    pub(super) filter_aaaa: Option<bool>,
    pub(super) dnssec: Option<bool>,
    pub(super) ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) pin_sha256: Vec<Spanned<String>>,
}

impl ConfigText<'_> {
    pub(super) fn route(
        &self,
        i: usize,
        route: &Spanned<RawRoute>,
        encrypted: &server_spec::Defaults,
    ) -> Result<RouteConfig, ConfigError> {
        let key = format!("[[route]] #{}", i + 1);
        let raw = route.get_ref();
        let mut zones = Vec::new();
        for zone in &raw.zones {
            zones.extend(self.route_zones(&format!("{key} zones"), zone)?);
        }
        if zones.is_empty() {
            return Err(self.invalid_at(
                &format!("{key} zones"),
                route.span(),
                "\"\"",
                "a route needs at least one zone, e.g. zones = [\"consul\"]",
            ));
        }
        let trust = self.trust(&key, raw.ca_file.as_ref(), &raw.pin_sha256)?;
        let servers = self.servers(
            &format!("{key} servers"),
            &raw.servers,
            trust.as_ref(),
            encrypted,
        )?;
        let rewrite = match &raw.rewrite {
            Some(target) => Some(
                Zone::parse(target.get_ref())
                    .map_err(|p| self.invalid(&format!("{key} rewrite"), target, p))?,
            ),
            None => None,
        };
        if raw.dnssec == Some(true) && raw.rewrite.is_some() {
            return Err(self.invalid_at(
                &format!("{key} dnssec"),
                route.span(),
                "true",
                "a rewrite route's answers cannot be validated: their names are not the ones \
                 that were signed; drop dnssec or rewrite",
            ));
        }
        Ok(RouteConfig {
            zones,
            action: if servers.is_empty() {
                RouteAction::DefaultUpstream
            } else {
                RouteAction::Forward(servers)
            },
            min_ttl: raw.min_ttl,
            timeout: match &raw.timeout {
                Some(t) => Some(self.timeout(&format!("{key} timeout"), Some(t))?),
                None => None,
            },
            max_inflight: self
                .max_inflight(&format!("{key} max_inflight"), raw.max_inflight.as_ref())?,
            strategy: self.strategy(&format!("{key} strategy"), raw.strategy.as_ref())?,
            rewrite,
            filter_aaaa: raw.filter_aaaa,
            dnssec: raw.dnssec,
            addresses: Vec::new(),
            defined_at: self.place(format!("{key} (line {})", self.line_of(route.span()))),
        })
    }

    /// A `[[route]] zones` entry: a zone name, or a prefix such as `"10.0.0.0/8"`
    /// or `"fd00::/8"` for the reverse zones that cover it (as `rev-server=` has them).
    fn route_zones(&self, key: &str, entry: &Spanned<String>) -> Result<Vec<Zone>, ConfigError> {
        let text = entry.get_ref();
        if let Ok(ip) = text.parse::<std::net::IpAddr>() {
            // An address would be taken for a name no query ends in.
            let bits = if ip.is_ipv4() { 32 } else { 128 };
            let problem = format!(
                "{text:?} is an address, not a zone; for its reverse zone write the prefix \
                 \"{text}/{bits}\""
            );
            return Err(self.invalid(key, entry, problem));
        }
        if !text.contains('/') {
            let zone = Zone::parse(text).map_err(|problem| self.invalid(key, entry, problem))?;
            return Ok(vec![zone]);
        }
        let prefix: IpNet = text.parse().map_err(|_| {
            let problem = format!(
                "{text:?} is neither a zone nor a prefix; write a name like \"consul\" or a \
                 prefix like \"10.0.0.0/8\""
            );
            self.invalid(key, entry, problem)
        })?;
        Ok(dnsmasq::reverse_zones(prefix))
    }

    /// A rewrite into a zone that is itself rewritten would need a second pass
    /// (or loop, when it points into its own zone): refuse it.
    pub(super) fn reject_chained_rewrites(
        &self,
        routes: &[RouteConfig],
    ) -> Result<(), ConfigError> {
        for route in routes {
            let Some(target) = &route.rewrite else {
                continue;
            };
            let chained = routes
                .iter()
                .filter(|other| other.rewrite.is_some())
                .flat_map(|other| other.zones.iter().map(move |z| (z, other)))
                .find(|(zone, _)| zone.contains(target.wire()) || target.contains(zone.wire()));
            if let Some((zone, other)) = chained {
                return Err(ConfigError::ChainedRewrite {
                    path: self.path.clone(),
                    at: route.defined_at.clone(),
                    target: target.to_string(),
                    zone: zone.to_string(),
                    other: other.defined_at.clone(),
                });
            }
        }
        Ok(())
    }

    pub(super) fn reject_duplicate_zones(&self, routes: &[RouteConfig]) -> Result<(), ConfigError> {
        let mut seen: HashMap<&Zone, &str> = HashMap::new();
        for route in routes {
            for zone in &route.zones {
                if let Some(first) = seen.insert(zone, &route.defined_at) {
                    return Err(ConfigError::DuplicateZone {
                        path: self.path.clone(),
                        zone: zone.to_string(),
                        first: first.to_string(),
                        second: route.defined_at.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

impl RouteConfig {
    /// A route from rule lines: rules take no options.
    pub(super) fn rule(zones: Vec<Zone>, action: RouteAction, defined_at: String) -> Self {
        Self {
            zones,
            action,
            addresses: Vec::new(),
            min_ttl: None,
            timeout: None,
            max_inflight: None,
            rewrite: None,
            filter_aaaa: None,
            dnssec: None,
            strategy: None,
            defined_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::parse;

    #[test]
    fn duplicate_zone_names_both_places() {
        let text = "rules = [\"server=/consul/127.0.0.1#8600\"]\n[[route]]\nzones = [\"Consul.\"]\nservers = [\"127.0.0.1\"]";
        let err = parse(text).unwrap_err().to_string();
        assert!(
            err.contains("rules[0] (line 1)") && err.contains("[[route]] #1 (line 2)"),
            "{err}"
        );
    }

    #[test]
    fn a_rewrite_route_cannot_be_validated() {
        let err = parse(
            "[[route]]\nzones = [\"infra.local\"]\nrewrite = \"service.consul\"\ndnssec = true",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("[[route]] #1 dnssec") && err.contains("rewrite"),
            "{err}"
        );
    }

    #[test]
    fn chained_rewrites_are_refused() {
        for text in [
            "rules = [\"rewrite=/a.lan/b.lan/\", \"rewrite=/b.lan/service.consul/\"]",
            "rules = [\"rewrite=/infra.local/x.infra.local/\"]",
            "rules = [\"rewrite=/a.lan/service.consul/\", \"rewrite=/web.service.consul/c.lan/\"]",
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains("rewrites do not chain"), "{text}: {err}");
        }
        assert!(
            parse(
                "rules = [\"rewrite=/a.lan/service.consul/\", \"rewrite=/b.lan/service.consul/\"]"
            )
            .is_ok()
        );
    }

    #[test]
    fn address_rules_for_both_families_merge() {
        let c = parse("rules = [\"address=/gw.lan/192.0.2.1\", \"address=/gw.lan/2001:db8::1\"]")
            .unwrap();
        assert_eq!(c.routes.len(), 1);
        assert!(matches!(&c.routes[0].action, RouteAction::Address(a) if a.len() == 2));
    }

    #[test]
    fn route_zones_take_prefixes_for_their_reverse_zones() {
        let c = parse(
            "[[route]]\nzones = [\"10.0.0.0/8\", \"fd00::/8\", \"172.16.0.0/12\"]\nmin_ttl = 5",
        )
        .unwrap();
        let zones: Vec<String> = c.routes[0].zones.iter().map(ToString::to_string).collect();
        assert_eq!(zones.len(), 18);
        assert_eq!(zones[..2], ["10.in-addr.arpa.", "d.f.ip6.arpa."]);
        assert_eq!(zones[2], "16.172.in-addr.arpa.");
        let err = parse("[[route]]\nzones = [\"10.0.0.0/33\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test.toml:2: [[route]] #1 zones") && err.contains("prefix"),
            "{err}"
        );
    }

    /// docs/configuration.md, `[[route]] zones`: "Zones answered by this route ... A prefix
    /// (`\"10.0.0.0/8\"`, `\"fd00::/8\"`) means its reverse zones". An address with no prefix
    /// length is neither: read as a name, no query would end in it, so the config is refused
    /// on its line, with the prefix that names the address's reverse zone.
    #[test]
    fn a_route_zone_that_is_a_bare_address_is_refused_with_its_prefix() {
        for (text, prefix) in [
            ("2001:db8::1", "2001:db8::1/128"),
            ("10.0.0.1", "10.0.0.1/32"),
        ] {
            let err = parse(&format!("[[route]]\nzones = [\"{text}\"]"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("test.toml:2: [[route]] #1 zones") && err.contains(prefix),
                "{err}"
            );
        }
    }
}
