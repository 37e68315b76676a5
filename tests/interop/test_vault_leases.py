"""Leases against the real OpenBao dev server (tests/doubles/openbao.py): the PKI engine, with and
without ``generate_lease``, checked with ``cryptography`` and the server's own view of the
certificate; and an outage cut by a fault proxy for part of a TTL, unnoticed by the reader.

TTLs are a few seconds so that each lifecycle runs in seconds."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

import secretkit
from secretkit.errors import NotFoundError
from secretkit.testing.faultproxy import proxy_for
from tests.doubles import openbao

NO_CACHE = {"enabled": False}


@pytest.fixture(scope="module")
def pki(bao: openbao.OpenBaoServer) -> str:
    """A ``pki`` mount with a root CA and two roles: ``web`` (no lease) and ``leased``
    (``generate_lease``), both with a short max TTL."""
    client = bao.client()
    if "pki/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("pki", path="pki", config={"max_lease_ttl": "1h"})
        client.secrets.pki.generate_root("internal", "secretkit test root", mount_point="pki")
    for role, lease in (("web", False), ("leased", True)):
        client.secrets.pki.create_or_update_role(role, {
            "allowed_domains": "internal", "allow_subdomains": True, "max_ttl": "30s", "ttl": "6s",
            "generate_lease": lease, "not_before_duration": "1s", "key_type": "ec", "key_bits": 256,
        }, mount_point="pki")
    return "pki"


@pytest.fixture
def store(bao: openbao.OpenBaoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    openbao.clean_env(monkeypatch)
    with secretkit.open(bao.url(), token=bao.root_token, cache=NO_CACHE) as opened:
        yield opened


def certificate(lease: Any) -> x509.Certificate:
    return x509.load_pem_x509_certificate(lease["certificate"].encode())


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_pki_certificate_without_a_lease_is_reissued_before_its_expiry(store: Any, pki: str) -> None:
    name = f"{uuid.uuid4().hex[:8]}.internal"
    with store.lease("pki/issue/web", params={"common_name": name, "ttl": "3s"}) as lease:
        first = certificate(lease)
        assert common_name(first) == name and lease.lease_id is None and lease.expires_at is not None
        changed = threading.Event()
        lease.on_change(lambda _: changed.set())
        assert changed.wait(5), "not re-issued at a third of its life left"
        second = certificate(lease)
        assert common_name(second) == name and second.serial_number != first.serial_number
        assert lease["serial_number"].replace(":", "") == format(second.serial_number, "x").zfill(
            len(lease["serial_number"].replace(":", "")))
        assert second.not_valid_after_utc > first.not_valid_after_utc


def test_pki_leased_certificate_is_reissued_and_the_old_one_revoked_after_the_grace(
    store: Any, pki: str, bao: openbao.OpenBaoServer
) -> None:
    store.options = store.options.model_copy(update={"lease_grace": 0.5})
    name = f"{uuid.uuid4().hex[:8]}.internal"
    lease = store.lease("pki/issue/leased", params={"common_name": name, "ttl": "5s"})
    old_id, old_serial = lease.lease_id, lease["serial_number"]
    assert old_id and old_id.startswith("pki/issue/leased/") and not lease.renewable
    changed = threading.Event()
    lease.on_change(lambda _: changed.set())
    assert changed.wait(6)
    assert lease.lease_id != old_id and lease["serial_number"] != old_serial
    assert common_name(certificate(lease)) == name
    client = bao.client()
    assert lease_alive(client, old_id)  # still valid for the grace...
    deadline = time.monotonic() + 3
    while lease_alive(client, old_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not lease_alive(client, old_id)  # ...then revoked
    current, serial = lease.lease_id, lease["serial_number"]
    store.close()  # revokes the lease it holds: the server revokes its certificate
    assert not lease_alive(client, current)
    assert client.read(f"pki/cert/{serial}")["data"]["revocation_time"] > 0


def lease_alive(client: Any, lease_id: str | None) -> bool:
    import hvac.exceptions

    try:
        client.sys.read_lease(lease_id)
    except hvac.exceptions.InvalidRequest:  # 400 "invalid lease": revoked or expired
        return False
    return True


def test_unknown_role_is_not_found_naming_the_path(store: Any, pki: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        store.lease("pki/issue/nobody", params={"common_name": "a.internal"})
    assert caught.value.name == "pki/issue/nobody" and caught.value.backend == "vault"


def test_an_outage_for_part_of_a_ttl_goes_unnoticed(bao: openbao.OpenBaoServer, pki: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    openbao.clean_env(monkeypatch)
    client = bao.client()
    role = f"short-{uuid.uuid4().hex[:6]}"
    client.secrets.pki.create_or_update_role(role, {
        "allowed_domains": "internal", "allow_subdomains": True, "max_ttl": "30s", "ttl": "4s",
        "not_before_duration": "1s", "key_type": "ec", "key_bits": 256}, mount_point="pki")
    with proxy_for(bao.address, seed=3) as proxy:
        store = secretkit.open(f"vault+http://127.0.0.1:{proxy.port}/secret", token=bao.root_token, timeout=1,
                               cache=NO_CACHE, retry={"initial_backoff": 0.05, "max_backoff": 0.3})
        lease = store.lease(f"pki/issue/{role}", params={"common_name": "probe.internal", "ttl": "4s"})
        serials = {lease["serial_number"]}
        changed = threading.Event()
        lease.on_change(lambda _: changed.set())
        proxy.down()  # cut before the re-issue at a third left (about 2.7 s)...
        end = time.monotonic() + 3.3
        while time.monotonic() < end:  # ...the reader never notices
            assert certificate(lease).not_valid_after_utc.timestamp() > time.time()
            time.sleep(0.1)
        assert not changed.is_set()
        proxy.pass_through()  # ...restored inside the TTL: the keeper re-issues
        assert changed.wait(3)
        serials.add(lease["serial_number"])
        assert len(serials) == 2 and common_name(certificate(lease)) == "probe.internal"
        store.close()
