"""``secretkit run``: env files, resolution before start, real child processes, signals, exit codes, --watch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import secretkit
from secretkit.errors import InvalidArgumentError
from secretkit.references import Reference
from secretkit.run import Binding, bindings_from, exit_status, parse_binding, parse_env_file
from secretkit.store import SecretStore

ROOT = Path(__file__).resolve().parents[2]
CANARY = "canary-run-51c0e2-never-in-our-output"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and exit statuses")


# -- env files -----------------------------------------------------------------------


def test_env_file_lines_comments_and_spaces(tmp_path: Path) -> None:
    env = tmp_path / "app.env"
    env.write_text(textwrap.dedent("""\
        # references only

        DB_PASSWORD=payments/db#password
          API_KEY = payments/api-key
        \t# indented comment
        _PRIVATE_1=odd#name#field
        """))
    assert parse_env_file(env) == [
        Binding("DB_PASSWORD", Reference("payments/db", "password"), f"{env}:3"),
        Binding("API_KEY", Reference("payments/api-key"), f"{env}:4"),
        Binding("_PRIVATE_1", Reference("odd#name", "field"), f"{env}:6"),
    ]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("DB_PASSWORD", "expected VAR=REFERENCE"),
        ("DB_PASSWORD=", "expected VAR=REFERENCE"),
        ("1ABC=payments/db", "not an environment variable name"),
        ("export X=payments/db", "not an environment variable name"),
        ("X=payments/db#", "no field name"),
        ("X=#password", "no secret name"),
    ],
)
def test_a_malformed_line_names_the_file_and_line(tmp_path: Path, line: str, says: str) -> None:
    env = tmp_path / "bad.env"
    env.write_text(f"# ok\n{line}\n")
    with pytest.raises(InvalidArgumentError, match=says) as caught:
        parse_env_file(env)
    assert f"{env}:2" in str(caught.value)


def test_a_variable_set_twice_in_one_file_is_an_error(tmp_path: Path) -> None:
    env = tmp_path / "twice.env"
    env.write_text("A=x\nA=y\n")
    with pytest.raises(InvalidArgumentError, match=f"A is already set at {env}:1"):
        parse_env_file(env)


def test_later_settings_replace_earlier_ones(tmp_path: Path) -> None:
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    first.write_text("A=one\nB=two\n")
    second.write_text("B=three\n")
    bindings = bindings_from([str(first), str(second)], ["A=four"])
    assert {b.var: str(b.reference) for b in bindings} == {"A": "four", "B": "three"}


def test_an_unreadable_env_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot read env file"):
        parse_env_file(tmp_path / "missing.env")
    (tmp_path / "bin.env").write_bytes(b"A=\xff\n")
    with pytest.raises(InvalidArgumentError, match="not UTF-8"):
        parse_env_file(tmp_path / "bin.env")


def test_parse_binding_and_exit_status() -> None:
    assert parse_binding("A = x#y") == Binding("A", Reference("x", "y"), "--env")
    assert [exit_status(0), exit_status(3), exit_status(-signal.SIGTERM), exit_status(-signal.SIGKILL)] == [
        0, 3, 143, 137,
    ]


# -- real child processes through the command line -----------------------------------


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = (tmp_path / "store").as_uri()
    with secretkit.open(url) as store:
        store.put("app/db", {"user": "app", "password": CANARY})
        store.put("app/token", "tok-" + CANARY)
        store.put("app/plain", "plain text")
    yield url


@pytest.fixture
def store(url: str) -> Iterator[SecretStore]:
    with secretkit.open(url) as s:
        yield s


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETKIT_")}
    env.update(PYTHONPATH=str(ROOT), HOME=str(tmp_path / "home"), XDG_DATA_HOME=str(tmp_path / "data"))
    return env


def secretkit_cmd(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "secretkit", "--url", url, *args]


@pytest.fixture
def run(url: str, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(secretkit_cmd(url, *args), env=cli_env(tmp_path), capture_output=True, text=True,
                              timeout=timeout, cwd=tmp_path, check=False)

    return run


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


CHECK_ENV = """\
    import os, sys
    expected = {"DB_PASSWORD": open(sys.argv[1]).read(), "DB_USER": "app"}
    for var, value in expected.items():
        if os.environ.get(var) != value:
            sys.exit(10)
    own = open("/proc/self/cmdline", "rb").read() if os.path.exists("/proc/self/cmdline") else b""
    parent = open(f"/proc/{os.getppid()}/cmdline", "rb").read() if os.path.exists("/proc/self/cmdline") else b""
    if os.environ["DB_PASSWORD"].encode() in own + parent:
        sys.exit(11)  # a value in argv: ours or our parent's
    sys.exit(int(sys.argv[2]))
