"""Every instrument on its path, with the OpenTelemetry SDK's in-memory reader (docs/observability.md).

Local paths (hits, misses, negatives, size, evictions, rotation, leases, change events) run on
``memory://`` with the cache on; the outage paths (stale serving, retries) on ``aws-sm://``
(moto over HTTP) behind the fault proxy, where ``server.address`` is the proxy's host.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

import secretkit
from secretkit import CachePolicy, RetryPolicy, RotationError, telemetry
from secretkit.observer import NO_OBSERVER
from secretkit.testing.faultproxy import Fault, FaultProxy, http_response, proxy_for
from tests.doubles.aws import REGION, aws_http_endpoint, fake_aws_env
from tests.telemetry.conftest import Otel

__all__ = ["aws_http_endpoint"]

LOOKUPS = "secretkit.cache.lookups"
AGE = "secretkit.cache.age"
DURATION = "secretkit.backend.duration"


def test_hits_misses_and_negatives_are_counted_and_the_age_of_what_was_served_recorded(otel: Otel) -> None:
    fake = [100.0]
    store = secretkit.SecretStore(
        secretkit.open("memory://").driver,
        options=secretkit.StoreOptions(cache=CachePolicy(ttl=60, jitter=0, negative_ttl=30)), clock=lambda: fake[0],
    )
    otel.instrument(store)
    store.put("db", "pw")
    store.get("db")  # miss
    fake[0] += 7
    for _ in range(telemetry.HIT_AGE_SAMPLE + 1):  # the first hit's age is recorded, then one in HIT_AGE_SAMPLE
        store.get("db")
    for _ in range(2):
        with pytest.raises(secretkit.NotFoundError):
            store.get("absent")  # a miss, then a negative hit
    assert otel.value(LOOKUPS, result="hit", backend="memory") == telemetry.HIT_AGE_SAMPLE + 1
    assert otel.value(LOOKUPS, result="miss") == 2
    assert otel.value(LOOKUPS, result="negative") == 1
    assert otel.value(LOOKUPS, result="stale") == 0
    assert otel.value(AGE, result="hit") == 2
    hit_ages = [p for p in otel.metrics()[AGE] if p.attributes["result"] == "hit"][0]
    assert hit_ages.sum == pytest.approx(14.0)  # two sampled hits, each 7 s after the fetch
    assert otel.value(AGE, result="miss") == 1
    assert otel.value("secretkit.cache.size", backend="memory") == 2  # the value and the negative entry
    store.close()


def test_evictions_and_size_are_observed_and_totals_survive_close(otel: Otel) -> None:
    store = secretkit.open("memory://", cache=CachePolicy(max_entries=2))
    otel.instrument(store)
    for n in range(5):
        store.put(f"k{n}", "v")
        store.get(f"k{n}")
    assert otel.value("secretkit.cache.evictions") == 3
    assert otel.value("secretkit.cache.size") == 2
    store.close()
    assert otel.value("secretkit.cache.evictions") == 3  # a closed store's counts stay in the totals
    assert otel.value(LOOKUPS, result="miss") == 5


def test_counts_start_when_a_store_is_instrumented(otel: Otel) -> None:
    store = secretkit.open("memory://", cache=True)
    store.put("a", "1")
    store.get("a")
    store.get("a")
    otel.instrument(store)
    store.get("a")
    assert otel.value(LOOKUPS, result="hit") == 1
    assert otel.value(LOOKUPS, result="miss") == 0
    store.close()


def test_rotation_is_counted_by_how_it_ended(otel: Otel) -> None:
    store = secretkit.open("memory://")
    otel.instrument(store)
    store.put("db", "pw")
    store.rotate("db")
    with pytest.raises(RotationError):
        store.rotate("db", verify=lambda pending: False)
    store.discard_pending("db")
    from datetime import timedelta

    assert store.rotate("db", if_older_than=timedelta(days=1)) is None
    assert otel.value("secretkit.rotations", backend="memory", result="ok") == 1
    assert otel.value("secretkit.rotations", result="failed", step="verify") == 1
    assert otel.value("secretkit.rotations", result="skipped") == 1
    names = {p.get("operation") for p in otel.points(DURATION)}
    assert {"rotate.create", "rotate.promote"} <= names
    store.close()


def test_lease_and_change_counters_through_the_observer(otel: Otel) -> None:
    """The recording API the lease keeper and the change consumer call."""
    with secretkit.open("memory://") as plain:
        assert plain.observer is NO_OBSERVER  # telemetry off: the calls exist and record nothing
        plain.observer.lease_renewed()
        plain.observer.change_event("received")
    store = secretkit.open("memory://")
    otel.instrument(store)
    store.observer.lease_renewed()
    store.observer.lease_renewed()
    store.observer.lease_reissued()
    store.observer.lease_failed()
    for result in ("received", "matched", "received", "dropped"):
        store.observer.change_event(result)
    assert otel.value("secretkit.lease.renewals", backend="memory") == 2
    assert otel.value("secretkit.lease.reissues", backend="memory") == 1
    assert otel.value("secretkit.lease.failures", backend="memory") == 1
    assert otel.value("secretkit.changes.events", backend="memory", result="received") == 2
    assert otel.value("secretkit.changes.events", result="matched") == 1
    assert otel.value("secretkit.changes.events", result="dropped") == 1
    store.close()


def test_instrument_without_a_store_covers_every_store_opened_afterwards(otel: Otel) -> None:
    before = secretkit.open("memory://", cache=True)
    otel.instrument()
    after = secretkit.open("memory://", cache=True)
    telemetry.uninstrument()
    later = secretkit.open("memory://", cache=True)
    for store in (before, after, later):
        store.put("a", "1")
        store.get("a")
    assert before.observer is NO_OBSERVER and later.observer is NO_OBSERVER
    assert otel.value(LOOKUPS, result="miss") == 1
    for store in (before, after, later):
        store.close()


# -- outages through the fault proxy (aws-sm on moto) ---------------------------------------

TTL = 0.2
CACHE = CachePolicy(ttl=TTL, jitter=0, refresh_ahead=1, max_stale=60, check_version=False)
RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02, deadline=5)
UNAVAILABLE = http_response(503, json.dumps({"__type": "ServiceUnavailable", "message": "down"}).encode(),
                            content_type="application/x-amz-json-1.1")


@pytest.fixture
def proxy(aws_http_endpoint: str) -> Iterator[FaultProxy]:
    with fake_aws_env(), proxy_for(aws_http_endpoint, seed=25) as proxy:
        yield proxy


def _aws_store(proxy: FaultProxy) -> secretkit.SecretStore:
    return secretkit.open(f"aws-sm://?region={REGION}&endpoint_url={proxy.url}", connect_timeout=0.5, read_timeout=2,
                          retry=RETRY, cache=CACHE)


def test_retries_through_the_fault_proxy_are_counted_and_each_attempt_timed(otel: Otel, proxy: FaultProxy) -> None:
    name = f"telemetry-retry-{uuid.uuid4().hex[:8]}"
    with _aws_store(proxy) as store:
        otel.instrument(store)
        store.put(name, "v")
        store.invalidate(name)
        proxy.set(Fault.RESPOND, response=UNAVAILABLE, times=2)
        assert store.get(name).text == "v"
    assert otel.value("secretkit.backend.retries", backend="aws-sm", operation="get") == 2
    failed = [p for p in otel.metrics()[DURATION] if p.attributes.get("error.type")]
    assert [(p.attributes["operation"], p.attributes["error.type"], p.count) for p in failed] == [
        ("get", "unavailable", 2)
    ]
    assert otel.value(DURATION, backend="aws-sm", operation="get") == 3  # one per attempt
    attempts = otel.spans("secretkit.get")
    assert len(attempts) == 3
    assert all(span.attributes["server.address"] == "127.0.0.1" for span in attempts)
    assert [span.attributes.get("error.type") for span in attempts] == ["unavailable", "unavailable", None]


def test_stale_serving_under_an_outage_is_counted_and_its_age_recorded(otel: Otel, proxy: FaultProxy) -> None:
    name = f"telemetry-stale-{uuid.uuid4().hex[:8]}"
    with _aws_store(proxy) as store:
        otel.instrument(store)
        store.put(name, "v")
        read_at = time.monotonic()
        store.get(name)  # miss
        proxy.down()
        time.sleep(max(0.0, read_at + TTL + 0.05 - time.monotonic()))
        assert store.get(name).text == "v"  # expired, the backend down: served stale
        assert otel.value(LOOKUPS, backend="aws-sm", result="stale") == 1
        assert otel.value(LOOKUPS, result="miss") == 1
        stale = [p for p in otel.metrics()[AGE] if p.attributes["result"] == "stale"]
        assert len(stale) == 1 and stale[0].count == 1 and stale[0].sum >= TTL
        assert otel.value("secretkit.backend.retries", operation="get") == RETRY.max_attempts - 1
        proxy.pass_through()


def test_lease_keeper_reports_renewals_reissues_and_failures(otel: Otel) -> None:
    """The lease keeper's own paths reach the lease counters (memory:// fakes, a manual clock)."""
    from secretkit.testing.leases import LeaseControl

    store = secretkit.open("memory://")
    otel.instrument(store)
    control = LeaseControl(store)
    control.role("database/creds/app", ttl=30, max_ttl=50)
    lease = store.lease("database/creds/app")
    control.advance(20)  # a third left: renewed (30 granted)
    assert otel.value("secretkit.lease.renewals", backend="memory") == 1
    control.advance(20)  # renewal capped by the max TTL: a new credential
    assert otel.value("secretkit.lease.reissues", backend="memory") == 1
    assert otel.value("secretkit.lease.failures") == 0
    control.outage()
    control.advance(25)  # due again: the renewal fails
    assert otel.value("secretkit.lease.failures", backend="memory") >= 1
    control.outage(False)
    lease.close()
    store.close()


