"""Caching: a hot secret read from memory, with a refresh, a per-call max_age and statistics.

Run: python3 examples/caching.py   (uses memory://, where caching is opt-in)
"""

from __future__ import annotations

import secretkit
from secretkit import CachePolicy


def main() -> None:
    with secretkit.open("memory://", cache=CachePolicy(ttl=60, negative_ttl=5)) as store:
        store.put("payments/db-password", "s3cret")
        for _ in range(1000):
            store.get("payments/db-password")  # one backend read, then hits
        store.get("payments/db-password", max_age=0)  # insist on a fresh read
        store.refresh("payments/db-password")  # the same, explicitly
        store.put("payments/db-password", "rotated")  # writes invalidate: read-your-writes
        assert store.get("payments/db-password").text == "rotated"
        print(store.cache_stats())


if __name__ == "__main__":
    main()
