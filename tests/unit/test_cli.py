"""The command line, run as a user would: a subprocess with stdin and exit codes."""

from __future__ import annotations

import os
import re
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


# -- the newcomer fixes --------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]):  # type: ignore[no-untyped-def]
    """``main()`` in this process (fast), with the same environment and results as ``run``."""
    import io

    from secretkit.cli import main

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("SECRETKIT_URL", raising=False)
    monkeypatch.delenv("SECRETKIT_FILE_KEY", raising=False)

    def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        out, err = capsysbinary.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    return cli


def test_version(run) -> None:  # type: ignore[no-untyped-def]
    import secretkit

    done = run("--version")
    assert done.returncode == 0 and done.stdout.decode().strip() == f"secretkit {secretkit.__version__}"


def test_rotate_says_why_a_length_is_refused(cli) -> None:  # type: ignore[no-untyped-def]
    cli("put", "db/password", stdin=b"original")
    done = cli("rotate", "db/password", "--length", "4")
    assert done.returncode == 2
    assert b"at least 8 characters (got 4)" in done.stderr and b"ValueError" not in done.stderr
    assert cli("get", "--raw", "db/password").stdout == b"original"


def test_rotate_prints_durations_for_humans(cli) -> None:  # type: ignore[no-untyped-def]
    cli("put", "db/password", stdin=b"original")
    assert b"younger than 30 days; not rotated" in cli("rotate", "db/password", "--if-older-than", "30d").stderr
    assert b"younger than 1 hour 30 minutes;" in cli("rotate", "db/password", "--if-older-than", "90m").stderr
    assert b"younger than 2 weeks" not in cli("rotate", "db/password", "--if-older-than", "2w").stderr
    assert b"younger than 14 days;" in cli("rotate", "db/password", "--if-older-than", "2w").stderr


def test_rotate_one_field_and_refuse_a_multi_field_secret_without_field(cli) -> None:  # type: ignore[no-untyped-def]
    cli("put", "db", "--fields", stdin=b'{"user": "app", "password": "old", "host": "h"}')
    refused = cli("rotate", "db")
    assert refused.returncode == 2  # the InvalidArgumentError code in docs/cli.md
    assert b"--field" in refused.stderr
    assert cli("-q", "get", "db").stdout == b'{"host":"h","password":"old","user":"app"}\n'  # unchanged
    assert cli("-q", "versions", "db").stdout.count(b"\n") == 1  # nothing written, not even a pending version

    done = cli("rotate", "db", "--field", "password", "--length", "20")
    assert done.returncode == 0, done.stderr
    assert b"rotated db#password" in done.stderr
    new = cli("get", "db", "--field", "password", "--raw").stdout
    assert len(new) == 20 and new not in done.stdout + done.stderr
    assert cli("get", "db", "--field", "user").stdout == b"app\n"  # the other fields kept
    assert cli("get", "db", "--field", "password", "--raw").stdout == new
    assert cli("rotate", "db", "--field", "nope").returncode == 1


def test_get_prints_fields_the_same_with_and_without_json(cli) -> None:  # type: ignore[no-untyped-def]
    cli("put", "db", "--fields", stdin='{"user": "app", "password": "pä", "a": "1"}'.encode())
    plain, as_json = cli("-q", "get", "db").stdout, cli("-q", "get", "db", "--json").stdout
    assert plain == as_json == '{"a":"1","password":"pä","user":"app"}\n'.encode()
    cli("put", "one", "--fields", stdin=b'{"only": "v"}')
    assert cli("-q", "get", "one").stdout == cli("-q", "get", "one", "--json").stdout == b'{"only":"v"}\n'
    cli("put", "text", stdin=b"plain")
    assert cli("-q", "get", "text").stdout == b"plain\n"
    assert cli("-q", "get", "text", "--json").stdout == b'"plain"\n'
    cli("put", "jsontext", stdin=b'{"port": 5432, "b": "x"}')  # JSON text, as AWS tools write fields
    assert cli("-q", "get", "jsontext").stdout == b'{"port": 5432, "b": "x"}\n'  # the text, exactly
    assert cli("-q", "get", "jsontext", "--json").stdout == b'{"b":"x","port":5432}\n'  # canonical, types kept
    assert cli("-q", "get", "jsontext", "--field", "port").stdout == b"5432\n"


