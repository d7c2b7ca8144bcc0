//! Zone -> route, by longest suffix on label boundaries.
//!
//! Zones are keyed by their lowercased wire form, so a query's own lowercased name
//! is looked up suffix by suffix (each suffix starts at a label) with no parsing
//! and no allocation; the first hit is the longest match, and the root is the
//! default route. `notconsul.` never matches `consul.` because suffixes only start
//! on label boundaries.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::answer::TtlPolicy;
use crate::config::{Config, RouteAction};
use crate::upstream::Upstream;
use crate::zone::Zone;

/// What answers the names of a route.
pub enum Action {
    /// Forward to these servers.
    Forward(Arc<Upstream>),
    /// Answered here: NXDOMAIN for names without local data.
    Local,
    /// These addresses for the zone and every name below it; other types NODATA.
    Address(Arc<[IpAddr]>),
}

pub struct Route {
    /// The route's first zone: how logs and `check` name it.
    pub zone: Zone,
    pub zones: Vec<Zone>,
    pub action: Action,
    pub ttl: TtlPolicy,
}

pub struct Router {
    by_zone: HashMap<Box<[u8]>, usize>,
    routes: Vec<Route>,
}

impl Router {
    /// Builds the table from `config`; `default_servers` are the upstreams of the
    /// root (from the config or resolv.conf).
    pub fn new(config: &Config, default_servers: Vec<SocketAddr>) -> Self {
        let cache = &config.cache;
        let policy = |min_ttl: Option<u32>| TtlPolicy {
            min: min_ttl.unwrap_or(cache.min_ttl),
            max: cache.max_ttl,
            max_negative: cache.max_negative_ttl,
        };
        let up = &config.upstream;
        let default = Arc::new(Upstream::new(
            default_servers,
            up.timeout,
            up.max_inflight,
            up.strategy,
        ));
        let mut routes = vec![Route {
            zone: Zone::root(),
            zones: vec![Zone::root()],
            action: Action::Forward(Arc::clone(&default)),
            ttl: policy(None),
        }];
        for rc in &config.routes {
            let timeout: Duration = rc.timeout.unwrap_or(up.timeout);
            let action = match &rc.action {
                RouteAction::Forward(servers) => Action::Forward(Arc::new(Upstream::new(
                    servers.clone(),
                    timeout,
                    rc.max_inflight.unwrap_or(up.max_inflight),
                    rc.strategy.unwrap_or(up.strategy),
                ))),
                RouteAction::DefaultUpstream => Action::Forward(Arc::clone(&default)),
                RouteAction::Local => Action::Local,
                RouteAction::Address(ips) => Action::Address(ips.clone().into()),
            };
            routes.push(Route {
                zone: rc.zones[0].clone(),
                zones: rc.zones.clone(),
                action,
                ttl: policy(rc.min_ttl),
            });
        }
        let by_zone = routes
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.zones.iter().map(move |z| (Box::from(z.wire()), i)))
            .collect();
        Self { by_zone, routes }
    }

    /// The route of a lowercased wire-format name.
    pub fn route(&self, lower: &[u8]) -> &Route {
        let mut at = 0;
        while at < lower.len() {
            if let Some(&i) = self.by_zone.get(&lower[at..]) {
                return &self.routes[i];
            }
            at += usize::from(lower[at]) + 1;
        }
        &self.routes[0]
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

/// The routing table as `check` prints it: one line per zone, longest first.
impl fmt::Display for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines: Vec<(&Zone, &Route)> = self
            .routes
            .iter()
            .flat_map(|r| r.zones.iter().map(move |z| (z, r)))
            .collect();
        lines.sort_by_key(|(z, _)| (std::cmp::Reverse(z.wire().len()), z.to_string()));
        for (zone, route) in lines {
            write!(f, "{zone} -> ")?;
            match &route.action {
                Action::Forward(up) if up.servers().is_empty() => {
                    write!(f, "(no servers: SERVFAIL)")?
                }
                Action::Forward(up) => {
                    let servers: Vec<String> =
                        up.servers().iter().map(ToString::to_string).collect();
                    write!(f, "{}", servers.join(", "))?;
                }
                Action::Local => write!(f, "local (NXDOMAIN unless local data)")?,
                Action::Address(ips) => {
                    let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                    write!(f, "address {}", ips.join(", "))?;
                }
            }
            if route.ttl.min > 0 {
                write!(f, " (min_ttl {})", route.ttl.min)?;
            }
            match &route.action {
                Action::Forward(up) if up.strategy() != crate::health::Strategy::Failover => {
                    write!(f, " (strategy {})", up.strategy())?
                }
                _ => {}
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn router(text: &str) -> Router {
        let config = Config::from_toml(text, Path::new("t.toml")).unwrap();
        Router::new(&config, vec!["192.0.2.53:53".parse().unwrap()])
    }

    fn zone_of(r: &Router, name: &str) -> String {
        r.route(Zone::parse(name).unwrap().wire()).zone.to_string()
    }

    #[test]
    fn longest_suffix_on_label_boundaries() {
        let r = router(
            "rules = [\"server=/consul/127.0.0.1#8600\", \"server=/a.consul/127.0.0.1#8601\"]",
        );
        assert_eq!(zone_of(&r, "web.service.consul"), "consul.");
        assert_eq!(zone_of(&r, "x.a.consul"), "a.consul.");
        assert_eq!(zone_of(&r, "consul"), "consul.");
        assert_eq!(zone_of(&r, "notconsul"), ".");
        assert_eq!(zone_of(&r, "example.com"), ".");
    }

    #[test]
    fn check_output_lists_every_zone() {
        let r = router("rules = [\"server=/consul/127.0.0.1#8600\", \"local=/lan/\"]");
        let text = r.to_string();
        assert!(text.contains("consul. -> 127.0.0.1:8600"), "{text}");
        assert!(text.contains("lan. -> local"), "{text}");
        assert!(text.contains(". -> 192.0.2.53:53"), "{text}");
    }
}
