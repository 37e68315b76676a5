"""examples/leases_sqlalchemy.py against a real OpenBao and PostgreSQL: after a re-issue, new
connections log in as the new user while the pooled ones drain (idle ones closed at once, the one
in use finishing with the old user), and docs/leases.md quotes the example as it is.

The roles re-issue fast: TTL 3 s and max TTL 6 s, or TTL 2 s and max TTL 4 s for the script.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy

import secretkit
from tests.doubles import openbao
from tests.doubles.openbao_database import DatabaseEngine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "leases_sqlalchemy.py"


@pytest.fixture(autouse=True)
def _no_shell_vault_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    openbao.clean_env(monkeypatch)


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("leases_sqlalchemy", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def database_url(db: DatabaseEngine) -> str:
    return f"postgresql+psycopg://{db.postgres.host}:{db.postgres.port}/postgres?sslmode=disable"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.02)


def sessions_of(db: DatabaseEngine, user: str) -> int:
    with db.postgres.connect() as conn:
        row = conn.execute("select count(*) from pg_stat_activity where usename = %s", (user,)).fetchone()
    assert row is not None
    return int(row[0])


def test_new_connections_use_the_new_user_while_pooled_ones_drain(
    bao: openbao.OpenBaoServer, bao_database: DatabaseEngine, example: ModuleType
) -> None:
    db = bao_database
    # re-issued about 4 s in (the second renewal falls short); the old user then has until its
    # max TTL, 2 s on: the grace (a third of 3 s) ends before that
    creds = db.dynamic_role(default_ttl=3, max_ttl=6)
    with secretkit.open(bao.url(), token=bao.root_token) as store, store.lease(creds) as lease:
        engine = example.lease_engine(lease, database_url(db))
        changed = threading.Event()
        lease.on_change(lambda _lease: changed.set())
        old = example.current_user(engine)
        assert old == lease["username"]
        held = engine.connect()  # in use across the re-issue
        assert example.current_user(engine) == old  # a second connection, returned to the pool
        assert engine.pool.checkedin() == 1 and sessions_of(db, old) == 2

        assert changed.wait(10), "no re-issue"
        wait_for(lambda: sessions_of(db, old) == 1, "the idle pooled connection closed at the re-issue")
        new = example.current_user(engine)
        assert new == lease["username"] != old
        # the connection in use finishes its work with the old user (still within the grace)
        assert held.execute(sqlalchemy.text("select current_user")).scalar_one() == old
        held.close()  # returned to the disposed pool: closed, not reused
        wait_for(lambda: sessions_of(db, old) == 0, "the old user's last connection closed once returned")
        assert all(example.current_user(engine) == new for _ in range(3))
        wait_for(lambda: old not in db.usernames_of(creds), "the old user dropped after the grace", 3)
        assert example.current_user(engine) == new
        engine.dispose()
    wait_for(lambda: sessions_of(db, new) == 0, "the new user's connections closed")
    assert db.usernames_of(creds) == set()  # closing the lease revoked both users


def test_the_example_runs_as_a_script(bao_database: DatabaseEngine, bao: openbao.OpenBaoServer) -> None:
    db = bao_database
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRETKIT_", "VAULT_"))}
    env.update(PYTHONPATH=str(ROOT), VAULT_URL=bao.url(), VAULT_TOKEN=bao.root_token,
               LEASE_PATH=db.dynamic_role(default_ttl=2, max_ttl=4), DATABASE_URL=database_url(db))
    done = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    users = re.findall(r"connected as (\S+)", done.stdout)
    assert len(users) == 2 and users[0] != users[1] and done.stdout.rstrip().endswith("OK")


def test_the_leases_page_quotes_the_example_as_it_is() -> None:
    """docs/leases.md's ``py`` blocks are excerpts of examples/leases_sqlalchemy.py (run above)."""
    page = (ROOT / "docs" / "leases.md").read_text()
    section = page.split("## With SQLAlchemy", 1)[1].split("\n## ", 1)[0]
    excerpts = re.findall(r"^```py\n(.*?)^```", section, flags=re.DOTALL | re.MULTILINE)
    assert excerpts, "docs/leases.md's SQLAlchemy section quotes no code"
    source = EXAMPLE.read_text()
    for excerpt in excerpts:
        assert excerpt in source, f"docs/leases.md quotes what the example no longer says:\n{excerpt}"
