"""Stores across ``os.fork()``: what gunicorn ``--preload``, Celery's prefork pool, uWSGI and
``multiprocessing`` (fork start method) do to an application that opened its stores first.

Only the forking thread exists in the child, so every thread pool, load in flight and lock a
store had is reset there (``secretkit.forking``); the cache contents are kept. Each test runs
its check in a forked child that reports through a pipe; the parent waits with a timeout, so
a child that hangs fails the test instead of hanging the suite. Remote stores use a short
``deadline``: a first call that waits for a worker thread the child does not have fails by
that deadline, well within the parent's timeout.
"""

from __future__ import annotations

import asyncio
import fcntl
import gc
import json
import multiprocessing
import os
import select
import signal
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import secretkit
from secretkit import CachePolicy, RetryPolicy, Secret, SecretStore, forking
from secretkit.config import StoreOptions
from secretkit.drivers.file import disk
from secretkit.drivers.files.inotify import Inotify
from secretkit.drivers.memory import MemoryDriver
from secretkit.secret import Value
from secretkit.testing.faulty import FaultyDriver
from tests.doubles import k8s_api
from tests.doubles.aws import REGION, aws_http_endpoint, fake_aws_env

__all__ = ["aws_http_endpoint"]

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

#: Seconds the parent waits for a child's report: far above what a working child needs.
CHILD_TIMEOUT = 15.0
#: A remote call's whole budget: a child waiting for a thread it does not have fails by then.
DEADLINE = RetryPolicy(deadline=5)


def in_child(body: Callable[[], Any], *, timeout: float = CHILD_TIMEOUT) -> Any:
    """Run ``body`` in a forked child and return what it returned (JSON-able). An exception
    in the child fails the test with its type and message; a child still silent after
    ``timeout`` seconds is killed and fails the test as hung."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's cleanup (pytest's)
        status = 0
        try:
            os.close(read_end)
            try:
                report = {"ok": body()}
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                report = {"error": f"{type(exc).__name__}: {exc}"}
            os.write(write_end, json.dumps(report).encode())
        except BaseException:  # noqa: BLE001 - nothing may escape the child
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        chunks: list[bytes] = []
        end = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([read_end], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                pytest.fail(f"the forked child hung: no report within {timeout} s")
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    assert chunks, "the forked child died without a report"
    report = json.loads(b"".join(chunks))
    assert "error" not in report, f"in the forked child: {report['error']}"
    return report["ok"]


def _name() -> str:
    return f"fork-{uuid.uuid4().hex[:8]}"


# -- remote stores: the process-wide attempt workers ---------------------------------------


@pytest.fixture
def aws_url(aws_http_endpoint: str) -> Iterator[str]:
    """aws-sm on moto over HTTP: every call goes through the store's attempt workers."""
    with fake_aws_env():
        yield f"aws-sm://?region={REGION}&endpoint_url={aws_http_endpoint}"


def test_a_remote_store_opened_before_the_fork_answers_its_first_read_in_the_child(aws_url: str) -> None:
    with secretkit.open(aws_url, retry=DEADLINE, cache=False) as store:
        name = _name()
        store.put(name, "s3cr3t")
        assert store.get(name).text == "s3cr3t"  # the parent's attempt workers are idle now

        # the call must not wait for the parent's threads: it would fail at the 5 s deadline
        assert in_child(lambda: store.get(name).text) == "s3cr3t"
        assert store.get(name).text == "s3cr3t"  # the parent is unaffected


def test_a_remote_store_opened_after_the_fork_answers_in_the_child(aws_url: str) -> None:
    with secretkit.open(aws_url, retry=DEADLINE) as store:
        name = _name()
        store.put(name, "opened-later")  # the workers every store of the process shares are warm

        def child() -> str:
            with secretkit.open(aws_url, retry=DEADLINE) as fresh:
                return fresh.get(name).text

        assert in_child(child) == "opened-later"


