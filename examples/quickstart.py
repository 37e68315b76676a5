"""secretkit in one page: write, read, version, compare-and-set, list, delete.

Runs against $SECRETKIT_URL if set, else the built-in default store: an encrypted file
store in your user data directory (e.g. ~/.local/share/secretkit/store). Try
``SECRETKIT_URL=memory:// python examples/quickstart.py`` for a throwaway run.
"""

from __future__ import annotations

import secretkit


def main() -> None:
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
