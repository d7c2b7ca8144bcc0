#!/usr/bin/env python3
"""Summarise a bench/run.sh results directory.

Reads results.jsonl (one line per measurement, written by run.sh), the raw
dnsperf output it points to and meta.tsv; prints the machine, one table per
workload and a memory table, and writes results.json. Exit status 3 when a
system's answers did not have the rcodes the zone data predicts or a system
died, else 0. Usage: bench/report.py OUT_DIR
"""
import json
import re
import statistics
import sys
from pathlib import Path

BASELINE = "dnsmasq"
ORDER = ["splitdns", "splitdns-mirror", "splitdns-validating", "dnsmasq", "unbound",
         "unbound-validating", "dnsdist", "floor", "floor-echo"]
FLOOR = "floor"  # zero-work responder: the least a query can cost here
# With splitdns-mirror in the run, the floor's echo on the consul queries too: the least a
# query answered from memory can cost.
ECHO_FLOOR = "floor-echo"
# The floor's echo (hot, and floor-echo) answers nothing real: its rcodes are not checked. Its
# relay (cold, consul) passes on NSD's answers, which are.
UNCHECKED = {(FLOOR, "hot"), (ECHO_FLOOR, "consul")}
WORKLOADS = {
    "hot": "{hot_names} names repeated, all cache hits after a warm-up pass",
    "cold": "{cold_names} distinct names, each asked once: cache misses forwarded upstream",
    "consul": "SRV + A under consul., routed to the consul upstream; TTL 0 except 1 in 5 services",
}
NOISY_OTHER_CPU = 10.0  # % of one core used by processes that are not ours
CLIENT_BOUND_CPU = 95.0  # dnsperf at this % of a core caps the QPS it can drive

DNSPERF_FIELDS = {
    "sent": (r"Queries sent:\s+(\d+)", int),
    "completed": (r"Queries completed:\s+(\d+)", int),
    "lost": (r"Queries lost:\s+(\d+)", int),
    "request_bytes": (r"Average packet size:\s+request (\d+)", int),
    "response_bytes": (r"Average packet size:\s+request \d+, response (\d+)", int),
    "run_time_s": (r"Run time \(s\):\s+([\d.]+)", float),
    "qps": (r"Queries per second:\s+([\d.]+)", float),
    "avg_latency_s": (r"Average Latency \(s\):\s+([\d.]+)", float),
    "min_latency_s": (r"Average Latency \(s\):.*min ([\d.]+)", float),
    "max_latency_s": (r"Average Latency \(s\):.*max ([\d.]+)", float),
    "latency_stddev_s": (r"Latency StdDev \(s\):\s+([\d.]+)", float),
}


def parse_dnsperf(text):
    result = {}
    for key, (pattern, cast) in DNSPERF_FIELDS.items():
        match = re.search(pattern, text)
        result[key] = cast(match.group(1)) if match else None
    codes = re.search(r"Response codes:\s+(.*)", text)
    result["rcodes"] = (
        {name: int(n) for name, n in re.findall(r"([A-Z]+) (\d+) \(", codes.group(1))}
        if codes else {}
    )
    return result


NUMERIC_META = {"host_nproc", "duration_s", "clients", "outstanding", "timeout_s", "runs",
                "hot_names", "cold_names", "cache_size"}


def read_meta(out):
    """meta.tsv as written by run.sh: numbers where they are settings, text otherwise
    (a version "2.90" stays "2.90")."""
    meta = {}
    for line in (out / "meta.tsv").read_text().splitlines():
        key, _, value = line.partition("\t")
        if key in NUMERIC_META:
            meta[key] = int(value)
        elif key.startswith("expected_nx_"):
            meta[key] = float(value)
        else:
            meta[key] = value
    return meta