def test_the_async_facade_that_ran_calls_before_the_fork_answers_in_the_child(aws_url: str) -> None:
    facade = secretkit.open_async(aws_url, retry=DEADLINE)
    name, cold = _name(), _name()

    async def before() -> str:
        await facade.put(name, "one")
        await facade.put(cold, "two")
        return (await facade.get(name)).text  # the facade's pool threads exist and are idle

    assert asyncio.run(before()) == "one"

    async def cold_read() -> list[str]:
        hit = await facade.get(name)  # the cache contents survive the fork
        miss = await asyncio.wait_for(facade.get(cold), 10)  # a cold read goes to the pool
        return [hit.text, miss.text]

    try:
        assert in_child(lambda: asyncio.run(cold_read())) == ["one", "two"]
    finally:
        facade._shutdown()


_POOL_STORE: SecretStore | None = None


def test_a_multiprocessing_fork_pool_reads_through_a_store_opened_in_the_parent(aws_url: str) -> None:
    global _POOL_STORE
    with secretkit.open(aws_url, retry=DEADLINE) as store:
        name = _name()
        store.put(name, "pooled")
        assert store.get(name, refresh=True).text == "pooled"
        _POOL_STORE = store
        try:
            with multiprocessing.get_context("fork").Pool(2) as pool:
                results = [pool.apply_async(_read_in_pool, (name,)) for _ in range(4)]
                assert [r.get(timeout=CHILD_TIMEOUT) for r in results] == ["pooled"] * 4
        finally:
            _POOL_STORE = None


def _read_in_pool(name: str) -> str:
    assert _POOL_STORE is not None
    return _POOL_STORE.get(name, refresh=True).text


# -- the cache: loads in flight and the refresh worker --------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_refresh_ahead_in_flight_at_the_fork_does_not_block_the_child() -> None:
    """The parent's refresh worker is inside the backend read when the process forks: in the
    child that worker does not exist, so its load must not be waited for."""
    inner = MemoryDriver()
    driver = FaultyDriver(inner)
    clock = Clock()
    policy = CachePolicy(ttl=10, jitter=0, refresh_ahead=0.5, check_version=False)
    store = SecretStore(driver, options=StoreOptions(cache=policy), clock=clock)
    store.put("db", "v1")
    assert store.get("db").text == "v1"
    gate = driver.gate("read")
    clock.now = 6  # past refresh-ahead (5 s), before expiry (10 s)
    assert store.get("db").text == "v1"  # a hit that hands one refresh to the worker
    assert driver.entered["read"].wait(5)  # ... which now waits inside the backend read

    def child() -> list[str]:
        gate.set()  # this process's copy of the gate: its own reads pass
        answers = [store.get("db").text]  # still a hit: the cache contents were kept
        answers.append(store.get("db", refresh=True).text)  # queues behind no load of the parent's
        clock.now = 100  # expired: a miss, which must not join the parent's load
        answers.append(store.get("db").text)
        inner.write("db", Value.of("v2"), if_version=None, create_only=False, token="t2")
        clock.now = 106  # past refresh-ahead again: the child's own refresh worker picks up v2
        store.get("db")
        until = time.monotonic() + 5
        while store.get("db").text != "v2" and time.monotonic() < until:
            time.sleep(0.01)
        answers.append(store.get("db").text)
        return answers

    try:
        assert in_child(child) == ["v1", "v1", "v1", "v2"]
    finally:
        gate.set()
        store.close()


# -- locks: file://, memory, Vault, settings -----------------------------------------------


