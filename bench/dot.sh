#!/usr/bin/env bash
# DNS over TLS forwarding cost: splitdns against Unbound, both forwarding every
# query of a cold workload (distinct names, each asked once: every query a
# cache miss) over TLS to the same Unbound DoT server, in one run.
#
#   dnsperf ──► splitdns  :P+10  ─┐  tls://127.0.0.1:P+1#dns.bench.test
#           └─► unbound   :P+11  ─┴──► unbound DoT server (local-data zone bench.test.)
#                (forward-tls-upstream: yes)
#
# Each run starts a fresh DoT server and a fresh forwarder, so both start with
# no connection and no TLS session; the order of the two forwarders rotates
# from run to run. Per run and system: QPS, the forwarder's CPU per query
# (utime+stime from /proc), the DoT server's CPU per query, answers lost, the
# rcodes (every name exists, so anything but NOERROR marks the run WRONG) and
# the TCP connections the DoT server accepted, i.e. TLS handshakes, counted the
# same way for both forwarders. Then medians and min-max over the runs.
#
# The handshake count comes from the kernel's TCP counters (PassiveOpens in
# /proc/net/snmp), so the script runs itself in a network namespace of its own
# (unshare --net; as root, or with --map-root-user where unprivileged user
# namespaces are allowed), where only the forwarder connects to the DoT server.
# That namespace has nothing but loopback, so no query can leave the machine.
# Without a namespace (--no-netns, or when unshare fails) Unbound's handshakes
# are n/a and splitdns's come from its own metric.
#
# Needs: unbound, dnsperf, openssl, python3, iproute2 (ip), util-linux (unshare);
# a release build of splitdns (cargo build --release) unless --splitdns names one.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")

NAMES=100000
RUNS=3
PORT_BASE=25400
CLIENTS=10
OUTSTANDING=100
SPLITDNS="$REPO_DIR/target/release/splitdns"
OUT=""
NETNS=1
# Unbound as an operator runs a DoT forwarder: enough outgoing TCP/TLS streams for
# the queries in flight (the default, 10 per thread, queues 100 queries behind 10
# streams), the other stream settings at their defaults (a connection is reused
# for up to max-reuse-tcp-queries: 200 queries, and kept for tcp-reuse-timeout: 60 s).
UNBOUND_TCP=128
UNBOUND_EXTRA=()
SYSTEMS=(splitdns unbound)

usage() {
  cat <<EOF
Usage: bench/dot.sh [options]

splitdns and Unbound forward the same distinct names over DNS over TLS to one
Unbound DoT server on 127.0.0.1; prints per run and per system QPS, CPU per
query, lost queries, rcodes and TLS handshakes, then medians and min-max.
Exit status 0 when every answer was NOERROR, 3 when a run's answers were not
(WRONG), 1 on error.

  --names N          distinct names, each asked once (default: $NAMES)
  --runs N           runs; the order of the forwarders rotates (default: $RUNS)
  --splitdns PATH    splitdns binary (default: target/release/splitdns)
  --unbound-tcp N    Unbound's outgoing-num-tcp, its TCP/TLS streams (default: $UNBOUND_TCP)
  --unbound-opt 'K: V'  one more server: line for the Unbound forwarder
                     (repeatable), e.g. 'max-reuse-tcp-queries: 10000'
  --clients N        dnsperf -c (default: $CLIENTS)
  --outstanding N    dnsperf -q, queries in flight (default: $OUTSTANDING)
  --port-base P      DoT server on P+1, forwarders on P+10, P+11 (default: $PORT_BASE)
  --out DIR          results directory (default: /tmp/bench-dot-DATE)
  --no-netns         run in the current network namespace (no handshake count
                     for Unbound)
  -h, --help         this text

Example (the DoT table of BENCHMARKS.md):
  cargo build --release && bench/dot.sh --names 100000 --runs 5
EOF
}

