"""file:// specifics: encryption at rest, keys, atomic writes, several processes at once."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import secretkit
from secretkit.drivers import file
from secretkit.drivers.file import disk, keys
from secretkit.drivers.file.driver import FileDriver
from secretkit.drivers.file import new_key

real_os_keyring = keys.os_keyring

PLAINTEXT = "plaintext-marker-7d2e"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key from the environment, and keys kept under tmp_path: never the user's keyring or config."""
    monkeypatch.delenv("SECRETKIT_FILE_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")  # for subprocesses
    monkeypatch.setattr(keys, "os_keyring", lambda: None)  # this process may have a real one cached


def _own_key_file(tmp_path: Path) -> Path:
    [key_file] = (tmp_path / "config" / "secretkit" / "keys").iterdir()
    return key_file


def test_nothing_plaintext_on_disk_and_the_key_is_private_and_elsewhere(tmp_path: Path) -> None:
    store = secretkit.open((tmp_path / "s").as_uri())
    store.put("db/password", PLAINTEXT)
    store.put("db/fields", {"password": PLAINTEXT})
    assert sorted(f.name for f in (tmp_path / "s").iterdir()) == ["store.enc", "store.id", "store.lock"]
    for f in (tmp_path / "s").iterdir():
        assert PLAINTEXT.encode() not in f.read_bytes(), f
        assert b"db/password" not in f.read_bytes(), f
    store_id = (tmp_path / "s" / "store.id").read_text().strip()
    key_file = _own_key_file(tmp_path)
    assert key_file.name == f"{store_id}.key"
    assert json.loads(key_file.read_text())["directory"] == str(tmp_path / "s")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "s" / "store.enc").stat().st_mode) == 0o600


def test_wrong_key_is_a_clear_error_and_overwrites_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = (tmp_path / "s").as_uri()
    secretkit.open(url).put("a", "original")
    before = (tmp_path / "s" / "store.enc").read_bytes()
    monkeypatch.setenv("SECRETKIT_FILE_KEY", new_key())
    wrong = secretkit.open(url)
    with pytest.raises(secretkit.AuthenticationError, match="wrong key"):
        wrong.get("a")
    with pytest.raises(secretkit.AuthenticationError):
        wrong.put("a", "clobber")
    with pytest.raises(secretkit.AuthenticationError):
        wrong.delete("a")
    assert (tmp_path / "s" / "store.enc").read_bytes() == before
    monkeypatch.delenv("SECRETKIT_FILE_KEY")
    assert secretkit.open(url).get("a").text == "original"


def test_existing_store_without_its_key_is_refused_not_rekeyed(tmp_path: Path) -> None:
    url = (tmp_path / "s").as_uri()
    secretkit.open(url).put("a", "v")
    before = (tmp_path / "s" / "store.id").read_bytes()
    key_file = _own_key_file(tmp_path)
    key_file.unlink()
    with pytest.raises(secretkit.AuthenticationError, match=f"key is missing: it is not in {key_file}"):
        secretkit.open(url)
    assert not key_file.exists()
    assert (tmp_path / "s" / "store.id").read_bytes() == before


def test_key_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETKIT_FILE_KEY", new_key())
    store = secretkit.open((tmp_path / "s").as_uri())
    store.put("a", "v")
    assert not (tmp_path / "s" / "key").exists()
    monkeypatch.setenv("SECRETKIT_FILE_KEY", "too-short")
    with pytest.raises(secretkit.ConfigError, match="32 bytes"):
        secretkit.open((tmp_path / "s").as_uri())


def test_crash_before_rename_keeps_the_old_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = secretkit.open((tmp_path / "s").as_uri())
    store.put("a", "safe")

    def crash(src: str, dst: str) -> None:
        raise OSError(5, "simulated crash")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", crash)
        with pytest.raises(secretkit.UnavailableError):
            store.put("a", "lost")
    assert [p.name for p in (tmp_path / "s").iterdir() if p.name.endswith(".tmp")] == []
    assert secretkit.open((tmp_path / "s").as_uri()).get("a").text == "safe"


