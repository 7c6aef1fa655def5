"""This process's own Prometheus metrics as plain values, for the operator
page: what ``/metrics`` exports, without making a browser parse the text
format or hold the metrics token."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY
from prometheus_client.registry import CollectorRegistry

PREFIX = "moydom_"
_SHOWN_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_count", "_sum")}
"""Per metric type, the samples worth a number on a page (no buckets, no
``_created`` timestamps)."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float
    type: str
    help: str


def summary(registry: CollectorRegistry = REGISTRY) -> list[Sample]:
    """Every moydom sample this process exports, sorted by name and labels."""
    out: list[Sample] = []
    for family in registry.collect():
        suffixes = _SHOWN_SUFFIXES.get(family.type)
        if not family.name.startswith(PREFIX) or suffixes is None:
            continue
        wanted = {family.name + s for s in suffixes}
        out.extend(
            Sample(s.name, dict(s.labels), s.value, family.type, family.documentation)
            for s in family.samples
            if s.name in wanted
        )
    return sorted(out, key=lambda s: (s.name, sorted(s.labels.items())))


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """The sum of ``name``'s samples matching ``labels``; None if none is exported."""
    found = [
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(found) if found else None
