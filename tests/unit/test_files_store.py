"""files:// specifics: Docker-style flat files, the kubelet's AtomicWriter layout and its update
sequence (every intermediate state, a swap in the middle of a read, readers racing 50 swaps),
size limits, permissions, symlinks leaving PATH, change detection."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import secretkit
from secretkit.drivers.files.driver import FilesDriver
from secretkit.secret import Kind, Secret
from secretkit.store import SecretStore
from secretkit.drivers.files.kubelet import STEPS, KubeletVolume, generation_of, generation_payload, swap_while_reading

CONTENT = "content-marker-3b9f"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "secrets"
    path.mkdir()
    return path


def files(root: Path, query: str = "") -> SecretStore:
    return secretkit.open(f"files://{root}{query}")


# -- Docker / Compose: flat files -----------------------------------------------------------


def test_docker_style_flat_files_read_exactly(root: Path) -> None:
    (root / "db-password").write_bytes(b"s3cr3t\n")
    (root / "api_key").write_bytes(b"no-newline")
    (root / "tls").mkdir()
    (root / "tls" / "key.pem").write_bytes(b"\x00\xff binary\r\n")
    store = files(root)
    got = store.get("db-password")
    assert got.kind is Kind.BYTES
    assert got.text == "s3cr3t\n" and got.bytes == b"s3cr3t\n"  # nothing stripped
    assert store.get("api_key").text == "no-newline"
    assert store.get("tls/key.pem").bytes == b"\x00\xff binary\r\n"
    with pytest.raises(secretkit.InvalidArgumentError):
        store.get("tls/key.pem").text  # noqa: B018 - not UTF-8
    assert list(store.list()) == ["api_key", "db-password", "tls/key.pem"]
    assert list(store.list("tls/")) == ["tls/key.pem"]
    assert store.get("tls").fields == {}  # its one file is not text: field_bytes() has it
    assert store.get("tls").field_bytes("key.pem") == b"\x00\xff binary\r\n"


def test_kubelet_bookkeeping_is_never_a_name_nor_listed(root: Path) -> None:
    (root / "..2024_01_01_00_00_00.1").mkdir()
    (root / "..2024_01_01_00_00_00.1" / "visible").write_text("old")
    (root / "..stray").write_text("s")
    (root / "visible").write_text("v")
    (root / "control\nchar").write_text("c")  # no name reaches it, so it is not listed
    store = files(root)
    assert list(store.list()) == ["visible"]
    for bad in ("..data", "..stray", "..2024_01_01_00_00_00.1/visible", "a/../visible", "./visible", ".", "..",
                "a//b", "/visible", "visible/"):
        with pytest.raises(secretkit.InvalidArgumentError, match="relative paths"):
            store.get(bad)


def test_a_key_named_with_one_leading_dot_is_a_name(root: Path) -> None:
    """A Secret of type kubernetes.io/dockerconfigjson mounts its one key ``.dockerconfigjson``;
    the kubelet only refuses keys starting with ``..`` (its own entries), so a single leading dot
    is the key's own name: read, listed, and a field of the volume."""
    config = '{"auths":{"registry.example":{"auth":"dXNlcjpwYXNz"}}}'
    volume = KubeletVolume(root / "pull-secret", {".dockerconfigjson": config})
    assert os.readlink(root / "pull-secret" / ".dockerconfigjson") == "..data/.dockerconfigjson"
    (root / ".env").write_text("FLAT=1\n")  # a Docker secret file named with a dot
    store = files(root)
    assert store.get("pull-secret/.dockerconfigjson").text == config
    assert store.get("pull-secret").fields == {".dockerconfigjson": config}
    assert store.get(".env").text == "FLAT=1\n"
    assert list(store.list()) == [".env", "pull-secret/.dockerconfigjson"]
    assert list(store.list("pull-secret/.")) == ["pull-secret/.dockerconfigjson"]
    volume.update({".dockerconfigjson": config.replace("dXNl", "bmV3"), ".extra": "x"})
    assert store.get("pull-secret").fields == {".dockerconfigjson": config.replace("dXNl", "bmV3"), ".extra": "x"}
    assert list(store.list("pull-secret/")) == ["pull-secret/.dockerconfigjson", "pull-secret/.extra"]


