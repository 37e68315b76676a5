"""An SQLAlchemy engine over a dynamic database credential that the store keeps alive.

OpenBao's (or Vault's) ``database`` engine gives each process its own PostgreSQL user with a lease;
``store.lease`` renews it and, when it reaches its max TTL, issues a new user and calls
``on_change``. The engine below makes every *new* connection log in with the lease's current
credential, and a re-issue disposes the pool: idle pooled connections are closed at once, the
ones in use finish their work with the old user (it stays valid for the store's ``lease_grace``)
and are discarded when returned, so the pool drains onto the new user without a failed query.

Run it against a server whose ``database`` engine has a role (docs/leases.md shows the setup)::

    VAULT_URL=vault+http://127.0.0.1:8200/secret VAULT_TOKEN=... LEASE_PATH=database/creds/app \\
    DATABASE_URL=postgresql+psycopg://127.0.0.1:5432/postgres python examples/leases_sqlalchemy.py

It prints the database user before and after one re-issue, then ``OK``. Its test
(tests/leases/test_leases_sqlalchemy.py) runs it against a real OpenBao and PostgreSQL.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import sqlalchemy
from sqlalchemy import event

import secretkit


def lease_engine(lease: secretkit.Lease, url: str, **options: Any) -> sqlalchemy.Engine:
    """An engine for ``url`` (no user or password in it) that logs in with ``lease``'s credential."""
    engine = sqlalchemy.create_engine(url, **options)

    @event.listens_for(engine, "do_connect")
    def use_current_credential(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        fields = lease.fields  # read once: the user and the password of the same credential
        cparams["user"] = fields["username"]
        cparams["password"] = fields["password"]

    # After a re-issue: close the idle connections now; those in use are dropped when returned.
    lease.on_change(lambda _lease: engine.dispose())
    return engine


def current_user(engine: sqlalchemy.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sqlalchemy.text("select current_user")).scalar_one())


def main(store_url: str, token: str, lease_path: str, database_url: str, *, timeout: float = 60) -> None:
    with secretkit.open(store_url, token=token) as store, store.lease(lease_path) as lease:
        engine = lease_engine(lease, database_url)
        changed = threading.Event()
        lease.on_change(lambda _lease: changed.set())  # after the engine's: its pool is disposed by then
        before = current_user(engine)
        print("connected as", before)
        if not changed.wait(timeout):  # the lease reaches its max TTL and the store issues a new user
            raise SystemExit(f"no re-issue within {timeout} s: is the role's max_ttl short?")
        after = current_user(engine)
        print("after the re-issue, connected as", after)
        assert after != before, "a new connection still used the replaced user"
        engine.dispose()
    print("OK")


if __name__ == "__main__":
    main(os.environ["VAULT_URL"], os.environ["VAULT_TOKEN"], os.environ["LEASE_PATH"], os.environ["DATABASE_URL"])
