"""The store's lease keeper on memory://'s fake engine, driven by a manual clock
(``secretkit.testing.leases``): renewal, re-issue, grace, static roles, expiry, outages, close."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from datetime import datetime, timezone
from typing import Any

import pytest

import secretkit
from secretkit.errors import InvalidArgumentError, LeaseExpiredError, NotSupportedError, UnavailableError
from secretkit.leases import Lease
from secretkit.testing.leases import LeaseControl

PATH = "database/creds/app"


@pytest.fixture
def store() -> Any:
    with secretkit.open("memory://") as opened:
        yield opened


@pytest.fixture
def control(store: Any) -> LeaseControl:
    return LeaseControl(store)


def left(lease: Lease) -> float:
    """Seconds until the lease's credential expires, by the clock the control moves."""
    assert lease.expires_at is not None
    return (lease.expires_at - datetime.now(timezone.utc)).total_seconds()


def test_renews_when_a_third_of_the_ttl_is_left(store: Any, control: LeaseControl) -> None:
    control.role(PATH, ttl=30, max_ttl=300)
    lease = store.lease(PATH)
    first = lease.lease_id
    assert left(lease) == pytest.approx(30, abs=0.5)
    control.advance(19.9)  # more than a third left: nothing yet
    assert left(lease) == pytest.approx(10.1, abs=0.5)
    control.advance(0.2)  # a third left: renewed for the full TTL, same credential
    assert left(lease) == pytest.approx(30, abs=0.5)
    assert lease.lease_id == first and control.issued == 1
    control.advance(200)
    assert lease.lease_id == first and control.issued == 1 and control.live == [first]


def test_a_capped_renewal_reissues_calls_on_change_and_revokes_the_old_lease_after_the_grace(
    store: Any, control: LeaseControl
) -> None:
    control.role(PATH, ttl=30, max_ttl=50)
    lease = store.lease(PATH)
    old_id, old_user = lease.lease_id, lease["username"]
    seen: list[tuple[str, str | None]] = []
    lease.on_change(lambda changed: seen.append((changed["username"], changed.lease_id)))
    control.advance(20)  # renewed: 30 s asked, 30 granted (max at 50)
    assert seen == [] and lease.lease_id == old_id
    control.advance(20)  # at 40: asks 30, granted 10 -> a new credential now
    assert lease.lease_id != old_id and lease["username"] != old_user
    assert seen == [(lease["username"], lease.lease_id)]
    assert sorted(control.live) == sorted([old_id, lease.lease_id])  # the old one drains for the grace...
    control.advance(9.9)  # ...a third of its TTL (10 s)
    assert old_id in control.live
    control.advance(0.2)
    assert control.live == [lease.lease_id]


def test_lease_grace_option_sets_the_drain_time(control: LeaseControl, store: Any) -> None:
    store.options = store.options.model_copy(update={"lease_grace": 2.0})
    control.role(PATH, ttl=30, max_ttl=30)  # not extendable: re-issued at a third left
    lease = store.lease(PATH)
    old = lease.lease_id
    control.advance(20)
    assert lease.lease_id != old and old in control.live
    control.advance(2.1)
    assert control.live == [lease.lease_id]


def test_a_grace_longer_than_the_ttl_is_honoured_when_the_max_ttl_allows_it(
    store: Any, control: LeaseControl
) -> None:
    """TTL 30 s / max TTL 300 s and ``lease_grace=60``: the store re-issues early enough that the
    old lease still works for the whole 60 s after the swap (it used to get at most 30 s)."""
    store.options = store.options.model_copy(update={"lease_grace": 60.0})
    control.role(PATH, ttl=30, max_ttl=300)
    lease = store.lease(PATH)
    old_id = lease.lease_id
    swaps: list[float] = []
    lease.on_change(lambda _: swaps.append(control.clock.now))
    start = control.clock.now
    while not swaps and control.clock.now < start + 300:
        control.advance(1)
        assert old_id in control.live  # renewed in time all along
    assert len(swaps) == 1 and lease.lease_id != old_id
    assert swaps[0] <= start + 300 - 60  # re-issued with the grace still ahead of the max TTL
    control.advance(swaps[0] + 59.9 - control.clock.now)
    assert sorted(control.live) == sorted([old_id, lease.lease_id])  # the old one still works
    control.advance(0.2)
    assert control.live == [lease.lease_id]  # revoked once the grace is over
    assert len(swaps) == 1


