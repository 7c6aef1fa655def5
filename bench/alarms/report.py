"""The table: latency percentiles per run, the background rate, CPU seconds."""

from __future__ import annotations

import statistics

from bench.alarms.trips import RunResult


def percentiles(latencies: list[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds (inclusive method: p99 of 100 trips is
    between the two slowest, not beyond the slowest)."""
    ms = [x * 1000 for x in latencies]
    if len(ms) < 2:
        return {"p50": ms[0], "p95": ms[0], "p99": ms[0], "max": ms[0]}
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50": statistics.median(ms), "p95": cuts[94], "p99": cuts[98], "max": max(ms)}


def report(runs: list[RunResult]) -> None:
    print()
    names = sorted({k for r in runs for k in r.cpu}, key=["gateway", "postgres", "broker"].index)
    cpu_head = "  ".join(f"{n:>8}" for n in names)
    print(
        f"{'run':<12} {'trips':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'trips/s':>8} {'bg msg/s':>9}  CPU s: {cpu_head}"
    )
    for r in runs:
        p = percentiles(r.latencies)
        bg = f"{r.background.rate:9.0f}" if r.background else f"{'-':>9}"
        cpu = "  ".join(f"{r.cpu[n]:8.2f}" for n in names)
        print(
            f"{r.name:<12} {len(r.latencies):>6} {p['p50']:8.1f} {p['p95']:8.1f} {p['p99']:8.1f}"
            f" {p['max']:8.1f} {len(r.latencies) / r.wall:8.1f} {bg}         {cpu}"
        )
    for r in runs:
        if r.background is not None:
            b = r.background
            print(
                f"  {r.name}: target {b.target:,.0f} msg/s, {b.acked:,} acknowledged "
                f"at {b.rate:,.0f} msg/s ({b.refused} refused, {b.reconnects} reconnects, "
                f"publisher CPU {b.cpu_s:.1f} s); gateway stored the rest "
                f"{r.drain_s:.1f} s after it stopped"
            )
        slowest = sorted(range(len(r.latencies)), key=r.latencies.__getitem__)[-5:][::-1]
        print(
            f"  {r.name}: slowest trips "
            + ", ".join(f"{r.latencies[i] * 1000:.0f} ms at {r.offsets[i]:.1f} s" for i in slowest)
        )
        if r.strays:
            print(f"  {r.name}: {r.strays} unexpected new cases on the stream")
    print("  latency: wet publish (QoS 1) → first stream message of that new case")
    print(
        "  CPU s: during the timed trips (incl. close, dry and the bench's polls); "
        "trips/s: one after another"
    )