def test_get_json_of_octets_suggests_raw(cli) -> None:  # type: ignore[no-untyped-def]
    cli("put", "blob", "--binary", stdin=b"\x00\xff")
    done = cli("get", "blob", "--json")
    assert done.returncode == 2
    assert b"--raw" in done.stderr and b".bytes" not in done.stderr
    assert cli("get", "blob").stdout == b"\x00\xff\n"


def test_get_field_errors_use_the_documented_codes(cli) -> None:  # type: ignore[no-untyped-def]
    cli("put", "text", stdin=b"plain")
    cli("put", "db", "--fields", stdin=b'{"user": "app"}')
    no_fields = cli("get", "text", "--field", "user")
    assert no_fields.returncode == 2 and b"without fields" in no_fields.stderr
    missing = cli("get", "db", "--field", "password")
    assert missing.returncode == 1 and b"no field 'password'" in missing.stderr
    assert b"Traceback" not in no_fields.stderr + missing.stderr


def test_invalid_input_says_why_without_quoting_it(cli) -> None:  # type: ignore[no-untyped-def]
    bad_json = cli("put", "x", "--fields", stdin=b'{"user": "app", "password": s3cr3t-value}')
    assert bad_json.returncode == 2
    assert b"not JSON" in bad_json.stderr and b"s3cr3t-value" not in bad_json.stderr
    not_text = cli("put", "x", stdin=b"\xffs3cr3t-value")
    assert not_text.returncode == 2
    assert b"--binary" in not_text.stderr and b"s3cr3t" not in not_text.stderr and b"0xff" not in not_text.stderr
    not_an_object = cli("put", "x", "--fields", stdin=b'["s3cr3t-value"]')
    assert not_an_object.returncode == 2 and b"expects a JSON object" in not_an_object.stderr
    assert b"s3cr3t" not in not_an_object.stderr


def test_put_on_memory_warns_that_nothing_persists(run) -> None:  # type: ignore[no-untyped-def]
    done = run("--url", "memory://", "put", "x", stdin=b"v")
    assert done.returncode == 0
    assert b"warning: memory:// keeps nothing" in done.stderr
    assert b"warning" not in run("put", "x", stdin=b"v").stderr  # the file store keeps it


