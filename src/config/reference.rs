//! The reference of every config key and rule line, in one place.
//!
//! The key and rule tables of docs/configuration.md and docs/rules.md and the
//! splitdns.toml(5) man page are all
//! made from these lists, and a test checks that the keys here are exactly the
//! keys the config types accept: a key added to a `Raw*` struct without a line
//! here (or the other way round) fails `cargo test`.
//!
//! Texts are Markdown as docs/ shows them: `code`, *emphasis* and
//! `[links](#anchor)` to a heading of any docs/ page; the man page drops the marks.

/// One config key.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    /// `""` for a top-level key, else the table as written: `[server]`, `[[route]]`.
    pub table: &'static str,
    pub key: &'static str,
    pub kind: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

impl KeyDoc {
    /// `[server] listen`, or `rules` for a top-level key.
    pub fn name(&self) -> String {
        if self.table.is_empty() {
            self.key.to_string()
        } else {
            format!("{} {}", self.table, self.key)
        }
    }
}

/// One dnsmasq-style line of `rules`.
#[derive(Debug, Clone, Copy)]
pub struct RuleDoc {
    pub form: &'static str,
    pub meaning: &'static str,
}

/// Every key, in the order of the key table (docs/configuration.md).
pub const KEYS: &[KeyDoc] = &[
    KeyDoc {
        table: "",
        key: "include",
        kind: "list of paths",
        default: "`[]` (built-in default: `[\"/etc/splitdns/conf.d\"]` when that directory exists)",
        meaning: "Drop-in files read after this one: directories, glob patterns or files; relative to this file's directory (see [Drop-in files](#drop-in-files)).",
    },
    KeyDoc {
        table: "",
        key: "rules",
        kind: "list of strings",
        default: "`[]`",
        meaning: "dnsmasq-style routing and record lines (see [Rules](#rules)).",
    },
    KeyDoc {
        table: "[server]",
        key: "listen",
        kind: "list of strings",
        default: "`[\"127.0.0.1:53\"]`",
        meaning: "Where to answer, over UDP and TCP: `ADDR:PORT`, `[V6]:PORT`, a bare address (port 53), or `IFNAME:PORT`. `IFNAME:PORT` covers every IPv4 and non-link-local IPv6 address of the interface, and follows it: addresses are bound as they appear and closed as they go (see [Interfaces](#interfaces)). An interface that does not exist yet is a warning, not an error. A literal address that cannot be bound stops start-up. IPv6 addresses the host lacks are skipped with a warning. An empty list is an error.",
    },
    KeyDoc {
        table: "[server]",
        key: "user",
        kind: "user name",
        default: "none",
        meaning: "When started as root: after reading the config, run as this user (its uid and primary group, no supplementary groups), keeping only `CAP_NET_BIND_SERVICE` so port 53 can still be bound on interfaces that appear later. Not root: ignored. The user must exist, and a reload reads the config as this user.",
    },
    KeyDoc {
        table: "[server]",
        key: "allow",
        kind: "list of addresses or prefixes",
        default: "loopback + subnets of listened interfaces",
        meaning: "Clients allowed to query. Everyone else gets REFUSED. A list given here *replaces* the default, so include `127.0.0.0/8` and `::1` yourself.",
    },
    KeyDoc {
        table: "[server]",
        key: "rebind_protection",
        kind: "bool",
        default: "`false`",
        meaning: "Strip private addresses from answers of the default upstreams (see [Defences](#defences)). Off by default, as in dnsmasq, Unbound, systemd-resolved and CoreDNS.",
    },
    KeyDoc {
        table: "[server]",
        key: "rebind_allow",
        kind: "list of names",
        default: "`[]`",
        meaning: "With `rebind_protection` on: zones whose answers from the default upstreams may hold private addresses.",
    },
    KeyDoc {
        table: "[server]",
        key: "rate_limit",
        kind: "queries per second",
        default: "`0`",
        meaning: "Per client address (IPv6: per /64), burst as large; past it REFUSED. `0` is no limit.",
    },
    KeyDoc {
        table: "[server]",
        key: "threads",
        kind: "integer",
        default: "half the cores",
        meaning: "Threads answering UDP, each with its own socket on every listen address; the kernel spreads clients over them. Default: half the cores splitdns may run on (its CPU affinity), at least 1, leaving the rest to its clients on the same host.",
    },
    KeyDoc {
        table: "[server]",
        key: "tcp_max_connections",
        kind: "integer",
        default: "`1000`",
        meaning: "TCP connections open at once. Past it, the one idle longest is closed.",
    },
    KeyDoc {
        table: "[server]",
        key: "tcp_idle_timeout",
        kind: "duration",
        default: "`\"10s\"`",
        meaning: "How long a TCP connection may wait for its next query.",
    },
    KeyDoc {
        table: "[server]",
        key: "tcp_read_timeout",
        kind: "duration",
        default: "`\"5s\"`",
        meaning: "How long one TCP query may take to arrive once started, and one answer to be taken.",
    },
    KeyDoc {
        table: "[server]",
        key: "tcp_max_queries",
        kind: "integer",
        default: "`100`",
        meaning: "Queries on one TCP connection before it is closed.",
    },
    KeyDoc {
        table: "[upstream]",
        key: "servers",
        kind: "list of servers",
        default: "`[]`",
        meaning: "Default upstreams for names outside every zone, asked in order. `server=ADDR` rules are appended. An entry is `IP`, `IP#PORT` or `[V6]:PORT` (UDP, TCP when truncated; a link-local IPv6 address with its interface, `fe80::1%eth0`, as dnsmasq takes it), `tls://IP[:PORT]#NAME` (DNS over TLS, port 853) or `https://HOST[:PORT]/PATH[#NAME]` (DNS over HTTPS, port 443); `NAME` is the name the certificate must be valid for (see [Encrypted upstreams](#encrypted-upstreams)).",
    },
    KeyDoc {
        table: "[upstream]",
        key: "resolv_conf",
        kind: "path",
        default: "`\"/etc/resolv.conf\"`",
        meaning: "Used only when there are no default servers from `servers` or `server=ADDR`. Only `nameserver` lines are used, on port 53. Nameservers equal to one of splitdns's own listen addresses (as they are now, interfaces included) are skipped. Watched: a change is in use within about 2 seconds, and on reload.",
    },
    KeyDoc {
        table: "[upstream]",
        key: "timeout",
        kind: "duration",
        default: "`\"2s\"`",
        meaning: "Wait per attempt, per server, before the next server is asked. At least `10ms`, at most `60s`. It is also the default for routes.",
    },
    KeyDoc {
        table: "[upstream]",
        key: "max_inflight",
        kind: "integer",
        default: "`1024`",
        meaning: "Upstream queries in flight at once for the route, from 1 to 4096. Past it, new cache misses get SERVFAIL. It is also the default for routes.",
    },
    KeyDoc {
        table: "[upstream]",
        key: "strategy",
        kind: "`\"failover\"`, `\"fastest\"` or `\"parallel\"`",
        default: "`\"failover\"`",
        meaning: "How servers are chosen (see [Forwarding](#forwarding)). It is also the default for routes.",
    },
    KeyDoc {
        table: "[upstream]",
        key: "filter_aaaa",
        kind: "bool",
        default: "`false`",
        meaning: "AAAA queries get NODATA without being forwarded (dnsmasq's `filter-AAAA`). It is also the default for routes. Local data and local zones are still answered.",
    },
    KeyDoc {
        table: "[upstream]",
        key: "ca_file",
        kind: "path",
        default: "the system's CA store",
        meaning: "PEM file of the CAs that encrypted (`tls://`, `https://`) servers' certificates must chain to, in place of the system's store (`/etc/ssl/certs`). It is also the default for routes and for servers in rule lines.",
    },
    KeyDoc {
        table: "[upstream]",
        key: "pin_sha256",
        kind: "list of strings",
        default: "`[]`",
        meaning: "SPKI pins (RFC 7858 §4.2): base64 SHA-256 digests of a public key; an encrypted server's certificate must carry one of them, on top of chaining to a trusted CA. It is also the default for routes and rule lines.",
    },
    KeyDoc {
        table: "[upstream]",
        key: "bootstrap",
        kind: "table of host = IP",
        default: "`{}`",
        meaning: "Addresses to connect to for the host names of encrypted entries (`https://dns.quad9.net/dns-query`), which splitdns does not look up itself; the certificate is verified against the host name.",
    },
    KeyDoc {
        table: "[[route]]",
        key: "zones",
        kind: "list of names or prefixes",
        default: "required",
        meaning: "Zones answered by this route, each with every name below it. A prefix (`\"10.0.0.0/8\"`, `\"fd00::/8\"`) means its reverse zones, as `rev-server=` has them, so a reverse route can have a `min_ttl` (Consul answers PTR with TTL 0), a `strategy` or a `timeout`. An address alone is refused: its reverse zone is its prefix, `\"10.0.0.1/32\"`.",
    },
    KeyDoc {
        table: "[[route]]",
        key: "servers",
        kind: "list of servers",
        default: "`[]`",
        meaning: "Servers for the route, asked in order. An empty list means the default upstreams, whose own `timeout` and `max_inflight` then apply.",
    },
    KeyDoc {
        table: "[[route]]",
        key: "min_ttl",
        kind: "seconds",
        default: "`[cache] min_ttl`",
        meaning: "TTL floor for this route's answers, positive and negative, replacing `[cache] min_ttl`. A floor above 0 lifts TTL 0 answers into the cache.",
    },
    KeyDoc {
        table: "[[route]]",
        key: "timeout",
        kind: "duration",
        default: "`[upstream] timeout`",
        meaning: "As `[upstream] timeout`, for this route.",
    },
    KeyDoc {
        table: "[[route]]",
        key: "max_inflight",
        kind: "integer",
        default: "`[upstream] max_inflight`",
        meaning: "As `[upstream] max_inflight`, for this route.",
    },
    KeyDoc {
        table: "[[route]]",
        key: "strategy",
        kind: "as `[upstream] strategy`",
        default: "`[upstream] strategy`",
        meaning: "As `[upstream] strategy`, for this route.",
    },
    KeyDoc {
        table: "[[route]]",
        key: "rewrite",
        kind: "name",
        default: "none",
        meaning: "Ask the route's names under this zone instead (see [Rewrite routes](#rewrite-routes)).",
    },
    KeyDoc {
        table: "[[route]]",
        key: "filter_aaaa",
        kind: "bool",
        default: "`[upstream] filter_aaaa`",
        meaning: "As `[upstream] filter_aaaa`, for this route.",
    },
    KeyDoc {
        table: "[[route]]",
        key: "dnssec",
        kind: "bool",
        default: "`true` for a route to the default upstreams (no `servers`, no `rewrite`), else `false`",
        meaning: "Whether `[dnssec] validate` covers the route's answers. A private zone (servers of its own, a rewrite) is insecure by default: its answers are passed on without AD and never fail for lack of a DS chain. Set `true` for a signed private zone, and give its anchor in `[dnssec] trust_anchors` (see [DNSSEC](#dnssec)). Not with `rewrite`: renamed records cannot be validated.",
    },
    KeyDoc {
        table: "[[route]]",
        key: "ca_file",
        kind: "path",
        default: "`[upstream] ca_file`",
        meaning: "As `[upstream] ca_file`, for this route's encrypted servers (a private CA for a corporate resolver). Setting it or `pin_sha256` replaces both of `[upstream]`'s.",
    },
    KeyDoc {
        table: "[[route]]",
        key: "pin_sha256",
        kind: "list of strings",
        default: "`[upstream] pin_sha256`",
        meaning: "As `[upstream] pin_sha256`, for this route's encrypted servers.",
    },
    KeyDoc {
        table: "[local]",
        key: "hosts_files",
        kind: "list of paths",
        default: "`[]` (built-in default: `[\"/etc/hosts\"]`)",
        meaning: "Hosts files answering A, AAAA and PTR; re-read within seconds of a change. See [Local data](#local-data).",
    },
    KeyDoc {
        table: "[local]",
        key: "domain_needed",
        kind: "bool",
        default: "`false`",
        meaning: "Single-label names that no route names get NXDOMAIN, with the root's SOA, unless local data has them (NODATA when it has names below them); never forwarded.",
    },
    KeyDoc {
        table: "[local]",
        key: "bogus_priv",
        kind: "bool",
        default: "`false`",
        meaning: "Reverse lookups in the private zones of RFC 6303 that no route covers get NXDOMAIN, with the SOA of their RFC 6303 zone, unless local data has them (NODATA when it has names below them, and the SOA at the zone's own name); never forwarded.",
    },
    KeyDoc {
        table: "[local]",
        key: "ttl",
        kind: "seconds",
        default: "`0`",
        meaning: "TTL of local answers: hosts files, records, `address=`.",
    },
    KeyDoc {
        table: "[[record]]",
        key: "name",
        kind: "name",
        default: "required",
        meaning: "The record's owner name, absolute whether or not it ends in a dot.",
    },
    KeyDoc {
        table: "[[record]]",
        key: "type",
        kind: "record type",
        default: "required",
        meaning: "A, AAAA, CNAME, SRV, TXT, PTR or MX.",
    },
    KeyDoc {
        table: "[[record]]",
        key: "value",
        kind: "string",
        default: "required",
        meaning: "The record data in zone-file form: `192.0.2.1`, `10 mail.lan.` for MX, `0 5 143 mail.lan.` for SRV, `\"v=spf1 mx -all\"` for TXT.",
    },
    KeyDoc {
        table: "[[record]]",
        key: "ttl",
        kind: "seconds",
        default: "`[local] ttl`",
        meaning: "TTL of this record.",
    },
    KeyDoc {
        table: "[cache]",
        key: "size",
        kind: "entries",
        default: "`10000`",
        meaning: "Answers held. `0` turns the cache off.",
    },
    KeyDoc {
        table: "[cache]",
        key: "min_ttl",
        kind: "seconds",
        default: "`0`",
        meaning: "Floor for every cached TTL, positive and negative, except on routes that set their own. It must not exceed `max_ttl`.",
    },
    KeyDoc {
        table: "[cache]",
        key: "max_ttl",
        kind: "seconds",
        default: "`86400`",
        meaning: "Cap on positive TTLs, both as stored and as served.",
    },
    KeyDoc {
        table: "[cache]",
        key: "max_negative_ttl",
        kind: "seconds",
        default: "`3600`",
        meaning: "Cap on negative TTLs (NXDOMAIN and NODATA).",
    },
    KeyDoc {
        table: "[cache]",
        key: "serve_stale",
        kind: "duration",
        default: "`\"1h\"`",
        meaning: "How long past expiry an answer may still be given, with TTL 30, when the upstreams fail (RFC 8767). `\"0s\"` turns it off.",
    },
    KeyDoc {
        table: "[cache]",
        key: "prefetch",
        kind: "bool",
        default: "`false`",
        meaning: "Refresh an answer in the background when it is asked for in the last 10% of its TTL.",
    },
    KeyDoc {
        table: "[metrics]",
        key: "listen",
        kind: "`ADDR:PORT`",
        default: "no endpoint",
        meaning: "Serve `/metrics`, `/health` and `/ready` over HTTP here (see [Observing it](#observing-it)). Without a `[metrics]` table there is no endpoint. A port that cannot be bound fails start-up.",
    },
    KeyDoc {
        table: "[metrics]",
        key: "health_window",
        kind: "duration",
        default: "`\"5s\"`",
        meaning: "How long a server may keep failing, without one good reply, before `/health` and `splitdns_upstream_healthy` call it down. At least `10ms`.",
    },
    KeyDoc {
        table: "[log]",
        key: "queries",
        kind: "boolean",
        default: "`false`",
        meaning: "Log one line per client query.",
    },
    KeyDoc {
        table: "[log]",
        key: "format",
        kind: "`\"plain\"` or `\"json\"`",
        default: "`\"plain\"`",
        meaning: "Format of every log line. `json` writes one object per line, with the fields at the top level.",
    },
    KeyDoc {
        table: "[control]",
        key: "socket",
        kind: "absolute path",
        default: "none (no socket)",
        meaning: "The Unix socket [`splitdns control`](#splitdns-control) talks to, created at start with mode 0660; when started as root with `[server] user`, owned by that user. A socket file left by an earlier run is replaced; one another splitdns answers on stops start-up. The example config sets `\"/run/splitdns/control.sock\"`. Changed at the next restart.",
    },
    KeyDoc {
        table: "[consul]",
        key: "http",
        kind: "string `IP:PORT`",
        default: "`\"127.0.0.1:8500\"`",
        meaning: "The Consul agent's HTTP API (`http://` may lead). The table's presence turns the [Consul mirror](#consul-mirror) on: splitdns watches the catalog and answers the route whose zone is the agent's DNS domain from memory. Changed at the next restart.",
    },
    KeyDoc {
        table: "[consul]",
        key: "token_file",
        kind: "absolute path",
        default: "none (`CONSUL_HTTP_TOKEN`, else no token)",
        meaning: "A file holding the ACL token the watches send (`X-Consul-Token`), read at start; the token is never logged. It needs `service:read` and `node:read` on what DNS should see.",
    },
    KeyDoc {
        table: "[consul]",
        key: "stale_limit",
        kind: "duration",
        default: "`\"10m\"`",
        meaning: "How long the mirror keeps answering once the agent has stopped answering over HTTP (marked stale in metrics, the query log and `/health`); after that its names are forwarded to the agent's DNS port again. `\"0s\"` stops at the first failure.",
    },
    KeyDoc {
        table: "[consul]",
        key: "watch_idle",
        kind: "duration",
        default: "`\"10m\"`",
        meaning: "A service's watch stops after this long without a query for it; the next query is forwarded and starts it again.",
    },
    KeyDoc {
        table: "[consul]",
        key: "max_watches",
        kind: "integer",
        default: "`128`",
        meaning: "Services watched at once; names of further services are forwarded. Each watch holds one HTTP connection at the agent, which allows 200 per client address by default (`limits.http_max_conns_per_client`), shared with every other tool on the host.",
    },
    KeyDoc {
        table: "[dnssec]",
        key: "validate",
        kind: "bool",
        default: "`false`",
        meaning: "Validate DNSSEC (RFC 4035) for the routes with `dnssec` (the default upstreams by default): secure answers get AD for clients that ask with AD or DO, bogus ones SERVFAIL with an Extended DNS Error (see [DNSSEC](#dnssec)). The rule line `dnssec` sets it too.",
    },
    KeyDoc {
        table: "[dnssec]",
        key: "trust_anchors",
        kind: "list of strings",
        default: "the root KSKs 20326 and 38696",
        meaning: "DS or DNSKEY records in zone-file form, as Unbound's `trust-anchor:` takes them: `\"example.test. IN DS 12345 13 2 ABCD…\"`. When given, these are the only anchors (list the root's DS records too to keep validating public names); names under none of them are insecure. `trust-anchor=` lines add to them.",
    },
    KeyDoc {
        table: "[dnssec]",
        key: "insecure",
        kind: "list of zones",
        default: "`[]`",
        meaning: "Negative trust anchors (RFC 7646): names at or below these zones are never validated, and answered without AD.",
    },
    KeyDoc {
        table: "[dnssec]",
        key: "check_unsigned",
        kind: "bool",
        default: "`true`",
        meaning: "`false`: an answer with no signature at all is taken as insecure without proving it, as dnsmasq's `dnssec-check-unsigned=no` does; faster, but an attacker who strips the signatures of a signed zone is not caught.",
    },
];