def test_a_max_ttl_too_short_for_the_grace_shortens_it_and_says_so_once(
    store: Any, control: LeaseControl, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="secretkit.leases")
    store.options = store.options.model_copy(update={"lease_grace": 60.0})
    control.role(PATH, ttl=30, max_ttl=50)  # the lease lives 50 s in all: a 60 s grace cannot fit
    lease = store.lease(PATH)
    first = lease.lease_id
    control.advance(20.1)  # the first renewal reveals the max TTL: re-issued at once
    assert lease.lease_id != first and first in control.live
    control.advance(29.8)  # the old lease works until its max TTL, as long as the engine allows
    assert first in control.live
    control.advance(60)  # and the next ones are shortened the same way
    assert first not in control.live and control.issued >= 3
    shortened = [r for r in caplog.records if "grace" in r.getMessage()]
    assert len(shortened) == 1 and shortened[0].levelno == logging.DEBUG
    assert PATH in shortened[0].getMessage()


def test_a_lease_that_is_not_renewable_is_reissued_a_grace_before_its_end(
    store: Any, control: LeaseControl
) -> None:
    store.options = store.options.model_copy(update={"lease_grace": 15.0})
    control.role(PATH, ttl=30, max_ttl=30, renewable=False)
    lease = store.lease(PATH)
    old = lease.lease_id
    control.advance(14.9)
    assert lease.lease_id == old
    control.advance(0.2)  # 15 s before its end (not 10 s, a third of its TTL)
    assert lease.lease_id != old and old in control.live
    control.advance(14.8)
    assert old in control.live
    control.advance(0.2)  # revoked at its end (the next credential is being replaced by then too)
    assert old not in control.live and lease.lease_id in control.live and control.issued == 3


def test_a_lease_revoked_behind_the_stores_back_is_reissued_at_its_next_renewal(
    store: Any, control: LeaseControl
) -> None:
    lease = store.lease(PATH)
    old = lease.lease_id
    control.revoke(lease)
    control.advance(40)
    assert lease.lease_id not in (None, old) and control.live == [lease.lease_id]


def test_static_role_is_read_again_at_its_ttl_and_reports_only_a_real_rotation(
    store: Any, control: LeaseControl
) -> None:
    static = "database/static-creds/reporting"
    control.role(static, ttl=60, kind="static")
    lease = store.lease(static)
    assert lease.lease_id is None and lease.expires_at is not None
    changes: list[str] = []
    lease.on_change(lambda changed: changes.append(changed["password"]))
    password = lease["password"]
    control.advance(30)
    assert changes == [] and lease["password"] == password
    control.advance(31)  # the engine rotated at 60: noticed right after
    assert lease["password"] != password and changes == [lease["password"]]
    before = control.issued
    control.advance(1)  # read again once per period, not in a loop
    assert control.issued == before


def test_static_role_read_again_before_rotation_is_not_a_change(store: Any, control: LeaseControl) -> None:
    static = "database/static-creds/reporting"
    control.role(static, ttl=60, kind="static")
    lease = store.lease(static)
    calls: list[object] = []
    lease.on_change(calls.append)
    control.rotate(static)  # an operator rotated it early; the store only learns at the ttl it was told
    control.advance(61)
    assert len(calls) == 1


def test_credential_with_an_expiry_and_no_lease_is_reissued_before_it_runs_out(
    store: Any, control: LeaseControl
) -> None:
    pki = "pki/issue/web"
    control.role(pki, ttl=90, kind="expiring")
    lease = store.lease(pki, params={"common_name": "api.internal"})
    assert lease.lease_id is None and lease["common_name"] == "api.internal"
    serial = lease["serial_number"]
    changed = threading.Event()
    lease.on_change(lambda _: changed.set())
    control.advance(61)
    assert changed.is_set() and lease["serial_number"] != serial and lease["common_name"] == "api.internal"


