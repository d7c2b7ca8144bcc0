//! Rule lines for the same zone accumulate, as they do in dnsmasq.
//!
//! dnsmasq's man page (`--server`): "More than one --server flag is allowed,
//! with repeated domain or ipaddr parts as required", and `--address`: "To give
//! multiple addresses or both IPv4 and IPv6 addresses for a domain, use repeated
//! --address flags." So `server=/z/a` and `server=/z/b` are one route with
//! servers a then b, `server=/a/b/ip` gives both zones that server, and every
//! line about a zone adds to what the zone already has. Here the lines of every
//! rule source (the main file's `rules`, then each drop-in file in order) are
//! folded into one route per zone.
//!
//! When lines of different kinds name the same zone, dnsmasq (2.86 and later,
//! `filter_servers` in `domain-match.c`) keeps them all and picks per query, in
//! this order: an `address=` of the query's type, `server=/z/#` (the standard
//! servers), `server=/z/IP`, and last `server=/z/` / `local=/z/` (answered here).
//! A type that no `address=` of the zone answers, in a zone with nothing else,
//! goes on to the next less specific zone (its man page: "From 2.86, the query is
//! sent upstream"; "to restore the pre-2.86 behaviour, use --address=/example.com/1.2.3.4
//! --local=/example.com/").

use std::collections::HashMap;
use std::net::IpAddr;

use super::dnsmasq::{Rule, RuleAction};
use super::server_spec::ServerSpec;
use super::{RouteAction, RouteConfig};
use crate::dns::zone::Zone;

/// A zone rule line and where it was written.
pub(super) struct Placed {
    pub(super) rule: Rule,
    pub(super) at: String,
}

/// Two lines that cannot both hold for one zone.
#[derive(Debug)]
pub(super) struct Conflict {
    pub(super) zone: Zone,
    pub(super) first: String,
    pub(super) second: String,
    pub(super) problem: &'static str,
}

/// Everything the lines say about one zone.
#[derive(Default)]
struct ZoneRules {
    servers: Vec<ServerSpec>,
    /// `server=/z/#`.
    standard: bool,
    /// `server=/z/`, `local=/z/`, `address=/z/`.
    local: bool,
    addresses: Vec<IpAddr>,
    /// `rewrite=/z/target/` and the line that said it.
    rewrite: Option<(Zone, String)>,
    /// The lines about this zone, by their index: zones named by exactly the
    /// same lines make one route (`server=/a/b/ip` stays one route).
    lines: Vec<usize>,
}

/// Folds zone rule lines (everything but `server=IP` and records) into routes,
/// one per set of zones named by the same lines, in the order zones first appear.
pub(super) fn fold(placed: &[Placed]) -> Result<Vec<RouteConfig>, Conflict> {
    let mut order: Vec<Zone> = Vec::new();
    let mut by_zone: HashMap<Zone, ZoneRules> = HashMap::new();
    for (i, line) in placed.iter().enumerate() {
        let names = match &line.rule {
            Rule::Zones { zones, .. } | Rule::Rewrite { zones, .. } => zones,
            Rule::DefaultServer(_) | Rule::Records(_) | Rule::Dnssec(_) => continue,
        };
        for zone in names {
            let rules = by_zone.entry(zone.clone()).or_insert_with(|| {
                order.push(zone.clone());
                ZoneRules::default()
            });
            match &line.rule {
                Rule::Rewrite { target, .. } => set_rewrite(rules, zone, target, &line.at)?,
                Rule::Zones { action, .. } => add(rules, action),
                Rule::DefaultServer(_) | Rule::Records(_) | Rule::Dnssec(_) => {}
            }
            if rules.lines.last() != Some(&i) {
                rules.lines.push(i);
            }
        }
    }
    let mut routes: Vec<(Vec<usize>, RouteConfig)> = Vec::new();
    for zone in order {
        let rules = by_zone
            .remove(&zone)
            .expect("every zone in order has rules");
        if let Some((_, route)) = routes.iter_mut().find(|(lines, _)| *lines == rules.lines) {
            route.zones.push(zone);
            continue;
        }
        let first = &placed[rules.lines[0]].at;
        let route = resolve(&zone, &rules, first, placed)?;
        routes.push((rules.lines, route));
    }
    Ok(routes.into_iter().map(|(_, route)| route).collect())
}

