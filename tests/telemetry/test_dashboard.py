"""examples/grafana-dashboard.json queries only metrics (and labels) secretkit exports through the
OpenTelemetry Prometheus exporter, and docs/observability.md's table lists every instrument."""

from __future__ import annotations

import json
import re
from pathlib import Path

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.exposition import generate_latest

import secretkit
from secretkit import CachePolicy, telemetry

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "examples" / "grafana-dashboard.json"
#: PromQL words that look like label names after ``by (`` / ``{``
PROMQL_LABELS = {"le"}


def _exposition() -> tuple[set[str], set[str]]:
    """Sample names and label names the Prometheus exporter shows once every instrument recorded."""
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    store = secretkit.open("memory://", cache=CachePolicy(max_entries=1, negative_ttl=5))
    try:
        telemetry.instrument(store, meter_provider=provider)
        store.put("a", "1")
        store.get("a")
        store.get("a")
        store.put("b", "2")
        store.get("b")  # evicts a
        try:
            store.get("missing")
        except secretkit.NotFoundError:
            pass
        store.rotate("b")
        try:
            store.rotate("b", verify=lambda pending: False)  # a failed rotation carries its step
        except secretkit.RotationError:
            store.discard_pending("b")
        observer = store.observer
        observer.retried("get", 1)
        observer.lease_renewed()
        observer.lease_reissued()
        observer.lease_failed()
        observer.change_event("received")
        text = generate_latest(registry).decode()
    finally:
        store.close()
        provider.shutdown()
    samples: set[str] = set()
    labels: set[str] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.add(sample.name)
            labels.update(sample.labels)
    return samples, labels


def _queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    samples, labels = _exposition()
    queries = _queries()
    assert len(queries) >= 10
    queried = {name for expr in queries for name in re.findall(r"\bsecretkit_[a-z_]+", expr)}
    assert queried - samples == set(), f"the dashboard queries metrics secretkit does not export: {queried - samples}"
    # every instrument has a panel
    families = {re.sub(r"_(bucket|count|sum)$", "", name) for name in samples if name.startswith("secretkit_")}
    shown = {re.sub(r"_(bucket|count|sum)$", "", name) for name in queried}
    assert families - shown == set(), f"instruments without a panel: {families - shown}"
    used_labels = {label for expr in queries for group in re.findall(r"by \(([^)]*)\)", expr)
                   for label in (part.strip() for part in group.split(","))}
    used_labels |= {label for expr in queries for label in re.findall(r"[{,]\s*([a-z_]+)\s*!?=", expr)}
    assert used_labels - labels - PROMQL_LABELS == set()


def test_the_docs_table_lists_every_instrument_with_its_unit() -> None:
    page = (ROOT / "docs" / "observability.md").read_text()
    for name, (kind, unit, attributes, _) in telemetry.INSTRUMENTS.items():
        row = next((line for line in page.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"docs/observability.md has no row for {name}"
        assert f"| {kind} | `{unit}` |" in row, row
        for attribute in attributes:
            assert f"`{attribute}`" in row, (name, attribute)
