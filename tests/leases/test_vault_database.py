"""vault:// leases on OpenBao's ``database`` engine against a real PostgreSQL (no mock of hvac).

Every credential is checked where it matters, by logging in to PostgreSQL with it (``select
current_user``), and every claim about a lease by asking OpenBao with raw hvac (``sys/leases/lookup``,
its LIST form) or PostgreSQL itself (``pg_roles``): renewal, re-issue at the max TTL with
``on_change``, the old lease revoked after the grace, ``close()``/``with``/``store.close()``
revoking, a static role's rotation noticed, and the async form. Each test makes its own roles
(tests/doubles/openbao_database.py) with TTLs of a few seconds, so the file runs in well under a
minute.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

import secretkit
from secretkit.store import SecretStore
from tests.doubles import openbao
from tests.doubles.openbao_database import DatabaseEngine

#: The dynamic role of most tests: renewed at 2 s, re-issued at about 8 s (its 10 s max TTL).
TTL, MAX_TTL = 3, 10


@pytest.fixture(autouse=True)
def _no_shell_vault_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    openbao.clean_env(monkeypatch)


@pytest.fixture
def db(bao_database: DatabaseEngine) -> DatabaseEngine:
    return bao_database


@pytest.fixture
def creds(db: DatabaseEngine) -> str:
    return db.dynamic_role(default_ttl=TTL, max_ttl=MAX_TTL)


@pytest.fixture
def store(bao: openbao.OpenBaoServer) -> Iterator[SecretStore]:
    with secretkit.open(bao.url(), token=bao.root_token) as s:
        yield s


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


class Probe:
    """Logs in every ``interval`` with the lease's credential of the moment, in a thread."""

    def __init__(self, db: DatabaseEngine, lease: secretkit.Lease, interval: float = 0.15) -> None:
        self.logins: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.wait(interval):
                fields = lease.fields  # one snapshot: a user and its own password
                try:
                    self.logins.append(db.postgres.login(fields["username"], fields["password"]))
                except Exception as exc:  # noqa: BLE001 - every failure is reported by the test
                    self.failures.append(f"{time.monotonic():.2f} {fields['username']}: {type(exc).__name__} {exc}")

        self._thread = threading.Thread(target=run, name="login-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def test_the_credential_logs_in_and_close_revokes_it(
    db: DatabaseEngine, creds: str, store: SecretStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lease = store.lease(creds)
    user, password, lease_id = lease["username"], lease["password"], lease.lease_id
    assert db.postgres.login(user, password) == user
    assert lease.fields["password"] == password and lease.secret.fields["username"] == user
    assert lease_id is not None and lease_id.startswith(creds + "/") and lease.renewable
    assert db.lease_ids(creds) == [lease_id]
    assert lease.expires_at is not None and lease.expires_at.tzinfo is not None
    assert timedelta(0) < lease.expires_at - datetime.now(timezone.utc) <= timedelta(seconds=TTL + 1)
    # masking: no credential in repr/str, and neither it nor the lease id logged above DEBUG
    for text in (repr(lease), str(lease)):
        assert password not in text and user not in text and lease_id not in text
    for record in caplog.records:
        assert password not in record.getMessage()
        assert record.levelno <= logging.DEBUG or lease_id not in record.getMessage()

    lease.close()
    assert user not in db.postgres.roles()  # revoking dropped the database role
    assert db.lookup(lease_id) is None  # "invalid lease"
    with pytest.raises(psycopg.OperationalError):
        db.postgres.login(user, password)
    lease.close()  # idempotent


def test_the_context_manager_revokes(db: DatabaseEngine, creds: str, store: SecretStore) -> None:
    with store.lease(creds) as lease:
        user, lease_id = lease["username"], lease.lease_id
        assert db.postgres.login(user, lease["password"]) == user
    assert lease_id is not None and db.lookup(lease_id) is None
    assert db.usernames_of(creds) == set() and db.lease_ids(creds) == []


def test_store_close_revokes_every_lease_it_holds(bao: openbao.OpenBaoServer, db: DatabaseEngine) -> None:
    paths = [db.dynamic_role(default_ttl=TTL, max_ttl=MAX_TTL) for _ in range(2)]
    store = secretkit.open(bao.url(), token=bao.root_token)
    leases = [store.lease(paths[0]), store.lease(paths[0]), store.lease(paths[1])]
    assert len(db.usernames_of(paths[0])) == 2 and len(db.usernames_of(paths[1])) == 1
    store.close()
    for path in paths:
        assert db.lease_ids(path) == [] and db.usernames_of(path) == set()
    assert all(db.lookup(lease.lease_id or "") is None for lease in leases)


def test_renewal_reissue_and_grace_through_a_login_probe(db: DatabaseEngine, creds: str, store: SecretStore) -> None:
    """The whole lifecycle at TTL 3 s / max TTL 10 s, with a login every 150 ms that never fails:
    renewals extend the lease (OpenBao records ``last_renewal``), two re-issues near the max TTL
    each bring a new user and call ``on_change``, and each replaced lease is revoked after the
    grace (a third of its TTL): its role leaves ``pg_roles``."""
    lease = store.lease(creds)
    first_id, first_user, first_expiry = lease.lease_id, lease["username"], lease.expires_at
    assert first_id is not None and first_expiry is not None
    changes: list[tuple[str, str | None]] = []
    lease.on_change(lambda changed: changes.append((changed["username"], changed.lease_id)))
    probe = Probe(db, lease)
    try:
        wait_for(lambda: (db.lookup(first_id) or {}).get("last_renewal"), TTL, "OpenBao records a renewal")
        wait_for(lambda: (lease.expires_at or first_expiry) > first_expiry + timedelta(seconds=1), 1,
                 "expires_at advanced by the renewal")
        assert lease["username"] == first_user  # a renewal keeps the credential

        wait_for(lambda: len(changes) >= 2, 2.5 * MAX_TTL, "two re-issues")
        users = [first_user] + [user for user, _ in changes[:2]]
        ids = [first_id] + [lease_id for _, lease_id in changes[:2]]
        assert len(set(users)) == 3 and len(set(ids)) == 3
        # each replaced lease is gone after its grace: revoked in OpenBao, its role dropped
        wait_for(lambda: not {first_user, users[1]} & db.postgres.roles(), 3, "the replaced roles dropped")
        assert db.lookup(first_id) is None and db.lookup(ids[1] or "") is None
        assert db.lease_ids(creds) == [lease.lease_id]
    finally:
        probe.stop()
        lease.close()
    assert probe.failures == []
    assert len(probe.logins) >= 30
    assert set(users) <= set(probe.logins)  # the probe used every credential, each while it was current


def test_a_grace_longer_than_the_ttl_keeps_the_old_role_for_the_whole_grace(
    db: DatabaseEngine, store: SecretStore
) -> None:
    """TTL 2 s / max TTL 8 s and ``lease_grace=2.5``: renewals ask enough that OpenBao's cap shows
    with the grace still ahead, so the replaced user stays in ``pg_roles`` and logs in until about
    2.5 s after ``on_change`` (re-issuing only at the capped 2 s renewal left it under 1.4 s), and is
    then dropped."""
    grace = 2.5
    creds = db.dynamic_role(default_ttl=2, max_ttl=8)
    store.options = store.options.model_copy(update={"lease_grace": grace})
    with store.lease(creds) as lease:
        old = lease.fields
        swapped: list[float] = []
        lease.on_change(lambda _: swapped.append(time.monotonic()))
        wait_for(lambda: swapped, 8, "a re-issue before the max TTL")
        assert lease["username"] != old["username"]
        while time.monotonic() < swapped[0] + grace - 0.4:  # the whole grace, less scheduling slack
            assert old["username"] in db.postgres.roles()
            assert db.postgres.login(old["username"], old["password"]) == old["username"]
            time.sleep(0.2)
        wait_for(lambda: old["username"] not in db.postgres.roles(), 1.5, "the old role dropped after the grace")
        assert len(swapped) == 1


def test_a_static_role_rotation_is_noticed(db: DatabaseEngine, store: SecretStore) -> None:
    static = db.static_role(rotation_period=5)
    try:
        static_role_lifecycle(db, store, static)
    finally:
        db.drop_static_role(static)  # no rotation every 5 s for the rest of the run


def static_role_lifecycle(db: DatabaseEngine, store: SecretStore, static: str) -> None:
    lease = store.lease(static)
    user, old = lease["username"], lease["password"]
    assert lease.lease_id is None
    assert db.postgres.login(user, old) == user
    seen: list[str] = []
    lease.on_change(lambda changed: seen.append(changed["password"]))
    db.rotate(static)  # now: the store notices when the ttl it was given runs out (at most 5 s)
    wait_for(lambda: seen, 12, "on_change after the rotation")
    new = lease["password"]
    assert new != old and seen[0] != old and lease["username"] == user
    assert db.postgres.login(user, new) == user  # OpenBao's password now (the next rotation is ~5 s away)
    with pytest.raises(psycopg.OperationalError):
        db.postgres.login(user, old)
    lease.close()  # nothing to revoke: the role and its user stay
    assert user in db.postgres.roles()


def test_the_async_form(bao: openbao.OpenBaoServer, db: DatabaseEngine) -> None:
    """``await astore.lease`` and ``async with``; an async ``on_change`` is awaited after a re-issue
    (TTL 2 s / max TTL 4 s: the second renewal falls short, about 3 s in)."""
    creds = db.dynamic_role(default_ttl=2, max_ttl=4)

    async def scenario() -> None:
        async with secretkit.open_async(bao.url(), token=bao.root_token) as astore:
            lease = await astore.lease(creds)
            user = lease["username"]
            assert await asyncio.to_thread(db.postgres.login, user, lease["password"]) == user
            await lease.aclose()
            assert user not in await asyncio.to_thread(db.postgres.roles)

            changed = asyncio.Event()

            async def on_change(changed_lease: secretkit.Lease) -> None:
                await asyncio.sleep(0)
                changed.set()

            async with astore.lease(creds) as creds_lease:
                first = creds_lease["username"]
                creds_lease.on_change(on_change)
                await asyncio.wait_for(changed.wait(), 10)
                second = creds_lease.fields
                assert second["username"] != first
                assert await asyncio.to_thread(db.postgres.login, second["username"], second["password"])
            assert await asyncio.to_thread(db.lease_ids, creds) == []

    asyncio.run(scenario())
    assert db.usernames_of(creds) == set()