fn add(rules: &mut ZoneRules, action: &RuleAction) {
    match action {
        RuleAction::Forward(servers) => {
            for server in servers {
                if !rules.servers.contains(server) {
                    rules.servers.push(server.clone());
                }
            }
        }
        RuleAction::DefaultUpstream => rules.standard = true,
        RuleAction::Local => rules.local = true,
        RuleAction::Address(ips) => {
            for ip in ips {
                if !rules.addresses.contains(ip) {
                    rules.addresses.push(*ip);
                }
            }
        }
    }
}

fn set_rewrite(
    rules: &mut ZoneRules,
    zone: &Zone,
    target: &Zone,
    at: &str,
) -> Result<(), Conflict> {
    match &rules.rewrite {
        Some((existing, first)) if existing != target => Err(Conflict {
            zone: zone.clone(),
            first: first.clone(),
            second: at.to_string(),
            problem: "the zone is rewritten to two different targets; keep one rewrite= line",
        }),
        Some(_) => Ok(()),
        None => {
            rules.rewrite = Some((target.clone(), at.to_string()));
            Ok(())
        }
    }
}

/// The route a zone's lines make, by dnsmasq's order of precedence (see the
/// module comment).
fn resolve(
    zone: &Zone,
    rules: &ZoneRules,
    first: &str,
    placed: &[Placed],
) -> Result<RouteConfig, Conflict> {
    if let Some((target, at)) = &rules.rewrite {
        // splitdns's own line: a rewrite route forwards, to the zone's
        // server= lines or, without them, where the rewritten name is routed.
        let other = rules.lines.iter().map(|&i| &placed[i]).find(|p| {
            matches!(&p.rule, Rule::Zones { action, .. }
                    if !matches!(action, RuleAction::Forward(_)))
        });
        if let Some(other) = other {
            return Err(Conflict {
                zone: zone.clone(),
                first: at.clone(),
                second: other.at.clone(),
                problem: "a rewritten zone is forwarded: only server=/ZONE/IP lines can go with \
                          its rewrite= line (not local=, address= or server=/ZONE/#)",
            });
        }
        let action = if rules.servers.is_empty() {
            RouteAction::DefaultUpstream
        } else {
            RouteAction::Forward(rules.servers.clone())
        };
        let mut route = RouteConfig::rule(vec![zone.clone()], action, first.to_string());
        route.rewrite = Some(target.clone());
        return Ok(route);
    }
    let (action, addresses) = if rules.standard {
        (RouteAction::DefaultUpstream, rules.addresses.clone())
    } else if !rules.servers.is_empty() {
        (
            RouteAction::Forward(rules.servers.clone()),
            rules.addresses.clone(),
        )
    } else if rules.local {
        (RouteAction::Local, rules.addresses.clone())
    } else {
        (RouteAction::Address(rules.addresses.clone()), Vec::new())
    };
    let mut route = RouteConfig::rule(vec![zone.clone()], action, first.to_string());
    route.addresses = addresses;
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold_lines(lines: &[&str]) -> Result<Vec<RouteConfig>, Conflict> {
        let placed: Vec<Placed> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| Placed {
                rule: Rule::parse(l).unwrap(),
                at: format!("line {}", i + 1),
            })
            .collect();
        fold(&placed)
    }

    fn servers(list: &[&str]) -> RouteAction {
        RouteAction::Forward(list.iter().map(|s| s.parse().unwrap()).collect())
    }

    /// dnsmasq(8) `--server`: "More than one --server flag is allowed, with
    /// repeated domain or ipaddr parts as required."
    #[test]
    fn repeated_server_lines_make_one_group_in_order() {
        let routes = fold_lines(&[
            "server=/consul/10.0.0.5#8600",
            "server=/consul/10.0.0.6#8600",
        ])
        .unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(
            routes[0].action,
            servers(&["10.0.0.5:8600", "10.0.0.6:8600"])
        );
        assert_eq!(routes[0].defined_at, "line 1");
    }

    #[test]
    fn one_line_for_two_zones_stays_one_route_until_one_zone_gets_more() {
        let routes = fold_lines(&["server=/a/b/192.0.2.1"]).unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].zones.len(), 2);
        let routes = fold_lines(&["server=/a/b/192.0.2.1", "server=/b/192.0.2.2"]).unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].action, servers(&["192.0.2.1:53"]));
        assert_eq!(routes[1].action, servers(&["192.0.2.1:53", "192.0.2.2:53"]));
    }

    /// dnsmasq 2.90 tried by hand: with `server=/z/#` and `server=/z/IP`, in
    /// either order, z goes to the standard servers; with `server=/z/` and
    /// `server=/z/IP`, to IP.
    #[test]
    fn precedence_follows_dnsmasq() {
        for lines in [
            ["server=/z/#", "server=/z/192.0.2.1"],
            ["server=/z/192.0.2.1", "server=/z/#"],
            ["local=/z/", "server=/z/#"],
        ] {
            let routes = fold_lines(&lines).unwrap();
            assert_eq!(routes[0].action, RouteAction::DefaultUpstream, "{lines:?}");
        }
        for lines in [
            ["server=/z/", "server=/z/192.0.2.1"],
            ["server=/z/192.0.2.1", "local=/z/"],
            ["address=/z/", "server=/z/192.0.2.1"],
        ] {
            let routes = fold_lines(&lines).unwrap();
            assert_eq!(routes[0].action, servers(&["192.0.2.1:53"]), "{lines:?}");
        }
    }

    #[test]
    fn addresses_stay_beside_the_other_lines_of_their_zone() {
        let routes = fold_lines(&["address=/z/192.0.2.7", "local=/z/"]).unwrap();
        assert_eq!(routes[0].action, RouteAction::Local);
        assert_eq!(
            routes[0].addresses,
            ["192.0.2.7".parse::<IpAddr>().unwrap()]
        );
        let routes = fold_lines(&["address=/z/192.0.2.7", "address=/z/2001:db8::7"]).unwrap();
        assert!(matches!(&routes[0].action, RouteAction::Address(a) if a.len() == 2));
        assert!(routes[0].addresses.is_empty());
    }

    #[test]
    fn rewrite_takes_the_servers_of_its_zone() {
        let routes = fold_lines(&[
            "server=/infra.local/192.0.2.1#8600",
            "rewrite=/infra.local/service.consul/",
            "server=/infra.local/192.0.2.2#8600",
        ])
        .unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(
            routes[0].action,
            servers(&["192.0.2.1:8600", "192.0.2.2:8600"])
        );
        assert_eq!(
            routes[0].rewrite,
            Some(Zone::parse("service.consul").unwrap())
        );
    }

    #[test]
    fn rewrite_conflicts_name_both_lines() {
        let c =
            fold_lines(&["rewrite=/a.lan/b.example/", "rewrite=/a.lan/c.example/"]).unwrap_err();
        assert_eq!((c.first.as_str(), c.second.as_str()), ("line 1", "line 2"));
        assert_eq!(c.zone.to_string(), "a.lan.");
        let c = fold_lines(&["local=/a.lan/", "rewrite=/a.lan/b.example/"]).unwrap_err();
        assert_eq!((c.first.as_str(), c.second.as_str()), ("line 2", "line 1"));
        assert!(fold_lines(&["rewrite=/a.lan/b.example/", "rewrite=/a.lan/b.example/"]).is_ok());
    }

    #[test]
    fn rev_server_lines_accumulate() {
        let routes = fold_lines(&[
            "rev-server=10.0.0.0/8,192.0.2.1",
            "rev-server=10.0.0.0/8,192.0.2.2",
        ])
        .unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].action, servers(&["192.0.2.1:53", "192.0.2.2:53"]));
    }
}
