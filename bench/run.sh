#!/usr/bin/env bash
# Compare DNS forwarders on this machine, in one run: splitdns, dnsmasq, Unbound,
# dnsdist (with its packet cache) and a zero-work floor, all forwarding to the
# same two local NSD upstreams, loaded by dnsperf with the same query files; on
# request also splitdns with its Consul mirror, watching a stand-in of the
# agent's HTTP API that serves the catalog the consul upstream's zone holds,
# and splitdns and Unbound validating DNSSEC against a signed copy of the
# bench.test zone (a third NSD, the zone's DS as their trust anchor).
# Every run restarts every forwarder and rotates their order; the tables show
# medians and the spread of the runs, the answers' rcodes are checked, and the
# machine is recorded. Everything stays on 127.0.0.1. See bench/README.md.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")

# ---------------------------------------------------------------- defaults
DURATION=10          # seconds per measured workload
CLIENTS=10           # dnsperf -c (sockets)
OUTSTANDING=100      # dnsperf -q (queries in flight)
TIMEOUT=2            # dnsperf -t: a query unanswered after this is "lost"
RUNS=3               # each run restarts every forwarder, so caches start empty
HOT_NAMES=1000
COLD_NAMES=150000    # distinct names, fewer than cache entries: misses without evictions
CACHE_SIZE=200000    # cache entries for dnsmasq, dnsdist and splitdns
CPUS=""              # SERVER:CLIENT[:UPSTREAM] core lists for taskset; empty = no pinning
SYSTEMS=splitdns,dnsmasq,unbound,dnsdist,floor
WORKLOADS="cold,hot,consul"
OUT=""
PERCENTILES=1
KEEP_LATENCIES=0
KEEP_SCRATCH=0
PORT_BASE=25300

# ---------------------------------------------------------------- splitdns
# {config} becomes the config written from splitdns.toml.in, {port} its port,
# {portA} and {portB} the bench.test and consul upstream ports.
SPLITDNS_BIN="$REPO_DIR/target/release/splitdns"
SPLITDNS_CMD=""      # default: "$SPLITDNS_BIN run --config {config}"
SPLITDNS_LABEL=splitdns
SPLITDNS_CONFIG_TEMPLATE="$BENCH_DIR/splitdns.toml.in"
MIRROR_WAIT=10       # seconds the mirror may take to fetch the services of its warm-up pass
SIGNED_NSEC3=0       # 1: sign the bench.test copy with NSEC3 (no salt, 0 iterations) instead of NSEC

declare -A PID=()    # name -> PID of every process this script started
declare -A PORT=()
declare -A EXEC=()    # splitdns and splitdns-mirror -> the command that starts it
FLOOR_ARGS=()         # floor.c arguments after its port: none (echo) or the two upstream ports (relay)
SERVER_CPUS="" CLIENT_CPUS="" UPSTREAM_CPUS=""

usage() {
  cat <<EOF
Usage: bench/run.sh [options]

Loads splitdns, dnsmasq, Unbound, dnsdist and a zero-work floor one after
another with dnsperf (workloads cold, hot, consul), all forwarding to the same
two NSD servers on 127.0.0.1; prints one table per workload (medians of the
runs, their spread, rcodes checked) and writes results.json. Exit status 0 when
every system that answers anything real answered with the rcodes the zone data
predicts and stayed up, 3 when one did not (see the answers column), 1 on error.

  --systems LIST         comma list of splitdns,dnsmasq,unbound,dnsdist,floor,
                         splitdns-mirror (splitdns with [consul] http pointing at
                         the stand-in agent's HTTP API; with it the floor also
                         measures its echo on the consul queries, row floor-echo),
                         splitdns-validating, unbound-validating (DNSSEC
                         validation on, against a signed copy of bench.test with
                         its DS as the trust anchor; hot and cold only);
                         the order of the first run, rotated by one each run
                         (default: $SYSTEMS)
  --workloads LIST       comma list of cold,hot,consul (default: $WORKLOADS)
  --runs N               repetitions; tables show medians (default: $RUNS)
  --duration S           seconds per measured workload (default: $DURATION)
  --splitdns PATH        the splitdns binary (default: target/release/splitdns)
  --splitdns-cmd CMD     the whole command instead, with {config} {port} {portA}
                         {portB} (default: 'PATH run --config {config}'); any
                         forwarder can stand in, e.g. dnsmasq for an A/A check
  --label NAME           label of the splitdns row (default: $SPLITDNS_LABEL);
                         splitdns-mirror runs the same command with its own config
  --clients N            dnsperf clients/sockets (default: $CLIENTS)
  --outstanding N        dnsperf max queries in flight (default: $OUTSTANDING)
  --cpus S:C[:U]         taskset core lists: forwarder S, dnsperf C, upstreams U
                         (default U = C); e.g. --cpus 1:0. Default: no pinning
  --pin                  same as --cpus 1:0 (forwarder on core 1, the rest on core 0)
  --hot-names N          distinct names in the hot set (default: $HOT_NAMES)
  --cold-names N         distinct names for the cold set (default: $COLD_NAMES)
  --cache-size N         cache entries for dnsmasq, dnsdist and splitdns (default: $CACHE_SIZE)
  --signed-nsec3         sign the bench.test copy of the validating systems with
                         NSEC3 (no salt, 0 iterations) instead of NSEC
  --out DIR              results directory (default: /tmp/dnsbench-DATE)
  --port-base N          ports N+1, N+2 upstreams, N+3 the consul HTTP stand-in,
                         N+4 the signed bench.test upstream, N+10..N+17
                         forwarders (default: $PORT_BASE)
  --no-percentiles       skip dnsperf -v (no p50/p90/p99 columns, a bit less client CPU)
  --keep-latencies       keep every answer's latency, in completion order, in
                         raw/SYSTEM-WORKLOAD-runN.latencies (ms, one per line; for
                         bench/latency_regimes.py)
  --keep                 keep the scratch directory (zones, query files)
  -h, --help             this text

Example (the headline run of BENCHMARKS.md):
  cargo build --release && bench/run.sh --runs 3 --duration 10
The Consul mirror against forwarding:
  bench/run.sh --workloads consul --systems splitdns,splitdns-mirror,dnsmasq,unbound,dnsdist,floor
EOF
}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

