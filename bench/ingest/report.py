"""The report: rates, CPU seconds and ratios to raw, against the targets."""

from __future__ import annotations

from bench.ingest.phase import Phase

TARGET_RATIO = 0.5
TARGET_RATE = 10_000


def report(phases: list[Phase]) -> None:
    """Print the table, the notes and the ratios; the raw phase comes first."""
    print()
    print(
        f"{'':<20} {'msg/s':>9} {'wall s':>7} {'pub msg/s':>10}  "
        "CPU s in the timed window (publishers separately)"
    )
    for p in phases:
        cpu = "  ".join(f"{name} {sec:.2f}" for name, sec in p.cpu.items())
        name = p.name + (" *" if p.failed else "")
        print(
            f"{name:<20} {p.rate:9.0f} {p.wall:7.2f} {p.publish_rate:10.0f}  "
            f"{cpu}  publishers {p.publisher_cpu:.2f}"
        )
    for p in phases:
        if p.note:
            print(f"  {p.name}: {p.note}")
    print("  pub msg/s: PUBACKs received / (last PUBACK - first publish)")
    if any(p.failed for p in phases):
        print("  *: stalled; msg/s and wall s up to the last progress")
    raw = phases[0]
    if raw.done - raw.last_puback < 0.05 * raw.wall:
        print(
            "  note: the raw consumer finished with the publishers; the baseline may be "
            "bounded by the publishers (or the shared CPUs), not by the broker"
        )
    print()
    for p in phases[1:]:
        ratio = p.rate / raw.rate
        per_msg = sum(v for k, v in p.cpu.items() if k.startswith("ingest")) / p.messages * 1e6
        stalled = " until it stalled" if p.failed else ""
        print(
            f"{p.name}: {p.rate:,.0f} msg/s{stalled}, {ratio:.2f} of raw; "
            f"ingest CPU {per_msg:.0f} µs/message"
        )
    one = phases[1] if len(phases) > 1 else None
    if one is not None:
        ratio = one.rate / raw.rate
        ok_ratio = "met" if ratio >= TARGET_RATIO and not one.failed else "NOT met"
        ok_rate = "met" if one.rate >= TARGET_RATE and not one.failed else "NOT met"
        print(
            f"targets (1 worker): ≥ {TARGET_RATIO:.0%} of raw — {ratio:.0%}, {ok_ratio}; "
            f"≥ {TARGET_RATE:,} msg/s — {one.rate:,.0f}, {ok_rate}"
        )
