#!/usr/bin/env python3
"""Where a run's tail latency comes from: a .latencies file of bench/run.sh
--keep-latencies (one answer's latency in ms per line, in the order the answers
came), cut into blocks of consecutive answers.

Under a closed loop (dnsperf -q), a block's mean latency is how long the
whole system took per query during it. If the tail were spread evenly, every
block would have about the same mean; if it comes from spells in which the
forwarder runs slower (a core shared with a client or an upstream), the block
means split into modes, and the slow mode is where the p99 lives.

Usage: bench/latency_regimes.py FILE.latencies [FILE.latencies ...] [--block N]
"""

import argparse
import collections
import statistics


def percentile(ordered, q):
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(path, block):
    with open(path) as f:
        latencies = [float(line) for line in f if line.strip()]
    if not latencies:
        print(f"{path}: no latencies (was the run made with --keep-latencies?)")
        return
    ordered = sorted(latencies)
    marks = ", ".join(
        f"p{q * 100:g} {percentile(ordered, q):.3f}" for q in (0.5, 0.9, 0.99, 0.999)
    )
    print(f"{path}: {len(latencies)} answers; ms: {marks}")
    means = [
        statistics.fmean(latencies[i : i + block])
        for i in range(0, len(latencies) - block + 1, block)
    ]
    modes = collections.Counter(round(m, 1) for m in means)
    print(f"  mean latency of each block of {block} answers (ms: share of blocks):")
    for mean, count in sorted(modes.items()):
        share = count / len(means)
        if share >= 0.005:
            print(f"    {mean:4.1f}: {share:6.1%} {'#' * round(share * 100)}")
    p99 = percentile(ordered, 0.99)
    slowest = [i for i, latency in enumerate(latencies) if latency >= p99]
    spells = sum(
        1 for a, b in zip([-block - 1] + slowest, slowest) if b - a > block
    )
    print(
        f"  the {len(slowest)} answers at or over p99 come in {spells} spells "
        f"(answers more than {block} apart start a new one)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--block", type=int, default=100)
    args = parser.parse_args()
    for path in args.files:
        report(path, args.block)


if __name__ == "__main__":
    main()