def _open_descriptors_of(path: Path) -> int:
    """How many of this process's descriptors are open on ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            pass
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_file_store_written_by_another_thread_at_the_fork_can_be_written_in_the_child(file_store: SecretStore,
                                                                                     tmp_path: Path) -> None:
    """A put in another thread holds the driver's lock and waits for the store's file lock when
    the process forks; the child must neither wait for that thread's lock nor keep the file
    lock alive through its copy of that thread's descriptor."""
    store = file_store
    store.put("seed", "0")
    lock_path = tmp_path / "store" / "store.lock"
    holder = os.open(lock_path, os.O_RDWR)  # another writer holds the file lock
    fcntl.flock(holder, fcntl.LOCK_EX)
    writer = threading.Thread(target=store.put, args=("parent", "1"))
    writer.start()
    until = time.monotonic() + 5
    while _open_descriptors_of(lock_path) < 2 and time.monotonic() < until:  # the put waits in flock now
        time.sleep(0.01)

    def child() -> str:
        os.close(holder)  # this process's copy of the other writer's descriptor
        store.put("child", "2")
        return store.get("child").text

    result: list[Any] = []
    runner = threading.Thread(target=lambda: result.append(_try(lambda: in_child(child))))
    runner.start()
    time.sleep(0.2)  # the child has forked
    os.close(holder)  # the other writer is done: the parent's put proceeds
    writer.join(10)
    runner.join(CHILD_TIMEOUT + 5)
    assert result and result[0] == ("ok", "2"), result
    assert store.get("parent").text == "1"


def _try(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except BaseException as exc:  # noqa: BLE001 - reported to the test's thread
        return "error", f"{type(exc).__name__}: {exc}"


def test_a_child_that_outlives_a_file_lock_holder_does_not_keep_the_lock(tmp_path: Path) -> None:
    """flock belongs to the open file, which a fork shares: a child still holding its copy of
    the descriptor would keep the store locked for every process after the parent let go."""
    directory = tmp_path / "store"
    directory.mkdir()
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with disk.locked(directory):
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    read_end, write_end = os.pipe()
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a child that lives on (a long-running worker) without touching the store
        os.write(ready_write, b"r")  # the fork hooks have run
        select.select([read_end], [], [], 10)
        os._exit(0)
    try:
        os.close(read_end)
        os.close(ready_write)
        assert select.select([ready_read], [], [], CHILD_TIMEOUT)[0], "the child did not start"
        os.close(ready_read)
        release.set()
        holder.join(5)
        probe = os.open(directory / "store.lock", os.O_RDWR)
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError while the child keeps it
        finally:
            os.close(probe)
    finally:
        os.close(write_end)
        os.waitpid(pid, 0)


@pytest.fixture(params=["memory", "vault", "settings"])
def lock_and_use(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Callable[[], str]]]:
    """A lock another thread may hold while it works (a memory namespace during a call, Vault's
    token keeper during a login or renewal, the settings' shared stores during an open) and an
    operation of the child that needs it."""
    if request.param == "memory":
        with secretkit.open("memory://") as store:
            store.put("k", "v")
            yield store.driver._ns.lock, lambda: store.get("k").text  # type: ignore[attr-defined]
    elif request.param == "vault":
        from tests.doubles import openbao

        bao = request.getfixturevalue("bao")
        openbao.clean_env(request.getfixturevalue("monkeypatch"))
        with secretkit.open(bao.url("secret"), token=bao.root_token, cache=False) as store:
            name = _name()
            store.put(name, "v")
            yield store.driver._keeper._lock, lambda: store.get(name).text  # type: ignore[attr-defined]
    else:
        from secretkit import settings

        yield settings._stores_lock, lambda: settings.shared_store("memory://fork-settings").backend