ARGS=("$@")
while (($#)); do
  case $1 in
    --names) NAMES=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --splitdns) SPLITDNS=$2; shift ;;
    --unbound-tcp) UNBOUND_TCP=$2; shift ;;
    --unbound-opt) UNBOUND_EXTRA+=("$2"); shift ;;
    --clients) CLIENTS=$2; shift ;;
    --outstanding) OUTSTANDING=$2; shift ;;
    --port-base) PORT_BASE=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-netns) NETNS=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in unbound dnsperf openssl python3; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || die "needs $tool"
done
[[ -x $SPLITDNS ]] || die "no splitdns at $SPLITDNS: cargo build --release, or --splitdns PATH"
UNBOUND=$(command -v unbound || echo /usr/sbin/unbound)

# Into a network namespace of our own (once): only loopback, and TCP counters
# that count nobody's connections but ours.
if ((NETNS)) && [[ -z ${BENCH_DOT_IN_NETNS:-} ]]; then
  export BENCH_DOT_IN_NETNS=1
  if ((EUID == 0)); then
    exec unshare --net -- "$BASH" "${BASH_SOURCE[0]}" "${ARGS[@]}"
  elif unshare --net --map-root-user true 2>/dev/null; then
    exec unshare --net --map-root-user -- "$BASH" "${BASH_SOURCE[0]}" "${ARGS[@]}"
  fi
  log "cannot make a network namespace (not root, no user namespaces): Unbound's handshakes will be n/a"
  NETNS=0
fi
if [[ -n ${BENCH_DOT_IN_NETNS:-} ]] && ((NETNS)); then
  ip link set lo up || die "cannot bring up lo in the namespace"
else
  NETNS=0
fi

