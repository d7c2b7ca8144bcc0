#!/usr/bin/env python3
"""The consul workload's catalog, and a stand-in for a Consul agent's HTTP API serving it.

One catalog, two renderings, so the agent's DNS port (NSD) and its HTTP API cannot drift:

  consul_http.py gen DIR
      writes DIR/consul.zone (NSD's zone for consul.), DIR/consul.queries (dnsperf's query
      file), DIR/consul.queries.nx (its NXDOMAIN share) and DIR/consul.catalog.json (what
      `serve` answers from).
  consul_http.py diff-answers AGENT.dig SYSTEM.dig
      compares two `dig -f QUERYFILE +noedns +noall +comments +answer +authority +additional`
      outputs query by query; prints each difference, then "N of M answers differ"; exit
      status 1 when any does.
  consul_http.py serve --port PORT --catalog DIR/consul.catalog.json
      answers on 127.0.0.1:PORT, until TERM:
        GET /v1/agent/self                   Config and DebugConfig with the agent's DNS settings
        GET /v1/catalog/services             {"svc1": [], ...}
        GET /v1/catalog/service/<name>       catalog instances (ServiceNode objects)
        GET /v1/catalog/nodes                the nodes
        GET /v1/health/service/<name>        [{Node, Service, Checks}, ...]; [] for an unknown name
      with Consul's blocking queries on the last four: `?index=N` at or past the current index
      holds the request for `wait` (Go duration, default 5m, at most 10m) plus up to wait/16 of
      jitter, then answers with the same index (the catalog never changes during a run); a
      client that hangs up ends the hold. `stale`, `consistent`, `cached`, `dc`, `passing`, `tag`
      and a token are accepted. Every reply carries X-Consul-Index and the other headers Consul's
      `setMeta` writes. Also, for bench/run.sh (not Consul's API):
        GET /bench/stats                     request counts by endpoint, requests held now,
                                             paths it does not serve
        GET /bench/seen                      {"services": N}: distinct catalog services whose
                                             health was asked since the last /bench/reset-seen
        GET /bench/reset-seen
      One line per API request goes to stderr: arrival, path and query, status, how long
      it took (a held query: its wait; "hung up" when the client left first).

The catalog: nodes node1..node30 (198.19.254.N, datacenter dc1, every check passing, no node
meta), services svc1..svc50 with 3 instances each on nodes (S+1)%30+1, (S+2)%30+1,
(S+3)%30+1 (no service address, port 20000+S), service TTL 30 s for svc41..svc50
(`dns_config.service_ttl`) and 0 for the rest, node TTL 0, domain consul., Consul's
defaults for every other DNS setting. A real agent gives its nodes the meta key
`consul-network-segment`, which Consul's SRV answers carry as TXT additionals; the zone has
none, so the nodes here have no meta. There is no `consul` service (Consul's servers
register one): the zone has no consul.service.consul either. The JSON shapes follow
tests/it/support/consul/http.rs (`agent_self`, `health_entry`), which follow Consul's API.

Python 3 standard library only.
"""
import argparse
import json
import random
import re
import select
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

DATACENTER = "dc1"
DOMAIN = "consul."
NODES = 30
SERVICES = 50
INSTANCES = 3
SOA = {"Refresh": 3600, "Retry": 600, "Expire": 86400, "Minttl": 0}
# Raft indexes: every node and service written once, nodes first; the services table's index
# is the last write. Nothing changes afterwards.
NODE_INDEX = 10
SERVICE_INDEX_BASE = 100

DEFAULT_WAIT = 300.0  # blockingquery: 5 minutes unless `wait` says otherwise
MAX_WAIT = 600.0      # and never more than 10


def node_address(n):
    return f"198.19.254.{n}"


def service_ttl(s):
    return 30 if s > 40 else 0


def instance_nodes(s):
    return [(s + j) % NODES + 1 for j in range(1, INSTANCES + 1)]