def test_corrupt_file_is_data_loss_not_garbage(tmp_path: Path) -> None:
    store = secretkit.open((tmp_path / "s").as_uri())
    store.put("a", "v")
    (tmp_path / "s" / "store.enc").write_bytes(b"not a store")
    with pytest.raises(secretkit.DataLossError):
        secretkit.open((tmp_path / "s").as_uri()).get("a")


WRITER = """
import sys, secretkit
store = secretkit.open(sys.argv[1])
for i in range(15):
    store.put(f"proc{sys.argv[2]}/n{i}", f"v{i}")
    while True:  # a shared counter by compare-and-set: lost updates would show as a low count
        try:
            cur = store.get("counter")
            store.put("counter", str(int(cur.text) + 1), if_version=cur.version)
            break
        except secretkit.ConflictError:
            pass
"""


def test_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    url = (tmp_path / "s").as_uri()
    secretkit.open(url).put("counter", "0")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(i)]) for i in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    store = secretkit.open(url)
    assert len([n for n in store.list("proc")]) == 60
    assert store.get("counter").text == "60"


@pytest.mark.parametrize(
    "path",
    [
        "/dev/null/x", "{tmp}/a-file", "{tmp}/a-file/below", "{tmp}/nul\0byte", "~no-such-user-7c1/store",
        "{tmp}/" + "n" * 300,
    ],
    ids=["under-a-device", "a-regular-file", "under-a-regular-file", "nul-byte", "unknown-user-home", "name-too-long"],
)
def test_every_bad_path_is_a_config_error(tmp_path: Path, path: str) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(secretkit.ConfigError, match="file store"):
        secretkit.open("file://" + path.format(tmp=tmp_path))
    assert (tmp_path / "a-file").read_text() == "not a directory"


# One interpreter start, then a fork per trial: hundreds of trials fit in a few seconds.
FORKER = """
import json, os, random, signal, sys, time
import secretkit

mode, base, trials = sys.argv[1], sys.argv[2], int(sys.argv[3])
random.seed(7)

def fork(fn):
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        except BaseException as exc:
            sys.stderr.write(f"{type(exc).__name__}: {exc}\\n")
            os._exit(1)
        os._exit(0)
    return pid

def first_open(url):
    secretkit.open(url).put("a", "v")

first_open(f"file://{base}/warm")  # lazy imports happen here, not in the trials
out = {}
if mode == "kill":
    start = time.perf_counter()
    for i in range(5):
        os.waitpid(fork(lambda i=i: first_open(f"file://{base}/probe{i}")), 0)
    span = (time.perf_counter() - start) / 5
    killed = 0
    for i in range(trials):
        pid = fork(lambda i=i: first_open(f"file://{base}/s{i}"))
        time.sleep(random.uniform(0, span))
        os.kill(pid, signal.SIGKILL)
        killed += os.WIFSIGNALED(os.waitpid(pid, 0)[1])
    out = {"killed": killed}
elif mode == "race":
    procs = int(sys.argv[4])
    failed = 0
    for r in range(trials):
        url = f"file://{base}/r{r}"
        gate_r, gate_w = os.pipe()
        def child(p):
            os.close(gate_w)
            os.read(gate_r, 1)  # returns for every child at once, when the gate closes
            secretkit.open(url).put(f"proc/{p}", f"v{p}")
        pids = [fork(lambda p=p: child(p)) for p in range(procs)]
        os.close(gate_r)
        time.sleep(0.01)
        os.close(gate_w)
        failed += sum(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0 for pid in pids)
    out = {"failed": failed}
elif mode == "kill-writer":
    url = f"file://{base}/w"
    store = secretkit.open(url)
    store.put("doomed", "doomed-plaintext-41f3")
    store.put("pad", "x" * 200_000)  # a large store widens the window a kill lands in a write
    start = time.perf_counter()
    store.put("n", "0")
    span = time.perf_counter() - start
    def writer():
        s = secretkit.open(url)
        for i in range(1000):
            s.put("n", str(i))
    killed = 0
    for i in range(trials):
        pid = fork(writer)
        time.sleep(random.uniform(0, 10 * span))
        os.kill(pid, signal.SIGKILL)
        killed += os.WIFSIGNALED(os.waitpid(pid, 0)[1])
    out = {"killed": killed}
print(json.dumps(out))
"""