/// Every rule line form, in the order of the rule table (docs/rules.md).
pub const RULES: &[RuleDoc] = &[
    RuleDoc {
        form: "`server=/ZONE/.../ADDR#PORT`",
        meaning: "Forward the zones to this server; more lines for a zone add servers, asked in order. `ADDR`, `ADDR#PORT`, `IP:PORT` and `[V6]:PORT` are all accepted (`fe80::1%eth0#53`: a link-local address with its interface), and encrypted servers as in `[upstream] servers`: `server=/corp.example/tls://192.0.2.53#ns.corp.example` (with `[upstream] ca_file` and `pin_sha256`).",
    },
    RuleDoc {
        form: "`server=/ZONE/#`",
        meaning: "Forward the zones to the default upstreams. This carves an exception out of a wider zone, as in `server=/skip.consul/#`.",
    },
    RuleDoc {
        form: "`server=/ZONE/`, `local=/ZONE/`",
        meaning: "Answer locally: NXDOMAIN, unless a more specific rule covers the name. A name that exists gets NODATA for the types it lacks: one with local data or under an `address=`, or with such a name or another rule's zone below it. Never forwarded.",
    },
    RuleDoc {
        form: "`address=/ZONE/IP`",
        meaning: "This address for the zones and every name below them. The record is A or AAAA, matching the address family; more lines add addresses. Other types go where they would without the line (dnsmasq 2.86 and later): to the zone's other lines, else to the zone above; where that is `local=` (for this zone or one above), they get NODATA, where dnsmasq says NXDOMAIN.",
    },
    RuleDoc {
        form: "`address=/ZONE/#`",
        meaning: "`0.0.0.0` and `::` (a block), as above.",
    },
    RuleDoc {
        form: "`address=/ZONE/`",
        meaning: "Same as `local=/ZONE/`.",
    },
    RuleDoc {
        form: "`server=ADDR`",
        meaning: "One more default upstream, after `[upstream] servers`.",
    },
    RuleDoc {
        form: "`rev-server=PREFIX,ADDR#PORT`",
        meaning: "Forward the reverse zone of `PREFIX` (IPv4 or IPv6). `10.0.0.0/8` becomes `10.in-addr.arpa`. A prefix that does not end on a label boundary becomes every zone it covers, so `172.16.0.0/12` becomes `16.172.in-addr.arpa` … `31.172.in-addr.arpa`.",
    },
    RuleDoc {
        form: "`rev-server=PREFIX`",
        meaning: "The same reverse zones, answered locally as with `local=`.",
    },
    RuleDoc {
        form: "`rewrite=/ZONE/.../TARGET/`",
        meaning: "splitdns's own: a [rewrite route](#rewrite-routes). Its servers are the `server=/ZONE/ADDR` lines of the same zone; without any, the rewritten name is routed.",
    },
    RuleDoc {
        form: "`host-record=NAME[,NAME...],[IPV4],[IPV6][,TTL]`",
        meaning: "A and AAAA for every name, and a PTR from each address to the first name.",
    },
    RuleDoc {
        form: "`cname=ALIAS[,ALIAS...],TARGET[,TTL]`",
        meaning: "CNAME records; the target's records are added when it is local data too.",
    },
    RuleDoc {
        form: "`srv-host=_SVC._PROTO.DOMAIN[,TARGET[,PORT[,PRIORITY[,WEIGHT]]]]`",
        meaning: "An SRV record (dnsmasq's field order; port 1, priority 0, weight 0 by default). Without a target: \"service not available\" (target `.`).",
    },
    RuleDoc {
        form: "`txt-record=NAME[,TEXT...]`",
        meaning: "A TXT record, one string per field; quote text with commas (`\"a,b\"`). Text over 255 bytes is split.",
    },
    RuleDoc {
        form: "`ptr-record=NAME,TARGET`",
        meaning: "A PTR record.",
    },
    RuleDoc {
        form: "`mx-host=NAME,HOST[,PREFERENCE]`",
        meaning: "An MX record (preference 1 by default). The host is required.",
    },
    RuleDoc {
        form: "`dnssec`",
        meaning: "Same as `[dnssec] validate = true`.",
    },
    RuleDoc {
        form: "`trust-anchor=DOMAIN,KEYTAG,ALGORITHM,DIGESTTYPE,DIGEST`",
        meaning: "A DS trust anchor, added to `[dnssec] trust_anchors`; as there, the configured anchors replace the built-in root anchor.",
    },
    RuleDoc {
        form: "`dnssec-check-unsigned`, `dnssec-check-unsigned=no`",
        meaning: "Same as `[dnssec] check_unsigned = true` or `false`; the table's key wins over the line.",
    },
];