def test_the_default_store_is_named_and_documented(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = run("ls")
    assert done.stderr.decode().startswith(f"secretkit: using {(tmp_path / 'data' / 'secretkit' / 'store').as_uri()}")
    doc = (ROOT / "docs" / "cli.md").read_text()
    assert "$SECRETKIT_URL" in doc and "user data" in doc
    assert "SECRETKIT_URL is not set" in doc and "raises `ConfigError`" not in doc  # open() uses it too


def test_a_value_typed_at_a_terminal_is_not_echoed(tmp_path: Path) -> None:
    pty = pytest.importorskip("pty")
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PYTHONPATH": str(ROOT)}
    env.pop("SECRETKIT_URL", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pty is its controlling terminal and its stdin
        os.execve(sys.executable, [sys.executable, "-m", "secretkit", "put", "typed/secret"], env)
    seen = b""

    def read_until(marker: bytes) -> None:
        nonlocal seen
        import select
        import time

        deadline = time.monotonic() + 20
        while marker not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(fd, 1024)
                except OSError:
                    return

    read_until(b"(not echoed): ")  # echo is off once the prompt shows
    os.write(fd, b"typed-s3cr3t\n")
    read_until(b"stored typed/secret")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"typed-s3cr3t" not in seen
    stored = subprocess.run([sys.executable, "-m", "secretkit", "-q", "get", "--raw", "typed/secret"], env=env,
                            capture_output=True, check=True)
    assert stored.stdout == b"typed-s3cr3t"


# -- docs/cli.md: the exit-code table is the source of truth, the examples run ---------


def exit_code_table() -> dict[str, int]:
    doc = (ROOT / "docs" / "cli.md").read_text()
    table = doc[doc.index("## Exit codes"):].split("`secretkit run` adds")[0]
    mapping: dict[str, int] = {}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            for code in (c.strip(" `") for c in cells[2].split(",") if c.strip()):
                mapping[code] = int(cells[0])
    return mapping


def test_the_exit_code_table_in_docs_matches_the_cli() -> None:
    from secretkit.cli import EXIT_CODES, OTHER
    from secretkit.errors import ErrorCode

    documented = exit_code_table()
    assert set(documented) == {code.value for code in ErrorCode}  # every code, exactly once
    assert {code.value: EXIT_CODES.get(code, OTHER) for code in ErrorCode} == documented


def test_docs_cli_md_shell_examples_run_as_written(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", doc, flags=re.DOTALL)
    assert any("--env-file" in b for b in blocks)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "secretkit"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m secretkit "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("SECRETKIT_URL", None)
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(blocks)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        '{"host":"db.internal","password":"s3cr3t","port":"5432","user":"app"}', "app", "old-token",
        "connecting to db.internal as app",
    ]


# -- issue 21: a read never creates a store, the default store says so, parsing paper cuts --


def test_a_read_of_a_mistyped_store_creates_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    typo = tmp_path / "typo"
    for args in (["get", "x"], ["versions", "x"], ["rm", "x"], ["ls"], ["rm", "-f", "x"]):
        done = cli("--url", typo.as_uri(), *args)
        if args[0] in ("get", "versions") or args == ["rm", "x"]:
            assert done.returncode == 1, (args, done.stderr)
            assert f"no file store at {typo}".encode() in done.stderr
        else:
            assert done.returncode == 0, (args, done.stderr)
        assert not typo.exists(), args
    assert not (tmp_path / "home").exists() and not (tmp_path / "data").exists()  # no key made either
    assert cli("--url", typo.as_uri(), "put", "x", stdin=b"v").returncode == 0  # the first write creates it
    assert cli("--url", typo.as_uri(), "-q", "get", "x").stdout == b"v\n"


def test_global_options_work_after_the_subcommand(cli, run) -> None:  # type: ignore[no-untyped-def]
    import uuid

    url = f"memory://cli-{uuid.uuid4().hex}"  # named: every main() of this process shares it
    assert cli("put", "x", "--url", url, stdin=b"v").returncode == 0
    done = cli("get", "x", "--url", url, "-q")
    assert (done.returncode, done.stdout, done.stderr) == (0, b"v\n", b"")
    assert cli("ls", "--quiet", "--url", url).stdout == b"x\n"
    assert cli("-q", "get", "x", "--url", url).stdout == b"v\n"  # before and after mix
    assert cli("--url", url, "get", "x", "-q").stdout == b"v\n"
    run("put", "k", stdin=b"value-that-must-not-show")
    debug = run("get", "--raw", "k", "--debug")
    assert debug.stdout == b"value-that-must-not-show" and b"get k on file: ok" in debug.stderr
    assert b"value-that-must-not-show" not in debug.stderr
    # after `run`'s `--`, an option belongs to the command, not to secretkit
    ran = cli("run", "--url", url, "-q", "--env", "X=x", "--", sys.executable, "-c",
              "import os, sys; sys.exit(0 if os.environ['X'] == 'v' and sys.argv[1:] == ['--url', 'y'] else 9)",
              "--url", "y")
    assert ran.returncode == 0, ran.stderr


def test_get_at_a_version_and_get_version_is_refused_with_the_new_name(cli, run) -> None:  # type: ignore[no-untyped-def]
    cli("put", "x", stdin=b"one")
    cli("put", "x", stdin=b"two")
    assert cli("-q", "get", "x", "--at", "1").stdout == b"one\n"
    assert cli("-q", "get", "--at", "2", "x").stdout == b"two\n"
    assert cli("get", "x", "--at", "9").returncode == 1
    old = cli("get", "x", "--version", "1")
    assert old.returncode == 2 and b"--at" in old.stderr and old.stdout == b""
    assert run("get", "x", "--version").returncode == 2
    import secretkit

    assert run("--version").stdout.decode().strip() == f"secretkit {secretkit.__version__}"


def test_get_stage(cli) -> None:  # type: ignore[no-untyped-def]
    cli("put", "x", stdin=b"one")
    cli("put", "x", stdin=b"two")
    assert cli("-q", "get", "x", "--stage", "previous").stdout == b"one\n"
    assert cli("-q", "get", "x", "--stage", "current").stdout == b"two\n"
    assert cli("-q", "get", "x", "--stage", "pending").returncode == 1  # no rotation under way
    assert cli("get", "x", "--stage", "older").returncode == 2
    assert cli("get", "x", "--stage", "previous", "--at", "1").returncode == 2  # one or the other
    cli("rotate", "x")
    assert cli("-q", "get", "x", "--stage", "previous").stdout == b"two\n"


def test_rm_several_names(cli) -> None:  # type: ignore[no-untyped-def]
    for name in ("a", "b", "c", "d"):
        cli("put", name, stdin=b"v")
    assert cli("rm", "a", "b").returncode == 0
    assert cli("-q", "ls").stdout == b"c\nd\n"
    bad = cli("rm", "c", "bad//name", "also//bad")
    assert bad.returncode == 2  # every name is checked before anything is deleted
    assert b"'bad//name'" in bad.stderr and b"'also//bad'" in bad.stderr
    assert cli("-q", "ls").stdout == b"c\nd\n"
    partly = cli("rm", "c", "never", "d", "gone")
    assert partly.returncode == 1  # the first failure's code; the others are still deleted
    assert b"'never'" in partly.stderr and b"'gone'" in partly.stderr
    assert cli("-q", "ls").stdout == b""
    assert cli("rm", "-f", "never", "gone").returncode == 0


def test_put_fields_reads_json_values_as_the_library_does(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import secretkit

    doc = b'{"port": 5432, "ratio": 0.5, "tls": true, "proxy": null, "tags": ["a"], "user": "app"}'
    assert cli("put", "typed", "--fields", stdin=doc).returncode == 0
    cli("put", "as-text", stdin=doc)  # the same JSON stored as text, as AWS tools write fields
    for field, shown in (("port", b"5432"), ("ratio", b"0.5"), ("tls", b"true"), ("proxy", b"null"),
                         ("tags", b'["a"]'), ("user", b"app")):
        assert cli("-q", "get", "typed", "--field", field).stdout == shown + b"\n"
        assert cli("-q", "get", "as-text", "--field", field).stdout == shown + b"\n"
    store = secretkit.open((tmp_path / "data" / "secretkit" / "store").as_uri())
    assert store.get("typed").fields == store.get("as-text").fields
    assert cli("put", "x", "--fields", stdin=b'["not", "an", "object"]').returncode == 2


def test_put_refuses_empty_input_unless_allowed(cli) -> None:  # type: ignore[no-untyped-def]
    for args, stdin in ((["put", "x"], b""), (["put", "x"], b"\n"), (["put", "x", "--binary"], b""),
                        (["put", "x", "--fields"], b"")):
        refused = cli(*args, stdin=stdin)
        assert refused.returncode == 2, args
        assert b"empty" in refused.stderr and b"--allow-empty" in refused.stderr
    assert cli("get", "x").returncode == 1  # nothing was stored
    assert cli("put", "x", "--allow-empty").returncode == 0
    assert cli("-q", "get", "x", "--raw").stdout == b""
    assert cli("put", "y", "--binary", "--allow-empty").returncode == 0


def test_not_found_in_the_default_store_says_why_that_store(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("put", "other", stdin=b"v")
    missing = run("-q", "get", "nope")
    assert missing.returncode == 1
    assert b"default store" in missing.stderr and b"SECRETKIT_URL is not set" in missing.stderr
    named = run("-q", "--url", (tmp_path / "data" / "secretkit" / "store").as_uri(), "get", "nope")
    assert named.returncode == 1 and b"SECRETKIT_URL" not in named.stderr