def test_a_lock_another_thread_held_at_the_fork_does_not_block_the_child(
    lock_and_use: tuple[Any, Callable[[], str]],
) -> None:
    lock, use = lock_and_use
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:  # stands in for the thread's call in progress at the fork
        with lock:
            taken.set()
            release.wait(CHILD_TIMEOUT + 5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(5)
    try:
        assert in_child(use) in ("v", "memory")
    finally:
        release.set()
        holder.join(5)


# -- watchers -------------------------------------------------------------------------------


class Seen:
    def __init__(self) -> None:
        self.values: list[str] = []

    def __call__(self, secret: Secret) -> None:
        self.values.append(secret.text)

    def wait_for(self, value: str, timeout: float = 8) -> bool:
        until = time.monotonic() + timeout
        while value not in self.values and time.monotonic() < until:
            time.sleep(0.01)
        return value in self.values


@pytest.fixture(scope="module")
def kube() -> Iterator[k8s_api.FakeKubeAPI]:
    with k8s_api.FakeKubeAPI() as server:
        yield server


@pytest.fixture(params=["memory", "files", "k8s"])
def watched(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SecretStore, Callable[[str], None]]]:
    """A store and a way to change its secret ``db`` (by the backend's own means): polling
    (memory), inotify (files://), the API server's watch stream (k8s)."""
    if request.param == "memory":
        with secretkit.open("memory://") as store:
            store.put("db", "first")
            yield store, lambda value: store.put("db", value)
    elif request.param == "files":
        root = tmp_path / "mounted"
        root.mkdir()
        (root / "db").write_text("first")
        def replace(value: str) -> None:  # whole, as the tools that mount secrets write them
            (root / ".db.tmp").write_text(value)
            os.replace(root / ".db.tmp", root / "db")

        with secretkit.open(f"files://{root}?poll_interval=0.1") as store:
            yield store, replace
    else:
        api = request.getfixturevalue("kube")
        namespace = f"fork-{uuid.uuid4().hex[:6]}"
        with secretkit.open(f"k8s://{namespace}?host={api.url}&watch_timeout=2", cache=False) as store:
            store.put("db", "first")
            yield store, lambda value: store.put("db", value)


def test_a_watch_started_before_the_fork_reports_changes_in_the_child(
    watched: tuple[SecretStore, Callable[[str], None]],
) -> None:
    store, change = watched
    seen = Seen()
    with store.watch("db", seen, interval=0.05):
        time.sleep(0.2)  # the watch thread is running (and, streaming, following the stream)

        def child() -> list[str]:
            change("changed-in-child")
            assert seen.wait_for("changed-in-child"), "the watch did not report the change in the child"
            return seen.values

        assert in_child(child) == ["changed-in-child"]


def test_an_async_watch_started_before_the_fork_yields_in_the_child() -> None:
    facade = secretkit.open_async("memory://")

    async def before() -> None:
        await facade.put("db", "first")
        watch = facade.watch("db", interval=0.05)
        await watch.start()
        await facade.put("db", "in-parent")
        assert (await asyncio.wait_for(watch.__anext__(), 10)).text == "in-parent"  # the watch ran on this loop
        _WATCHES.append(watch)

    asyncio.run(before())
    watch = _WATCHES.pop()

    async def in_the_child() -> str:
        await facade.put("db", "second")
        secret = await asyncio.wait_for(watch.__anext__(), 10)
        return secret.text

    try:
        assert in_child(lambda: asyncio.run(in_the_child())) == "second"
    finally:
        watch.stop_soon()
        facade._shutdown()


_WATCHES: list[Any] = []


def test_a_notifier_of_the_parent_is_closed_in_the_child(tmp_path: Path) -> None:
    """An inotify instance is shared by parent and child: a child reading its copy would steal
    the parent's events, and one it never reads is a descriptor leaked for its lifetime."""
    notifier = Inotify.create()
    if notifier is None:
        pytest.skip("no inotify here")
    fd = notifier._fd
    try:
        assert in_child(lambda: os.path.exists(f"/proc/self/fd/{fd}")) is False
        assert os.path.exists(f"/proc/self/fd/{fd}")  # the parent keeps its own
    finally:
        notifier.close()


# -- the hooks hold stores weakly ----------------------------------------------------------


def test_fork_hooks_do_not_keep_stores_alive() -> None:
    gc.collect()
    before = forking.registered()
    store = secretkit.open("memory://", cache=True)
    facade = secretkit.AsyncSecretStore(store)
    assert forking.registered() > before  # the cache, the attempt runner, the pool, the namespace
    refs = [weakref.ref(store), weakref.ref(facade)]
    store.close()
    del store, facade
    gc.collect()
    assert [ref() for ref in refs] == [None, None]
    assert forking.registered() == before  # and their hooks went with them