def test_the_version_follows_the_file(root: Path) -> None:
    path = root / "token"
    path.write_text("one")
    store = files(root)
    first = store.get("token").version
    assert store.get("token").version == first
    assert store.driver.current_version("token") == first  # type: ignore[attr-defined]
    tmp = root / ".token.tmp"
    tmp.write_text("two")
    os.replace(tmp, path)  # how Vault Agent and most writers replace a file
    assert store.get("token").text == "two"
    assert store.get("token").version != first


# -- Kubernetes: the kubelet's AtomicWriter --------------------------------------------------


def test_kubelet_layout_reads_keys_and_the_volume_as_fields(root: Path) -> None:
    volume = KubeletVolume(root / "app", {"username": "app", "password": "s3cr3t\n"})
    entries = sorted(os.listdir(root / "app"))
    assert entries[:2] == [volume.generation, "..data"] and entries[2:] == ["password", "username"]
    assert os.readlink(root / "app" / "password") == "..data/password"
    store = files(root)
    assert store.get("app/password").text == "s3cr3t\n"
    app = store.get("app")
    assert app.kind is Kind.FIELDS and app.fields == {"username": "app", "password": "s3cr3t\n"}
    assert list(store.list()) == ["app/password", "app/username"]


def test_kubelet_update_adds_and_drops_keys(root: Path) -> None:
    volume = KubeletVolume(root / "app", {"a": "1", "b": "2"})
    store = files(root)
    before = store.get("app").version
    key_version = store.get("app/a").version
    assert volume.update({"a": "1", "b": "2"}) is False  # the kubelet skips an unchanged payload
    assert store.get("app").version == before
    volume.update({"a": "1", "c": "3"})
    assert store.get("app").fields == {"a": "1", "c": "3"}
    assert store.get("app").version != before
    assert store.get("app/a").version != key_version  # a new generation: every key changed version
    with pytest.raises(secretkit.NotFoundError):
        store.get("app/b")
    assert list(store.list("app/")) == ["app/a", "app/c"]


def test_projected_item_paths_nest(root: Path) -> None:
    KubeletVolume(root / "tls", {"tls/tls.crt": "CERT", "tls/tls.key": "KEY", "ca.crt": "CA"})
    store = files(root)
    assert store.get("tls/tls/tls.key").text == "KEY"
    assert store.get("tls/tls").fields == {"tls.crt": "CERT", "tls.key": "KEY"}
    assert list(store.list()) == ["tls/ca.crt", "tls/tls/tls.crt", "tls/tls/tls.key"]


def test_a_volume_mounted_at_the_root(root: Path) -> None:
    """``files:///var/run/secrets/app`` where the Secret itself is mounted at that path."""
    KubeletVolume(root, {"db-password": "pw", "api-key": "k"})
    store = files(root)
    assert store.get("db-password").text == "pw"
    assert list(store.list()) == ["api-key", "db-password"]


@pytest.mark.parametrize("step", STEPS)
def test_every_intermediate_state_of_an_update_reads_old_or_new(root: Path, step: str) -> None:
    volume = KubeletVolume(root / "app", generation_payload(1))
    store = files(root)
    seen: list[int] = []

    def read_now(current: str) -> None:
        if current == step:
            seen.append(generation_of(store.get("app").fields))
            seen.append(int(store.get("app/password").text.split("-")[1]))
            keys = {name.split("/")[1] for name in store.list("app/")}
            assert keys == set(generation_payload(seen[0]))

    volume.update(generation_payload(2), between=read_now)
    expected = 1 if STEPS.index(step) < STEPS.index("data-link-swapped") else 2
    assert seen == [expected, expected]


