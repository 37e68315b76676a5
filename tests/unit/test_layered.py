"""Layered stores: fall through only on NotFound, writes to the first writable layer, merged
lists, audit naming the answering layer, and no second cache or retry layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import secretkit
from secretkit.audit import AuditEvent
from secretkit.drivers.memory import MemoryDriver
from secretkit.layered import LayeredStore
from secretkit.retry import RetryPolicy
from secretkit.secret import Stage
from secretkit.store import SecretStore
from secretkit.testing.faulty import FaultyDriver
from secretkit.drivers.files.kubelet import KubeletVolume
from secretkit.testing.spy import CountingDriver


@pytest.fixture(autouse=True)
def clean_app_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETKIT_FILE_KEY", raising=False)
    for key in list(os.environ):
        if key.startswith("APP_"):
            monkeypatch.delenv(key)


def faulty_layer(**retry: float) -> tuple[SecretStore, FaultyDriver]:
    driver = FaultyDriver(MemoryDriver(), sleep=lambda _: None)
    policy = RetryPolicy(**retry) if retry else RetryPolicy.none()
    return SecretStore(driver, options=secretkit.StoreOptions(retry=policy)), driver


def counted_layer() -> tuple[SecretStore, CountingDriver]:
    driver = CountingDriver(MemoryDriver())
    return SecretStore(driver), driver


# -- the typical uses ---------------------------------------------------------------------------


def test_laptop_env_then_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file_url = (tmp_path / "dev").as_uri()
    with secretkit.open(file_url) as dev:
        dev.put("payments/db-password", "from-file")
        dev.put("payments/api-key", "file-key")
    monkeypatch.setenv("APP_PAYMENTS_DB_PASSWORD", "from-env")
    store = secretkit.open(["env://?prefix=APP_", file_url])
    assert isinstance(store, LayeredStore) and isinstance(store, SecretStore)
    assert store.get("payments/db-password").text == "from-env"  # the environment overrides
    assert store.get("payments/api-key").text == "file-key"  # missing there: the file answers
    assert store.origin("payments/api-key").backend == "file"
    store.put("payments/new", "written")  # env:// is read-only: the file store takes writes
    assert secretkit.open(file_url).get("payments/new").text == "written"
    # merged and sorted; env:// spells its variable its own way (one entry per spelling)
    assert list(store.list("payments/")) == [
        "payments/api-key", "payments/db-password", "payments/db_password", "payments/new",
    ]
    assert store.get("payments/db_password").text == "from-env"


def test_pod_mounted_files_then_a_remote_store(tmp_path: Path) -> None:
    """``files:///var/run/secrets/app`` first, then the team's store (memory:// stands in for Vault)."""
    KubeletVolume(tmp_path / "app", {"db-password": "mounted"})
    remote = secretkit.open("memory://")
    remote.put("api-key", "remote")
    remote.put("db-password", "remote-db")
    store = secretkit.open([f"files://{tmp_path / 'app'}", remote])
    assert store.get("db-password").text == "mounted"
    assert store.get("api-key").text == "remote"
    assert store.writable_layer is remote
    store.put("written", "x")
    assert remote.get("written").text == "x"


# -- fall through only on NotFound ----------------------------------------------------------------


def test_a_layer_that_is_down_stops_the_read() -> None:
    down, faults = faulty_layer()
    below, spy = counted_layer()
    below.put("db", "dev-value")
    spy.calls.clear()
    faults.fail("read", secretkit.UnavailableError("backend down"), times=None)
    store = LayeredStore([down, below])
    with pytest.raises(secretkit.UnavailableError) as info:
        store.get("db")
    assert info.value.backend == "memory" and info.value.name == "db"
    assert spy.total == 0  # the next layer was never asked: no dev value served during an outage
    faults.heal()
    faults.fail("read", secretkit.PermissionDeniedError("denied"), times=None)
    with pytest.raises(secretkit.PermissionDeniedError):
        store.get("db")
    assert spy.total == 0
    faults.heal()
    assert store.get("db").text == "dev-value"  # healthy and missing: falls through


