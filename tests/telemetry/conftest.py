"""The OpenTelemetry SDK wired for tests: an in-memory metric reader and span exporter per test.

Providers are passed to ``secretkit.telemetry.instrument`` rather than set globally: the SDK
lets a process set its global providers once, so each test gets fresh ones of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from secretkit import telemetry


@dataclass
class Otel:
    reader: InMemoryMetricReader
    exporter: InMemorySpanExporter
    meter_provider: MeterProvider
    tracer_provider: TracerProvider

    def instrument(self, *stores: Any, **options: Any) -> None:
        telemetry.instrument(*stores, meter_provider=self.meter_provider, tracer_provider=self.tracer_provider,
                             **options)

    def metrics(self) -> dict[str, list[Any]]:
        """Exported metric name → its data points (one collection)."""
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def value(self, name: str, **attributes: str) -> float:
        """The sum of ``name``'s points whose attributes include ``attributes``: a counter's
        value, a histogram's count (0 when nothing was recorded)."""
        total = 0.0
        for point in self.metrics().get(name, []):
            if all(point.attributes.get(k) == v for k, v in attributes.items()):
                total += point.count if hasattr(point, "count") else point.value
        return total

    def points(self, name: str) -> list[dict[str, Any]]:
        return [dict(point.attributes) for point in self.metrics().get(name, [])]

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [span for span in self.exporter.get_finished_spans() if name is None or span.name == name]

    def exported_text(self) -> str:
        """Everything exported, metrics and spans (names, attributes, events, status), as text."""
        data = self.reader.get_metrics_data()
        parts = [data.to_json() if data is not None else ""]
        parts += [span.to_json() for span in self.exporter.get_finished_spans()]
        return "\n".join(parts)

    def span_attribute_text(self) -> str:
        return json.dumps([dict(span.attributes or {}) for span in self.exporter.get_finished_spans()])


@pytest.fixture
def otel() -> Iterator[Otel]:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[reader])
    try:
        yield Otel(reader, exporter, meter_provider, tracer_provider)
    finally:
        telemetry.uninstrument()
        meter_provider.shutdown()
        tracer_provider.shutdown()
