"""secretkit in one page: write, read, version, compare-and-set, list, delete.

It never writes into your own store. Without $SECRETKIT_URL it points $SECRETKIT_URL at a
throwaway encrypted file store in a temporary directory (its key in there too), removed at
the end; ``secretkit.open()`` then opens that, as it would open your real store (by default
the encrypted file store in your user data directory, e.g. ~/.local/share/secretkit/store).
With $SECRETKIT_URL set it runs against that store, writing and then purging names under
``quickstart/``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

import secretkit


def main() -> None:
    if os.environ.get("SECRETKIT_URL"):
        tour()
        return
    with tempfile.TemporaryDirectory(prefix="secretkit-quickstart-") as scratch:
        # key_file: the throwaway store's key stays in the scratch directory, not in your keyring
        store_dir, key_file = Path(scratch, "store"), Path(scratch, "store.key")
        os.environ["SECRETKIT_URL"] = f"{store_dir.as_uri()}?key_file={quote(str(key_file))}"
        print(f"a temporary store, removed at the end (set SECRETKIT_URL to use another): {store_dir}")
        try:
            tour()
        finally:
            del os.environ["SECRETKIT_URL"]


def tour() -> None:
    store = secretkit.open()  # $SECRETKIT_URL, else the encrypted file store in your data directory
    print(f"store: {store.url} ({store.backend})")

    # Text, bytes and field mappings all round-trip exactly.
    v1 = store.put("quickstart/db-password", "s3cr3t-v1")
    store.put("quickstart/tls-key", b"\x00\x01binary\xff")
    store.put("quickstart/db", {"user": "app", "password": "s3cr3t-v1"})

    secret = store.get("quickstart/db-password")
    print("read:", secret)  # the value is masked in repr/str
    assert secret.text == "s3cr3t-v1"
    print("db user:", store.get("quickstart/db")["user"])

    # Compare-and-set: only one of two writers that read version v1 can win.
    v2 = store.put("quickstart/db-password", "s3cr3t-v2", if_version=v1.version)
    try:
        store.put("quickstart/db-password", "lost-update", if_version=v1.version)
    except secretkit.ConflictError as exc:
        print("second writer refused:", exc)

    if store.capabilities.versions:
        print("versions:", [v.version for v in store.versions("quickstart/db-password")])
        assert store.get("quickstart/db-password", version=v1.version).text == "s3cr3t-v1"
    assert store.get("quickstart/db-password").version == v2.version

    print("names:", list(store.list("quickstart/")))

    for name in list(store.list("quickstart/")):
        store.delete(name, purge=True)
    try:
        store.get("quickstart/db-password")
    except secretkit.NotFoundError as exc:
        print("after delete:", exc)
    print("quickstart OK")


if __name__ == "__main__":
    main()