def _forker(mode: str, base: Path, trials: int, *extra: str) -> tuple[dict[str, int], str]:
    """Run FORKER; its counts, and what the trials wrote to stderr."""
    done = subprocess.run(
        [sys.executable, "-c", FORKER, mode, str(base), str(trials), *extra],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), done.stderr


def _key_files(tmp_path: Path, store: Path) -> list[Path]:
    """Every file that holds (or would hold) a key of ``store``: beside it, or in the key directory
    (a temporary there, or a key file that is not a whole record, counts whatever its store)."""
    found = [store / "key"] if (store / "key").exists() else []
    keys = tmp_path / "config" / "secretkit" / "keys"
    for path in keys.iterdir() if keys.is_dir() else []:
        try:
            mine = json.loads(path.read_text())["directory"] == str(store)
        except (ValueError, KeyError):
            mine = True
        if mine or path.suffix == ".tmp":
            found.append(path)
    return found


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_kill_9_during_first_open_never_leaves_an_unusable_store(tmp_path: Path) -> None:
    trials = 200
    result, _ = _forker("kill", tmp_path / "k", trials)
    assert result["killed"] > trials // 4  # the kills really landed mid-open, not after
    broken = []
    for i in range(trials):
        store = tmp_path / "k" / f"s{i}"
        for key in _key_files(tmp_path, store):
            text = key.read_text().strip()
            if key.suffix == ".tmp" or not text:
                broken.append(f"{key}: {len(text)} chars")
        try:
            opened = secretkit.open(store.as_uri())
            opened.put("b", "after")
            assert opened.get("b").text == "after"
        except secretkit.SecretError as exc:
            broken.append(f"{store}: {exc}")
    assert broken == [], f"{len(broken)} of {trials}: {broken[:5]}"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_concurrent_first_opens_all_succeed_with_one_key(tmp_path: Path) -> None:
    rounds, procs = 15, 8
    result, errors = _forker("race", tmp_path / "r", rounds, str(procs))
    assert result["failed"] == 0, f"{result['failed']} of {rounds * procs} opens failed: {errors[-2000:]}"
    for r in range(rounds):
        store = secretkit.open((tmp_path / "r" / f"r{r}").as_uri())
        assert [store.get(f"proc/{p}").text for p in range(procs)] == [f"v{p}" for p in range(procs)]
        assert len(_key_files(tmp_path, tmp_path / "r" / f"r{r}")) == 1


@pytest.mark.parametrize("unnamed", [True, False], ids=["o_tmpfile", "named-temporary"])
def test_publish_creates_whole_files_once_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unnamed: bool
) -> None:
    if unnamed and not disk.UNNAMED_TMP:
        pytest.skip("no O_TMPFILE here")
    monkeypatch.setattr(disk, "UNNAMED_TMP", unnamed)
    assert disk.publish(tmp_path / "k", b"first") is True
    assert disk.publish(tmp_path / "k", b"second") is False
    assert (tmp_path / "k").read_bytes() == b"first"
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_writers_killed_mid_write_leave_no_copy_of_a_purged_secret(tmp_path: Path) -> None:
    """Each temporary file is a whole encrypted copy of the store: a purged secret would live on in it."""
    result, _ = _forker("kill-writer", tmp_path, 150)
    assert result["killed"] > 50
    directory = tmp_path / "w"
    store = secretkit.open(directory.as_uri())  # opening removes what killed writers left
    assert [p.name for p in directory.iterdir() if p.name.endswith(".tmp")] == []
    store.delete("doomed", purge=True)
    driver = store.driver
    assert isinstance(driver, FileDriver)
    for f in directory.iterdir():
        if f.name not in ("store.lock", "key", "store.id"):
            assert "doomed" not in driver._decrypt(f.read_bytes()), f


