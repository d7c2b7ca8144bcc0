//! Zone -> route, by longest suffix on label boundaries.
//!
//! Zones are keyed by their lowercased wire form, so a query's own lowercased name
//! is looked up suffix by suffix (each suffix starts at a label) with no parsing
//! and no allocation; the first hit is the longest match, and the root is the
//! default route. `notconsul.` never matches `consul.` because suffixes only start
//! on label boundaries.

use hashbrown::HashMap;
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::server_spec::ServerSpec;
use crate::config::{Config, DnssecConfig, RouteAction};
use crate::dns::answer::TtlPolicy;
use crate::dns::rewrite::Rewrite;
use crate::dns::wire::{self, NameBuf};
use crate::dns::zone::{self, Zone};
use crate::observe::metrics::{Metrics, RouteMetrics};
use crate::resolve::upstream::Upstream;

/// What answers the names of a route.
pub enum Action {
    /// Forward to these servers.
    Forward(Arc<Upstream>),
    /// Answered here: NXDOMAIN for names without local data.
    Local,
    /// These addresses for the zone and every name below it. A type none of
    /// them answers goes on to the next less specific zone, as in dnsmasq 2.86+
    /// (see [`Router::route_for`]).
    Address(Arc<[IpAddr]>),
    /// A rewrite route without servers of its own: the rewritten name is routed.
    Reroute,
}

pub struct Route {
    /// The route's first zone: how logs and `check` name it.
    pub zone: Zone,
    pub zones: Vec<Zone>,
    pub action: Action,
    /// `address=` lines beside the zone's other lines: the types they answer
    /// are answered here, the rest by `action`.
    pub addresses: Arc<[IpAddr]>,
    pub ttl: TtlPolicy,
    /// Counters resolved once here, so a query never looks a label up.
    pub metrics: RouteMetrics,
    /// Everything that shapes this route's answers, so a reload can tell an
    /// unchanged route (its cache entries stay) from a changed one.
    spec: Spec,
    /// Names are asked under this zone instead (see [`crate::dns::rewrite`]).
    pub rewrite: Option<Zone>,
    /// AAAA queries get NODATA here, unasked.
    pub filter_aaaa: bool,
    /// `[dnssec] validate` covers its answers: the default upstreams, and
    /// routes with `dnssec = true`.
    pub dnssec: bool,
    /// The route set its own TTL floor; a rerouted name otherwise takes the
    /// floor of the route it lands on.
    own_ttl: bool,
}

/// A route as configured, with the default upstreams spelled out.
#[derive(Debug, Clone, PartialEq)]
struct Spec {
    zones: Vec<Zone>,
    action: RouteAction,
    addresses: Vec<IpAddr>,
    servers: Vec<ServerSpec>,
    timeout: Duration,
    max_inflight: usize,
    ttl: TtlPolicy,
    rewrite: Option<Zone>,
    filter_aaaa: bool,
    dnssec: bool,
    /// `[dnssec]` while it validates: a reload that changes it changes what
    /// the cached answers' AD bits mean.
    validation: Option<DnssecConfig>,
}

/// A route of one router, by position: valid for the router it came from.
/// Found for a name, it also remembers whether the name lies in an `address=`
/// zone that passed the type asked on to this route (see
/// [`Router::route_id`]): the name has that zone's addresses, so it exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RouteId {
    index: usize,
    in_address_zone: bool,
}

/// The route in effect for one name, after its route's rewrite if any: who
/// answers it, under which name, with which TTL bounds.
pub struct EffectiveRoute<'a> {
    pub action: &'a Action,
    /// The name to ask: the client's, or the rewritten one.
    pub ask: NameBuf,
    pub ttl: TtlPolicy,
    pub rewrite: Option<Rewrite<'a>>,
}

impl Route {
    /// The root route: names no zone covers.
    pub fn is_default(&self) -> bool {
        self.zone.wire() == [0]
    }

    /// Whether `address=` lines of the route answer `qtype` (ANY included:
    /// it is answered here, never forwarded).
    pub fn answers_type(&self, qtype: u16) -> bool {
        let ips = match &self.action {
            Action::Address(ips) => ips,
            _ => &self.addresses,
        };
        qtype == wire::TYPE_ANY
            || ips.iter().any(|ip| match ip {
                IpAddr::V4(_) => qtype == wire::TYPE_A,
                IpAddr::V6(_) => qtype == wire::TYPE_AAAA,
            })
    }

