"""Spans of backend calls: one per attempt, children of the caller's span (sync, and across the
async facade's thread hop), none for cache hits unless asked; and no value, and no name unless
asked, in anything exported."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind

import secretkit
from secretkit import AsyncSecretStore, CachePolicy, RetryPolicy
from secretkit.testing.faultproxy import FaultProxy, proxy_for
from tests.doubles.aws import REGION, aws_http_endpoint, fake_aws_env
from tests.telemetry.conftest import Otel

__all__ = ["aws_http_endpoint"]

ROOT = Path(__file__).resolve().parents[2]
CANARY_VALUE = "canary-value-7f3a9c"
CANARY_NAME = "canary-name-51e0d2"


@pytest.fixture
def aws_url(aws_http_endpoint: str) -> Iterator[str]:
    """aws-sm:// on moto behind a (passing) fault proxy: a remote backend, so each attempt runs in
    a worker thread of the store (``attempts.py``), with retries and a deadline."""
    with fake_aws_env(), proxy_for(aws_http_endpoint, seed=3) as proxy:
        yield f"aws-sm://?region={REGION}&endpoint_url={proxy.url}"


def _parent_is(child_parent: object, span: object) -> bool:
    return child_parent is not None and child_parent.span_id == span.get_span_context().span_id  # type: ignore[attr-defined]


def test_a_backend_call_is_a_client_span_under_the_callers_span(otel: Otel, aws_url: str) -> None:
    tracer = otel.tracer_provider.get_tracer("app")
    with secretkit.open(aws_url, retry=RetryPolicy(deadline=10)) as store:
        otel.instrument(store)
        with tracer.start_as_current_span("handler") as handler:
            store.put("parented", "v")
            store.get("parented")
            store.get("parented")  # a hit: no span
    calls = [s for s in otel.spans() if s.name.startswith("secretkit.")]
    assert [s.name for s in calls] == ["secretkit.put", "secretkit.get"]
    for span in calls:
        assert span.kind == SpanKind.CLIENT
        assert _parent_is(span.parent, handler)
        assert span.context.trace_id == handler.get_span_context().trace_id
        assert span.attributes["backend"] == "aws-sm"
        assert span.attributes["server.address"] == "127.0.0.1"


def test_cache_hits_get_spans_only_when_asked(otel: Otel) -> None:
    with secretkit.open("memory://", cache=True) as store:
        otel.instrument(store, cache_spans=True)
        store.put("a", "1")
        store.get("a")
        store.get("a")
    hits = [s for s in otel.spans("secretkit.get") if s.attributes.get("secretkit.cache") == "hit"]
    assert len(hits) == 1 and "secretkit.name" not in hits[0].attributes


def test_async_spans_parent_across_the_thread_hop(otel: Otel, aws_url: str) -> None:
    tracer = otel.tracer_provider.get_tracer("app")

    async def main() -> tuple[object, object]:
        async with secretkit.open_async(aws_url, retry=RetryPolicy(deadline=10)) as store:
            otel.instrument(store)
            with tracer.start_as_current_span("put-handler") as put_handler:
                await store.put("async-parented", "v")
            with tracer.start_as_current_span("get-handler") as get_handler:
                store.invalidate("async-parented")
                assert (await store.get("async-parented")).text == "v"  # a miss: loaded in the pool
                await store.versions("async-parented")
        return put_handler, get_handler

    put_handler, get_handler = asyncio.run(main())
    put, get, versions = (otel.spans(f"secretkit.{op}") for op in ("put", "get", "versions"))
    assert len(put) == len(get) == len(versions) == 1
    assert _parent_is(put[0].parent, put_handler)
    assert _parent_is(get[0].parent, get_handler)
    assert _parent_is(versions[0].parent, get_handler)


def test_async_facade_over_a_store_instrumented_later(otel: Otel) -> None:
    store = secretkit.open("memory://", cache=True)
    facade = AsyncSecretStore(store)
    otel.instrument(facade)  # the facade's store reports

    async def main() -> None:
        await facade.put("a", "1")
        await facade.get("a")
        await facade.get("a")
        await facade.close()

    asyncio.run(main())
    assert otel.value("secretkit.cache.lookups", result="hit") == 1
    assert otel.value("secretkit.cache.lookups", result="miss") == 1
    store.close()


def _exercise(store: secretkit.SecretStore) -> None:
    store.put(CANARY_NAME, CANARY_VALUE)
    store.get(CANARY_NAME)
    store.get(CANARY_NAME)
    store.invalidate(CANARY_NAME)
    store.get(CANARY_NAME)
    with pytest.raises(secretkit.NotFoundError):
        store.get(CANARY_NAME + "-absent")  # the error names the secret: its message must stay out
    store.rotate(CANARY_NAME, generate=lambda current: CANARY_VALUE + "-next")
    store.get(CANARY_NAME, stage="previous")
    store.get_many([CANARY_NAME, CANARY_NAME + "-other"])
    list(store.list(CANARY_NAME))
    store.delete(CANARY_NAME, purge=True)


def test_no_value_and_no_name_in_anything_exported(otel: Otel, aws_url: str) -> None:
    with secretkit.open(aws_url, retry=RetryPolicy(deadline=10), cache=CachePolicy(negative_ttl=5)) as store:
        otel.instrument(store, cache_spans=True)
        _exercise(store)
    exported = otel.exported_text()
    assert "secretkit.rotate" in exported and "not_found" in exported  # the exports are really there
    assert CANARY_VALUE not in exported
    assert CANARY_NAME not in exported
    assert all(not span.events for span in otel.spans())  # no exception events (their messages name secrets)


def test_names_only_in_span_attributes_when_asked(otel: Otel) -> None:
    with secretkit.open("memory://", cache=CachePolicy(negative_ttl=5), telemetry_names=True) as store:
        otel.instrument(store, cache_spans=True)
        _exercise(store)
    spans = otel.span_attribute_text()
    assert CANARY_NAME in spans  # opted in: span attributes name the secret
    metrics = otel.reader.get_metrics_data().to_json()
    assert CANARY_NAME not in metrics and CANARY_VALUE not in metrics
    assert CANARY_VALUE not in otel.exported_text()
    for span in otel.spans():
        assert CANARY_NAME not in span.name and not span.events
        assert CANARY_NAME not in (span.status.description or "")


def _run(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                          check=True)
    return done.stdout.strip()


def test_telemetry_true_reports_to_the_global_providers_and_nothing_is_imported_without_it() -> None:
    """In a fresh interpreter: the global providers can be set once per process."""
    off = _run(
        "import sys, secretkit; s = secretkit.open('memory://', cache=True); s.put('a', '1'); s.get('a'); "
        "print([m for m in sys.modules if m.startswith(('opentelemetry', 'secretkit.telemetry'))])"
    )
    assert off == "[]"
    on = _run(
        "from opentelemetry import metrics, trace\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "from opentelemetry.sdk.metrics.export import InMemoryMetricReader\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "import secretkit\n"
        "store = secretkit.open('memory://?telemetry=true', cache=True)\n"  # opened before the SDK is set
        "reader = InMemoryMetricReader(); metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))\n"
        "exporter = InMemorySpanExporter(); provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter)); trace.set_tracer_provider(provider)\n"
        "store.put('a', '1'); store.get('a'); store.get('a')\n"
        "names = {m.name for r in reader.get_metrics_data().resource_metrics for s in r.scope_metrics for m in s.metrics}\n"
        "print(sorted(names), [s.name for s in exporter.get_finished_spans()])\n"
    )
    assert "'secretkit.cache.lookups'" in on and "'secretkit.backend.duration'" in on
    assert "['secretkit.put', 'secretkit.get']" in on


def test_telemetry_without_opentelemetry_installed_says_what_to_install() -> None:
    out = _run(
        "import sys; sys.modules['opentelemetry'] = None\n"
        "import secretkit\n"
        "try:\n    secretkit.open('memory://', telemetry=True)\n"
        "except secretkit.ConfigError as exc:\n    print(exc)\n"
    )
    assert "pip install 'secretkit[otel]'" in out


@pytest.mark.parametrize("scheme", ["ssm", "azure-kv"])
def test_the_newer_drivers_name_their_server_too(scheme: str, request: pytest.FixtureRequest) -> None:
    """ssm:// and azure-kv:// give spans a ``server.address`` like aws-sm, vault and k8s."""
    if scheme == "ssm":
        from secretkit.drivers.aws.moto import fake_aws_env

        with fake_aws_env():
            store = secretkit.open("ssm://?region=us-east-1&endpoint_url=http://127.0.0.2:1")
    else:
        double = request.getfixturevalue("azure_kv")
        store = secretkit.open(f"azure-kv://127.0.0.1:{double.port}", ca_bundle=str(double.ca_path),
                               credential=double.credential())
    with store:
        assert store.driver.server_address == ("127.0.0.2" if scheme == "ssm" else "127.0.0.1")