parse_args() {
  while (($#)); do
    case $1 in
      --systems) SYSTEMS=$2; shift ;;
      --workloads) WORKLOADS=$2; shift ;;
      --runs) RUNS=$2; shift ;;
      --duration) DURATION=$2; shift ;;
      --splitdns) SPLITDNS_BIN=$2; shift ;;
      --splitdns-cmd) SPLITDNS_CMD=$2; shift ;;
      --label) SPLITDNS_LABEL=$2; shift ;;
      --clients) CLIENTS=$2; shift ;;
      --outstanding) OUTSTANDING=$2; shift ;;
      --cpus) CPUS=$2; shift ;;
      --pin) CPUS=1:0 ;;
      --hot-names) HOT_NAMES=$2; shift ;;
      --cold-names) COLD_NAMES=$2; shift ;;
      --cache-size) CACHE_SIZE=$2; shift ;;
      --signed-nsec3) SIGNED_NSEC3=1 ;;
      --out) OUT=$2; shift ;;
      --port-base) PORT_BASE=$2; shift ;;
      --no-percentiles) PERCENTILES=0 ;;
      --keep-latencies) KEEP_LATENCIES=1 ;;
      --keep) KEEP_SCRATCH=1 ;;
      -h|--help) usage; exit 0 ;;
      *) usage >&2; die "unknown option: $1" ;;
    esac
    shift
  done
  local sys
  IFS=, read -ra SYSTEM_LIST <<<"$SYSTEMS"
  for sys in "${SYSTEM_LIST[@]}"; do
    case $sys in
      splitdns|splitdns-mirror|splitdns-validating|dnsmasq|unbound|unbound-validating|dnsdist|floor) ;;
      *) die "unknown system: $sys" ;;
    esac
  done
  for sys in ${WORKLOADS//,/ }; do
    case $sys in cold|hot|consul) ;; *) die "unknown workload: $sys" ;; esac
  done
  if [[ ,$SYSTEMS, == *,splitdns,* || ,$SYSTEMS, == *,splitdns-mirror,* || ,$SYSTEMS, == *,splitdns-validating,* ]] &&
     [[ -z $SPLITDNS_CMD ]]; then
    [[ -x $SPLITDNS_BIN ]] || die "no splitdns at $SPLITDNS_BIN: run cargo build --release, or pass --splitdns PATH"
    SPLITDNS_CMD="$SPLITDNS_BIN run --config {config}"
    SPLITDNS_VERSION=$(tool_version "$SPLITDNS_BIN" --version)
  fi
  if [[ -n $CPUS ]]; then
    IFS=: read -r SERVER_CPUS CLIENT_CPUS UPSTREAM_CPUS <<<"$CPUS"
    [[ -n $SERVER_CPUS && -n $CLIENT_CPUS ]] || die "--cpus wants SERVER:CLIENT[:UPSTREAM]"
    UPSTREAM_CPUS=${UPSTREAM_CPUS:-$CLIENT_CPUS}
  fi
  OUT=${OUT:-/tmp/dnsbench-$(date +%Y%m%d-%H%M%S)}
  SIGNED=0
  [[ ,$SYSTEMS, != *,splitdns-validating,* && ,$SYSTEMS, != *,unbound-validating,* ]] || SIGNED=1
}

# The validating systems run hot and cold against the signed bench.test copy; the
# consul workload (names under no trust anchor, insecure) is not measured for them.
workload_of() {  # SYSTEM WORKLOAD: true when SYSTEM measures WORKLOAD
  [[ ,$WORKLOADS, == *,$2,* ]] || return 1
  [[ $1 != *-validating || $2 != consul ]]
}