    /// A zone with only `address=` lines, none of them for `qtype`.
    fn passes_on(&self, qtype: u16) -> bool {
        matches!(self.action, Action::Address(_)) && !self.answers_type(qtype)
    }

    /// The offset in `lower` of the route's zone that holds it (the longest,
    /// when several do); 0 when none does.
    pub(crate) fn zone_in(&self, lower: &[u8]) -> usize {
        self.zones
            .iter()
            .filter(|z| z.contains(lower))
            .map(|z| lower.len() - z.wire().len())
            .min()
            .unwrap_or(0)
    }
}

pub struct Router {
    by_zone: HashMap<Box<[u8]>, usize>,
    routes: Vec<Route>,
    /// The names above the zones of routes: every zone has a name, its apex (a local
    /// zone's holds the SOA its negative answers carry), so these are empty
    /// non-terminals (RFC 8020 §2).
    above_zones: hashbrown::HashSet<Box<[u8]>>,
}

impl Router {
    /// Builds the table from `config`; `default_servers` are the upstreams of the
    /// root (from the config or resolv.conf). Its counters are not exported:
    /// a server uses [`Router::with_metrics`].
    pub fn new(config: &Config, default_servers: Vec<ServerSpec>) -> Self {
        Self::with_metrics(config, default_servers, &Metrics::default())
    }

