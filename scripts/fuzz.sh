#!/bin/sh
# Runs every cargo-fuzz target for SECONDS seconds each (default 600), one after
# the other, starting from the seeds in fuzz/seeds/ and the corpus of earlier
# runs, then prints the executions each reached. Crashers land in
# fuzz/artifacts/TARGET/; pin each one as a regression test before fixing it.
#
# cargo-fuzz needs nightly compiler features; with a stable toolchain,
# RUSTC_BOOTSTRAP=1 turns them on. Install once with `cargo install cargo-fuzz`.
set -eu
SECONDS_EACH=${1:-600}
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
for target in query_handler upstream_reply config_toml dnsmasq_rule; do
    mkdir -p "corpus/$target"
    log="fuzz-$target.log"
    cargo fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 -max_len=4096 -timeout=5 -rss_limit_mb=1024 \
        >"$log" 2>&1 || { echo "$target: FAILED, see fuzz/$log"; tail -30 "$log"; exit 1; }
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    echo "$target: ${SECONDS_EACH}s, ${execs:-?} executions, no crash"
done
