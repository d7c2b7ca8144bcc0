#!/bin/sh
# A UDP flood against splitdns on 127.0.0.1, as fast as dnsperf can send, to
# show memory stays flat: RSS is read after minute 1 and at the end.
#
#   scripts/soak.sh [SECONDS]        default 600 (10 minutes)
#
# Two splitdns processes, both on loopback: the one under test, and an
# "upstream" answering every name under load.test from an address= rule. The
# queries cycle through 200,000 distinct names, ten times the cache size, so
# the run keeps missing, fetching, storing and evicting, as a busy host does,
# and adds a share of ANY and of names under a local zone.
set -eu
DURATION=${1:-600}
FRONT_PORT=${FRONT_PORT:-15353}
BACK_PORT=${BACK_PORT:-15354}
cd "$(dirname "$0")/.."
command -v dnsperf >/dev/null || { echo "soak: dnsperf is not installed" >&2; exit 1; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'kill $front $back 2>/dev/null; rm -rf "$work"' EXIT INT TERM

cat >"$work/back.toml" <<CONF
rules = ["address=/load.test/198.18.0.1"]
[server]
listen = ["127.0.0.1:$BACK_PORT"]
[upstream]
servers = ["127.0.0.1:9"]
CONF
cat >"$work/front.toml" <<CONF
rules = ["local=/lan/"]
[server]
listen = ["127.0.0.1:$FRONT_PORT"]
[upstream]
servers = ["127.0.0.1:$BACK_PORT"]
timeout = "500ms"
[cache]
size = 20000
CONF
awk 'BEGIN { for (i = 0; i < 200000; i++) {
    print "n" i ".load.test A"
    if (i % 10 == 0) print "host" i ".lan A"
    if (i % 50 == 0) print "n" i ".load.test ANY"
} }' >"$work/queries"

./target/release/splitdns run --config "$work/back.toml" & back=$!
./target/release/splitdns run --config "$work/front.toml" & front=$!
sleep 1
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$front/status"; }

dnsperf -s 127.0.0.1 -p "$FRONT_PORT" -d "$work/queries" -l "$DURATION" -c 8 -q 500 \
    >"$work/dnsperf.out" 2>&1 & perf=$!
sleep 60
rss_1=$(rss)
wait $perf || true
rss_end=$(rss)
grep -E "Queries (sent|completed|lost)|Response codes|Queries per second|Average Latency" "$work/dnsperf.out"
echo "RSS after 60 s: ${rss_1} kB; after ${DURATION} s: ${rss_end} kB"
awk -v a="$rss_1" -v b="$rss_end" 'BEGIN { d = (b - a) * 100 / a; printf "RSS change: %+.1f%%\n", d; exit (d > 10 || d < -10) }'