def catalog():
    """The catalog as plain data, the one source of the zone, the queries and the JSON."""
    nodes = [{"name": f"node{n}", "address": node_address(n), "index": NODE_INDEX}
             for n in range(1, NODES + 1)]
    services = [{"name": f"svc{s}", "port": 20000 + s, "ttl": service_ttl(s),
                 "nodes": [f"node{n}" for n in instance_nodes(s)],
                 "index": SERVICE_INDEX_BASE + s}
                for s in range(1, SERVICES + 1)]
    return {
        "datacenter": DATACENTER,
        "domain": DOMAIN,
        "node_ttl": 0,
        "soa": SOA,
        "services_index": SERVICE_INDEX_BASE + SERVICES,
        "nodes": nodes,
        "services": services,
    }


def write_generated(out):
    """consul.zone, consul.queries, consul.queries.nx and consul.catalog.json in `out`.

    The zone and the query file are line for line what run.sh's awk generator wrote before
    this file existed, so numbers from before and after measure the same data."""
    cat = catalog()
    zone = ["$ORIGIN consul.", "$TTL 0",
            "@ SOA ns hostmaster 1 3600 600 86400 0", "@ NS ns", "ns A 127.0.0.1",
            "probe A 127.0.0.1"]
    zone += [f'{n["name"]}.node.{DATACENTER} A {n["address"]}' for n in cat["nodes"]]
    address = {n["name"]: n["address"] for n in cat["nodes"]}
    queries, nx = [], 0
    for s, svc in enumerate(cat["services"], start=1):
        name, ttl = svc["name"], svc["ttl"]
        for node in svc["nodes"]:
            zone.append(f"{name}.service {ttl} A {address[node]}")
            zone.append(f'_{name}._tcp.service {ttl} SRV 1 1 {svc["port"]} {node}.node.{DATACENTER}')
        queries.append(f"{name}.service.consul A")
        queries.append(f"_{name}._tcp.service.consul SRV")
        if s % 5 == 0:
            queries.append(f"node{s // 5}.node.{DATACENTER}.consul A")
        if s % 7 == 0:
            queries.append(f"missing{s}.service.consul A")
            nx += 1
    out = Path(out)
    (out / "consul.zone").write_text("\n".join(zone) + "\n")
    (out / "consul.queries").write_text("\n".join(queries) + "\n")
    (out / "consul.queries.nx").write_text(f"{nx / len(queries):.4f}\n")
    (out / "consul.catalog.json").write_text(json.dumps(cat, indent=1) + "\n")


# ---------------------------------------------------------------- comparing answers

def dig_answers(text):
    """Per query in a dig -f output: (rcode, answer, additional, negative SOA), records as
    sorted tuples (owner, type, data, "0" or "ttl>0"). Left out: what NSD adds and Consul does
    not (the zone's NS in AUTHORITY and its glue ns.consul. in ADDITIONAL), the SOA serial
    (Consul's is the time), TTL values above 0 (a cache counts them down) and the TTLs in
    ADDITIONAL (Consul gives an SRV target's address the service's TTL, the zone the node's)."""
    answers, current, section = [], None, None
    for line in text.splitlines():
        if line.startswith(";; ->>HEADER<<-"):
            current = {"rcode": re.search(r"status: (\w+)", line).group(1),
                       "ANSWER": [], "AUTHORITY": [], "ADDITIONAL": []}
            answers.append(current)
            section = None
        elif line.startswith(";; ") and line.rstrip().endswith("SECTION:"):
            section = line.split()[1]
        elif line and not line.startswith(";") and current is not None and section in current:
            owner, ttl, _cls, rtype, *data = line.split()
            if rtype == "SOA":
                del data[2]
            if rtype == "NS" or (section == "ADDITIONAL" and owner.lower() == "ns.consul."):
                continue
            if section == "ADDITIONAL":  # Consul: the service's TTL; the zone: the node's
                ttl = "-"
            current[section].append((owner.lower(), rtype, " ".join(data).lower(),
                                     ttl if ttl in ("0", "-") else "ttl>0"))
    return [(a["rcode"], sorted(a["ANSWER"]), sorted(a["ADDITIONAL"]), sorted(a["AUTHORITY"]))
            for a in answers]