def test_a_missing_secret_falls_through_and_audit_names_the_layer() -> None:
    first = secretkit.open("memory://")
    below = SecretStore(MemoryDriver())
    below.put("only-below", "b")
    first.put("only-first", "a")
    store = LayeredStore([secretkit.open("env://?prefix=APP_"), first, below])
    events: list[AuditEvent] = []
    store.add_audit_hook(events.append)
    assert store.get("only-below").text == "b"
    assert store.get("only-first").text == "a"
    with pytest.raises(secretkit.NotFoundError, match="not found in any layer") as info:
        store.get("nowhere")
    assert info.value.backend == "layered"
    assert [(e.operation, e.backend, e.outcome) for e in events] == [
        ("get", "memory", "ok"), ("get", "memory", "ok"), ("get", "layered", "not_found"),
    ]
    assert events[0].version == below.get("only-below").version
    store.put("w", "x")
    assert events[-1].operation == "put" and events[-1].backend == "memory"


def test_the_audit_event_names_env_when_env_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_TOKEN", "t")
    store = secretkit.open(["env://?prefix=APP_", "memory://"])
    events: list[AuditEvent] = []
    store.add_audit_hook(events.append)
    store.get("token")
    assert [(e.backend, e.outcome) for e in events] == [("env", "ok")]


def test_a_name_a_layer_cannot_hold_is_not_there() -> None:
    """env:// cannot hold ``1-starts-with-digit`` without a prefix: that layer is skipped, not an error."""
    below = secretkit.open("memory://")
    below.put("1-starts-with-digit", "v")
    store = secretkit.open(["env://", below])
    assert store.get("1-starts-with-digit").text == "v"
    with pytest.raises(secretkit.InvalidArgumentError, match="at least one layer"):
        store.get("a+b")  # no layer holds it: refused before any I/O


def test_get_many_stops_per_name_on_errors_and_batches_per_layer() -> None:
    down, faults = faulty_layer()
    down.put("up", "from-first")
    below, spy = counted_layer()
    below.put("lower", "from-second")
    below.put("broken", "dev-value")
    spy.calls.clear()
    real_read = faults._inner.read  # type: ignore[attr-defined]

    def read(name: str, **kwargs: object) -> object:
        if name == "broken":
            raise secretkit.UnavailableError("down for this one")
        return real_read(name, **kwargs)

    faults._inner.read = read  # type: ignore[attr-defined]
    store = LayeredStore([down, below])
    result = store.get_many(["up", "lower", "broken", "absent", "bad\nname"])
    assert result["up"].text == "from-first" and result["lower"].text == "from-second"
    assert isinstance(result.errors["broken"], secretkit.UnavailableError)
    assert isinstance(result.errors["absent"], secretkit.NotFoundError)
    assert isinstance(result.errors["bad\nname"], secretkit.InvalidArgumentError)
    assert spy.calls["read"] == 2  # only "lower" and "absent" reached the second layer


def test_list_merges_and_fails_with_a_failing_layer() -> None:
    first, faults = faulty_layer()
    second = secretkit.open("memory://")
    first.put("a/x", "1")
    first.put("a/y", "1")
    second.put("a/y", "2")
    second.put("a/z", "2")
    second.put("b/w", "2")
    store = LayeredStore([first, second])
    assert list(store.list("a/")) == ["a/x", "a/y", "a/z"]
    faults.fail("list", secretkit.UnavailableError("down"))
    with pytest.raises(secretkit.UnavailableError):
        list(store.list())


# -- no second cache, no multiplied retries -----------------------------------------------------


def test_layers_keep_their_own_retries_and_the_layered_store_adds_none() -> None:
    down, faults = faulty_layer(max_attempts=3, initial_backoff=0, deadline=None)
    faults.fail("read", secretkit.UnavailableError("down"), times=None)
    store = LayeredStore([down, secretkit.open("memory://")])
    with pytest.raises(secretkit.UnavailableError) as info:
        store.get("db")
    assert faults.calls["read"] == 3  # the layer's own three attempts, not 3 × the layered store's
    assert info.value.attempts == 3
    assert store.options.retry.max_attempts == 1


def test_layers_keep_their_own_cache_and_the_layered_store_adds_none() -> None:
    cached = secretkit.open("memory://", cache=True)
    cached.put("db", "v")
    store = LayeredStore([cached])
    assert store.cache_policy is None
    store.get("db")
    store.get("db")
    assert cached.cache_stats().hits >= 1
    assert store.cache_stats() == cached.cache_stats()  # the layers' counters, nothing of its own
    cached.put("db", "new")  # a write through the layer invalidates the layer's cache
    assert store.get("db").text == "new"