def test_a_write_removes_temporaries_left_since_open(tmp_path: Path) -> None:
    store = secretkit.open((tmp_path / "s").as_uri())
    store.put("a", "v")
    leftover = tmp_path / "s" / ".store.deadbeef.tmp"
    leftover.write_bytes((tmp_path / "s" / "store.enc").read_bytes())
    store.put("b", "v")
    assert not leftover.exists()


needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")


@needs_root
def test_a_directory_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    secretkit.open(directory.as_uri()).put("a", PLAINTEXT)
    os.chown(directory, 4242, -1)
    with pytest.raises(secretkit.ConfigError, match=f"{directory}.*owned by uid 4242") as err:
        secretkit.open(directory.as_uri())
    assert PLAINTEXT not in str(err.value)


@needs_root
def test_a_key_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    planted = tmp_path / "planted.key"
    planted.write_text(new_key())
    os.chown(planted, 4242, -1)
    with pytest.raises(secretkit.ConfigError, match=f"{planted}.*owned by uid 4242"):
        secretkit.open((tmp_path / "s").as_uri(), key_file=str(planted))
    beside = tmp_path / "t" / "key"  # a key planted where older versions kept it
    beside.parent.mkdir(mode=0o700)
    beside.write_text(new_key())
    os.chown(beside, 4242, -1)
    with pytest.raises(secretkit.ConfigError, match=f"{beside}.*owned by uid 4242"):
        secretkit.open(beside.parent.as_uri())


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o707])
def test_a_directory_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    directory = tmp_path / "s"
    directory.mkdir()
    directory.chmod(mode)
    with pytest.raises(secretkit.ConfigError, match=f"{directory}.*writable by .*chmod go-w"):
        secretkit.open(directory.as_uri())
    assert list(directory.iterdir()) == []  # refused before anything was created in it


def test_a_key_file_writable_by_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    key_file.write_text(new_key())
    key_file.chmod(0o666)
    with pytest.raises(secretkit.ConfigError, match=f"{key_file}.*writable by group and others"):
        secretkit.open((tmp_path / "s").as_uri(), key_file=str(key_file))


@pytest.mark.parametrize("name", ["store.enc", "store.lock", "key"])
def test_symlinks_in_the_store_directory_are_refused(tmp_path: Path, name: str) -> None:
    directory = tmp_path / "s"
    directory.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"untouched")
    (directory / name).symlink_to(target)
    with pytest.raises(secretkit.ConfigError, match=f"{directory / name}.*symbolic link"):
        store = secretkit.open(directory.as_uri())
        store.put("a", "v")
        store.get("a")
    assert target.read_bytes() == b"untouched"


def test_a_copy_of_the_data_directory_decrypts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = tmp_path / "s"
    secretkit.open(original.as_uri()).put("db/password", PLAINTEXT)
    copy = tmp_path / "backup" / "s"
    shutil.copytree(original, copy)
    record = json.loads(_own_key_file(tmp_path).read_text())
    key = base64.urlsafe_b64decode(record["key"])
    for f in copy.rglob("*"):
        data = f.read_bytes()
        for secret in (PLAINTEXT.encode(), key, record["key"].encode(), base64.b64encode(key)):
            assert secret not in data, f
    # the same machine and user: the key is found by the store id, and refused for this path
    with pytest.raises(secretkit.AuthenticationError, match=f"belongs to another directory, {original}") as err:
        secretkit.open(copy.as_uri()).get("db/password")
    assert f"key_file={_own_key_file(tmp_path)}" in str(err.value)
    # another machine: no key at all
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "other-machine"))
    with pytest.raises(secretkit.AuthenticationError, match="key is missing"):
        secretkit.open(copy.as_uri()).get("db/password")
    # the owner can still open the copy by naming the key, as the error says
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert secretkit.open(copy.as_uri(), key_file=str(_own_key_file(tmp_path))).get("db/password").text == PLAINTEXT
    monkeypatch.setenv("SECRETKIT_FILE_KEY", _own_key_file(tmp_path).read_text())
    assert secretkit.open(copy.as_uri()).get("db/password").text == PLAINTEXT
    monkeypatch.setenv("SECRETKIT_FILE_KEY", record["key"])
    assert secretkit.open(copy.as_uri()).get("db/password").text == PLAINTEXT


