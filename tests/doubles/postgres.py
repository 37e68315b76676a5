"""A real PostgreSQL server for tests and benchmarks, on loopback, in a temporary directory.

It uses the server binaries of Debian's ``postgresql`` package (``/usr/lib/postgresql/<major>/bin``,
not on PATH; the newest major installed wins), else an ``initdb`` on PATH. PostgreSQL refuses to
run as root and CI runs as root, so when the effective uid is 0 every server command runs as the
``postgres`` user (``runuser``), which owns the data directory; otherwise it runs as ourselves.
The superuser ``postgres`` authenticates with a random password (scram-sha-256) over TCP only.

``shared()`` hands every test module the same server, started once (initdb about 0.6 s, start
0.1 s) and stopped when the last run-wide fixture releases it, like tests/doubles/openbao.py.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.doubles.openbao import free_port, log_tail
from tests.doubles.run_wide import RunWide

#: Where Debian installs each major version's server binaries.
DEBIAN_ROOT = Path("/usr/lib/postgresql")
#: The unprivileged account the server runs as when we are root (created by Debian's package).
SERVER_USER = "postgres"
#: Set by .ci/run where PostgreSQL is installed: there a suite that cannot start it fails, not skips.
NEED = "SECRETKIT_TESTS_NEED_POSTGRES"


def bin_dir() -> Path | None:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``, or None when not installed."""
    majors = [p for p in DEBIAN_ROOT.glob("*/bin") if (p / "initdb").exists() and p.parent.name.isdigit()]
    if majors:
        return max(majors, key=lambda p: int(p.parent.name))
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def missing_reason() -> str | None:
    """Why no server can be started here, or None when one can."""
    if bin_dir() is None:
        return "PostgreSQL server binaries not found: apt-get install postgresql (.ci/run does)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser: PostgreSQL refuses to run as root"
        try:
            import pwd

            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and no {SERVER_USER!r} user to run PostgreSQL as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed: pip install -e '.[test]'"
    return None


class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1 with a superuser ``postgres`` and a random password."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.port = free_port()
        self.host = "127.0.0.1"
        self.admin_user = "postgres"
        self.admin_password = f"pg-{secrets.token_hex(12)}"
        self.dir = Path(tempfile.mkdtemp(prefix="pg-"))  # short: it also holds the unix socket
        self.data = self.dir / "data"
        self.log_path = self.dir / "server.log"
        self.start_seconds = 0.0
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str, timeout: float = 60) -> None:
        """A server command, as the ``postgres`` user when we are root (the server refuses root)."""
        command = [str(self.binaries / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        done = subprocess.run(command, cwd=self.dir, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n{self.log()}")

    def start(self) -> PostgresServer:
        began = time.perf_counter()
        password_file = self.dir / "pw"
        password_file.write_text(self.admin_password + "\n")
        password_file.chmod(0o600)
        if self._as_root:  # the data directory and the password file must belong to the server's user
            shutil.chown(self.dir, SERVER_USER)
            shutil.chown(password_file, SERVER_USER)
        try:
            self._run("initdb", "-D", str(self.data), "-U", self.admin_user, "--auth=scram-sha-256",
                      f"--pwfile={password_file}", "--no-sync", "-E", "UTF8", "--locale=C")
            password_file.unlink()
            # fsync off: a test cluster is thrown away, and a slow disk must not slow the suite
            options = (f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories={self.dir}"
                       " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options, "-w", "-t", "60",
                      "start")
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - began
        return self

    def log(self) -> str:
        return log_tail(self.log_path)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=30)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, user: str | None = None, password: str | None = None, database: str = "postgres") -> str:
        """A libpq URL for ``user`` (the superuser by default); for OpenBao, pass the templates."""
        user = user or self.admin_user
        password = self.admin_password if password is None else password
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}?sslmode=disable"

    def connect(self, user: str | None = None, password: str | None = None, **kwargs: Any) -> Any:
        """A psycopg connection (autocommit) as ``user``, or as the superuser."""
        import psycopg

        return psycopg.connect(host=self.host, port=self.port, dbname="postgres", sslmode="disable",
                               user=user or self.admin_user,
                               password=self.admin_password if password is None else password,
                               autocommit=True, connect_timeout=5, **kwargs)

    def login(self, user: str, password: str) -> str:
        """Log in as ``user`` and return ``select current_user`` (raises when the login fails)."""
        with self.connect(user, password) as conn:
            row = conn.execute("select current_user").fetchone()
            assert row is not None
            return str(row[0])

    def roles(self, prefix: str = "") -> set[str]:
        """Names of the roles that exist now (``pg_roles``), those starting with ``prefix``."""
        with self.connect() as conn:
            rows = conn.execute("select rolname from pg_roles where starts_with(rolname, %s)", (prefix,)).fetchall()
        return {str(row[0]) for row in rows}

    def create_login(self, user: str, password: str) -> None:
        """An ordinary login role (e.g. the user a static role rotates)."""
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("create role {} with login password {}").format(
                sql.Identifier(user), sql.Literal(password)))


_run_wide: RunWide[PostgresServer] = RunWide()


def start() -> PostgresServer:
    """A new server of our own (stopped by the caller); RuntimeError when none can run here."""
    reason = missing_reason()
    if reason is not None:
        raise RuntimeError(reason)
    binaries = bin_dir()
    assert binaries is not None
    return PostgresServer(binaries).start()


def shared() -> PostgresServer:
    """The test run's one server, started on first use; skips visibly when none can run here."""
    import pytest

    reason = missing_reason()
    if reason is not None:
        if os.environ.get(NEED):
            pytest.fail(f"{NEED} is set but {reason}")
        pytest.skip(reason)
    return _run_wide.acquire(start)


def release() -> None:
    """A run-wide fixture is done with the shared server; the last one stops it."""
    _run_wide.release()