DOT=$((PORT_BASE + 1)) DOT_PLAIN=$((PORT_BASE + 2))
declare -A PORT=([splitdns]=$((PORT_BASE + 10)) [unbound]=$((PORT_BASE + 11)))
METRICS=$((PORT_BASE + 12))
OUT=${OUT:-/tmp/bench-dot-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"/{configs,raw,logs}
OUT=$(cd "$OUT" && pwd)
DIR=$(mktemp -d /tmp/bench-dot.XXXXXX)
declare -A PIDS=()  # name -> PID of every process running that this script started
stop() {  # NAME...
  local name
  for name in "$@"; do [[ -z ${PIDS[$name]:-} ]] || kill "${PIDS[$name]}" 2>/dev/null || true; done
  for name in "$@"; do
    [[ -z ${PIDS[$name]:-} ]] || wait "${PIDS[$name]}" 2>/dev/null || true
    unset "PIDS[$name]"
  done
}
cleanup() {
  stop "${!PIDS[@]}"
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# A CA and a certificate for dns.bench.test.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -keyout "$DIR/ca.key" -out "$DIR/ca.pem" -subj "/CN=bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$DIR/server.key" -out "$DIR/server.csr" -subj "/CN=dns.bench.test" 2>/dev/null
printf 'subjectAltName=DNS:dns.bench.test\n' >"$DIR/ext"
openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
  -CAcreateserial -out "$DIR/server.pem" -days 1 -extfile "$DIR/ext" 2>/dev/null

# The cold zone: cN.bench.test A, and the queries, each name once.
awk -v n="$NAMES" -v zone="$DIR/zone.conf" -v q="$DIR/cold.queries" 'BEGIN {
  for (i = 1; i <= n; i++) {
    printf("    local-data: \"c%d.bench.test. 3600 IN A 10.%d.%d.%d\"\n", i,
      int(i / 65536) % 256, int(i / 256) % 256, i % 256) > zone
    printf("c%d.bench.test A\n", i) > q
  }
}'

common() {
  cat <<CONF
    do-ip6: no
    do-not-query-localhost: no
    access-control: 127.0.0.0/8 allow
    username: ""
    chroot: ""
    pidfile: ""
    use-syslog: no
    verbosity: 0
    num-threads: 1
    module-config: "iterator"
CONF
}

# The DoT server: the zone, answered over TLS.
{
  printf 'server:\n    interface: 127.0.0.1@%s\n    interface: 127.0.0.1@%s\n' "$DOT_PLAIN" "$DOT"
  printf '    port: %s\n    tls-port: %s\n' "$DOT_PLAIN" "$DOT"
  printf '    tls-service-key: "%s"\n    tls-service-pem: "%s"\n' "$DIR/server.key" "$DIR/server.pem"
  printf '    directory: "%s"\n    logfile: "%s/dot.log"\n' "$DIR" "$OUT/logs"
  printf '    incoming-num-tcp: 1000\n    tcp-idle-timeout: 120000\n    msg-cache-size: 0\n'
  common
  printf '    local-zone: "bench.test." static\n'
} >"$OUT/configs/dot-server.conf"
cat "$OUT/configs/dot-server.conf" "$DIR/zone.conf" >"$DIR/dot.conf"

# Unbound as the forwarder under comparison: one thread, as splitdns's [server]
# threads default on this 2-core class of machine; TCP/TLS streams as above.
{
  cat <<CONF
server:
    interface: 127.0.0.1@${PORT[unbound]}
    port: ${PORT[unbound]}
    directory: "$DIR"
    logfile: "$OUT/logs/unbound-fwd.log"
    tls-cert-bundle: "$DIR/ca.pem"
    msg-cache-size: 64m
    rrset-cache-size: 128m
$(common)
    outgoing-num-tcp: $UNBOUND_TCP
    local-zone: "test." nodefault
    domain-insecure: "bench.test."
CONF
  for opt in "${UNBOUND_EXTRA[@]}"; do printf '    %s\n' "$opt"; done
  cat <<CONF
remote-control:
    control-enable: no
forward-zone:
    name: "bench.test."
    forward-tls-upstream: yes
    forward-addr: 127.0.0.1@$DOT#dns.bench.test
CONF
} >"$OUT/configs/unbound-fwd.conf"

cat >"$OUT/configs/splitdns.toml" <<CONF
[server]
listen = ["127.0.0.1:${PORT[splitdns]}"]
[upstream]
servers = ["tls://127.0.0.1:$DOT#dns.bench.test"]
ca_file = "$DIR/ca.pem"
[cache]
size = $((NAMES * 2))
[metrics]
listen = "127.0.0.1:$METRICS"
CONF

wait_answer() {  # PORT: until c1.bench.test A is answered NOERROR over UDP
  local _
  for _ in $(seq 200); do
    if python3 - "$1" <<'PY' 2>/dev/null; then return 0; fi
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2)
q = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0) + b"\x02c1\x05bench\x04test\x00" + struct.pack(">HH", 1, 1)
s.sendto(q, ("127.0.0.1", int(sys.argv[1]))); d = s.recv(512)
sys.exit(0 if d[3] & 0xf == 0 else 1)
PY
    sleep 0.1
  done
  die "nothing answers on port $1"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# TCP connections accepted in this namespace: the DoT server's, as only it listens on TCP.
passive_opens() { awk '/^Tcp:/ { if (h) { print $(i); exit } for (i = 1; i <= NF; i++) if ($i == "PassiveOpens") break; h = 1 }' /proc/net/snmp; }

splitdns_connections() {
  python3 - "$METRICS" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
              if l.startswith("splitdns_upstream_connections_total{"))))
PY
}

HZ=$(getconf CLK_TCK)
: >"$OUT/results.tsv"

