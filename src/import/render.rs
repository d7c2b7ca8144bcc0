//! The TOML a [`Translation`] comes to: the main config, table by table, with
//! dnsmasq's defaults written out where splitdns's differ and a comment where
//! the two behave differently.

use std::fmt::Write as _;
use std::path::Path;

use super::translate::{RuleLine, Translation, quote};
use super::user::SPLITDNS_USER;

/// dnsmasq's defaults, where splitdns's differ.
const DNSMASQ_CACHE_SIZE: u64 = 150;
const DNSMASQ_FORWARD_MAX: usize = 150;
const DNSMASQ_HOSTS: &str = "/etc/hosts";

/// The main config; with `split`, it includes that directory and holds only
/// the rules read outside conf-dir files.
pub(super) fn main_config(out: &Translation, origin: &Path, split: Option<&Path>) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# splitdns config imported from dnsmasq config {}.",
        origin.display()
    );
    let _ = writeln!(t, "# Check it with `splitdns check --config FILE`.");
    if !out.notes.is_empty() {
        let _ = writeln!(t, "#\n# dnsmasq options with nothing to carry over:");
        for note in &out.notes {
            let _ = writeln!(t, "#   {note}");
        }
    }
    t.push('\n');
    if let Some(dir) = split {
        t.push_str("# The rules of each dnsmasq conf-dir file, one fragment per file.\n");
        let _ = writeln!(t, "include = [{}]", quote(&dir.display().to_string()));
    }
    rules_list(out, &mut t, split.is_some());
    server_table(out, &mut t);
    upstream_table(out, &mut t);
    cache_table(out, &mut t);
    local_table(out, &mut t);
    log_table(out, &mut t);
    t
}

fn rules_list(out: &Translation, t: &mut String, split: bool) {
    let rules: Vec<&RuleLine> = out
        .rules
        .iter()
        .filter(|r| !split || r.fragment.is_none())
        .collect();
    if rules.is_empty() {
        t.push_str("rules = []\n");
        return;
    }
    t.push_str("rules = [\n");
    for rule in rules {
        let _ = writeln!(t, "    {},  # {}", quote(&rule.text), rule.at);
    }
    t.push_str("]\n");
}

fn server_table(out: &Translation, t: &mut String) {
    let port = out.port.unwrap_or(53);
    let mut listen: Vec<String> = Vec::new();
    for addr in &out.listen_addresses {
        listen.push(match addr.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
            _ => format!("{addr}:{port}"),
        });
    }
    if !out.interfaces.is_empty() && !out.interfaces.iter().any(|i| i == "lo") {
        // interface= adds loopback implicitly (dnsmasq(8), --interface).
        let loopback = format!("127.0.0.1:{port}");
        if !listen.contains(&loopback) {
            listen.push(loopback);
        }
    }
    listen.extend(out.interfaces.iter().map(|i| format!("{i}:{port}")));
    t.push_str("\n[server]\n");
    if listen.is_empty() {
        t.push_str("# dnsmasq's default: every interface; the default allow list keeps it to\n");
        t.push_str("# loopback and the local subnets, like dnsmasq's local-service.\n");
        let _ = writeln!(t, "listen = [\"0.0.0.0:{port}\", \"[::]:{port}\"]");
    } else {
        let _ = writeln!(t, "listen = [{}]", list(&listen));
    }
    rebind_keys(out, t);
    user_comment(out, t);
    let user = out.user.as_deref().unwrap_or(out.default_user);
    let _ = writeln!(t, "user = {}", quote(user));
}

/// Without `user=`, why the user is the one written and how to change it.
fn user_comment(out: &Translation, t: &mut String) {
    if out.user.is_some() {
        return;
    }
    t.push_str("# Without user= (or -u), dnsmasq runs as \"nobody\", its built-in default.\n");
    if out.default_user == SPLITDNS_USER {
        t.push_str("# splitdns runs as its own user, which this host has.\n");
        return;
    }
    t.push_str("# So does splitdns: this host has no \"splitdns\" user. To run as that\n");
    t.push_str("# user instead, create it (install the splitdns package, which does, or run\n");
    t.push_str("# `useradd --system --no-create-home splitdns`) and set user = \"splitdns\".\n");
}