# -- versions, stages, rotation, writes ---------------------------------------------------------


def test_versions_and_stages_come_from_the_answering_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = secretkit.open("memory://"), secretkit.open("memory://")
    first.put("db", "first-v1")
    for value in ("second-v1", "second-v2", "second-v3"):
        second.put("db", value)
    store = LayeredStore([first, second])
    assert [v.version for v in store.versions("db")] == ["1"]
    with pytest.raises(secretkit.NotFoundError):
        store.get("db", version="3")  # first has no version 3; second's is shadowed, not served
    monkeypatch.setenv("APP_DB", "from-env")
    shadowed = secretkit.open(["env://?prefix=APP_", second])
    with pytest.raises(secretkit.NotSupportedError):
        shadowed.get("db", stage=Stage.PREVIOUS)  # env answers db, and env keeps no stages
    monkeypatch.delenv("APP_DB")
    assert shadowed.get("db", stage=Stage.PREVIOUS).text == "second-v2"


def test_rotation_and_deletes_go_to_the_writable_layer() -> None:
    below = secretkit.open("memory://")
    below.put("db", "old-password")
    store = secretkit.open(["env://?prefix=APP_", below])
    assert store.stages == "native"
    result = store.rotate("db", generate=lambda current: "new-password")
    assert result is not None and below.get("db").text == "new-password"
    assert store.get("db", stage=Stage.PREVIOUS).text == "old-password"
    store.delete("db")
    assert not below.exists("db") and not store.exists("db")


def test_every_layer_read_only_refuses_writes(tmp_path: Path) -> None:
    store = secretkit.open(["env://", f"files://{tmp_path}"])
    with pytest.raises(secretkit.NotSupportedError, match="every layer is read-only"):
        store.put("x", "y")
    with pytest.raises(secretkit.NotSupportedError):
        store.delete("x")
    assert store.capabilities.compare_and_set is False


def test_watch_on_a_layered_store_sees_a_new_answering_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    below = secretkit.open("memory://")
    below.put("token", "from-memory")
    store = secretkit.open(["env://?prefix=APP_", below])
    seen: list[str] = []
    with store.watch("token", lambda secret: seen.append(secret.text), interval=3600) as watcher:
        below.put("token", "rotated")
        assert watcher.poll()
        monkeypatch.setenv("APP_TOKEN", "override")
        assert watcher.poll()
    assert seen == ["rotated", "override"]


# -- opening -----------------------------------------------------------------------------------


def test_config_file_with_a_list_of_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DB", "env-db")
    config = tmp_path / "secretkit.toml"
    config.write_text('url = ["env://?prefix=APP_", "memory://layered-config"]\n')
    store = secretkit.open(config=config)
    assert isinstance(store, LayeredStore)
    assert [layer.backend for layer in store.layers] == ["env", "memory"]
    assert store.get("db").text == "env-db"
    extra = tmp_path / "extra.toml"
    extra.write_text('url = ["env://", "memory://"]\nmax_value_bytes = 5\n')
    with pytest.raises(secretkit.ConfigError, match="in its URL"):
        secretkit.open(config=extra)


def test_bad_layer_lists_are_config_errors() -> None:
    for bad in ([], ["memory://", 42], ["memory://", ""], ["nosuch://"]):
        with pytest.raises(secretkit.ConfigError):
            secretkit.open(bad)  # type: ignore[arg-type]
    with pytest.raises(secretkit.ConfigError, match="no client or options"):
        secretkit.open(["memory://"], cache=True)


def test_close_closes_only_the_layers_it_opened() -> None:
    class ClosingSpy(CountingDriver):
        closed = False

        def close(self) -> None:
            self.closed = True

    given = SecretStore(ClosingSpy(MemoryDriver()))
    store = secretkit.open(["memory://", given, ["env://", "memory://"]])
    assert isinstance(store, LayeredStore)
    opened = [store.layers[0], store.layers[2]]
    closed: list[str] = []
    for layer in opened:
        layer.close = lambda layer=layer: closed.append(layer.backend)  # type: ignore[method-assign]
    with store:
        pass
    assert closed == ["memory", "layered"]
    assert not given.driver.closed  # type: ignore[attr-defined]