def test_the_same_directory_by_another_spelling_is_the_same_store(tmp_path: Path) -> None:
    secretkit.open((tmp_path / "s").as_uri()).put("a", "v")
    (tmp_path / "link").symlink_to(tmp_path / "s")
    assert secretkit.open((tmp_path / "link").as_uri()).get("a").text == "v"
    assert secretkit.open(f"file://{tmp_path}/s/../s/").get("a").text == "v"


def _legacy_store(directory: Path) -> None:
    """A store as versions before the key left the directory made it: ``key`` beside ``store.enc``."""
    store = secretkit.open(directory.as_uri(), key_file=str(directory / "key"))
    store.put("a", "legacy-value")
    store.put("b", {"password": PLAINTEXT})
    assert sorted(f.name for f in directory.iterdir()) == ["key", "store.enc", "store.lock"]


def test_a_legacy_store_still_opens_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _legacy_store(tmp_path / "s")
    with caplog.at_level("WARNING", logger="secretkit.file"):
        store = secretkit.open((tmp_path / "s").as_uri())
        assert store.get("a").text == "legacy-value"
        store.put("c", "new")
    assert "keeps its key beside its data" in caplog.text and "migrate_legacy_key" in caplog.text
    assert secretkit.open((tmp_path / "s").as_uri()).get("c").text == "new"
    assert not (tmp_path / "s" / "store.id").exists()  # nothing moves without asking


