"""Rotate a database password without ever losing a working credential.

Runs against $SECRETKIT_URL if set, else the built-in default store; the "database" is a stand-in
that accepts the old and the new password while clients move over (dual credentials)::

    python examples/rotation.py
"""

from __future__ import annotations

from datetime import timedelta

import secretkit
from secretkit import Secret


class Database:
    """Stands for a real server: ALTER USER sets the password, login checks it."""

    def __init__(self, password: str) -> None:
        self.passwords = {password}

    def alter_user(self, password: str) -> None:
        self.passwords.add(password)  # the old one keeps working until clients have moved

    def login(self, password: str) -> bool:
        return password in self.passwords


def main() -> None:
    store = secretkit.open()  # $SECRETKIT_URL, else the encrypted file store in your data directory
    name = "examples/db-password"
    store.put(name, "initial-password")
    db = Database("initial-password")

    with store.watch(name, lambda s: print("watch: new current version", s.version), interval=0.1) as watcher:
        result = store.rotate(
            name,
            apply=lambda pending: db.alter_user(pending.text),
            verify=lambda pending: db.login(pending.text),
        )
        watcher.poll()
    assert result is not None
    print(f"rotated {name}: version {result.previous} -> {result.version}")
    print("current:", store.get(name))  # masked
    print("previous still readable:", store.get(name, stage="previous").text == "initial-password")

    # A failing verify leaves current untouched; the pending value can be resumed or discarded.
    def broken(pending: Secret) -> bool:
        return False

    try:
        store.rotate(name, verify=broken)
    except secretkit.rotation.RotationError as exc:
        print("verify failed, current untouched:", exc.step)
    print("discarded pending version:", store.discard_pending(name))

    # Cron-style: rotate only when the current version is older than 30 days (here: it is not).
    print("rotate if older than 30 days:", store.rotate(name, if_older_than=timedelta(days=30)))
    store.delete(name, purge=True)
    print("rotation example OK")


if __name__ == "__main__":
    main()