def diff_answers(agent_file, system_file):
    agent = dig_answers(Path(agent_file).read_text())
    system = dig_answers(Path(system_file).read_text())
    differ = 0
    for i, (a, b) in enumerate(zip(agent, system)):
        if a != b:
            differ += 1
            print(f"query {i + 1}:\n  agent:  {a}\n  system: {b}")
    if len(agent) != len(system):
        differ += abs(len(agent) - len(system))
        print(f"{len(agent)} answers from the agent, {len(system)} from the system")
    print(f"{differ} of {max(len(agent), len(system))} answers differ")
    return 1 if differ else 0


# ---------------------------------------------------------------- Consul's JSON shapes

def go_duration(text):
    """Go's time.ParseDuration for what a `wait` holds: `5m`, `30s`, `1m30s`, `100ms`, `0`.
    Seconds as a float, or None when it does not parse."""
    if text == "0":
        return 0.0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(v + u for v, u in parts) != text:
        return None
    return sum(float(v) * units[u] for v, u in parts)


def go_duration_string(seconds):
    """Go's time.Duration.String() for whole seconds, as the sanitized config writes them."""
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    if h:
        return f"{h}h{m}m{s}s"
    return f"{m}m{s}s" if m else f"{s}s"


class Api:
    """Every body the stand-in can send, built once from the catalog."""

    def __init__(self, cat):
        self.cat = cat
        dc = cat["datacenter"]
        self.nodes = {}
        for position, n in enumerate(cat["nodes"]):
            ip = n["address"]
            self.nodes[n["name"]] = {
                "ID": f"00000000-0000-4000-8000-{position:012x}",
                "Node": n["name"],
                "Address": ip,
                "Datacenter": dc,
                "TaggedAddresses": {"lan": ip, "lan_ipv4": ip, "wan": ip, "wan_ipv4": ip},
                "Meta": {},
                "CreateIndex": n["index"],
                "ModifyIndex": n["index"],
            }
        self.services_index = cat["services_index"]
        self.service_index = {svc["name"]: svc["index"] for svc in cat["services"]}
        self.health = {svc["name"]: [self.health_entry(svc, node) for node in svc["nodes"]]
                       for svc in cat["services"]}
        self.catalog_service = {svc["name"]: [self.service_node(svc, node) for node in svc["nodes"]]
                                for svc in cat["services"]}
        self.services = {svc["name"]: [] for svc in cat["services"]}
        self.agent_self = self.make_agent_self()

    def service_json(self, svc):
        return {
            "ID": svc["name"], "Service": svc["name"], "Tags": [], "Address": "", "Meta": {},
            "Port": svc["port"], "Weights": {"Passing": 1, "Warning": 1},
            "EnableTagOverride": False, "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
            "Connect": {}, "PeerName": "",
            "CreateIndex": svc["index"], "ModifyIndex": svc["index"],
        }

    def health_entry(self, svc, node):
        node_json = self.nodes[node]
        serf = {
            "Node": node, "CheckID": "serfHealth", "Name": "Serf Health Status",
            "Status": "passing", "Notes": "", "Output": "Agent alive and reachable",
            "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "",
            "Interval": "", "Timeout": "", "ExposedPort": 0, "Definition": {},
            "CreateIndex": node_json["CreateIndex"], "ModifyIndex": node_json["ModifyIndex"],
        }
        return {"Node": node_json, "Service": self.service_json(svc), "Checks": [serf]}

    def service_node(self, svc, node):
        """/v1/catalog/service/<name>: the node's fields and the service's, flattened."""
        n, s = self.nodes[node], self.service_json(svc)
        return {
            "ID": n["ID"], "Node": node, "Address": n["Address"], "Datacenter": n["Datacenter"],
            "TaggedAddresses": n["TaggedAddresses"], "NodeMeta": n["Meta"],
            "ServiceKind": "", "ServiceID": s["ID"], "ServiceName": s["Service"],
            "ServiceTags": [], "ServiceAddress": "", "ServiceMeta": {}, "ServicePort": s["Port"],
            "ServiceWeights": s["Weights"], "ServiceEnableTagOverride": False,
            "ServiceProxy": s["Proxy"], "ServiceConnect": {}, "ServicePeerName": "",
            "CreateIndex": s["CreateIndex"], "ModifyIndex": s["ModifyIndex"],
        }

    def make_agent_self(self):
        cat, dc = self.cat, self.cat["datacenter"]
        ttls = {svc["name"]: go_duration_string(svc["ttl"]) for svc in cat["services"] if svc["ttl"]}
        return {
            "Config": {
                "Datacenter": dc, "PrimaryDatacenter": dc, "NodeName": "bench-agent",
                "NodeID": "00000000-0000-4000-8000-00000000a9e7", "Revision": "bench",
                "Server": False, "Version": "1.19.2", "BuildDate": "2024-08-27T16:06:44Z",
            },
            "DebugConfig": {
                "Datacenter": dc,
                "NodeName": "bench-agent",
                "DNSDomain": cat["domain"],
                "DNSAltDomain": "",
                "DNSOnlyPassing": False,
                "DNSServiceTTL": ttls,
                "DNSNodeTTL": go_duration_string(cat["node_ttl"]),
                "DNSARecordLimit": 0,
                "DNSUDPAnswerLimit": 3,
                "DNSEnableTruncate": False,
                "DNSNodeMetaTXT": True,
                "DNSAllowStale": True,
                "DNSMaxStale": "87600h0m0s",
                "DNSDisableCompression": False,
                "DNSRecursors": [],
                "DNSRecursorStrategy": "sequential",
                "DNSRecursorTimeout": "2s",
                "DNSUseCache": False,
                "DNSCacheMaxAge": "0s",
                "DNSSOA": cat["soa"],
            },
            "Coord": None,
            "Member": {"Name": "bench-agent", "Addr": "127.0.0.1", "Port": 8301,
                       "Tags": {"dc": dc, "role": "node", "segment": ""}, "Status": 1},
            "Meta": {"consul-network-segment": ""},
        }