"""


def test_env_shows_the_values_to_the_command_only(run: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    done = run("--debug", "run", "--env", "DB_PASSWORD=app/db#password", "--env", "TOKEN=app/token", "--", "env")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()  # the command's own output
    assert f"DB_PASSWORD={CANARY}" in lines and f"TOKEN=tok-{CANARY}" in lines
    assert CANARY not in done.stderr  # ours, with --debug on
    assert "get_many" in done.stderr or "get app/" in done.stderr  # --debug did log the reads


def test_a_script_checks_its_environment_and_its_exit_code_is_ours(
    run: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    check = script(tmp_path, "check.py", CHECK_ENV)
    env_file = tmp_path / "app.env"
    env_file.write_text("# no secret here\nDB_PASSWORD=app/db#password\nDB_USER=app/db#user\n")
    expected = tmp_path / "expected"  # what the script must find in its environment (never in any argv)
    expected.write_text(CANARY)
    for code in (0, 3, 42):
        done = run("--debug", "run", "--env-file", str(env_file), "--", sys.executable, check, str(expected), str(code))
        assert done.returncode == code, done.stderr
        assert CANARY not in done.stderr


def test_the_canary_never_appears_in_our_output(run: Callable[..., subprocess.CompletedProcess[str]],
                                               tmp_path: Path) -> None:
    quiet = script(tmp_path, "quiet.py", """\
        import os, sys
        sys.exit(0 if os.environ["S"].startswith("tok-") else 1)
    """)
    done = run("--debug", "run", "--env", "S=app/token", "--", sys.executable, quiet)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert CANARY not in done.stderr and "secretkit: using" in done.stderr


@pytest.mark.parametrize(
    ("binding", "code", "says"),
    [
        ("X=app/missing", 1, "cannot resolve X=app/missing (--env): secret not found"),
        ("X=app/db#nope", 1, "cannot resolve X=app/db#nope (--env): the secret has no field 'nope'"),
        ("X=app/plain#password", 2, "without fields"),
        ("X=app/db#", 2, "no field name"),
        ("X=bad//name", 2, "X=bad//name"),
        ("X", 2, "expected VAR=REFERENCE"),
    ],
)
def test_a_reference_that_cannot_be_resolved_stops_before_the_command(
    run: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, binding: str, code: int, says: str
) -> None:
    marker = tmp_path / "started"
    done = run("run", "--env", "OK=app/token", "--env", binding, "--", "touch", str(marker))
    assert done.returncode == code, done.stderr
    assert says in done.stderr
    assert not marker.exists()  # the command never started
    assert CANARY not in done.stderr + done.stdout


def test_the_exit_codes_follow_docs_cli_md(run: Callable[..., subprocess.CompletedProcess[str]],
                                           tmp_path: Path) -> None:
    assert run("run", "--env", "X=app/token", "--", "no-such-command-anywhere").returncode == 127
    not_executable = tmp_path / "plain.txt"
    not_executable.write_text("#!/bin/sh\n")
    assert run("run", "--", str(not_executable)).returncode == 126
    assert run("run", "--env", "X=app/token").returncode == 2  # no command
    assert run("run", "--env-file", str(tmp_path / "absent.env"), "--", "true").returncode == 2
    assert run("run", "--", "sh", "-c", "kill -TERM $$").returncode == 128 + signal.SIGTERM
    assert run("run", "--", "sh", "-c", "kill -KILL $$").returncode == 128 + signal.SIGKILL
    assert run("--url", "nosuch://", "run", "--", "true").returncode == 6


# -- signals -------------------------------------------------------------------------


SIGNAL_SCRIPT = """\
    import os, signal, sys, time
    log = sys.argv[1]
    def note(signum, frame):
        with open(log, "a") as f:
            f.write(signal.Signals(signum).name + "\\n")
        if signum == signal.SIGTERM:
            sys.exit(7)
    for name in ("SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGTERM"):
        signal.signal(getattr(signal, name), note)
    with open(log, "a") as f:
        f.write("ready " + os.environ["S"][:4] + "\\n")
    while True:
        time.sleep(0.05)