# One measured run of system $1: a fresh DoT server and forwarder, the load, both stopped.
measure() {  # SYSTEM RUN POSITION
  local sys=$1 run=$2 pos=$3 port=${PORT[$1]} pid dot opens0 opens1 hs=n/a metric=n/a
  "$UNBOUND" -d -c "$DIR/dot.conf" >"$OUT/logs/dot-server.out" 2>&1 & dot=$!
  PIDS[dot]=$dot
  wait_answer "$DOT_PLAIN"
  ((NETNS)) && opens0=$(passive_opens)
  case $sys in
    splitdns) "$SPLITDNS" run --config "$OUT/configs/splitdns.toml" >"$OUT/logs/splitdns.out" 2>&1 & pid=$! ;;
    unbound) "$UNBOUND" -d -c "$OUT/configs/unbound-fwd.conf" >"$OUT/logs/unbound-fwd.out" 2>&1 & pid=$! ;;
  esac
  PIDS[$sys]=$pid
  wait_answer "$port"
  local t0 d0 t1 d1 raw="$OUT/raw/$sys-run$run.txt"
  t0=$(cpu_ticks "$pid") d0=$(cpu_ticks "$dot")
  # The probe asked c1 (over TLS, counted with the handshakes); the load starts at c2.
  tail -n +2 "$DIR/cold.queries" |
    dnsperf -s 127.0.0.1 -p "$port" -c "$CLIENTS" -q "$OUTSTANDING" -n 1 -l 600 >"$raw" 2>&1 || true
  t1=$(cpu_ticks "$pid") d1=$(cpu_ticks "$dot")
  ((NETNS)) && { opens1=$(passive_opens); hs=$((opens1 - opens0)); }
  [[ $sys != splitdns ]] || metric=$(splitdns_connections)
  stop "$sys" dot
  python3 - "$sys" "$run" "$pos" "$raw" "$((t1 - t0))" "$((d1 - d0))" "$HZ" "$hs" "$metric" <<'PY' >>"$OUT/results.tsv"
import re, sys
system, run, pos, raw, ticks, dot_ticks, hz, hs, metric = sys.argv[1:]
text = open(raw).read()
def num(pattern, cast=int):
    m = re.search(pattern, text)
    return cast(m.group(1)) if m else None
sent = num(r"Queries sent:\s+(\d+)") or 0
done = num(r"Queries completed:\s+(\d+)") or 0
lost = num(r"Queries lost:\s+(\d+)")
qps = num(r"Queries per second:\s+([\d.]+)", float) or 0.0
codes = re.search(r"Response codes:\s+(.*)", text)
rcodes = dict((k, int(v)) for k, v in re.findall(r"([A-Z]+) (\d+) \(", codes.group(1))) if codes else {}
ok = done > 0 and rcodes.get("NOERROR", 0) == done
rc = ",".join(f"{k}:{v}" for k, v in rcodes.items()) or "none"
us = int(ticks) / int(hz) / done * 1e6 if done else 0.0
dot_us = int(dot_ticks) / int(hz) / done * 1e6 if done else 0.0
print("\t".join([system, run, pos, f"{qps:.0f}", f"{us:.1f}", f"{dot_us:.1f}", str(lost), str(sent),
                 rc, "ok" if ok else "WRONG", hs, metric]))
PY
}

tsv_header="system\trun\tposition\tQPS\tCPU us/query\tDoT server us/query\tlost\tsent\trcodes\tanswers\thandshakes\tsplitdns metric"

machine() {
  local f
  f() { lscpu | awk -F': *' -v f="$1" '$1 == f { print $2; exit }'; }
  printf '%s (family/model %s/%s), %s cores, %s RAM, hypervisor %s, kernel %s' \
    "$(f 'Model name')" "$(f 'CPU family')" "$(f 'Model')" "$(nproc)" \
    "$(free -h | awk '/^Mem:/ { print $2 }')" "$(f 'Hypervisor vendor' | grep . || echo none)" "$(uname -r)"
}