def test_change_consumer_reports_received_matched_and_dropped(otel: Otel) -> None:
    """The change consumer's own paths reach the change-event counter (an in-memory topic)."""
    import time
    import uuid

    from secretkit.changes.source import ChangeEvent
    from secretkit.drivers.memory import MemoryDriver
    from secretkit.policies import StoreOptions
    from secretkit.store import SecretStore
    from secretkit.testing.changes import HearingDriver, topic

    channel = f"otel-{uuid.uuid4().hex[:8]}"
    inner = MemoryDriver()
    SecretStore(inner).put("app/a", "1")
    store = SecretStore(HearingDriver(inner), options=StoreOptions(changes=f"memory:{channel}"))
    otel.instrument(store)
    store.get("app/a")
    assert store._changes is not None and store._changes.ready.wait(10)
    store.get("app/a")  # cached now that the source listens (it drops what was loaded before)
    topic(channel).publish(ChangeEvent("app/a", "changed", event_id="1"))
    topic(channel).publish("not an event")
    deadline = time.monotonic() + 10
    while otel.value("secretkit.changes.events", result="received") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert otel.value("secretkit.changes.events", backend="memory", result="received") == 2
    assert otel.value("secretkit.changes.events", result="matched") == 1
    assert otel.value("secretkit.changes.events", result="dropped") == 1
    store.close()
