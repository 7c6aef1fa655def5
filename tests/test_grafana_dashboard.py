"""docs/grafana-dashboard.json cannot drift from the code: every metric its
queries name is exported by a gateway's ``/metrics`` once the roles that
define them run, and it is a dashboard Grafana imports (schema, datasource
variable, unique panel ids)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.runtime import start_recorder
from tests.conftest import Gateway

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana-dashboard.json"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "avg",
    "rate",
    "increase",
    "histogram_quantile",
    "label_values",
}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def expressions(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def metric_names(expr: str) -> set[str]:
    """Identifiers of an expression outside strings, label matchers, ranges and groupings."""
    expr = re.sub(r"label_values\(([^,)]*),[^)]*\)", r"\1", expr)  # (metric, label)
    bare = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(by|without)\s*\([^)]*\)', " ", expr)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare))
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d.*", w)}


def exported(gw: Gateway) -> set[str]:
    r = gw.http.get("/metrics", headers=gw.admin)
    assert r.status_code == 200, r.text
    names = set()
    for family in text_string_to_metric_families(r.text):
        names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


def test_the_dashboard_is_importable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["schemaVersion"] >= 36
    [source] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert source["query"] == "prometheus"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${" + source["name"] + "}", panel["title"]
            assert panel["targets"] and panel["description"], panel["title"]


def test_every_metric_the_dashboard_queries_is_exported(gateway: Gateway) -> None:
    gateway.start_ingest()
    gateway.start_alarms()
    start_recorder(gateway.settings, gateway.ctx.secrets, gateway.ctx.db, gateway.stack)
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = set().union(*(metric_names(e) for e in expressions(dashboard)))
    assert any(n.startswith("moydom_") for n in used)
    missing = used - exported(gateway)
    assert missing == set(), f"the dashboard queries metrics no role exports: {sorted(missing)}"
