"""What the cache holds: the key of a read, an entry (the ``Secret`` itself, or a ``Negative``
"not found"), and the counters a store reports (``CacheStats``).

A leaf module (no threads, no I/O): the store builds keys on its hit path without the cache's
machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from secretkit.errors import NotFoundError
from secretkit.secret import Secret

#: What identifies a read: the name alone for the current value (by far the most cached, and a
#: str costs no tuple per entry), else (name, version, stage). See ``key_of`` and ``name_of``.
Key = str | tuple[str, str | None, str | None]


def key_of(name: str, version: str | None = None, stage: str | None = None) -> Key:
    """The cache key of a read."""
    return name if version is None and stage is None else (name, version, stage)


def no_hit(key: Key, max_age: float | None = None) -> None:
    """The hit path of a store without a cache: every read goes to the backend."""
    return None


def name_of(key: Key) -> str:
    return key if isinstance(key, str) else key[0]


def parts_of(key: Key) -> tuple[str, str | None, str | None]:
    return (key, None, None) if isinstance(key, str) else key

@dataclass(frozen=True)
class CacheStats:
    """Counters of one store's cache (approximate under heavy concurrency: no lock on hits).

    ``misses`` counts reads not answered from a cached entry (each waiting caller counts);
    ``refreshes`` counts background and forced re-fetches; ``size`` is the current number
    of entries.
    """

    hits: int = 0
    misses: int = 0
    stale_served: int = 0
    refreshes: int = 0
    evictions: int = 0
    size: int = 0


class CachedNotFoundError(NotFoundError):
    """A ``NotFoundError`` answered from a negative cache entry (``negative_ttl``), not the backend."""


class Negative:
    """A cached "not found" (``negative_ttl``)."""

    __slots__ = ("_refresh_at", "error")

    def __init__(self, error: NotFoundError, refresh_at: float) -> None:
        self.error, self._refresh_at = error, refresh_at


#: A cached answer: the ``Secret`` itself, or a ``Negative``. The cache keeps only what the hit
#: path reads (it holds many entries): the answer and when its refresh is due, which it sets on
#: the Secret (``Secret._refresh_at``, a slot kept for this) instead of wrapping it in one more
#: object. When it was fetched, when it expires and how long it may be served stale follow from
#: that, the policy and the key's TTL (``Cache.fetched``, ``Cache.expires``). Entries are never
#: changed once in the dict (a refresh inserts anew), so readers need no lock.
Entry = Union[Secret, Negative]