# ---------------------------------------------------------------- the server

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_endpoint = {}
        self.unserved = {}
        self.held = 0
        self.seen = set()

    def count(self, endpoint):
        with self.lock:
            self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1

    def snapshot(self):
        with self.lock:
            return {"requests": sum(self.by_endpoint.values()),
                    "by_endpoint": dict(self.by_endpoint), "held_now": self.held,
                    "unserved": dict(self.unserved)}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Consul's Go server
    server_version = "consul-bench-stand-in"
    api: Api
    stats: Stats

    def log_message(self, fmt, *args):  # errors only; requests go through log_request
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {fmt % args}\n")

    def log_request(self, code="-", size="-"):
        """One line per API request on stderr (run.sh: logs/consul-http.out): when it
        arrived, the path and query, the status and how long it took (a held blocking
        query: its wait)."""
        if self.path.startswith("/bench/"):
            return
        arrived = getattr(self, "arrived", time.time())
        stamp = time.strftime("%H:%M:%S", time.localtime(arrived)) + f".{int(arrived % 1 * 1000):03d}"
        sys.stderr.write(f"{stamp} {self.path} {code} {time.time() - arrived:.3f}s\n")

    def send_json(self, status, body, headers=()):
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if body is not None else "text/plain")
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_text(self, status, text):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def hold(self, seconds):
        """Waits `seconds`; False when the client hung up meanwhile (nothing to answer)."""
        deadline = time.monotonic() + seconds
        with self.stats.lock:
            self.stats.held += 1
        try:
            while (left := deadline - time.monotonic()) > 0:
                readable, _, _ = select.select([self.connection], [], [], left)
                if readable:
                    try:
                        if not self.connection.recv(1, socket.MSG_PEEK):
                            return False
                    except OSError:
                        return False
                    time.sleep(min(left, 0.05))  # a pipelined request: it waits its turn
            return True
        finally:
            with self.stats.lock:
                self.stats.held -= 1

    def blocking(self, params, index, body, filtered=False):
        """agent/blockingquery: answer now unless `index` is at or past the current one."""
        wait = DEFAULT_WAIT
        if "wait" in params:
            wait = go_duration(params["wait"])
            if wait is None:
                return self.send_text(400, "Invalid wait time")
            wait = min(wait, MAX_WAIT)
        try:
            min_index = int(params.get("index", "0") or "0")
        except ValueError:
            return self.send_text(400, "Invalid index")
        if min_index and index <= min_index:
            if not self.hold(wait + random.uniform(0, wait / 16)):
                self.close_connection = True
                self.log_request("hung up")
                return None
        consistency = "stale" if "stale" in params else (
            "consistent" if "consistent" in params else "leader")
        headers = [("X-Consul-Index", str(max(index, 1))), ("X-Consul-Knownleader", "true"),
                   ("X-Consul-Lastcontact", "0"), ("X-Consul-Effective-Consistency", consistency),
                   ("X-Consul-Default-Acl-Policy", "allow")]
        if filtered:
            headers.append(("X-Consul-Results-Filtered-By-ACLs", "true"))
        if "cached" in params:
            headers += [("X-Cache", "MISS"), ("Age", "0")]
        return self.send_json(200, body, headers)

    def do_GET(self):
        self.arrived = time.time()
        url = urlsplit(self.path)
        path = url.path
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        api, stats = self.api, self.stats
        if path.startswith("/bench/"):
            if path == "/bench/stats":
                return self.send_json(200, stats.snapshot())
            if path == "/bench/seen":
                with stats.lock:
                    return self.send_json(200, {"services": len(stats.seen)})
            if path == "/bench/reset-seen":
                with stats.lock:
                    stats.seen.clear()
                return self.send_json(200, {})
        dc = params.get("dc") or api.cat["datacenter"]
        if path == "/v1/agent/self":
            stats.count("agent/self")
            return self.send_json(200, api.agent_self)
        if dc != api.cat["datacenter"]:
            stats.count("other-dc")
            return self.send_text(500, "No path to datacenter")
        if path == "/v1/catalog/services":
            stats.count("catalog/services")
            return self.blocking(params, api.services_index, api.services)
        if path == "/v1/catalog/nodes":
            stats.count("catalog/nodes")
            return self.blocking(params, api.services_index, list(api.nodes.values()))
        for prefix, endpoint, table in (("/v1/health/service/", "health/service", api.health),
                                        ("/v1/catalog/service/", "catalog/service",
                                         api.catalog_service)):
            if path.startswith(prefix):
                name = unquote(path[len(prefix):]).lower()
                stats.count(endpoint)
                if not name:
                    return self.send_text(400, "Missing service name")
                entries = table.get(name, [])
                tags = [v for k, v in parse_qsl(url.query) if k == "tag"]
                if tags:  # no instance here has tags
                    entries = []
                if endpoint == "health/service" and name in table:
                    with stats.lock:
                        stats.seen.add(name)
                # Consul's maxIndexForService: the service's own index, else the table's.
                index = api.service_index.get(name, api.services_index)
                return self.blocking(params, index, entries)
        with stats.lock:
            stats.unserved[path] = stats.unserved.get(path, 0) + 1
        return self.send_text(404, "")


class Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: a mirror opening a connection per watch,
    # 50 at once, would lose SYNs and wait out TCP's 1 s, 3 s... retransmits. Go's
    # listener (Consul's) takes the kernel's somaxconn.
    request_queue_size = 4096
    daemon_threads = True  # a held request does not keep the process alive at TERM


def serve(port, catalog_file):
    cat = json.loads(Path(catalog_file).read_text())
    Handler.api = Api(cat)
    Handler.stats = Stats()
    server = Server(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"consul HTTP stand-in on 127.0.0.1:{port}: {len(cat['services'])} services, "
          f"{len(cat['nodes'])} nodes", flush=True)
    server.serve_forever()
    server.server_close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("gen", help="write the zone, the query file and the catalog JSON")
    gen.add_argument("dir")
    diff = sub.add_parser("diff-answers", help="compare two dig -f outputs")
    diff.add_argument("agent")
    diff.add_argument("system")
    srv = sub.add_parser("serve", help="serve the catalog over Consul's HTTP API")
    srv.add_argument("--port", type=int, required=True)
    srv.add_argument("--catalog", required=True)
    args = parser.parse_args()
    if args.command == "gen":
        write_generated(args.dir)
    elif args.command == "diff-answers":
        return diff_answers(args.agent, args.system)
    else:
        serve(args.port, args.catalog)
    return 0


if __name__ == "__main__":
    sys.exit(main())