def test_an_outage_past_the_expiry_raises_a_typed_error_then_recovers(store: Any, control: LeaseControl) -> None:
    control.role(PATH, ttl=30, max_ttl=300)
    lease = store.lease(PATH)
    password = lease["password"]
    control.outage()
    control.advance(29.9)  # renewals failing, retried with backoff, still inside the TTL
    assert lease["password"] == password
    control.advance(0.2)
    with pytest.raises(LeaseExpiredError) as caught:
        lease["password"]
    error = caught.value
    assert isinstance(error, UnavailableError) and error.name == PATH and error.backend == "memory"
    assert password not in str(error) and password not in repr(error) and "unavailable" in str(error)
    control.outage(False)
    control.advance(10)  # the keeper kept trying: a new credential, without re-opening
    assert lease["password"] != password and len(control.live) == 1


def test_a_short_outage_inside_the_ttl_goes_unnoticed(store: Any, control: LeaseControl) -> None:
    control.role(PATH, ttl=30, max_ttl=300)
    lease = store.lease(PATH)
    first = lease.lease_id
    changes: list[object] = []
    lease.on_change(changes.append)
    control.outage()
    control.advance(24)  # the renewal at 20 and its retries fail
    control.outage(False)
    control.advance(5)  # a retry within the TTL renews the same lease
    assert lease.lease_id == first and changes == [] and lease["username"]
    assert lease.expires_at is not None


def test_close_revokes_and_is_idempotent_and_the_context_manager_revokes(store: Any, control: LeaseControl) -> None:
    lease = store.lease(PATH)
    with store.lease(PATH) as other:
        assert len(control.live) == 2 and other["username"]
    assert control.live == [lease.lease_id]
    lease.close()
    lease.close()
    assert control.live == [] and lease.closed
    with pytest.raises(LeaseExpiredError, match="closed"):
        lease.fields


def test_store_close_revokes_every_lease_including_those_in_their_grace() -> None:
    store = secretkit.open("memory://")
    control = LeaseControl(store)
    control.role(PATH, ttl=30, max_ttl=30)
    leases = [store.lease(PATH) for _ in range(3)]
    control.advance(20)  # each re-issued: three old ones wait out their grace
    assert len(control.live) == 6
    store.close()
    assert control.live == [] and all(lease.closed for lease in leases)


def test_a_failing_callback_is_logged_without_the_value_and_the_keeper_goes_on(
    store: Any, control: LeaseControl, caplog: pytest.LogCaptureFixture
) -> None:
    control.role(PATH, ttl=30, max_ttl=30)
    lease = store.lease(PATH)
    later: list[object] = []

    def broken(changed: Lease) -> None:
        raise RuntimeError(f"cannot use {changed['password']}")

    lease.on_change(broken)
    lease.on_change(later.append)
    with caplog.at_level(logging.WARNING, logger="secretkit"):
        control.advance(20)
        new_password = lease["password"]
        control.advance(20)
    assert len(later) == 2  # both re-issues reached the second callback
    assert "on_change callback" in caplog.text and "RuntimeError" in caplog.text
    assert new_password not in caplog.text


def test_masking_repr_logs_audit_and_errors_never_show_a_credential(
    store: Any, control: LeaseControl, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Any] = []
    store.add_audit_hook(events.append)
    control.role(PATH, ttl=30, max_ttl=40)
    with caplog.at_level(logging.DEBUG, logger="secretkit"):
        lease = store.lease(PATH)
        values = [lease["password"]]
        control.advance(20)
        control.advance(20)
        values.append(lease["password"])
        control.outage()
        control.advance(60)
        with pytest.raises(LeaseExpiredError) as caught:
            lease.secret
    shown = [repr(lease), str(lease), caplog.text, repr(events), str(caught.value), repr(caught.value)]
    for value in values:
        assert all(value not in text for text in shown)
    assert all(lease.lease_id not in text for text in (repr(lease), str(caught.value)))
    # a lease id may show at DEBUG only
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG and str(lease.lease_id) in r.getMessage()]
    assert {e.operation for e in events} >= {"lease_issue", "lease_renew"} and all(e.name == PATH for e in events)
    assert store.cache_stats().misses == 0


def test_the_lease_reads_as_a_secret_and_as_fields(store: Any, control: LeaseControl) -> None:
    lease = store.lease(PATH)
    assert lease.secret["username"] == lease["username"] == lease.fields["username"]
    assert lease.renewable and lease.secret.name == PATH
    with pytest.raises(KeyError) as missing:
        lease["nope"]
    assert lease["password"] not in str(missing.value)


