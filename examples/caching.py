"""Caching: a hot secret read from memory, with a refresh, a per-call max_age and statistics.

Run: python3 examples/caching.py   ($SECRETKIT_URL, else the built-in default store; the cache is
turned on here, as local stores do not cache by default)
"""

from __future__ import annotations

import secretkit
from secretkit import CachePolicy


def main() -> None:
    with secretkit.open(cache=CachePolicy(ttl=60, negative_ttl=5)) as store:
        store.put("payments/db-password", "s3cret")
        for _ in range(1000):
            store.get("payments/db-password")  # one backend read, then hits
        store.get("payments/db-password", max_age=0)  # insist on a fresh read
        store.refresh("payments/db-password")  # the same, explicitly
        store.put("payments/db-password", "rotated")  # writes invalidate: read-your-writes
        assert store.get("payments/db-password").text == "rotated"
        stats = store.cache_stats()
        assert stats.hits >= 999 and stats.misses <= 3, stats
        print(stats)
        print("caching example OK")


if __name__ == "__main__":
    main()