def test_a_swap_during_a_read_restarts_it(root: Path) -> None:
    """The kubelet swaps ``..data`` and deletes the old generation after the reader resolved it:
    the read must start again and return the new generation whole."""
    volume = KubeletVolume(root / "app", generation_payload(1))
    store = files(root)
    driver = store.driver
    assert isinstance(driver, FilesDriver)
    original = driver._tree._read_file
    swapped: list[bool] = []

    def swap_once(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if not swapped:
            swapped.append(True)
            volume.update(generation_payload(2))  # lands between the first and second file read
        return result

    driver._tree._read_file = swap_once  # type: ignore[method-assign]
    assert generation_of(store.get("app").fields) == 2
    assert swapped == [True]


def test_readers_racing_fifty_swaps_always_get_one_generation(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Thousands of reads (the whole volume as fields, a single key, the listing) while another
    process runs 50 kubelet updates: every read is one generation, old or new, never a mix,
    never an error, and no reader ever goes back to an older generation."""
    swaps, reads_between_swaps = 50, 100
    KubeletVolume(root / "app", generation_payload(0))
    store = files(root)
    context = multiprocessing.get_context("fork")
    reads = context.Value("q", 0, lock=False)
    writer = context.Process(target=swap_while_reading, args=(root / "app", swaps, reads_between_swaps, reads))
    results: dict[str, list[Any]] = {"inconsistent": [], "errors": [], "regressions": []}
    done = threading.Event()

    def reader(read: Callable[[], int]) -> None:
        last = 0
        while not done.is_set():
            try:
                gen = read()
            except AssertionError as exc:
                results["inconsistent"].append(str(exc))
                continue
            except Exception as exc:  # noqa: BLE001 - any error is a failure: counted and shown
                results["errors"].append(repr(exc))
                continue
            finally:
                reads.value += 1
            if gen < last:
                results["regressions"].append((last, gen))
            last = gen

    def list_generation() -> int:
        keys = {name.split("/")[1] for name in store.list("app/")}
        assert keys in ({"user", "password", "big"}, {"user", "password", "big", "extra"}), sorted(keys)
        return 0  # a listing carries no generation marker: checked for a consistent key set only

    readers = [
        threading.Thread(target=reader, args=(lambda: generation_of(store.get("app").fields),)),
        threading.Thread(target=reader, args=(lambda: int(store.get("app/password").text.split("-")[1]),)),
        threading.Thread(target=reader, args=(list_generation,)),
    ]
    started = time.perf_counter()
    for thread in readers:
        thread.start()
    writer.start()
    writer.join(timeout=300)
    done.set()
    for thread in readers:
        thread.join()
    elapsed = time.perf_counter() - started
    assert writer.exitcode == 0
    assert generation_of(store.get("app").fields) == swaps
    with capsys.disabled():
        print(f"\nkubelet race: {reads.value} reads during {swaps} swaps in {elapsed:.2f} s; "
              f"inconsistent {len(results['inconsistent'])}, errors {len(results['errors'])}, "
              f"regressions {len(results['regressions'])}")
    assert reads.value >= swaps * reads_between_swaps
    assert results == {"inconsistent": [], "errors": [], "regressions": []}


# -- limits, permissions, symlinks -------------------------------------------------------------


def test_files_over_the_size_limit_are_refused_by_name(root: Path) -> None:
    (root / "big").write_text(CONTENT * 10)
    (root / "small").write_text("ok")
    (root / "dir").mkdir()
    for i in range(3):
        (root / "dir" / f"f{i}").write_text(CONTENT)
    store = files(root, f"?max_file_bytes={len(CONTENT) * 2}")
    with pytest.raises(secretkit.InvalidArgumentError, match="max_file_bytes") as info:
        store.get("big")
    assert info.value.name == "big" and CONTENT not in str(info.value)
    with pytest.raises(secretkit.InvalidArgumentError, match="add up to more than max_file_bytes"):
        store.get("dir")
    assert store.get("small").text == "ok"


def test_symlinks_leaving_the_directory_are_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text(CONTENT)
    (root / "escape").symlink_to(outside)
    (root / "relative-escape").symlink_to("../outside")
    (root / "inside").write_text("fine")
    (root / "alias").symlink_to("inside")
    (root / "app").mkdir()
    (root / "app" / "leak").symlink_to(outside)
    store = files(root)
    for name in ("escape", "relative-escape"):
        with pytest.raises(secretkit.PermissionDeniedError, match="outside") as info:
            store.get(name)
        assert info.value.name == name and CONTENT not in str(info.value)
    with pytest.raises(secretkit.PermissionDeniedError, match="'leak'"):
        store.get("app")
    assert store.get("alias").text == "fine"
    assert list(store.list()) == ["alias", "inside"]  # links out of PATH are not listed


def test_a_symlink_loop_does_not_hang_list(root: Path) -> None:
    (root / "d").mkdir()
    (root / "d" / "loop").symlink_to("..")
    (root / "d" / "f").write_text("x")
    assert list(files(root).list()) == ["d/f"]


def _outcome(fn: Callable[[], Any]) -> str:
    try:
        fn()
    except secretkit.SecretError as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def _unprivileged(fn: Callable[[], Any]) -> str:
    """``fn``'s outcome in a process that cannot bypass file permissions (root drops to nobody
    in a forked child; everyone else runs it here)."""
    if os.geteuid() != 0:
        return _outcome(fn)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            os.setgid(65534)
            os.setuid(65534)
            message = _outcome(fn)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            message = f"child failed: {exc!r}"
        os.write(write_end, message.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        message = pipe.read()
    os.waitpid(pid, 0)
    return message


@pytest.fixture
def world_readable_root() -> Iterator[Path]:
    """A store directory an unprivileged child can reach (pytest's tmp dirs are private to root)."""
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        yield Path(tmp)


def test_unreadable_files_are_permission_denied(world_readable_root: Path) -> None:
    root = world_readable_root
    (root / "readable").write_text("fine")
    (root / "private").write_text(CONTENT)
    (root / "private").chmod(0o600)
    KubeletVolume(root / "app", {"user": "app", "password": CONTENT})
    volume_file = root / "app" / os.readlink(root / "app" / "..data") / "password"
    volume_file.chmod(0o600)
    store = files(root)
    store.get("readable")  # warm every import before a child may fork
    assert _unprivileged(lambda: store.get("readable")) == "ok"
    private = _unprivileged(lambda: store.get("private"))
    assert private.startswith("PermissionDeniedError") and "'private'" in private and CONTENT not in private
    field = _unprivileged(lambda: store.get("app"))
    assert field.startswith("PermissionDeniedError") and "'password'" in field and CONTENT not in field


# -- PATH itself --------------------------------------------------------------------------------


def test_a_missing_directory_is_a_config_error_unless_optional(tmp_path: Path) -> None:
    with pytest.raises(secretkit.ConfigError, match="does not exist"):
        secretkit.open(f"files://{tmp_path}/absent")
    optional = secretkit.open(f"files://{tmp_path}/absent?optional=true")
    with pytest.raises(secretkit.NotFoundError):
        optional.get("x")
    assert list(optional.list()) == []


def test_a_directory_that_vanishes_is_unavailable_not_missing(root: Path) -> None:
    """An unmounted volume must not read as "no such secret": a layered store would then fall
    through to its next layer."""
    (root / "token").write_text("t")
    store = files(root)
    (root / "token").unlink()
    root.rmdir()
    with pytest.raises(secretkit.UnavailableError, match="does not exist"):
        store.get("token")
    with pytest.raises(secretkit.UnavailableError):
        list(store.list())


# -- change detection -------------------------------------------------------------------------


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "polling"])
def test_watch_reports_a_kubelet_swap(root: Path, inotify: bool) -> None:
    volume = KubeletVolume(root / "app", generation_payload(1))
    store = files(root, f"?poll_interval=0.1&inotify={str(inotify).lower()}")
    seen: list[Secret] = []
    reported = threading.Event()

    def callback(secret: Secret) -> None:
        seen.append(secret)
        reported.set()

    with store.watch("app", callback):
        volume.update(generation_payload(2))
        assert reported.wait(10), "the swap was not reported"
    assert generation_of(seen[0].fields) == 2
    assert len(seen) == 1


def test_watch_drops_the_cached_value_after_a_swap(root: Path) -> None:
    """With the cache on (off by default for files://), a swap is seen once watch reports it."""
    volume = KubeletVolume(root / "app", {"password": "old"})
    store = files(root, "?cache=true&cache_ttl=3600&poll_interval=0.05")
    assert store.get("app/password").text == "old"
    reported = threading.Event()
    with store.watch("app/password", lambda secret: reported.set()):
        volume.update({"password": "new"})
        assert reported.wait(10)
    assert store.get("app/password").text == "new"