@pytest.mark.parametrize("url", ["env://", "files:///tmp", ["env://", "files:///tmp"]])
def test_backends_without_leases_refuse_before_any_io(url: Any) -> None:
    with secretkit.open(url) as other:
        with pytest.raises(NotSupportedError, match="Leases") as caught:
            other.lease(PATH)
        assert caught.value.name == PATH


def test_a_layered_store_issues_from_its_first_layer_that_issues_leases() -> None:
    """env:// then memory://: the lease comes from the memory layer, and closing the layered
    store revokes it (the layers it opened close with it)."""
    with secretkit.open(["env://", "memory://"]) as layered:
        memory = layered.layers[1]
        control = LeaseControl(memory)
        control.role(PATH, ttl=30, max_ttl=300)
        lease = layered.lease(PATH)
        assert lease.backend == "memory" and lease["username"]
        assert control.live == [lease.lease_id]
    assert control.live == []


@pytest.mark.parametrize("path", ["", "/database/creds/app", "database//x", "database/../sys", "a b", 7])
def test_bad_paths_and_params_are_refused_before_any_io(store: Any, control: LeaseControl, path: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        store.lease(path)
    with pytest.raises(InvalidArgumentError):
        store.lease(PATH, params={1: "x"})
    assert control.issued == 0


def test_one_worker_thread_keeps_many_leases_alive_and_close_stops_it() -> None:
    store = secretkit.open("memory://")
    store.driver.leases.role(PATH, secretkit_role(ttl=3.0, max_ttl=60))
    before = {t.ident for t in threading.enumerate()}
    leases = [store.lease(PATH) for _ in range(20)]
    started = [t for t in threading.enumerate() if t.ident not in before]
    assert [t.name for t in started] == ["secretkit-leases"]
    ids = [lease.lease_id for lease in leases]
    # Past the first TTL: each lease lives on only if the one worker renewed it (due at 2 s; the
    # second left before expiry is the slack a busy machine gets).
    time.sleep(3.5)
    assert [lease.lease_id for lease in leases] == ids and all(lease["password"] for lease in leases)
    assert len(store.driver.leases.live()) == 20
    store.close()
    assert store.driver.leases.live() == [] and not started[0].is_alive()


def secretkit_role(**kwargs: Any) -> Any:
    from secretkit.drivers.memory import FakeRole

    return FakeRole(**kwargs)


def test_async_lease_await_and_context_manager_with_async_callbacks() -> None:
    async def main() -> None:
        astore = secretkit.open_async("memory://")
        control = LeaseControl(astore.store)
        control.role(PATH, ttl=30, max_ttl=30)
        seen = asyncio.Event()

        async def changed(lease: Lease) -> None:
            seen.set()

        async with astore.lease(PATH) as creds:
            creds.on_change(changed)
            await asyncio.to_thread(control.advance, 20)
            await asyncio.wait_for(seen.wait(), 5)
            assert len(control.live) == 2
        assert control.live == [] or all(i != creds.lease_id for i in control.live)
        lease = await astore.lease(PATH)
        assert lease["username"]
        with pytest.raises(NotSupportedError):
            await secretkit.open_async("env://").lease(PATH)
        await astore.close()
        assert control.live == [] or lease.closed

    asyncio.run(main())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_issues_its_own_credential_and_never_revokes_the_parents() -> None:
    store = secretkit.open("memory://")
    store.driver.leases.role(PATH, secretkit_role(ttl=30, max_ttl=60))
    lease = store.lease(PATH)
    parent_id = lease.lease_id
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            lease.fields  # first use in the child: its worker issues the child's own credential
            deadline = time.monotonic() + 5
            while lease.lease_id == parent_id and time.monotonic() < deadline:
                time.sleep(0.01)
            store.close()  # revokes the child's lease, not the parent's
            live = store.driver.leases.live()
            code = 0 if lease.lease_id != parent_id and parent_id in live and lease.lease_id not in live else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(0)
    os.close(write)
    status = os.read(read, 1)
    os.waitpid(pid, 0)
    assert status == b"\x00"
    assert lease.lease_id == parent_id and store.driver.leases.live() == [parent_id]
    store.close()
    del lease
    gc.collect()
