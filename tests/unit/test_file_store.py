"""file:// specifics: encryption at rest, keys, atomic writes, several processes at once."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import secretkit
from secretkit.drivers.file import new_key

PLAINTEXT = "plaintext-marker-7d2e"


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRETKIT_FILE_KEY", raising=False)


def test_nothing_plaintext_on_disk_and_key_file_is_private(tmp_path: Path) -> None:
    store = secretkit.open((tmp_path / "s").as_uri())
    store.put("db/password", PLAINTEXT)
    store.put("db/fields", {"password": PLAINTEXT})
    for f in (tmp_path / "s").iterdir():
        assert PLAINTEXT.encode() not in f.read_bytes(), f
        assert b"db/password" not in f.read_bytes() or f.name == "key"
    key_mode = stat.S_IMODE((tmp_path / "s" / "key").stat().st_mode)
    assert key_mode == 0o600
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
    (tmp_path / "s" / "key").unlink()
    with pytest.raises(secretkit.AuthenticationError, match="key is missing"):
        secretkit.open(url)
    assert not (tmp_path / "s" / "key").exists()


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

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(secretkit.UnavailableError):
        store.put("a", "lost")
    monkeypatch.undo()
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
    ["/dev/null/x", "{tmp}/a-file", "{tmp}/a-file/below", "{tmp}/nul\0byte", "~no-such-user-7c1/store", "{tmp}/" + "n" * 300],
    ids=["under-a-device", "a-regular-file", "under-a-regular-file", "nul-byte", "unknown-user-home", "name-too-long"],
)
def test_every_bad_path_is_a_config_error(tmp_path: Path, path: str) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(secretkit.ConfigError, match="file store"):
        secretkit.open("file://" + path.format(tmp=tmp_path))
    assert (tmp_path / "a-file").read_text() == "not a directory"