def test_migrating_a_legacy_key_loses_nothing_and_the_copy_no_longer_decrypts(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    _legacy_store(directory)
    legacy = (directory / "key").read_text()
    where = file.migrate_legacy_key(directory, keyring=False)
    assert where == str(_own_key_file(tmp_path))
    assert sorted(f.name for f in directory.iterdir()) == ["store.enc", "store.id", "store.lock"]
    store = secretkit.open(directory.as_uri())
    assert (store.get("a").text, store.get("b")["password"]) == ("legacy-value", PLAINTEXT)
    assert _own_key_file(tmp_path).read_text().count(legacy.strip()) == 1  # the same key, not a re-encryption
    shutil.copytree(directory, tmp_path / "copy")
    with pytest.raises(secretkit.AuthenticationError, match="belongs to another directory"):
        secretkit.open((tmp_path / "copy").as_uri())
    with pytest.raises(secretkit.ConfigError, match="nothing to move"):
        file.migrate_legacy_key(directory)


def test_a_migration_interrupted_before_deleting_the_old_key_can_be_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "s"
    _legacy_store(directory)
    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", lambda self, missing_ok=False: (_ for _ in ()).throw(OSError(5, "crash")))
        with pytest.raises(OSError):
            file.migrate_legacy_key(directory, keyring=False)
    assert (directory / "key").exists() and (directory / "store.id").exists()
    assert secretkit.open(directory.as_uri()).get("a").text == "legacy-value"
    file.migrate_legacy_key(directory, keyring=False)
    assert not (directory / "key").exists()
    assert secretkit.open(directory.as_uri()).get("a").text == "legacy-value"


def test_migration_refuses_a_key_that_does_not_decrypt_the_store(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    _legacy_store(directory)
    (directory / "key").write_text(new_key())
    with pytest.raises(secretkit.AuthenticationError, match="wrong key"):
        file.migrate_legacy_key(directory)
    assert not (directory / "store.id").exists() and (directory / "key").exists()


def test_an_empty_key_an_older_version_left_does_not_lock_the_store_forever(tmp_path: Path) -> None:
    directory = tmp_path / "s"
    directory.mkdir(mode=0o700)
    (directory / "key").touch(mode=0o600)  # what a kill -9 during the first open used to leave
    store = secretkit.open(directory.as_uri())
    store.put("a", "v")
    assert not (directory / "key").exists()
    assert secretkit.open(directory.as_uri()).get("a").text == "v"


class MemoryKeyring:
    """Stands in for an OS keyring backend (the three calls the store makes)."""

    def __init__(self, fail_writes: bool = False) -> None:
        self.entries: dict[tuple[str, str], str] = {}
        self.fail_writes = fail_writes

    def set_password(self, service: str, user: str, password: str) -> None:
        if self.fail_writes:
            raise RuntimeError("the collection is locked")
        self.entries[service, user] = password

    def get_password(self, service: str, user: str) -> str | None:
        return self.entries.get((service, user))

    def delete_password(self, service: str, user: str) -> None:
        self.entries.pop((service, user), None)


def test_the_key_goes_to_the_os_keyring_when_there_is_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = MemoryKeyring()
    monkeypatch.setattr(keys, "os_keyring", lambda: ring)
    directory = tmp_path / "s"
    secretkit.open(directory.as_uri()).put("a", PLAINTEXT)
    store_id = (directory / "store.id").read_text().strip()
    assert json.loads(ring.entries["secretkit-file-store", store_id])["directory"] == str(directory)
    assert not (tmp_path / "config").exists()
    assert secretkit.open(directory.as_uri()).get("a").text == PLAINTEXT
    shutil.copytree(directory, tmp_path / "copy")
    with pytest.raises(secretkit.AuthenticationError, match="keyring get secretkit-file-store " + store_id):
        secretkit.open((tmp_path / "copy").as_uri())
    # keyring=false keeps a new store's key out of the keyring, and still finds the old ones' there
    secretkit.open((tmp_path / "t").as_uri(), keyring=False).put("a", "v")
    assert len(ring.entries) == 1 and len(list((tmp_path / "config" / "secretkit" / "keys").iterdir())) == 1
    with pytest.raises(secretkit.AuthenticationError, match="key is missing"):
        secretkit.open(directory.as_uri(), keyring=False)


def test_a_keyring_that_refuses_the_key_falls_back_to_the_key_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "os_keyring", lambda: MemoryKeyring(fail_writes=True))
    secretkit.open((tmp_path / "s").as_uri()).put("a", "v")
    assert json.loads(_own_key_file(tmp_path).read_text())["directory"] == str(tmp_path / "s")
    assert secretkit.open((tmp_path / "s").as_uri()).get("a").text == "v"


def test_which_keyring_backends_count_as_a_keyring() -> None:
    keyring = pytest.importorskip("keyring")
    from keyring.backend import KeyringBackend
    from keyring.backends import chainer, fail, null

    class Usable(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service: str, username: str) -> str | None:
            return None

        def set_password(self, service: str, username: str, password: str) -> None:
            pass

        def delete_password(self, service: str, username: str) -> None:
            pass

    before = keyring.get_keyring()
    try:
        for unusable in (fail.Keyring(), null.Keyring()):
            keyring.set_keyring(unusable)
            assert real_os_keyring() is None
        empty = chainer.ChainerBackend()
        if not empty.backends:  # on a desktop the chain holds the real keyrings
            keyring.set_keyring(empty)
            assert real_os_keyring() is None
        usable = Usable()
        keyring.set_keyring(usable)
        assert real_os_keyring() is usable
    finally:
        keyring.set_keyring(before)


@needs_root
def test_a_planted_key_in_the_key_directory_is_refused(tmp_path: Path) -> None:
    secretkit.open((tmp_path / "s").as_uri()).put("a", "v")
    os.chown(_own_key_file(tmp_path), 4242, -1)
    with pytest.raises(secretkit.ConfigError, match="owned by uid 4242"):
        secretkit.open((tmp_path / "s").as_uri())


def test_a_key_directory_writable_by_others_is_refused(tmp_path: Path) -> None:
    secretkit.open((tmp_path / "s").as_uri()).put("a", "v")
    _own_key_file(tmp_path).parent.chmod(0o777)
    with pytest.raises(secretkit.ConfigError, match="key directory .* writable by group and others"):
        secretkit.open((tmp_path / "s").as_uri())


@pytest.mark.parametrize("content", ["../../etc/passwd", "", "not hex at all"])
def test_a_store_id_that_is_not_one_is_refused(tmp_path: Path, content: str) -> None:
    directory = tmp_path / "s"
    directory.mkdir(mode=0o700)
    (directory / "store.id").write_text(content)
    with pytest.raises(secretkit.ConfigError, match="store id"):
        secretkit.open(directory.as_uri())




# -- a read never creates a store: only the first write does ------------------------------


def _read_everything(store: secretkit.SecretStore) -> None:
    """Every call that reads, each refused the way a missing secret is (list: nothing to list)."""
    with pytest.raises(secretkit.NotFoundError, match="no file store at .*the first write creates it"):
        store.get("x")
    with pytest.raises(secretkit.NotFoundError, match="no file store at"):
        store.versions("x")
    with pytest.raises(secretkit.NotFoundError, match="no file store at"):
        store.delete("x")
    store.delete("x", missing_ok=True)
    assert list(store.list()) == [] and store.exists("x") is False
    assert store.get_many(["x"]).errors["x"].code.value == "not_found"
    watcher = store.watch("x", lambda secret: None, interval=0.05)
    assert watcher.poll() is False
    watcher.stop()


def test_reading_a_store_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "typo"
    store = secretkit.open(typo.as_uri())
    _read_everything(store)
    assert not typo.exists()  # no directory, no lock file, no store id
    assert not (tmp_path / "config").exists()  # and no key made for it
    with pytest.raises(secretkit.NotFoundError, match=str(typo)):
        secretkit.open(typo.as_uri()).get("x")
    assert not typo.exists()


def test_reading_an_empty_directory_leaves_it_empty(tmp_path: Path) -> None:
    directory = tmp_path / "empty"
    directory.mkdir(mode=0o700)
    _read_everything(secretkit.open(directory.as_uri()))
    assert list(directory.iterdir()) == [] and not (tmp_path / "config").exists()


def test_the_first_write_creates_the_store_and_other_openers_see_it(tmp_path: Path) -> None:
    url = (tmp_path / "s").as_uri()
    reader = secretkit.open(url)  # opened before the store exists
    writer = secretkit.open(url)
    with pytest.raises(secretkit.NotFoundError, match="no file store"):
        reader.get("a")
    writer.put("a", "v")
    assert sorted(f.name for f in (tmp_path / "s").iterdir()) == ["store.enc", "store.id", "store.lock"]
    assert reader.get("a").text == "v"  # the key the writer made is found
    with pytest.raises(secretkit.NotFoundError, match="secret not found"):
        reader.get("b")
    assert list(reader.list()) == ["a"]


def test_a_new_store_with_a_key_file_option_makes_the_key_at_the_first_write(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "k"
    store = secretkit.open((tmp_path / "s").as_uri(), key_file=str(key_file))
    with pytest.raises(secretkit.NotFoundError, match="no file store"):
        store.get("a")
    assert not key_file.exists() and not key_file.parent.exists() and not (tmp_path / "s").exists()
    store.put("a", "v")
    assert key_file.exists()
    assert secretkit.open((tmp_path / "s").as_uri(), key_file=str(key_file)).get("a").text == "v"


def test_a_store_made_while_a_reader_opens_it_is_not_called_keyless(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader's open looks for the key without the store lock: a first write that completes
    between its look for the store id and its look for data must not read as "data, no key"."""
    url = (tmp_path / "s").as_uri()
    real = keys._read_store_id

    def a_writer_finishes_meanwhile(directory: Path) -> str | None:
        found = real(directory)
        monkeypatch.setattr(keys, "_read_store_id", real)
        secretkit.open(url).put("a", "v")
        return found

    monkeypatch.setattr(keys, "_read_store_id", a_writer_finishes_meanwhile)
    assert secretkit.open(url).get("a").text == "v"
