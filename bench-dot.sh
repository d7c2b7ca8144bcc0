#!/usr/bin/env bash
# DNS over TLS forwarding cost: splitdns against Unbound, both forwarding every
# query of the cold workload (distinct names, each asked once: every query a
# cache miss) over TLS to the same Unbound DoT server, in one run.
#
#   dnsperf ──► splitdns  :P+10  ─┐  tls://127.0.0.1:P+1#dns.bench.test
#           └─► unbound   :P+11  ─┴──► unbound DoT server (local-data zone bench.test.)
#                (forward-tls-upstream: yes)
#
# Prints per system: QPS, CPU seconds per 10,000 queries (utime+stime of the
# forwarder, from /proc), answers lost, and for splitdns the TLS connections it
# opened (splitdns_upstream_connections_total), as handshakes per 10,000 queries.
# Everything stays on 127.0.0.1; the CA and certificate are made here with openssl.
#
# Usage: ./bench-dot.sh [--names N] [--runs N] [--splitdns PATH] [--port-base P]
# Needs: unbound, dnsperf, openssl, python3; a release build of splitdns
# (cargo build --release) unless --splitdns names one.
set -euo pipefail

NAMES=100000
RUNS=3
PORT_BASE=25400
SPLITDNS="$(dirname "$0")/target/release/splitdns"
while (($#)); do
  case $1 in
    --names) NAMES=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --splitdns) SPLITDNS=$2; shift ;;
    --port-base) PORT_BASE=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for tool in unbound dnsperf openssl python3; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || { echo "needs $tool" >&2; exit 1; }
done
[[ -x $SPLITDNS ]] || { echo "no splitdns at $SPLITDNS: cargo build --release" >&2; exit 1; }

DOT=$((PORT_BASE + 1)) DOT_PLAIN=$((PORT_BASE + 2))
SPLIT=$((PORT_BASE + 10)) UNB=$((PORT_BASE + 11)) METRICS=$((PORT_BASE + 12))
DIR=$(mktemp -d /tmp/bench-dot.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT

log() { printf '%s\n' "$*" >&2; }

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
  printf '    directory: "%s"\n    logfile: "%s/dot.log"\n' "$DIR" "$DIR"
  printf '    incoming-num-tcp: 1000\n    tcp-idle-timeout: 120000\n    msg-cache-size: 0\n'
  common
  printf '    local-zone: "bench.test." static\n'
  cat "$DIR/zone.conf"
} >"$DIR/dot.conf"

# Unbound as the forwarder under comparison.
cat >"$DIR/unbound-fwd.conf" <<CONF
server:
    interface: 127.0.0.1@$UNB
    port: $UNB
    directory: "$DIR"
    logfile: "$DIR/fwd.log"
    tls-cert-bundle: "$DIR/ca.pem"
    msg-cache-size: 64m
    rrset-cache-size: 128m
$(common)
    local-zone: "test." nodefault
    domain-insecure: "bench.test."
forward-zone:
    name: "bench.test."
    forward-tls-upstream: yes
    forward-addr: 127.0.0.1@$DOT#dns.bench.test
CONF

cat >"$DIR/splitdns.toml" <<CONF
[server]
listen = ["127.0.0.1:$SPLIT"]
[upstream]
servers = ["tls://127.0.0.1:$DOT#dns.bench.test"]
ca_file = "$DIR/ca.pem"
[cache]
size = $((NAMES * 2))
[metrics]
listen = "127.0.0.1:$METRICS"
CONF

wait_answer() {
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
  log "nothing answers on port $1"; exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One measured run of system $1 on port $2: starts it, loads it, stops it.
measure() {
  local sys=$1 port=$2 pid
  case $sys in
    splitdns) "$SPLITDNS" run --config "$DIR/splitdns.toml" 2>"$DIR/splitdns.log" & pid=$! ;;
    unbound) /usr/sbin/unbound -d -c "$DIR/unbound-fwd.conf" & pid=$! ;;
  esac
  PIDS+=("$pid")
  # A fresh DoT server per run, so both start with no connection and no session.
  /usr/sbin/unbound -d -c "$DIR/dot.conf" & local dot=$!
  PIDS+=("$dot")
  wait_answer "$DOT_PLAIN"
  wait_answer "$port"
  local t0 t1 out
  t0=$(cpu_ticks "$pid")
  # The probe name was asked once; the load starts at c2.
  out=$(tail -n +2 "$DIR/cold.queries" | dnsperf -s 127.0.0.1 -p "$port" -c 10 -q 100 -n 1 -l 120 2>&1)
  t1=$(cpu_ticks "$pid")
  local handshakes=n/a
  if [[ $sys == splitdns ]]; then
    handshakes=$(python3 - "$METRICS" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics").read().decode()
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
              if l.startswith("splitdns_upstream_connections_total{"))))
PY
)
  fi
  kill "$pid" "$dot"; wait "$pid" "$dot" 2>/dev/null || true
  local sent qps lost hz
  sent=$(awk '/Queries sent:/ {print $3}' <<<"$out")
  lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
  qps=$(awk '/Queries per second:/ {print $4}' <<<"$out")
  hz=$(getconf CLK_TCK)
  python3 - "$sys" "$sent" "$lost" "$qps" "$((t1 - t0))" "$hz" "$handshakes" <<'PY'
import sys
sys_, sent, lost, qps, ticks, hz, hs = sys.argv[1:]
sent, lost, ticks, hz = int(sent), int(lost), int(ticks), int(hz)
cpu = ticks / hz
per10k = "n/a" if hs == "n/a" else f"{int(hs) / sent * 10000:.2f}"
print(f"{sys_}\t{float(qps):.0f}\t{cpu / sent * 1e6:.1f}\t{lost}\t{per10k}")
PY
}

log "cold workload: $NAMES names, each once, forwarded over TLS; $RUNS runs"
printf 'system\tQPS\tCPU us/query\tlost\thandshakes/10k\n'
for run in $(seq "$RUNS"); do
  measure splitdns "$SPLIT"
  measure unbound "$UNB"
done