/// Written out either way: dnsmasq screens nothing without `stop-dns-rebind`.
fn rebind_keys(out: &Translation, t: &mut String) {
    if out.rebind {
        t.push_str("# stop-dns-rebind: private addresses are removed from the answers of the\n");
        t.push_str("# default upstreams. Unlike dnsmasq, zones with servers of their own\n");
        t.push_str("# (server=/consul/...) are trusted without rebind-domain-ok.\n");
    } else {
        t.push_str("# dnsmasq without stop-dns-rebind: answers are not screened.\n");
    }
    let _ = writeln!(t, "rebind_protection = {}", out.rebind);
    if !out.rebind_allow.is_empty() {
        let zones: Vec<String> = out.rebind_allow.iter().map(ToString::to_string).collect();
        let _ = writeln!(t, "rebind_allow = [{}]", list(&zones));
    }
}

fn upstream_table(out: &Translation, t: &mut String) {
    t.push_str("\n[upstream]\n");
    match (out.no_resolv, out.default_servers) {
        (true, false) => {
            t.push_str(
                "# no-resolv and no server=ADDR: names outside the rules have no upstream\n",
            );
            t.push_str("# (dnsmasq answered REFUSED, splitdns answers SERVFAIL).\n");
            t.push_str("resolv_conf = \"/dev/null\"\n");
        }
        (false, true) => {
            t.push_str(
                "# dnsmasq also asked the resolv.conf servers; splitdns reads resolv_conf\n",
            );
            t.push_str("# only when no server=ADDR is given: list them in rules if needed.\n");
        }
        _ => {}
    }
    if let (false, Some(file)) = (out.no_resolv, &out.resolv_file) {
        let _ = writeln!(t, "resolv_conf = {}", quote(file));
    }
    let forward_max = out.forward_max.unwrap_or(DNSMASQ_FORWARD_MAX);
    let _ = writeln!(t, "max_inflight = {forward_max}");
    let _ = writeln!(t, "filter_aaaa = {}", out.filter_aaaa);
}

fn cache_table(out: &Translation, t: &mut String) {
    t.push_str("\n[cache]\n");
    if out.cache_size.is_none() {
        t.push_str("# dnsmasq's default; splitdns's own is 10000.\n");
    }
    let _ = writeln!(t, "size = {}", out.cache_size.unwrap_or(DNSMASQ_CACHE_SIZE));
    if let Some(min) = out.min_ttl {
        let _ = writeln!(t, "min_ttl = {min}");
    }
    if let Some(max) = out.max_ttl {
        let _ = writeln!(t, "max_ttl = {max}");
    }
    if out.no_negcache {
        t.push_str("max_negative_ttl = 0\n");
    }
}

fn local_table(out: &Translation, t: &mut String) {
    t.push_str("\n[local]\n");
    let mut hosts: Vec<String> = Vec::new();
    if !out.no_hosts {
        hosts.push(DNSMASQ_HOSTS.into());
    }
    hosts.extend(out.hosts_files.iter().cloned());
    let _ = writeln!(t, "hosts_files = [{}]", list(&hosts));
    let _ = writeln!(t, "domain_needed = {}", out.domain_needed);
    let _ = writeln!(t, "bogus_priv = {}", out.bogus_priv);
    let _ = writeln!(t, "ttl = {}", out.local_ttl.unwrap_or(0));
}

fn log_table(out: &Translation, t: &mut String) {
    if out.log_queries {
        t.push_str("\n[log]\n# log-queries: one line per query, with the client's address.\n");
        t.push_str("queries = true\n");
    }
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| quote(i))
        .collect::<Vec<_>>()
        .join(", ")
}