    /// [`Router::new`], with every route and upstream server counted in `metrics`
    /// under the route's first zone.
    pub fn with_metrics(
        config: &Config,
        default_servers: Vec<ServerSpec>,
        metrics: &Metrics,
    ) -> Self {
        let cache = &config.cache;
        let policy = |min_ttl: Option<u32>| TtlPolicy {
            min: min_ttl.unwrap_or(cache.min_ttl),
            max: cache.max_ttl,
            max_negative: cache.max_negative_ttl,
        };
        let up = &config.upstream;
        let default_spec = Spec {
            zones: vec![Zone::root()],
            action: RouteAction::DefaultUpstream,
            addresses: Vec::new(),
            servers: default_servers.clone(),
            timeout: up.timeout,
            max_inflight: up.max_inflight,
            ttl: policy(None),
            rewrite: None,
            filter_aaaa: up.filter_aaaa,
            dnssec: true,
            validation: config.dnssec.validate.then(|| config.dnssec.clone()),
        };
        let root = Zone::root().to_string();
        let default = Arc::new(
            Upstream::new(default_servers, up.timeout, up.max_inflight, up.strategy)
                .observed(metrics, &root),
        );
        let mut routes = vec![Route {
            zone: Zone::root(),
            zones: vec![Zone::root()],
            action: Action::Forward(Arc::clone(&default)),
            addresses: Arc::new([]),
            ttl: policy(None),
            metrics: metrics.route(&root),
            spec: default_spec.clone(),
            rewrite: None,
            filter_aaaa: up.filter_aaaa,
            dnssec: true,
            own_ttl: false,
        }];
        for rc in &config.routes {
            let timeout: Duration = rc.timeout.unwrap_or(up.timeout);
            let max_inflight = rc.max_inflight.unwrap_or(up.max_inflight);
            let label = rc.zones[0].to_string();
            let filter_aaaa = rc.filter_aaaa.unwrap_or(up.filter_aaaa);
            // Names sent to the default upstreams are the public tree's; a
            // route of its own is private data, unsigned and under no DS.
            let dnssec = rc.dnssec.unwrap_or(
                matches!(rc.action, RouteAction::DefaultUpstream) && rc.rewrite.is_none(),
            );
            let spec = match &rc.action {
                RouteAction::DefaultUpstream => Spec {
                    zones: rc.zones.clone(),
                    addresses: rc.addresses.clone(),
                    ttl: policy(rc.min_ttl),
                    rewrite: rc.rewrite.clone(),
                    filter_aaaa,
                    dnssec,
                    ..default_spec.clone()
                },
                action => Spec {
                    zones: rc.zones.clone(),
                    action: action.clone(),
                    addresses: rc.addresses.clone(),
                    servers: Vec::new(),
                    rewrite: rc.rewrite.clone(),
                    filter_aaaa,
                    dnssec,
                    validation: default_spec.validation.clone(),
                    timeout,
                    max_inflight,
                    ttl: policy(rc.min_ttl),
                },
            };
            let strategy = rc.strategy.unwrap_or(up.strategy);
            let action = match &rc.action {
                RouteAction::DefaultUpstream if rc.rewrite.is_some() => Action::Reroute,
                RouteAction::Forward(servers) => Action::Forward(Arc::new(
                    Upstream::new(servers.clone(), timeout, max_inflight, strategy)
                        .observed(metrics, &label),
                )),
                RouteAction::DefaultUpstream => Action::Forward(Arc::clone(&default)),
                RouteAction::Local => Action::Local,
                RouteAction::Address(ips) => Action::Address(ips.clone().into()),
            };
            routes.push(Route {
                zone: rc.zones[0].clone(),
                zones: rc.zones.clone(),
                action,
                addresses: rc.addresses.clone().into(),
                ttl: policy(rc.min_ttl),
                metrics: metrics.route(&label),
                spec,
                rewrite: rc.rewrite.clone(),
                filter_aaaa,
                dnssec,
                own_ttl: rc.min_ttl.is_some(),
            });
        }
        let by_zone = routes
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.zones.iter().map(move |z| (Box::from(z.wire()), i)))
            .collect();
        let above_zones = routes
            .iter()
            .flat_map(|r| &r.zones)
            .flat_map(|z| zone::suffixes(z.wire()).skip(1))
            .filter(|above| above.len() > 1)
            .map(Box::from)
            .collect();
        Self {
            by_zone,
            routes,
            above_zones,
        }
    }

    /// The route of a lowercased wire-format name.
    pub fn route(&self, lower: &[u8]) -> &Route {
        let found = zone::suffixes(lower).find_map(|suffix| self.by_zone.get(suffix));
        &self.routes[found.copied().unwrap_or(0)]
    }

    /// The route of a lowercased wire-format name asked with type `qtype`:
    /// [`Router::route`], except that a zone with only `address=` lines, none
    /// of them of that type, passes the query on to the next less specific
    /// zone. dnsmasq(8), `--address`: "From 2.86, the query is sent upstream";
    /// dnsmasq 2.90 tried by hand sends AAAA for a name under
    /// `address=/b.z/192.0.2.1` to the servers of `server=/z/...`.
    pub fn route_for(&self, lower: &[u8], qtype: u16) -> &Route {
        self.get(self.route_id(lower, qtype))
    }

    /// [`Router::route_for`] as an index into this router's routes, for a
    /// query that carries its route across an await.
    pub(crate) fn route_id(&self, lower: &[u8], qtype: u16) -> RouteId {
        let mut in_address_zone = false;
        for suffix in zone::suffixes(lower) {
            if let Some(&index) = self.by_zone.get(suffix) {
                if !self.routes[index].passes_on(qtype) {
                    return RouteId {
                        index,
                        in_address_zone,
                    };
                }
                in_address_zone = true;
            }
        }
        RouteId {
            index: 0,
            in_address_zone,
        }
    }

    /// Whether a lowercased wire name, routed by `id` (from
    /// [`Router::route_id`] for that name), exists by the rules, though its
    /// route has no records for it (RFC 8020 §2: NXDOMAIN would say nothing
    /// exists at or below it): an `address=` zone it passed on the way to its
    /// route holds it (the name has that zone's addresses, only not of the
    /// type asked), or a zone with names lies below it (an empty
    /// non-terminal). Local data is the caller's to check.
    pub(crate) fn holds(&self, lower: &[u8], id: RouteId) -> bool {
        id.in_address_zone || self.above_zones.contains(lower)
    }

    /// The route `id` names (from [`Router::route_id`] of this router).
    pub(crate) fn get(&self, id: RouteId) -> &Route {
        &self.routes[id.index]
    }

    /// Where `lower`, whose route is `route`, is answered. `None` when a
    /// rewrite cannot apply (the rewritten name would be too long).
    pub fn effective_route<'a>(
        &'a self,
        route: &'a Route,
        lower: &NameBuf,
    ) -> Option<EffectiveRoute<'a>> {
        let Some(to) = &route.rewrite else {
            return Some(EffectiveRoute {
                action: &route.action,
                ask: *lower,
                ttl: route.ttl,
                rewrite: None,
            });
        };
        let zone = route
            .zones
            .iter()
            .filter(|z| z.contains(lower.as_bytes()))
            .max_by_key(|z| z.wire().len())?;
        let rewrite = Rewrite { zone, target: to };
        let ask = rewrite.forward(lower.as_bytes())?;
        let (action, ttl) = match route.action {
            Action::Reroute => {
                let next = self.route(ask.as_bytes());
                let ttl = if route.own_ttl { route.ttl } else { next.ttl };
                (&next.action, ttl)
            }
            _ => (&route.action, route.ttl),
        };
        Some(EffectiveRoute {
            action,
            ask,
            ttl,
            rewrite: Some(rewrite),
        })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The distinct upstream groups, in route order: routes that use the
    /// default upstreams share one group, which is listed once.
    pub fn upstream_groups(&self) -> Vec<&Arc<Upstream>> {
        let mut seen: Vec<&Arc<Upstream>> = Vec::new();
        for route in &self.routes {
            if let Action::Forward(upstream) = &route.action
                && !seen.iter().any(|u| Arc::ptr_eq(u, upstream))
            {
                seen.push(upstream);
            }
        }
        seen
    }

    /// `Ok` when every forwarding route has a server that is up (see
    /// [`ServerHealth::is_up`](crate::resolve::health::ServerHealth::is_up));
    /// otherwise the routes that have none, one per line, for the `/health`
    /// body.
    pub(crate) fn check_health(&self, window: Duration) -> Result<(), String> {
        let now = Instant::now();
        let mut problems = String::new();
        for route in &self.routes {
            let Action::Forward(upstream) = &route.action else {
                continue;
            };
            let servers = upstream.members();
            if servers.is_empty() {
                let _ = writeln!(problems, "route {}: no upstream servers", route.zone);
            } else if !servers.iter().any(|s| s.health().is_up(window, now)) {
                let names: Vec<String> = servers.iter().map(|s| s.addr().to_string()).collect();
                let _ = writeln!(
                    problems,
                    "route {}: no answer from {} for {:?} or more",
                    route.zone,
                    names.join(", "),
                    window
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The servers of the default route (from the config or resolv.conf).
    pub fn default_servers(&self) -> Vec<ServerSpec> {
        self.routes[0].spec.servers.clone()
    }

    /// Whether `lower` is routed the same way here and in `other`: the same
    /// zone, configured the same. Its cached answers stay valid across a
    /// reload exactly then.
    pub fn routes_alike(&self, other: &Self, lower: &[u8]) -> bool {
        self.specs(lower).eq(other.specs(lower))
    }

    /// The specs of every route `lower` may take, whatever its type: its own
    /// and, past zones with only `address=` lines, the next ones up.
    fn specs<'a>(&'a self, lower: &'a [u8]) -> impl Iterator<Item = &'a Spec> + 'a {
        let mut found = zone::suffixes(lower).filter_map(|suffix| self.by_zone.get(suffix));
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let route = &self.routes[found.next().copied().unwrap_or(0)];
            done = !matches!(route.action, Action::Address(_));
            Some(&route.spec)
        })
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
            if let Some(target) = &route.rewrite {
                write!(f, "rewrite to {target} ")?;
            }
            if !route.addresses.is_empty() {
                let ips: Vec<String> = route.addresses.iter().map(ToString::to_string).collect();
                write!(f, "address {}; other types: ", ips.join(", "))?;
            }
            if !route.addresses.is_empty() && matches!(route.action, Action::Local) {
                writeln!(f, "NODATA")?;
                continue;
            }
            match &route.action {
                Action::Forward(up) if up.servers().is_empty() => {
                    write!(f, "(no servers: SERVFAIL)")?
                }
                Action::Forward(up) => {
                    let servers: Vec<&str> = up.members().iter().map(|s| s.label()).collect();
                    write!(f, "{}", servers.join(", "))?;
                }
                Action::Local => write!(f, "local (NXDOMAIN where no name exists)")?,
                Action::Address(ips) => {
                    let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
                    write!(
                        f,
                        "address {} (other types: as the zone above)",
                        ips.join(", ")
                    )?;
                }
                Action::Reroute => write!(f, "(routed by the rewritten name)")?,
            }
            if route.filter_aaaa {
                write!(f, " (filter_aaaa)")?;
            }
            if route.ttl.min > 0 {
                write!(f, " (min_ttl {})", route.ttl.min)?;
            }
            match &route.action {
                Action::Forward(up) if up.strategy() != crate::config::Strategy::Failover => {
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
    fn only_changed_routes_differ_across_configs() {
        let old = router("rules = [\"server=/consul/127.0.0.1#8600\", \"local=/lan/\"]");
        let new = router(
            "rules = [\"server=/consul/127.0.0.1#8601\", \"local=/lan/\", \"local=/a.example/\"]",
        );
        let name = |n: &str| Zone::parse(n).unwrap().wire().to_vec();
        assert!(!old.routes_alike(&new, &name("web.service.consul")));
        assert!(old.routes_alike(&new, &name("x.lan")));
        assert!(old.routes_alike(&new, &name("example.com")));
        assert!(!old.routes_alike(&new, &name("b.a.example")));
    }

    /// A cached answer's AD bit is the validator's verdict, or the upstream's
    /// word when nothing validates: switching validation changes every route's
    /// answers, and `dnssec = true` changes that route's.
    #[test]
    fn a_change_of_validation_changes_the_routes() {
        let off = router("rules = [\"server=/consul/127.0.0.1#8600\"]");
        let on = router("rules = [\"server=/consul/127.0.0.1#8600\"]\n[dnssec]\nvalidate = true");
        let name = |n: &str| Zone::parse(n).unwrap().wire().to_vec();
        assert!(!off.routes_alike(&on, &name("example.com")));
        assert!(!off.routes_alike(&on, &name("web.service.consul")));
        let route = "[[route]]\nzones = [\"corp\"]\nservers = [\"10.0.0.53\"]\n";
        let private = router(&format!("{route}[dnssec]\nvalidate = true"));
        let signed = router(&format!("{route}dnssec = true\n[dnssec]\nvalidate = true"));
        assert!(!private.routes_alike(&signed, &name("x.corp")));
        assert!(private.routes_alike(&signed, &name("example.com")));
        assert!(private.route(&name("example.com")).dnssec);
        assert!(!private.route(&name("x.corp")).dnssec);
        assert!(signed.route(&name("x.corp")).dnssec);
    }

    #[test]
    fn address_only_zones_pass_other_types_to_the_zone_above() {
        let r =
            router("rules = [\"server=/consul/127.0.0.1#8600\", \"address=/b.consul/192.0.2.7\"]");
        let name = Zone::parse("x.b.consul").unwrap();
        let zone = |qtype| r.route_for(name.wire(), qtype).zone.to_string();
        assert_eq!(zone(wire::TYPE_A), "b.consul.");
        assert_eq!(zone(wire::TYPE_ANY), "b.consul.");
        assert_eq!(zone(wire::TYPE_AAAA), "consul.");
        assert_eq!(zone(15), "consul.");
    }

    #[test]
    fn names_at_address_zones_and_above_zones_with_names_exist() {
        let r = router(
            "rules = [\"local=/lan/\", \"address=/gw.lan/192.0.2.1\", \"server=/infra.corp/127.0.0.1\", \"local=/empty.corp/\"]",
        );
        let holds = |name: &str| {
            let lower = Zone::parse(name).unwrap();
            let id = r.route_id(lower.wire(), wire::TYPE_AAAA);
            r.holds(lower.wire(), id)
        };
        assert!(holds("gw.lan"), "A from the address= zone");
        assert!(holds("x.gw.lan"));
        assert!(holds("lan"), "above gw.lan");
        assert!(holds("corp"), "above infra.corp");
        assert!(!holds("nas.lan"));
        assert!(!holds("x.empty.corp"));
        let lan = Zone::parse("x.lan").unwrap();
        assert_eq!(r.route(lan.wire()).zone_in(lan.wire()), 2);
    }

    #[test]
    fn a_changed_zone_above_an_address_only_zone_changes_its_names() {
        let old =
            router("rules = [\"server=/consul/127.0.0.1#8600\", \"address=/b.consul/192.0.2.7\"]");
        let new =
            router("rules = [\"server=/consul/127.0.0.1#8601\", \"address=/b.consul/192.0.2.7\"]");
        let name = |n: &str| Zone::parse(n).unwrap().wire().to_vec();
        assert!(
            !old.routes_alike(&new, &name("x.b.consul")),
            "AAAA went to 8600"
        );
        assert!(old.routes_alike(&old, &name("x.b.consul")));
        assert!(old.routes_alike(&new, &name("example.com")));
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