# ---------------------------------------------------------------- setup
ensure_deps() {
  local -A pkg_of=([dnsperf]=dnsperf [dnsmasq]=dnsmasq-base [unbound]=unbound [nsd]=nsd [dnsdist]=dnsdist
    [taskset]=util-linux [lscpu]=util-linux [ss]=iproute2 [ps]=procps [python3]=python3 [cc]=gcc
    [nsd-control]=nsd [curl]=curl [dig]=bind9-dnsutils)
  if ((SIGNED)); then
    pkg_of+=([ldns-keygen]=ldnsutils [ldns-signzone]=ldnsutils [ldns-key2ds]=ldnsutils)
  fi
  local cmd missing=()
  for cmd in "${!pkg_of[@]}"; do
    command -v "$cmd" >/dev/null || [[ -x /usr/sbin/$cmd ]] || missing+=("${pkg_of[$cmd]}")
  done
  ((${#missing[@]})) || return 0
  die "missing commands; install the Debian packages: apt-get install --no-install-recommends ${missing[*]}
  (with a /usr/sbin/policy-rc.d that exits 101, so that apt starts no unbound or dnsdist service; see bench/README.md)"
}

setup_dirs() {
  mkdir -p "$OUT"/{raw,logs,configs}
  OUT=$(cd "$OUT" && pwd)
  SCRATCH=$(mktemp -d /tmp/dnsbench-scratch.XXXXXX)
  : >"$OUT/results.jsonl"
}

set_ports() {
  PORT[auth]=$((PORT_BASE + 1))
  PORT[consul]=$((PORT_BASE + 2))
  PORT[consul-http]=$((PORT_BASE + 3))
  PORT[dnsmasq]=$((PORT_BASE + 10))
  PORT[unbound]=$((PORT_BASE + 11))
  PORT[splitdns]=$((PORT_BASE + 12))
  PORT[floor]=$((PORT_BASE + 13))
  PORT[dnsdist]=$((PORT_BASE + 14))
  PORT[splitdns-mirror]=$((PORT_BASE + 15))
  PORT[splitdns-validating]=$((PORT_BASE + 16))
  PORT[unbound-validating]=$((PORT_BASE + 17))
  ((SIGNED == 0)) || PORT[auth-signed]=$((PORT_BASE + 4))
  local name
  for name in "${!PORT[@]}"; do
    if ss -Hltun "sport = :${PORT[$name]}" | grep -q .; then
      die "port ${PORT[$name]} ($name) is in use; pick another --port-base"
    fi
  done
}

# ---------------------------------------------------------------- data
# One awk program writes the bench.test zone and both query files, so the
# record-type mix is defined once: per 20 names 1 NXDOMAIN, 1 CNAME, 1 AAAA,
# 1 TXT, 1 SRV (target with A), 15 A. It also writes each query file's share
# of NXDOMAIN answers (<file>.nx), which the report checks answers against.
gen_bench_data() {
  awk -v hot="$HOT_NAMES" -v cold="$COLD_NAMES" -v zone="$SCRATCH/bench.test.zone" \
      -v hotq="$SCRATCH/hot.queries" -v coldq="$SCRATCH/cold.queries" '
    function addr(i) { return sprintf("198.%d.%d.%d", 18 + int(i / 65536) % 2, int(i / 256) % 256, i % 256) }
    function names(p, n, qf,   i, k, nm, nx) {
      for (i = 1; i <= n; i++) {
        k = i % 20; nm = p i
        if (k == 0) { nx++; print (nm ".bench.test A") > qf }
        else if (k == 1) {
          print (nm " CNAME " nm "-t") > zone; print (nm "-t A " addr(i)) > zone
          print (nm ".bench.test A") > qf
        } else if (k == 2) {
          printf("%s AAAA 2001:db8::%x:%x\n", nm, int(i / 65536), i % 65536) > zone
          print (nm ".bench.test AAAA") > qf
        } else if (k == 3) {
          print (nm " TXT \"bench " nm "\"") > zone; print (nm ".bench.test TXT") > qf
        } else if (k == 4) {
          print ("_" nm "._tcp SRV 10 5 8080 " nm "-t") > zone; print (nm "-t A " addr(i)) > zone
          print ("_" nm "._tcp.bench.test SRV") > qf
        } else { print (nm " A " addr(i)) > zone; print (nm ".bench.test A") > qf }
      }
      printf("%.4f\n", nx / n) > (qf ".nx")
    }
    BEGIN {
      print "$ORIGIN bench.test.\n$TTL 3600" > zone
      print "@ SOA ns hostmaster 1 3600 600 86400 3600\n@ NS ns\nns A 127.0.0.1\nprobe A 127.0.0.1" > zone
      names("h", hot, hotq); names("c", cold, coldq)
    }'
}

# A stand-in Consul agent: TTL 0 (Consul's default) except services 41-50
# (TTL 30, as with service_ttl), SRV targets <node>.node.dc1.consul with A
# records, SOA minimum 0 like Consul's soa.min_ttl. Queries: per service A
# and SRV, some node lookups, some unknown services (NXDOMAIN). One generator
# writes the zone NSD serves as the agent's DNS port and the catalog the HTTP
# stand-in serves (consul.catalog.json), so the two cannot disagree.
gen_consul_data() {
  python3 "$BENCH_DIR/consul_http.py" gen "$SCRATCH"
  cp "$SCRATCH/consul.catalog.json" "$OUT/configs/consul-catalog.json"
}

# The signed copy of bench.test for the validating systems: the same zone file,
# signed with ldns-signzone (ECDSAP256SHA256, RFC 6605: a KSK and a ZSK; NSEC, or
# NSEC3 without salt or extra iterations with --signed-nsec3; valid from a day ago
# for 30 days), served by a third NSD. The KSK's SHA-256 DS (ldns-key2ds) is the
# trust anchor both validators get, in the form Unbound's trust-anchor: and
# splitdns's [dnssec] trust_anchors take: "bench.test. IN DS TAG 13 2 HEX".
sign_bench_zone() {
  local dir="$SCRATCH/keys" ksk zsk now t0=$EPOCHREALTIME
  local -a args
  mkdir -p "$dir"
  ksk=$(cd "$dir" && ldns-keygen -r /dev/urandom -a ECDSAP256SHA256 -k bench.test.)
  zsk=$(cd "$dir" && ldns-keygen -r /dev/urandom -a ECDSAP256SHA256 bench.test.)
  now=$(date +%s)
  args=(-i $((now - 86400)) -e $((now + 30 * 86400)))
  ((SIGNED_NSEC3 == 0)) || args+=(-n -t 0)
  (cd "$dir" && ldns-signzone "${args[@]}" -f "$SCRATCH/bench.test.zone.signed" \
    "$SCRATCH/bench.test.zone" "$ksk" "$zsk") || die "ldns-signzone failed"
  ANCHOR=$(cd "$dir" && ldns-key2ds -n -2 "$ksk.key" | awk '$4 == "DS" { print $1, "IN DS", $5, $6, $7, $8; exit }')
  [[ -n $ANCHOR ]] || die "no DS from ldns-key2ds"
  printf '%s\n' "$ANCHOR" >"$OUT/configs/trust-anchor.txt"
  log "signed bench.test ($(if ((SIGNED_NSEC3)); then echo NSEC3; else echo NSEC; fi)) in $(elapsed "$t0" "$EPOCHREALTIME") s; anchor: $ANCHOR"
}

# ---------------------------------------------------------------- configs
write_nsd_conf() {  # NAME PORT ZONE ZONEFILE
  cat >"$OUT/configs/$1.conf" <<EOF
server:
  ip-address: 127.0.0.1
  port: $2
  do-ip6: no
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$SCRATCH"
  database: ""
  zonelistfile: "$SCRATCH/$1.zonelist"
  xfrdfile: "$SCRATCH/$1.xfrd.state"
  xfrdir: "$SCRATCH"
  pidfile: "$SCRATCH/$1.pid"
  logfile: "$OUT/logs/$1.log"
  verbosity: 0
  hide-version: yes
  # Debian builds NSD with response rate limiting (200 qps per source); off.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
# nsd-control over a unix socket (no keys): run.sh reads num.queries from it
remote-control:
  control-enable: yes
  control-interface: "$SCRATCH/$1.ctl"
zone:
  name: "$3"
  zonefile: "$4"
EOF
}

# One unbound thread per core it may run on (2 unpinned, 1 under --pin): two
# threads on one core cost it 10-20% of its forwarding rate and 2-3x its p99.
# unbound-validating: the same config with the validator module, the signed
# bench.test copy's DS as its only trust anchor (no root anchor, so consul. and
# anything else outside bench.test. is insecure) and "." forwarded to the signed copy.
# The validator's other settings stay at Unbound's defaults (aggressive-nsec: yes,
# key-cache-size 4m, val-bogus-ttl 60).
write_unbound_conf() {  # SYSTEM: unbound or unbound-validating
  local sys=$1 threads modules=iterator internet=${PORT[auth]} anchor=""
  if [[ $sys == unbound-validating ]]; then
    modules="validator iterator" internet=${PORT[auth-signed]}
    anchor=$'\n'"  trust-anchor: \"$ANCHOR\""
  fi
  threads=$(pin_cmd "$SERVER_CPUS" nproc; "${CMD[@]}")
  cat >"$OUT/configs/$sys.conf" <<EOF
server:
  interface: 127.0.0.1@${PORT[$sys]}
  port: ${PORT[$sys]}
  outgoing-interface: 127.0.0.1
  do-ip6: no
  access-control: 127.0.0.0/8 allow
  username: ""
  chroot: ""
  directory: "$SCRATCH"
  pidfile: "$SCRATCH/$sys.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: $threads
  so-reuseport: yes
  msg-cache-slabs: 2
  rrset-cache-slabs: 2
  infra-cache-slabs: 2
  key-cache-slabs: 2
  msg-cache-size: 128m
  rrset-cache-size: 256m
  outgoing-range: 8192
  num-queries-per-thread: 4096
  do-not-query-localhost: no
  qname-minimisation: no
  module-config: "$modules"$anchor
  # unbound answers .test itself (RFC 6761) unless told not to
  local-zone: "test." nodefault
remote-control:
  control-enable: no
forward-zone:
  name: "consul."
  forward-addr: 127.0.0.1@${PORT[consul]}
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$internet
EOF
}

# dnsdist as an operator would run it in front of these upstreams: a packet cache
# per pool (the cache-hit path it is known for), consul. to its own pool, one UDP
# listener thread per core it may run on, health checks on the probe names. No
# console, no web server, no carbon; the security-status poll is off, because it
# is a DNS query to the machine's own resolver at start.
write_dnsdist_conf() {
  local threads i
  threads=$(pin_cmd "$SERVER_CPUS" nproc; "${CMD[@]}")
  {
    echo "setSecurityPollSuffix('')"
    echo "setLocal('127.0.0.1:${PORT[dnsdist]}', {reusePort=true})"
    for ((i = 1; i < threads; i++)); do echo "addLocal('127.0.0.1:${PORT[dnsdist]}', {reusePort=true})"; done
    echo "setACL({'127.0.0.0/8'})"
    echo "newServer({address='127.0.0.1:${PORT[auth]}', checkName='probe.bench.test.'})"
    echo "newServer({address='127.0.0.1:${PORT[consul]}', pool='consul', checkName='probe.consul.'})"
    echo "addAction({'consul.'}, PoolAction('consul'))"
    echo "getPool(''):setCache(newPacketCache($CACHE_SIZE, {maxTTL=86400, minTTL=0}))"
    echo "getPool('consul'):setCache(newPacketCache(10000, {maxTTL=86400, minTTL=0}))"
  } >"$OUT/configs/dnsdist.conf"
}

dnsmasq_args() {
  DNSMASQ_ARGS=(--no-daemon --conf-file=/dev/null --no-resolv --no-hosts
    --listen-address=127.0.0.1 --bind-interfaces --port="${PORT[dnsmasq]}"
    --server="127.0.0.1#${PORT[auth]}" --server="/consul/127.0.0.1#${PORT[consul]}"
    --cache-size="$CACHE_SIZE" --cache-rr=TXT --dns-forward-max=1000)
  printf '%s\n' "${DNSMASQ_ARGS[@]}" >"$OUT/configs/dnsmasq.args"
}

# splitdns-mirror: the same template and command, on its own port, with the
# [consul] table that turns the mirror on.
# splitdns-validating: the same template with the signed bench.test copy as the
# default upstream, plus [dnssec] validate = true and its DS as the only anchor.
write_splitdns_conf() {  # SYSTEM: splitdns, splitdns-mirror or splitdns-validating; sets EXEC[SYSTEM]
  local sys=$1 exec internet=${PORT[auth]}
  [[ $sys != splitdns-validating ]] || internet=${PORT[auth-signed]}
  sed -e "s/{port}/${PORT[$sys]}/g" -e "s/{portA}/$internet/g" \
      -e "s/{portB}/${PORT[consul]}/g" -e "s/{cache_size}/$CACHE_SIZE/g" \
      "$SPLITDNS_CONFIG_TEMPLATE" >"$OUT/configs/$sys.toml"
  if [[ $sys == splitdns-mirror ]]; then
    printf '\n[consul]\nhttp = "127.0.0.1:%s"\n' "${PORT[consul-http]}" >>"$OUT/configs/$sys.toml"
  fi
  if [[ $sys == splitdns-validating ]]; then
    printf '\n[dnssec]\nvalidate = true\ntrust_anchors = ["%s"]\n' "$ANCHOR" >>"$OUT/configs/$sys.toml"
  fi
  exec=${SPLITDNS_CMD//\{config\}/$OUT/configs/$sys.toml}
  exec=${exec//\{port\}/${PORT[$sys]}}
  exec=${exec//\{portA\}/$internet}
  exec=${exec//\{portB\}/${PORT[consul]}}
  EXEC[$sys]=$exec
  printf '%s\n' "$exec" >"$OUT/configs/$sys.cmd"
}

# ---------------------------------------------------------------- processes
# Every process is started in the background as a plain command, so that $!
# is the process itself (taskset and "bash -c exec" keep the PID), and bash
# waits for it with "wait", which a signal interrupts (cleanup runs at once).
pin_cmd() {  # CPULIST CMD...: sets CMD, under taskset when CPULIST is set
  local cpus=$1; shift
  CMD=("$@")
  [[ -z $cpus ]] || CMD=(taskset -c "$cpus" "$@")
}

start_bg() {  # NAME CPULIST CMD...
  local name=$1; shift
  pin_cmd "$@"
  "${CMD[@]}" >"$OUT/logs/$name.out" 2>&1 </dev/null &
  PID[$name]=$!
}

alive() {  # a zombie counts as dead
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

stop_bg() {
  local name=$1 pid=${PID[$1]:-} _
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in {1..50}; do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  unset "PID[$name]"
}

cleanup() {
  local name
  for name in "${!PID[@]}"; do stop_bg "$name"; done
  if [[ -n ${SCRATCH:-} && $KEEP_SCRATCH == 0 ]]; then rm -rf "$SCRATCH"; fi
}

query_ok() {  # PORT NAME TYPE: one query answered NOERROR
  printf '%s %s\n' "$2" "$3" | dnsperf -s 127.0.0.1 -p "$1" -n 1 -t 1 2>/dev/null |
    grep -q 'Response codes: *NOERROR 1 '
}

wait_ready() {  # NAME PORT PROBE_NAME
  local _
  for _ in {1..100}; do
    alive "${PID[$1]}" || die "$1 exited at start; see $OUT/logs/$1.out"
    query_ok "$2" "$3" A && return 0
    sleep 0.2
  done
  die "$1 did not answer on 127.0.0.1:$2; see $OUT/logs/$1.out"
}

start_upstreams() {
  start_bg auth "$UPSTREAM_CPUS" nsd -d -c "$OUT/configs/auth.conf"
  start_bg consul "$UPSTREAM_CPUS" nsd -d -c "$OUT/configs/consul.conf"
  start_bg consul-http "$UPSTREAM_CPUS" python3 "$BENCH_DIR/consul_http.py" serve \
    --port "${PORT[consul-http]}" --catalog "$SCRATCH/consul.catalog.json"
  wait_ready auth "${PORT[auth]}" probe.bench.test
  wait_ready consul "${PORT[consul]}" probe.consul
  if ((SIGNED)); then
    start_bg auth-signed "$UPSTREAM_CPUS" nsd -d -c "$OUT/configs/auth-signed.conf"
    wait_ready auth-signed "${PORT[auth-signed]}" probe.bench.test
  fi
  local _
  for _ in {1..50}; do
    consul_http /v1/agent/self >/dev/null && return 0
    alive "${PID[consul-http]}" || break
    sleep 0.1
  done
  die "the consul HTTP stand-in did not answer; see $OUT/logs/consul-http.out"
}

start_system() {
  case $1 in
    dnsmasq) start_bg dnsmasq "$SERVER_CPUS" dnsmasq "${DNSMASQ_ARGS[@]}" ;;
    unbound|unbound-validating) start_bg "$1" "$SERVER_CPUS" unbound -d -c "$OUT/configs/$1.conf" ;;
    dnsdist) start_bg dnsdist "$SERVER_CPUS" dnsdist --supervised --disable-syslog -C "$OUT/configs/dnsdist.conf" ;;
    splitdns|splitdns-mirror|splitdns-validating) start_bg "$1" "$SERVER_CPUS" bash -c "exec ${EXEC[$1]}" ;;
    floor)  # echo for hot, relay for cold and consul: see floor.c and run_floor
      [[ -x $SCRATCH/floor ]] || cc -O2 -o "$SCRATCH/floor" "$BENCH_DIR/floor.c" || die "cc floor.c failed"
      start_bg floor "$SERVER_CPUS" "$SCRATCH/floor" "${PORT[floor]}" "${FLOOR_ARGS[@]}"
      sleep 0.3
      return ;;  # no readiness probe: the echo answers nothing real
  esac
  wait_ready "$1" "${PORT[$1]}" probe.bench.test
  query_ok "${PORT[$1]}" probe.consul A || die "$1 does not route consul. to the consul upstream"
  [[ $1 != *-validating ]] || check_validates "$1"
}

# A validating system must show that it validates before it is measured: asked with DO
# (dig +dnssec), an existing name of the signed zone comes back NOERROR with AD, a
# missing one NXDOMAIN with AD (its NSEC or NSEC3 denial validated), and probe.consul
# (under no anchor: insecure) NOERROR without AD. No query file has these names. The
# answers go to logs/ad-check-SYSTEM.txt.
check_validates() {  # SYSTEM
  local sys=$1 log="$OUT/logs/ad-check-$1.txt" want name status ad out
  local flags_ad='flags:[a-z ]* ad[ ;]'
  for want in "probe.bench.test NOERROR set" "no-such-name.bench.test NXDOMAIN set" "probe.consul NOERROR clear"; do
    read -r name status ad <<<"$want"
    out=$(dig @127.0.0.1 -p "${PORT[$sys]}" +dnssec +tries=1 +time=2 "$name" A 2>&1) || true
    printf '== %s: want %s, AD %s\n%s\n\n' "$name" "$status" "$ad" "$out" >>"$log"
    [[ $out == *"status: $status,"* ]] || die "$sys: $name is not $status with DO set; see $log"
    if [[ $ad == set ]]; then
      [[ $out =~ $flags_ad ]] || die "$sys: no AD on $name: it does not validate; see $log"
    else
      [[ ! $out =~ $flags_ad ]] || die "$sys: AD on $name, which no anchor covers; see $log"
    fi
  done
}

# ---------------------------------------------------------------- accounting
proc_ticks() {  # utime+stime of a process and all its threads
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  read -ra fields <<<"${stat##*) }"  # fields after "pid (comm)", from field 3 on
  echo $((fields[11] + fields[12]))
}

tree_ticks() {  # CPU ticks of a process and its descendants
  local total child
  total=$(proc_ticks "$1")
  for child in $(ps -o pid= --ppid "$1"); do
    total=$((total + $(tree_ticks "$child")))
  done
  echo "$total"
}

# Summed over all cores: ticks in processes (user, nice, system), in the
# kernel's irq/softirq work (loopback packets are mostly handled there, and
# charged to no process) and stolen by the hypervisor.
machine_ticks() {
  awk '/^cpu / { print $2 + $3 + $4, $7 + $8, $9 }' /proc/stat
}

# Queries the agent's DNS port (the consul NSD) has answered since it started,
# from its own statistics: counted outside the forwarder under test.
agent_queries() {
  nsd-control -c "$OUT/configs/consul.conf" stats_noreset 2>/dev/null |
    awk -F= '$1 == "num.queries" { print $2; found = 1 } END { if (!found) print "null" }'
}

consul_http() {  # PATH: GET from the consul HTTP stand-in
  curl -sf --max-time 5 "http://127.0.0.1:${PORT[consul-http]}$1"
}

# Requests the HTTP stand-in has answered since it started ("null" if it did not say).
http_requests() {
  local stats
  stats=$(consul_http /bench/stats) || { echo null; return; }
  [[ $stats =~ \"requests\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}" || echo null
}

delta() { [[ $1 == null || $2 == null ]] && echo null || echo $(($2 - $1)); }

vm_kb() {  # PID FIELD: e.g. VmHWM in kB
  awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

# p50/p90/p99/p99.9 in ms from dnsperf -v lines "> RCODE name type latency"
percentiles() {
  awk '$1 == ">" && NF >= 5 { us = int($5 * 1e6 + 0.5); h[us]++; n++; if (us > max) max = us }
    END {
      if (n == 0) { print "null null null null"; exit }
      split("0.5 0.9 0.99 0.999", q, " "); j = 1
      for (us = 0; us <= max && j <= 4; us++) {
        c += h[us]
        while (j <= 4 && c >= q[j] * n) { out = out sprintf("%.3f ", us / 1000); j++ }
      }
      print out
    }' "$1"
}

# ---------------------------------------------------------------- workloads
run_client() {  # STDOUT STDERR PORT QUERYFILE DNSPERF_ARGS...
  local stdout=$1 stderr=$2 port=$3 file=$4; shift 4
  pin_cmd "$CLIENT_CPUS" dnsperf -s 127.0.0.1 -p "$port" -d "$file" -c "$CLIENTS" -T 1 \
    -q "$OUTSTANDING" -t "$TIMEOUT" "$@"
  "${CMD[@]}" >"$stdout" 2>"$stderr" </dev/null &
  PID[client]=$!
  wait "${PID[client]}" || true
  unset 'PID[client]'
}

# The agent's and the stand-in's counters when the warm-up began, so that the
# measurement's line can say what the warm-up cost them.
WARM_AGENT=null WARM_HTTP=null

warm_up() {  # SYSTEM QUERYFILE: one pass, not measured
  WARM_AGENT=$(agent_queries) WARM_HTTP=$(http_requests)
  [[ $1 != splitdns-mirror ]] || consul_http /bench/reset-seen >/dev/null || true
  run_client "$SCRATCH/warmup.out" "$SCRATCH/warmup.err" "${PORT[$1]}" "$2" -n 1
  cat "$SCRATCH/warmup.out" "$SCRATCH/warmup.err" >>"$OUT/logs/warmup.log"
  [[ $1 != splitdns-mirror || $2 != "$SCRATCH/consul.queries" ]] || mirror_settle
}

# The mirror forwards the first query for a service and starts its watch; the
# warm-up pass asks every name of the query file once. Wait until the stand-in
# has answered a health request for every service the file names (at most
# MIRROR_WAIT s), then a moment for the mirror to take the answers in, so that
# what is measured is the mirror and not its start. How long it took goes to
# logs/mirror-settle.log; whatever it still forwards shows in agent_queries.
mirror_settle() {
  local want seen=0 t0=$EPOCHREALTIME deadline=$((${EPOCHREALTIME%.*} + MIRROR_WAIT))
  want=$(($(grep -oE '^svc[0-9]+\.service' "$SCRATCH/consul.queries" | sort -u | wc -l)))
  while ((${EPOCHREALTIME%.*} < deadline)); do
    seen=$(consul_http /bench/seen | grep -oE '[0-9]+' || echo 0)
    ((seen >= want)) && break
    sleep 0.05
  done
  sleep 0.5
  printf 'services watched %s of %s after %s s%s\n' "$seen" "$want" "$(elapsed "$t0" "$EPOCHREALTIME")" \
    "$( ((seen >= want)) || echo " (gave up after $MIRROR_WAIT s)")" >>"$OUT/logs/mirror-settle.log"
}

# CPU ticks of the server and of the upstreams (the two NSDs and the consul
# HTTP stand-in; idle outside the load, so sampled a little before and after it).
sample_counters() {  # SERVER_PID
  echo "$(tree_ticks "$1") $(($(tree_ticks "${PID[auth]}") + $(tree_ticks "${PID[consul]}") \
    + $(tree_ticks "${PID[consul-http]}")))"
}

# CPU seconds of this shell's finished children, from the file "times" wrote.
children_cpu_s() {
  awk 'function s(t) { split(t, a, /[ms]/); return a[1] * 60 + a[2] }
       NR == 2 { printf "%.3f", s($1) + s($2) }' "$1"
}

ticks_s() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }'; }

json_obj() {  # KEY VALUE...: values go in as given, so quote strings yourself
  local out="" sep=""
  while (($#)); do out+="$sep\"$1\":$2"; sep=,; shift 2; done
  printf '{%s}\n' "$out"
}

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# dnsperf -v prints a line per answer before its summary; keep the summary only,
# and with --keep-latencies each answer's latency in ms, in the order they came.
keep_summary() {  # VERBOSE_OUTPUT RAW_FILE
  grep -v '^> ' "$1" >"$2" || true
  if ((KEEP_LATENCIES)); then
    awk '$1 == ">" && NF >= 5 { printf "%.3f\n", $5 * 1000 }' "$1" >"${2%.txt}.latencies"
  fi
  rm -f "$1"
  [[ -s $2.stderr ]] || rm -f "$2.stderr"
}

measure() {  # SYSTEM WORKLOAD RUN POSITION QUERYFILE DNSPERF_LIMITS...
  local sys=$1 wl=$2 run=$3 pos=$4 file=$5; shift 5
  local tag="$sys-$wl-run$run" pid=${PID[$sys]} alive=true t0 t1 server_s
  local raw="$OUT/raw/$tag.txt" verbose="$SCRATCH/$tag.v"
  local -a c0 c1 m0 m1 p=(null null null null) mem
  local agent0 agent1 http0 http1
  ((PERCENTILES)) && set -- "$@" -v
  agent0=$(agent_queries) http0=$(http_requests)
  read -ra c0 <<<"$(sample_counters "$pid")"  # finished (reaped) before "times"
  # the whole machine's ticks right next to the wall-clock window, which they share
  read -ra m0 <<<"$(machine_ticks)"; times >"$SCRATCH/times.0"; t0=$EPOCHREALTIME
  run_client "$verbose" "$raw.stderr" "${PORT[$sys]}" "$file" "$@"
  t1=$EPOCHREALTIME; read -ra m1 <<<"$(machine_ticks)"; times >"$SCRATCH/times.1"
  read -ra c1 <<<"$(sample_counters "$pid")"
  agent1=$(agent_queries) http1=$(http_requests)
  mem=("$(vm_kb "$pid" VmHWM)" "$(vm_kb "$pid" VmRSS)")
  server_s=$(ticks_s $((c1[0] - c0[0])))
  if ! alive "$pid"; then
    log "$sys died during $wl (run $run); see $OUT/logs/$sys.out"
    alive=false server_s=null mem=(null null)
  fi
  ((PERCENTILES)) && read -ra p < <(percentiles "$verbose")
  keep_summary "$verbose" "$raw"
  json_obj system "\"$sys\"" workload "\"$wl\"" run "$run" position "$pos" raw "\"raw/$tag.txt\"" \
    pid_alive "$alive" wall_s "$(elapsed "$t0" "$t1")" server_cpu_s "$server_s" \
    client_cpu_s "$(elapsed "$(children_cpu_s "$SCRATCH/times.0")" "$(children_cpu_s "$SCRATCH/times.1")")" \
    upstream_cpu_s "$(ticks_s $((c1[1] - c0[1])))" machine_task_s "$(ticks_s $((m1[0] - m0[0])))" \
    machine_irq_s "$(ticks_s $((m1[1] - m0[1])))" steal_s "$(ticks_s $((m1[2] - m0[2])))" \
    p50_ms "${p[0]}" p90_ms "${p[1]}" p99_ms "${p[2]}" p999_ms "${p[3]}" \
    hwm_kb "${mem[0]}" rss_kb "${mem[1]}" \
    agent_queries "$(delta "$agent0" "$agent1")" agent_queries_warmup "$(delta "$WARM_AGENT" "$agent0")" \
    http_requests "$(delta "$http0" "$http1")" http_requests_warmup "$(delta "$WARM_HTTP" "$http0")" \
    >>"$OUT/results.jsonl"
  WARM_AGENT=null WARM_HTTP=null
  [[ $alive == true ]]
}

# Cold goes first, on a fresh process whose cache holds only the hot names
# (its warm-up); every other workload is measured after one unmeasured pass.
run_system() {  # SYSTEM RUN POSITION
  local sys=$1 run=$2 pos=$3 wl
  log "run $run/$RUNS, #$pos: $sys on 127.0.0.1:${PORT[$sys]}"
  if [[ $sys == floor ]]; then
    run_floor "$run" "$pos"
    return
  fi
  start_system "$sys"
  for wl in cold hot consul; do
    workload_of "$sys" "$wl" || continue
    if [[ $wl == cold ]]; then
      warm_up "$sys" "$SCRATCH/hot.queries"
      measure "$sys" cold "$run" "$pos" "$SCRATCH/cold.queries" -n 1 -l "$DURATION" || break
    else
      warm_up "$sys" "$SCRATCH/$wl.queries"
      measure "$sys" "$wl" "$run" "$pos" "$SCRATCH/$wl.queries" -l "$DURATION" || break
      [[ $wl != consul || $sys != splitdns* ]] || check_consul_answers "$sys" "$run"
    fi
  done
  stop_bg "$sys"
}

# After the consul load: every name of the query file once more, asked of the
# system and of the agent's DNS port with dig, answers compared (rcode, answer
# and additional records, the SOA of a negative answer; see consul_http.py
# diff-answers for what is left out). The result goes to answer-checks.jsonl
# and the differences to logs/answers-SYSTEM-runN.txt.
check_consul_answers() {  # SYSTEM RUN
  local sys=$1 run=$2 differ total log="$OUT/logs/answers-$1-run$2.txt"
  local -a dig=(dig @127.0.0.1 +noedns +tries=1 +time=2 +noall +comments +answer +authority +additional
    -f "$SCRATCH/consul.queries")
  "${dig[@]}" -p "${PORT[consul]}" >"$SCRATCH/agent.dig" 2>&1 || true
  "${dig[@]}" -p "${PORT[$sys]}" >"$SCRATCH/system.dig" 2>&1 || true
  python3 "$BENCH_DIR/consul_http.py" diff-answers "$SCRATCH/agent.dig" "$SCRATCH/system.dig" >"$log" || true
  read -r differ _ total _ < <(tail -1 "$log")
  json_obj system "\"$sys\"" run "$run" differ "${differ:-null}" total "${total:-null}" \
    log "\"logs/${log##*/}\"" >>"$OUT/answer-checks.jsonl"
  [[ ${differ:-1} == 0 ]] || log "$sys run $run: $differ of $total consul answers differ from the agent's; see $log"
}

# The floor, a fresh process per workload: an echo for hot (no upstream at all), a relay that
# rewrites IDs and nothing else for cold and consul (the least a forwarded query can cost).
run_floor() {  # RUN POSITION
  local run=$1 pos=$2 wl
  for wl in cold hot consul; do
    [[ ,$WORKLOADS, == *,$wl,* ]] || continue
    if [[ $wl == hot ]]; then FLOOR_ARGS=(); else FLOOR_ARGS=("${PORT[auth]}" "${PORT[consul]}"); fi
    start_system floor
    if [[ $wl == cold ]]; then
      measure floor cold "$run" "$pos" "$SCRATCH/cold.queries" -n 1 -l "$DURATION" || { stop_bg floor; break; }
    else
      warm_up floor "$SCRATCH/$wl.queries"
      measure floor "$wl" "$run" "$pos" "$SCRATCH/$wl.queries" -l "$DURATION" || { stop_bg floor; break; }
    fi
    stop_bg floor
  done
  # With the mirror the consul workload is answered from memory, like hot: its
  # floor is then the echo, on the same query file (row floor-echo).
  [[ ,$SYSTEMS, == *,splitdns-mirror,* && ,$WORKLOADS, == *,consul,* ]] || return 0
  FLOOR_ARGS=()
  start_system floor
  PID[floor-echo]=${PID[floor]} PORT[floor-echo]=${PORT[floor]}
  warm_up floor-echo "$SCRATCH/consul.queries"
  measure floor-echo consul "$run" "$pos" "$SCRATCH/consul.queries" -l "$DURATION" || true
  unset 'PID[floor-echo]' 'PORT[floor-echo]'
  stop_bg floor
}

# ---------------------------------------------------------------- report
# The first version number the command prints ("Dnsmasq version 2.90 ...", "dnsdist 1.7.3 (...)").
tool_version() {
  "$@" 2>&1 | grep -m1 -iE '(version|^[a-z]+) [0-9]' | grep -m1 -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -1
}

lscpu_field() { lscpu | awk -F': *' -v f="$1" '$1 == f { print $2; exit }'; }

write_meta() {
  {
    printf 'date\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    printf 'host_nproc\t%s\n' "$(nproc)"
    printf 'host_cpu\t%s\n' "$(lscpu_field 'Model name')"
    printf 'host_cpu_family_model\t%s/%s\n' "$(lscpu_field 'CPU family')" "$(lscpu_field 'Model')"
    printf 'host_hypervisor\t%s\n' "$(lscpu_field 'Hypervisor vendor')"
    printf 'host_mem\t%s\n' "$(free -h | awk '/^Mem:/ { print $2 }')"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'loadavg_at_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf 'duration_s\t%s\nclients\t%s\noutstanding\t%s\ntimeout_s\t%s\nruns\t%s\n' \
      "$DURATION" "$CLIENTS" "$OUTSTANDING" "$TIMEOUT" "$RUNS"
    printf 'hot_names\t%s\ncold_names\t%s\ncache_size\t%s\n' "$HOT_NAMES" "$COLD_NAMES" "$CACHE_SIZE"
    printf 'cpus\t%s\nsystems\t%s\nworkloads\t%s\nsplitdns_label\t%s\nsplitdns_cmd\t%s\n' \
      "${CPUS:-none}" "$SYSTEMS" "$WORKLOADS" "$SPLITDNS_LABEL" "${EXEC[splitdns]:-}"
    [[ -z ${EXEC[splitdns-mirror]:-} ]] || printf 'splitdns_mirror_cmd\t%s\n' "${EXEC[splitdns-mirror]}"
    [[ -z ${EXEC[splitdns-validating]:-} ]] || printf 'splitdns_validating_cmd\t%s\n' "${EXEC[splitdns-validating]}"
    printf 'command\t%s\n' "$COMMAND_LINE"
    printf 'expected_nx_hot\t%s\nexpected_nx_cold\t%s\nexpected_nx_consul\t%s\n' \
      "$(<"$SCRATCH/hot.queries.nx")" "$(<"$SCRATCH/cold.queries.nx")" \
      "$(<"$SCRATCH/consul.queries.nx")"
    if ((PERCENTILES)); then
      printf 'percentiles_note\tp50/p99 come from dnsperf -v per-query latencies (this dnsperf has no histogram option)\n'
    else
      printf 'percentiles_note\tpercentiles off (--no-percentiles)\n'
    fi
    printf 'version_dnsperf\t%s\n' "$(tool_version dnsperf -h)"
    printf 'version_dnsmasq\t%s\n' "$(tool_version dnsmasq --version)"
    printf 'version_unbound\t%s\n' "$(tool_version unbound -V)"
    printf 'version_dnsdist\t%s\n' "$(tool_version dnsdist --version)"
    printf 'version_nsd\t%s\n' "$(tool_version nsd -v)"
    if ((SIGNED)); then
      printf 'signed_zone\tbench.test. signed with ldns-signzone %s, ECDSAP256SHA256 KSK+ZSK, %s\n' \
        "$(tool_version ldns-signzone -v)" \
        "$(if ((SIGNED_NSEC3)); then echo 'NSEC3 (no salt, 0 iterations)'; else echo NSEC; fi)"
      printf 'trust_anchor\t%s\n' "$ANCHOR"
    fi
    [[ -z ${SPLITDNS_VERSION:-} ]] || printf 'version_splitdns\t%s\n' "$SPLITDNS_VERSION"
    if [[ -d $REPO_DIR/.git ]] && command -v git >/dev/null; then
      printf 'git_commit\t%s\n' "$(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null || echo unknown)"
    fi
  } >"$OUT/meta.tsv"
}

main() {
  COMMAND_LINE="bench/run.sh${*:+ $(printf '%q ' "$@")}"
  COMMAND_LINE=${COMMAND_LINE% }
  parse_args "$@"
  ensure_deps
  trap cleanup EXIT
  trap 'log interrupted; exit 130' INT TERM
  CLK_TCK=$(getconf CLK_TCK)
  setup_dirs
  set_ports
  log "generating data ($HOT_NAMES hot, $COLD_NAMES cold names) in $SCRATCH"
  gen_bench_data
  gen_consul_data
  write_nsd_conf auth "${PORT[auth]}" bench.test "$SCRATCH/bench.test.zone"
  write_nsd_conf consul "${PORT[consul]}" consul "$SCRATCH/consul.zone"
  if ((SIGNED)); then
    sign_bench_zone
    write_nsd_conf auth-signed "${PORT[auth-signed]}" bench.test "$SCRATCH/bench.test.zone.signed"
  fi
  write_unbound_conf unbound
  [[ ,$SYSTEMS, != *,unbound-validating,* ]] || write_unbound_conf unbound-validating
  [[ ,$SYSTEMS, != *,dnsdist,* ]] || write_dnsdist_conf
  dnsmasq_args
  [[ ,$SYSTEMS, != *,splitdns,* ]] || write_splitdns_conf splitdns
  [[ ,$SYSTEMS, != *,splitdns-mirror,* ]] || write_splitdns_conf splitdns-mirror
  [[ ,$SYSTEMS, != *,splitdns-validating,* ]] || write_splitdns_conf splitdns-validating
  write_meta
  start_upstreams

  local run i n=${#SYSTEM_LIST[@]}
  for ((run = 1; run <= RUNS; run++)); do
    # rotate the order so that no system always runs first or last
    for ((i = 0; i < n; i++)); do
      run_system "${SYSTEM_LIST[(i + run - 1) % n]}" "$run" $((i + 1))
    done
  done

  local status=0
  python3 "$BENCH_DIR/report.py" "$OUT" >"$OUT/summary.txt" || status=$?
  cat "$OUT/summary.txt"
  log "results: $OUT/results.json, tables: $OUT/summary.txt"
  ((status == 0)) || log "some answers were not what the zone data says, or a server died: see the answers column"
  return "$status"
}

main "$@"