"""


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def start(url: str, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    # a session of its own: no controlling terminal, so every signal we send is one to forward
    return subprocess.Popen(secretkit_cmd(url, "-q", *args), env=cli_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=tmp_path)


def test_signals_are_forwarded_and_the_exit_code_comes_back(url: str, tmp_path: Path) -> None:
    log = tmp_path / "signals.log"
    child = script(tmp_path, "sig.py", SIGNAL_SCRIPT)
    proc = start(url, tmp_path, "--debug", "run", "--env", "S=app/token", "--", sys.executable, child, str(log))
    try:
        wait_for(lambda: "ready tok-" in lines(log))
        for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT):
            proc.send_signal(sig)
            wait_for(lambda sig=sig: sig.name in lines(log))  # type: ignore[misc]
        proc.send_signal(signal.SIGTERM)  # the command exits 7 from its handler
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 7
    assert lines(log) == ["ready tok-", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGTERM"]
    assert CANARY not in out + err


def test_sigint_is_forwarded_and_death_by_signal_is_128_plus_n(url: str, tmp_path: Path) -> None:
    log = tmp_path / "int.log"
    child = script(tmp_path, "int.py", """\
        import sys, time
        open(sys.argv[1], "w").write("ready\\n")
        time.sleep(60)
    """)
    proc = start(url, tmp_path, "run", "--env", "S=app/token", "--", sys.executable, child, str(log))
    try:
        wait_for(lambda: lines(log) == ["ready"])
        proc.send_signal(signal.SIGINT)  # Python dies of SIGINT when KeyboardInterrupt is not caught
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGINT


# -- --watch -------------------------------------------------------------------------


WATCHED = """\
    import os, signal, sys, time
    log = sys.argv[1]
    def note(line):
        with open(log, "a") as f:
            f.write(line + "\\n")
    signal.signal(signal.SIGHUP, lambda *_: note("HUP " + os.environ["V"]))
    note("start " + os.environ["V"])
    while True:
        time.sleep(0.05)
"""


def test_watch_restarts_the_command_with_the_new_value(url: str, store: SecretStore, tmp_path: Path) -> None:
    store.put("app/watched", "one")
    log = tmp_path / "watch.log"
    child = script(tmp_path, "watched.py", WATCHED)
    proc = start(url, tmp_path, "run", "--watch", "--watch-interval", "0.1", "--stop-timeout", "5",
                 "--env", "V=app/watched", "--env", "T=app/token", "--", sys.executable, child, str(log))
    try:
        wait_for(lambda: lines(log) == ["start one"])
        store.put("app/token", "tok-" + CANARY)  # the same value again: no restart
        store.put("app/watched", "two")
        wait_for(lambda: lines(log) == ["start one", "start two"])
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert lines(log) == ["start one", "start two"]
    assert "V changed; restarting the command" in err
    assert "two" not in err.replace("V changed", "") and CANARY not in out + err


def test_watch_signal_signals_instead_of_restarting(url: str, store: SecretStore, tmp_path: Path) -> None:
    store.put("app/watched", "one")
    log = tmp_path / "hup.log"
    child = script(tmp_path, "watched.py", WATCHED)
    proc = start(url, tmp_path, "run", "--watch-signal", "HUP", "--watch-interval", "0.1",
                 "--env", "V=app/watched", "--", sys.executable, child, str(log))
    try:
        wait_for(lambda: lines(log) == ["start one"])
        store.put("app/watched", "two")
        wait_for(lambda: lines(log) == ["start one", "HUP one"])  # same process: its environment cannot change
        store.delete("app/watched")
        store.put("app/watched", "three")
        wait_for(lambda: len(lines(log)) == 3)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM
    assert lines(log) == ["start one", "HUP one", "HUP one"]


def test_watch_keeps_the_command_when_a_secret_cannot_be_read(url: str, store: SecretStore, tmp_path: Path) -> None:
    store.put("app/watched", {"v": "one"})
    log = tmp_path / "keep.log"
    child = script(tmp_path, "watched.py", WATCHED)
    proc = start(url, tmp_path, "run", "--watch", "--watch-interval", "0.1",
                 "--env", "V=app/watched#v", "--", sys.executable, child, str(log))
    try:
        wait_for(lambda: lines(log) == ["start one"])
        store.put("app/watched", {"other": "x"})  # the field is gone
        time.sleep(1.0)
        assert proc.poll() is None and lines(log) == ["start one"]
        store.put("app/watched", {"v": "two"})
        wait_for(lambda: lines(log) == ["start one", "start two"])
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert "keeps its values" in err and "no field 'v'" in err


def test_ctrl_c_at_a_terminal_reaches_the_command_once(url: str, tmp_path: Path) -> None:
    pty = pytest.importorskip("pty")
    import select

    counter = script(tmp_path, "count.py", """\
        import signal, sys, time
        count = 0
        def interrupted(*_):
            global count
            count += 1
        signal.signal(signal.SIGINT, interrupted)
        print("ready", flush=True)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            time.sleep(0.02)
        sys.exit(count)
    """)
    pid, fd = pty.fork()
    if pid == 0:  # the terminal signals its whole foreground group: secretkit and the command
        os.execve(sys.executable, secretkit_cmd(url, "-q", "run", "--", sys.executable, counter), cli_env(tmp_path))
    seen = b""
    try:
        while b"ready" not in seen:
            if select.select([fd], [], [], 20)[0]:
                seen += os.read(fd, 1024)
            else:
                raise AssertionError(seen)
        os.write(fd, b"\x03")  # Ctrl-C
        while select.select([fd], [], [], 20)[0]:
            try:
                if not os.read(fd, 1024):
                    break
            except OSError:  # the terminal closed
                break
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 1  # one SIGINT, not a second forwarded copy