def load_measurements(out):
    rows = []
    for line in (out / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        raw = out / row["raw"]
        row.update(parse_dnsperf(raw.read_text() if raw.exists() else ""))
        rows.append(row)
    return rows


def answers_ok(row, expected_nx):
    """Every answer NOERROR or NXDOMAIN, NXDOMAIN share as the zone data says.

    A server that answers SERVFAIL or REFUSED fast would otherwise look fast."""
    done = row["completed"] or 0
    if done == 0:
        return False
    noerror = row["rcodes"].get("NOERROR", 0)
    nxdomain = row["rcodes"].get("NXDOMAIN", 0)
    return noerror + nxdomain == done and abs(nxdomain / done - expected_nx) <= 0.01


def rcode_text(rcodes, done):
    return ", ".join(f"{name} {n} ({n / done:.1%})" if done else f"{name} {n}"
                     for name, n in sorted(rcodes.items(), key=lambda kv: -kv[1])) or "none"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise_runs(rows, meta, workload):
    wall = [r["wall_s"] or None for r in rows]

    def per_wall(key):
        return median([r[key] / w * 100 if w and r[key] is not None else None
                       for r, w in zip(rows, wall)])

    ours = ("server_cpu_s", "client_cpu_s", "upstream_cpu_s")
    other = [max(0.0, r["machine_task_s"] - sum(r[k] for k in ours)) / w * 100
             if w and r["server_cpu_s"] is not None else None
             for r, w in zip(rows, wall)]
    qps = [r["qps"] for r in rows if r["qps"] is not None]
    us_q = [r["server_cpu_s"] / r["completed"] * 1e6
            for r in rows if r["completed"] and r["server_cpu_s"] is not None]
    checked = (rows[0]["system"], workload) not in UNCHECKED
    agent = [r["agent_queries"] / r["completed"] * 1e4
             for r in rows if r.get("agent_queries") is not None and r["completed"]]
    http = [r["http_requests"] / w for r, w in zip(rows, wall)
            if w and r.get("http_requests") is not None]
    return {
        "runs": len(rows),
        "agent_queries_per_10k": median(agent),
        "agent_queries_per_10k_min": min(agent) if agent else None,
        "agent_queries_per_10k_max": max(agent) if agent else None,
        "agent_queries_total": sum(r.get("agent_queries") or 0 for r in rows),
        "agent_queries_warmup": median([r.get("agent_queries_warmup") for r in rows]),
        "http_requests_per_s": median(http),
        "http_requests_warmup": median([r.get("http_requests_warmup") for r in rows]),
        "all_alive": all(r["pid_alive"] for r in rows),
        "qps": median(qps),
        "qps_min": min(qps) if qps else None,
        "qps_max": max(qps) if qps else None,
        "avg_ms": median([r["avg_latency_s"] * 1e3 for r in rows if r["avg_latency_s"] is not None]),
        "max_ms": median([r["max_latency_s"] * 1e3 for r in rows if r["max_latency_s"] is not None]),
        "p50_ms": median([r["p50_ms"] for r in rows]),
        "p90_ms": median([r["p90_ms"] for r in rows]),
        "p99_ms": median([r["p99_ms"] for r in rows]),
        "p999_ms": median([r["p999_ms"] for r in rows]),
        "sent_total": sum(r["sent"] or 0 for r in rows),
        "lost_total": sum(r["lost"] or 0 for r in rows),
        "answers_checked": checked,
        "answers_ok": not checked or all(answers_ok(r, meta[f"expected_nx_{workload}"]) for r in rows),
        "rcodes_by_run": {r["run"]: r["rcodes"] for r in rows},
        "wrong_runs": [r["run"] for r in rows
                       if checked and not answers_ok(r, meta[f"expected_nx_{workload}"])],
        "response_bytes": median([r["response_bytes"] for r in rows]),
        "server_cpu_pct": per_wall("server_cpu_s"),
        "server_us_per_query": median(us_q),
        "server_us_per_query_min": min(us_q) if us_q else None,
        "server_us_per_query_max": max(us_q) if us_q else None,
        "client_cpu_pct": per_wall("client_cpu_s"),
        "upstream_cpu_pct": per_wall("upstream_cpu_s"),
        "other_cpu_pct": median(other),
        "kernel_irq_cpu_pct": per_wall("machine_irq_s"),
        "steal_pct": per_wall("steal_s"),
        "run_time_s": median([r["run_time_s"] for r in rows]),
    }


def summarise(rows, meta, systems):
    summary, memory = {}, {}
    for workload in WORKLOADS:
        by_system = {}
        for system in systems:
            mine = [r for r in rows if r["workload"] == workload and r["system"] == system]
            if mine:
                by_system[system] = summarise_runs(mine, meta, workload)
        if by_system:
            add_ratios(by_system, "qps", "qps_vs_baseline")
            add_ratios(by_system, "server_us_per_query", "server_us_per_query_vs_baseline")
            summary[workload] = by_system
    for system in systems:
        if system in (FLOOR, ECHO_FLOOR):
            continue
        last = {}  # VmHWM only grows: the last live measurement of a run has the peak
        for r in rows:
            if r["system"] == system and r["hwm_kb"] is not None:
                last[r["run"]] = r
        memory[system] = {
            "peak_rss_mib": median([r["hwm_kb"] / 1024 for r in last.values()]),
            "end_rss_mib": median([r["rss_kb"] / 1024 for r in last.values()]),
        }
    add_ratios(memory, "peak_rss_mib", "peak_rss_vs_baseline")
    return summary, memory


def add_ratios(by_system, key, ratio_key):
    base = by_system.get(BASELINE, {}).get(key)
    for values in by_system.values():
        values[ratio_key] = values[key] / base if base and values[key] is not None else None


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def ratio(value):
    return "-" if value is None else format(value, ".2f") + "x"


def print_table(headers, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    for line in [headers] + rows:
        cells = [str(c).ljust(w) if i == 0 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(line, widths))]
        print("  ".join(cells).rstrip())


def workload_rows(by_system, label):
    rows = []
    for system, s in by_system.items():
        answers = "n/a" if not s["answers_checked"] else "ok" if s["answers_ok"] else "WRONG"
        if not s["all_alive"]:
            answers += ",DIED"
        rows.append([
            label(system), fmt(s["qps"], ",.0f"), ratio(s["qps_vs_baseline"]),
            f'{fmt(s["qps_min"], ".0f")}-{fmt(s["qps_max"], ".0f")}',
            fmt(s["run_time_s"], ".1f"), fmt(s["avg_ms"], ".3f"), fmt(s["p50_ms"], ".3f"), fmt(s["p99_ms"], ".3f"),
            fmt(s["max_ms"], ".2f"), f'{s["lost_total"]}/{s["sent_total"]}', answers,
            fmt(s["response_bytes"], ".0f"), fmt(s["server_cpu_pct"], ".0f"),
            fmt(s["server_us_per_query"], ".1f"),
            f'{fmt(s["server_us_per_query_min"], ".1f")}-{fmt(s["server_us_per_query_max"], ".1f")}',
            ratio(s["server_us_per_query_vs_baseline"]), fmt(s["client_cpu_pct"], ".0f"),
            fmt(s["other_cpu_pct"], ".0f"),
        ])
    return rows


def run_orders(rows, label):
    orders = {}
    for r in rows:
        if r["system"] == ECHO_FLOOR:  # measured right after the floor, in its slot
            continue
        orders.setdefault(r["run"], {})[r.get("position", 0)] = label(r["system"])
    return {run: [name for _, name in sorted(by_pos.items())] for run, by_pos in sorted(orders.items())}


def print_agent_load(by_system, label, checks):
    """What reached the stand-in agent during the measured window: queries at its DNS port
    (NSD's own num.queries), requests to its HTTP API, and the answer checks."""
    print("queries reaching the agent's DNS port per 10,000 client queries (NSD num.queries, "
          "measured window; median, min-max), in the warm-up pass; HTTP API requests/s; "
          "answers differing from the agent's:")
    rows = []
    for system, s in by_system.items():
        if system == ECHO_FLOOR:
            continue
        differ = checks.get(system)
        rows.append([label(system), fmt(s["agent_queries_per_10k"], ",.1f"),
                     f'{fmt(s["agent_queries_per_10k_min"], ".1f")}-'
                     f'{fmt(s["agent_queries_per_10k_max"], ".1f")}',
                     fmt(s["agent_queries_warmup"], ".0f"), fmt(s["http_requests_per_s"], ".2f"),
                     "-" if differ is None else f"{differ[0]}/{differ[1]}"])
    print_table(["system", "agent q/10k", "min-max", "warm-up q", "HTTP req/s", "differ"], rows)


# DNSSEC (the -validating systems, against the signed copy of bench.test): CPU per query of
# validation on against validation off, and splitdns against Unbound, both validating.
VALIDATION_PAIRS = [
    ("splitdns-validating", "unbound-validating"),
    ("splitdns-validating", "splitdns"),
    ("unbound-validating", "unbound"),
]


def print_validation_ratios(by_system, label):
    pairs = [(a, b) for a, b in VALIDATION_PAIRS
             if by_system.get(a, {}).get("server_us_per_query")
             and by_system.get(b, {}).get("server_us_per_query")]
    if pairs:
        print("srv us/q, DNSSEC: " + ", ".join(
            f'{label(a)} / {label(b)} '
            f'{by_system[a]["server_us_per_query"] / by_system[b]["server_us_per_query"]:.2f}x'
            for a, b in pairs))


def load_checks(out):
    """answer-checks.jsonl: per system, answers that differed and answers compared, summed
    over runs."""
    checks = {}
    path = out / "answer-checks.jsonl"
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            differ, total = checks.get(row["system"], (0, 0))
            checks[row["system"]] = (differ + (row["differ"] if row["differ"] is not None else 1),
                                     total + (row["total"] or 0))
    return checks


def print_report(meta, summary, memory, label, orders, checks):
    runs, duration = meta["runs"], meta["duration_s"]
    print(f'DNS forwarder benchmark (bench/run.sh), {meta["date"]}')
    print(f'machine: {meta["host_cpu"]} (family/model {meta.get("host_cpu_family_model", "?")}), '
          f'{meta["host_nproc"]} cores, {meta.get("host_mem", "?")} RAM, '
          f'hypervisor {meta.get("host_hypervisor") or "none"}, kernel {meta["kernel"]}, '
          f'load average at start {meta.get("loadavg_at_start", "?")}')
    versions = [f'{name} {meta[key]}'
                for name, key in [("splitdns", "version_splitdns"), ("dnsmasq", "version_dnsmasq"),
                                  ("unbound", "version_unbound"), ("dnsdist", "version_dnsdist"),
                                  ("nsd", "version_nsd"), ("dnsperf", "version_dnsperf")]
                if meta.get(key)]
    print("versions: " + "; ".join(versions))
    if meta.get("git_commit"):
        print(f"repository: {meta['git_commit']} (git describe of the tree the harness ran from)")
    print(f'command: {meta.get("command", "?")}')
    if meta.get("signed_zone"):
        print(f'DNSSEC: the -validating systems ask a copy of {meta["signed_zone"]}; '
              f'trust anchor {meta.get("trust_anchor", "?")}')
    print(f'dnsperf: {meta["clients"]} clients, {meta["outstanding"]} in flight, '
          f'{duration} s per workload (cold: until its names run out), {runs} runs; '
          f'medians; ratios vs {BASELINE}; cpus pinned: {meta["cpus"]}')
    print("order: " + "; ".join(f"run {run}: {', '.join(names)}" for run, names in orders.items()))
    headers = ["system", "QPS", f"vs {BASELINE}", "QPS min-max", "secs", "avg ms", "p50 ms",
               "p99 ms", "max ms", "lost/sent", "answers", "resp B", "srv CPU%",
               "srv us/q", "us/q min-max", f"vs {BASELINE}", "dnsperf CPU%", "other CPU%"]
    warnings = []
    for workload, text in WORKLOADS.items():
        if workload not in summary:
            continue
        print(f"\n== {workload}: {text.format(**meta)}")
        print_table(headers, workload_rows(summary[workload], label))
        for floor_system, text in ((FLOOR, "the floor"), (ECHO_FLOOR, "the echo floor")):
            floor = summary[workload].get(floor_system, {}).get("server_us_per_query")
            if floor:
                print(f"srv us/q vs {text}: " + ", ".join(
                    f'{label(system)} {s["server_us_per_query"] / floor:.2f}x'
                    for system, s in summary[workload].items()
                    if system not in (FLOOR, ECHO_FLOOR) and s["server_us_per_query"] is not None))
        print_validation_ratios(summary[workload], label)
        if workload == "consul":
            print_agent_load(summary[workload], label, checks)
        for system, s in summary[workload].items():
            for run in s["wrong_runs"]:
                rcodes = s["rcodes_by_run"][run]
                warnings.append(f"{workload}/{label(system)} run {run}: WRONG answers: "
                                f"{rcode_text(rcodes, sum(rcodes.values()))}; expected NOERROR with "
                                f"{meta[f'expected_nx_{workload}']:.2%} NXDOMAIN")
            if not s["all_alive"]:
                warnings.append(f"{workload}/{label(system)}: the server DIED during a run")
            if s["lost_total"]:
                warnings.append(f"{workload}/{label(system)}: {s['lost_total']} queries lost "
                                f"(no answer within {meta['timeout_s']} s)")
            if (s["other_cpu_pct"] or 0) > NOISY_OTHER_CPU:
                warnings.append(f"{workload}/{label(system)}: other processes used "
                                f"{s['other_cpu_pct']:.0f}% of a core during the run")
            differ = checks.get(system, (0, 0))[0] if workload == "consul" else 0
            if differ:
                warnings.append(f"{workload}/{label(system)}: {differ} answers differed from the "
                                "agent's in the answer check; see logs/answers-*")
            if (s["client_cpu_pct"] or 0) >= CLIENT_BOUND_CPU:
                warnings.append(f"{workload}/{label(system)}: dnsperf used {s['client_cpu_pct']:.0f}% "
                                "of a core, so it may cap this QPS; compare srv us/q")
    print(f"\n== memory: peak RSS (VmHWM) after all workloads, median of {runs} runs")
    print_table(["system", "peak MiB", f"vs {BASELINE}", "RSS at end MiB"], [
        [label(system), fmt(m["peak_rss_mib"], ".1f"),
         ratio(m["peak_rss_vs_baseline"]), fmt(m["end_rss_mib"], ".1f")]
        for system, m in memory.items()])
    if meta.get("percentiles_note"):
        print(f'\nnote: {meta["percentiles_note"]}')
    for warning in warnings:
        print(f"warning: {warning}")
    return all(s["answers_ok"] and s["all_alive"]
               for by_system in summary.values() for s in by_system.values())


def main():
    out = Path(sys.argv[1])
    meta = read_meta(out)
    rows = load_measurements(out)
    present = {r["system"] for r in rows}
    systems = [s for s in ORDER if s in present]
    summary, memory = summarise(rows, meta, systems)

    def label(system):
        if system in ("splitdns", "splitdns-mirror", "splitdns-validating"):
            return meta.get("splitdns_label", "splitdns") + system[len("splitdns"):]
        return system

    orders = run_orders(rows, label)
    checks = load_checks(out)
    ok = print_report(meta, summary, memory, label, orders, checks)
    results = {"meta": meta, "summary": summary, "memory": memory, "orders": orders,
               "answer_checks": {s: {"differ": d, "total": t} for s, (d, t) in checks.items()},
               "measurements": rows}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