/// The key table of docs/configuration.md, as Markdown.
pub fn keys_markdown() -> String {
    let mut out = String::from("| key | type | default | meaning |\n|---|---|---|---|\n");
    for key in KEYS {
        let line = format!(
            "| `{}` | {} | {} | {} |\n",
            key.name(),
            key.kind,
            key.default,
            key.meaning
        );
        out.push_str(&line);
    }
    out
}

/// The rule table of docs/rules.md, as Markdown.
pub fn rules_markdown() -> String {
    let mut out = String::from("| rule | meaning |\n|---|---|\n");
    for rule in RULES {
        out.push_str(&format!("| {} | {} |\n", rule.form, rule.meaning));
    }
    out
}

/// Markdown marks dropped: `code` and *emphasis* become plain text, and
/// `[text](target)` becomes its text.
pub fn plain(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut rest = markdown;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '`' => match rest.find('`') {
                Some(end) => {
                    out.push_str(&rest[..end]);
                    rest = &rest[end + 1..];
                }
                None => out.push(c),
            },
            '*' => {}
            '[' => match link(rest) {
                Some((text, after)) => {
                    out.push_str(text);
                    rest = after;
                }
                None => out.push(c),
            },
            _ => out.push(c),
        }
    }
    out
}

/// `text](target)rest` -> (`text`, `rest`).
fn link(rest: &str) -> Option<(&str, &str)> {
    let close = rest.find(']')?;
    if !rest[close + 1..].starts_with('(') {
        return None;
    }
    let end = rest[close..].find(')')? + close;
    Some((&rest[..close], &rest[end + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_drops_the_marks() {
        assert_eq!(
            plain("a `[server] listen` *replaces* it (see [Behaviour](#behaviour))."),
            "a [server] listen replaces it (see Behaviour)."
        );
        assert_eq!(plain("lines (see [Rules](#rules))"), "lines (see Rules)");
        assert_eq!(
            plain("`server=/ZONE/`, `local=/ZONE/`"),
            "server=/ZONE/, local=/ZONE/"
        );
    }
}
