//! Black-box tests for splitdns: a real server on 127.0.0.1:0, fake upstreams, real packets.
//!
//! Cache behaviour is always proven by the number of queries an upstream received, never by
//! timing. See `support/` for the fakes and the harness.

// Fakes, the harness, clients, the daemon runner, netns and the real tools' wrappers.
mod support;

// `[server] allow`: who is answered at all.
mod allow;
// The cache, by upstream query counts: keys, TTLs, negatives, bounds, coalescing.
mod cache;
// The binary: `check` on good and bad configs, `run` end to end.
mod cli;
// Real C-library resolvers (musl, glibc) asking splitdns in a namespace of their own.
mod clients;
// What compliance testers check: AD, OPT on FORMERR, questions a forwarder must not pass on.
mod compliance;
// `splitdns control`, the real binary against a running splitdns.
mod control;
// The fake Consul agent (DNS and HTTP API from one catalog) against Consul's own behaviour.
mod consul_agent;
// Real clients resolving services answered from the Consul mirror, in a namespace of their own.
mod consul_clients;
// The Consul mirror against the fake agent: same answers, changes, faults.
mod consul_mirror;
// What each `/metrics` series counts: every counter moves when its feature serves.
mod counters;
// `rules` lines against the dnsmasq binary itself, question by question.
mod differential;
// DNSSEC validation against Unbound on a tree signed by ldns and served by NSD.
mod dnssec;
// DNSSEC on the wire without the Unbound oracle: AD, EDE, RRSIGs by DO, the bogus cache.
mod dnssec_wire;
// resolv.conf on a host, followed as it changes, in a namespace of its own (root).
mod docker;
// The Docker recipes against a real dockerd in a namespace of its own.
mod dockerd;
// The README, docs/, man pages and completions agree with the program and each other.
mod docs;
// DNS over TLS and HTTPS against Unbound, cross-checked with kdig.
mod encrypted;
// Talking to upstreams: failover, EDNS and IDs, reply checks, TCP on truncation, limits.
mod forwarding;
// The fuzz targets' entry points under a bounded random and mutation loop.
mod fuzz;
// Holding under load and attack: TCP limits, rebind protection, ANY, rate limit, spoofing.
mod hardening;
// Every header bit of the answers splitdns makes itself, against the RFCs.
mod headers;
// splitdns as a service: systemd notify, SIGHUP, the user switch, the unit file.
mod host;
// `import-dnsmasq` on the guides' dnsmasq configs: the output passes `check` and answers alike.
mod import;
// `import-dnsmasq` on whole dnsmasq.conf files against the dnsmasq binary, question by question.
mod import_differential;
// Drop-in files: `include`, reloads that read them again, the config hash over them.
mod includes;
// `src/` depends one way: folders only on the folders below, no circle between files.
mod layers;
// Many clients at once.
mod load;
// IPv6 end to end on ::1: a listener there, who it admits, upstreams there, ip6.arpa routes.
mod ipv6;
// Local data: hosts files, `[[record]]`, record rules, domain_needed, bogus_priv, filter_aaaa.
mod local;
// Our own query coming back through an upstream, failed at once.
mod loops;
// Looking inside: `/metrics` as a whole, the dashboard, `/health`, CHAOS, query log, SIGUSR1.
mod metrics;
// The installed Debian package, where CI installed it.
mod package;
// Properties of the cache's TTL arithmetic and the hit path's patches, over random inputs.
mod properties;
// Answering when upstreams fail: serve stale, health and strategies, prefetch.
mod reliability;
// Reloads while queries are answered: what is dropped stays dropped, a rejection changes nothing.
mod reload;
// Rewrite routes: one zone asked as another, answered under the client's name.
mod rewrite;
// Which `[[route]]` answers a name: longest suffix, label boundaries, case, zones defined once.
mod routing;
// dnsmasq rule lines: what each means, how lines for one zone accumulate and rank.
mod rules;
// SRV answers: target addresses cached on their own, missing ones resolved and added.
mod srv;
// `[server] threads`: several UDP threads sharing one cache and one view of the upstreams.
mod threads;
// What goes on the wire: bad input, header and EDNS hygiene, truncation, TCP, shutdown.
mod wire;