{
  echo "DNS over TLS forwarding (bench/dot.sh), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine: $(machine), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "versions: $("$SPLITDNS" --version 2>&1 | head -1); unbound $("$UNBOUND" -V | awk '/^Version/ { print $2; exit }'); dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ { print $2; exit }')"
  command="bench/dot.sh${ARGS[*]:+ $(printf '%q ' "${ARGS[@]}")}"
  echo "command: ${command% }"
  echo "cold workload: $NAMES names, each once, forwarded over TLS; $RUNS runs; dnsperf -c $CLIENTS -q $OUTSTANDING"
  echo "unbound forwarder: num-threads 1, outgoing-num-tcp $UNBOUND_TCP${UNBOUND_EXTRA[*]:+, ${UNBOUND_EXTRA[*]}}"
  ((NETNS)) && echo "handshakes: TCP connections the DoT server accepted (own network namespace)" ||
    echo "handshakes: n/a without a network namespace; splitdns metric = splitdns_upstream_connections_total"
} >"$OUT/header.txt"
cat "$OUT/header.txt" >&2

for ((run = 1; run <= RUNS; run++)); do
  n=${#SYSTEMS[@]}
  for ((i = 0; i < n; i++)); do
    sys=${SYSTEMS[(i + run - 1) % n]}
    log "run $run/$RUNS, #$((i + 1)): $sys"
    measure "$sys" "$run" $((i + 1))
  done
done

status=0
python3 - "$OUT/results.tsv" "$tsv_header" <<'PY' >"$OUT/summary.txt" || status=$?
import statistics, sys
path, header = sys.argv[1], sys.argv[2].replace("\\t", "\t")
rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
cols = header.split("\t")
widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
def line(cells):
    return "  ".join(c.ljust(w) if i in (0, 8, 9) else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
print("per run:")
print(line(cols))
for r in rows:
    print(line(r))
print("\nmedians (min-max) over the runs:")
out = [["system", "QPS", "QPS min-max", "CPU us/q", "us/q min-max", "DoT server us/q", "lost", "answers", "handshakes", "per 10k queries"]]
med = {}
for system in dict.fromkeys(r[0] for r in rows):
    mine = [r for r in rows if r[0] == system]
    qps = [float(r[3]) for r in mine]
    us = [float(r[4]) for r in mine]
    dot = [float(r[5]) for r in mine]
    hs = [int(r[10]) for r in mine if r[10] != "n/a"] or [int(r[11]) for r in mine if r[11] != "n/a"]
    sent = statistics.median(int(r[7]) for r in mine)
    ok = all(r[9] == "ok" for r in mine)
    med[system] = (statistics.median(qps), statistics.median(us))
    out.append([system, f"{statistics.median(qps):,.0f}", f"{min(qps):.0f}-{max(qps):.0f}",
                f"{statistics.median(us):.1f}", f"{min(us):.1f}-{max(us):.1f}",
                f"{statistics.median(dot):.1f}", str(sum(int(r[6] or 0) for r in mine if r[6] != "None")),
                "ok" if ok else "WRONG",
                f"{statistics.median(hs):g} ({min(hs)}-{max(hs)})" if hs else "n/a",
                f"{statistics.median(hs) / sent * 10000:.2f}" if hs and sent else "n/a"])
w = [max(len(r[i]) for r in out) for i in range(len(out[0]))]
for r in out:
    print("  ".join(c.ljust(w[i]) if i in (0, 7) else c.rjust(w[i]) for i, c in enumerate(r)).rstrip())
if "splitdns" in med and "unbound" in med and med["unbound"][0] and med["unbound"][1]:
    print(f"\nsplitdns: {med['splitdns'][0] / med['unbound'][0]:.2f}x Unbound's QPS, "
          f"{med['splitdns'][1] / med['unbound'][1]:.2f}x its CPU per query (medians)")
wrong = [r for r in rows if r[9] != "ok"]
for r in wrong:
    print(f"warning: {r[0]} run {r[1]}: WRONG answers: {r[8]} (every name exists: all should be NOERROR)")
sys.exit(3 if wrong else 0)
PY
cat "$OUT/header.txt" "$OUT/summary.txt" | tee "$OUT/report.txt"
log "results: $OUT/report.txt, per run: $OUT/results.tsv"
exit "$status"
