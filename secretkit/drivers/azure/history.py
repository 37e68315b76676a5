"""The order of a secret's versions, which Key Vault does not give: pure functions, no I/O.

Key Vault's ``latest`` is the newest version by creation time, and ``created`` has second
resolution. Versions are ordered by creation time, ties by the write counter secretkit tags each
version with (``codec.SEQUENCE_TAG``; 0 for versions other tools wrote), then by id, so the
order is the same on every call. ``previous`` is the newest *enabled* version before the
current one: a disabled version is not readable, like GCP's disabled versions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from secretkit.drivers.azure import codec
from secretkit.drivers.base import Stage, VersionInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CURRENT = frozenset({Stage.CURRENT})
_PREVIOUS = frozenset({Stage.PREVIOUS})


def newest_first(properties: Iterable[Any]) -> list[Any]:
    """``SecretProperties`` of one secret's versions, newest first (module docstring)."""
    return sorted(
        properties,
        key=lambda p: (p.created_on or _EPOCH, codec.sequence(p.tags), p.version or ""),
        reverse=True,
    )


def previous_of(ordered: Sequence[Any]) -> Any | None:
    """The newest enabled version after the first (the current one), or None."""
    return next((p for p in ordered[1:] if p.enabled), None)


def infos(name: str, ordered: Sequence[Any]) -> list[VersionInfo]:
    """Version infos, newest first, ``current`` and ``previous`` marked."""
    previous = previous_of(ordered)
    return [
        VersionInfo(
            name, p.version, p.created_on,
            _CURRENT if i == 0 else _PREVIOUS if p is previous else frozenset(),
            "enabled" if p.enabled else "disabled",
        )
        for i, p in enumerate(ordered)
    ]
