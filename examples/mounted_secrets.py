"""Reading secrets where a pod finds them: a mounted Secret volume first, a remote store second.

The volume is written the way the kubelet writes it (secretkit.drivers.files.kubelet), in a temporary
directory standing in for /var/run/secrets/app; memory:// stands in for Vault. In a real pod
the same code runs with SECRETKIT_URL unset and the URLs below pointing at the mount and Vault.
"""

from __future__ import annotations

import tempfile
import threading

import secretkit
from secretkit.secret import Secret
from secretkit.drivers.files.kubelet import KubeletVolume


def main() -> None:
    mount = tempfile.mkdtemp()
    volume = KubeletVolume(f"{mount}/db", {"username": "app", "password": "mounted-v1"})
    remote = secretkit.open("memory://")  # stands in for vault://vault.internal:8200/secret
    remote.put("api/key", "from-the-remote-store")

    store = secretkit.open([f"files://{mount}?poll_interval=0.2", remote])
    db = store.get("db")
    print("db user:", db["username"], "from", store.origin("db").backend)
    print("api key from", store.origin("api/key").backend)
    assert db["password"] == "mounted-v1"
    assert store.get("api/key").text == "from-the-remote-store"

    # The kubelet rotates the mounted Secret: watch reports the new generation.
    updated = threading.Event()
    seen: list[Secret] = []

    def on_change(secret: Secret) -> None:
        seen.append(secret)
        updated.set()

    with store.layers[0].watch("db", on_change):
        volume.update({"username": "app", "password": "mounted-v2"})
        assert updated.wait(10), "the update was not noticed"
    print("after the update:", sorted(seen[-1].fields), "password changed:", seen[-1]["password"] != "mounted-v1")
    assert store.get("db")["password"] == "mounted-v2"

    # Writes skip the read-only files layer.
    store.put("api/key", "rotated")
    assert remote.get("api/key").text == "rotated"
    print("OK")


if __name__ == "__main__":
    main()
