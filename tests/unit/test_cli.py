"""The command line, run as a user would: a subprocess with stdin and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    env.pop("SECRETKIT_URL", None)
    env.pop("SECRETKIT_FILE_KEY", None)

    def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "secretkit", *args], input=stdin, capture_output=True, env=env)

    return run


def test_put_get_ls_versions_rm_on_default_store(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    put = run("put", "app/db-password", stdin=b"hunter2\n")
    assert put.returncode == 0, put.stderr
    assert str(tmp_path / "data" / "secretkit" / "store") in put.stderr.decode()  # says which store
    assert run("get", "app/db-password").stdout == b"hunter2\n"
    assert run("get", "--raw", "app/db-password").stdout == b"hunter2"
    assert run("put", "app/blob", "--binary", stdin=b"\x00\xff\n").returncode == 0
    assert run("get", "--raw", "app/blob").stdout == b"\x00\xff\n"
    assert run("put", "app/db", "--fields", stdin=b'{"user": "u", "password": "p"}').returncode == 0
    assert run("get", "app/db", "--field", "user").stdout == b"u\n"
    assert run("-q", "ls", "app/").stdout == b"app/blob\napp/db\napp/db-password\n"
    run("put", "app/db-password", stdin=b"second")
    versions = run("versions", "app/db-password").stdout.decode().splitlines()
    assert [line.split("\t")[0] for line in versions] == ["2", "1"]
    assert run("rm", "app/db-password").returncode == 0
    missing = run("get", "app/db-password")
    assert missing.returncode == 1 and b"not found" in missing.stderr


def test_exit_codes(run) -> None:  # type: ignore[no-untyped-def]
    assert run("get", "bad//name").returncode == 2
    assert run("rm", "never/was").returncode == 1
    assert run("rm", "-f", "never/was").returncode == 0
    assert run("put", "x", stdin=b"1").returncode == 0
    assert run("put", "x", "--create", stdin=b"2").returncode == 3
    assert run("put", "x", "--if-version", "9", stdin=b"2").returncode == 3
    assert run("put", "x", "--fields", stdin=b"[1]").returncode == 2
    assert run("--url", "nosuch://", "ls").returncode == 6
    assert run("get").returncode == 2  # argparse usage error


def test_debug_logging_never_prints_values(run) -> None:  # type: ignore[no-untyped-def]
    run("put", "k", stdin=b"value-that-must-not-show")
    out = run("--debug", "get", "--raw", "k")
    assert out.stdout == b"value-that-must-not-show"
    assert b"value-that-must-not-show" not in out.stderr
    assert b"get k on file: ok" in out.stderr


def test_rotate(run) -> None:  # type: ignore[no-untyped-def]
    run("put", "db/password", stdin=b"original")
    young = run("rotate", "db/password", "--if-older-than", "30d")
    assert young.returncode == 0 and b"not rotated" in young.stderr
    assert run("get", "--raw", "db/password").stdout == b"original"
    done = run("rotate", "db/password", "--length", "40")
    assert done.returncode == 0, done.stderr
    new = run("get", "--raw", "db/password").stdout
    assert len(new) == 40 and new != b"original"
    assert new not in done.stderr + done.stdout  # the generated value is never printed
    assert run("rotate", "db/password", "--if-older-than", "soon").returncode == 2
