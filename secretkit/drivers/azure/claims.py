"""The rotation companion as a first-writer-wins log (``ClaimLog``), Key Vault having no
conditional write.

Each rotator *claims* the companion by adding a version to it; the live (enabled) versions in
the order ``history`` gives (creation time, then the ``secretkit-seq`` tag, then the version id:
the same order for every observer) decide, and the oldest one wins. A loser disables its own
version. The companion is never deleted (a soft-deleted name blocks re-creating it until it is
purged): it is *released* by disabling every live version, and then reads as absent.

Why a claimer waits before it looks. Key Vault stamps ``created`` in whole seconds, so a version
written a moment after ours, by a rotator that started before ours landed, may carry the same
second and sort before ours by its id. Every version created in our second has been written by
the time the server's clock has passed that second; the server's clock has done so one second
after it answered our write, whatever the skew between the clocks (only the rate matters). So
the claimer lists the versions ``SETTLE`` seconds after it heard the answer: any version it
cannot see then is created in a later second and sorts after its own. Cost: about a second per
rotation. Assumed: within one vault, a listing shows every version whose creation was answered
before it (read-after-write), as Key Vault documents for its data plane.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from secretkit.drivers.azure import codec, history
from secretkit.drivers.base import NotFoundError, Record, UnavailableError, Value, time_left

#: Seconds between hearing our write answered and listing (module docstring): one second of
#: Key Vault's timestamp resolution, plus a margin for clocks of the service's nodes.
SETTLE = 1.2


def claim(client: Any, stored: str, name: str, value: Value, kw: Callable[[], dict[str, Any]]) -> Record:
    """Add ``value`` to the log ``stored`` (the Key Vault name of ``name``); the winning entry."""
    text, content_type, tags = codec.next_properties(value, name, stored, None, None)
    written = client.set_secret(stored, text, content_type=content_type, tags=tags, **kw())
    mine, heard = written.properties.version, time.monotonic()
    wait = heard + SETTLE - time.monotonic()
    left = time_left()
    if left is not None and left < wait + 0.1:
        _disable(client, stored, mine, kw)
        raise UnavailableError(
            f"no time left to confirm the rotation's claim (Key Vault needs about {SETTLE:g} s after the write)")
    time.sleep(max(0.0, wait))
    live = live_oldest_first(client, stored, kw)
    if mine not in (p.version for p in live):
        raise NotFoundError("this rotator's claim was released by another rotator meanwhile")
    if live[0].version == mine:
        return Record(value, mine, written.properties.created_on)
    _disable(client, stored, mine, kw)
    return _read(client, stored, live[0].version, kw)


def read_claim(client: Any, stored: str, kw: Callable[[], dict[str, Any]]) -> Record:
    """The winning entry of log ``stored``; ``NotFoundError`` when none is live."""
    live = live_oldest_first(client, stored, kw)
    if not live:
        raise NotFoundError("no rotation holds the pending place")
    return _read(client, stored, live[0].version, kw)


def release(client: Any, stored: str, kw: Callable[[], dict[str, Any]]) -> None:
    """Disable every live entry of log ``stored`` (none, or no log: nothing to do)."""
    try:
        live = live_oldest_first(client, stored, kw)
    except ResourceNotFoundError:
        return
    for props in live:
        _disable(client, stored, props.version, kw)


def live_oldest_first(client: Any, stored: str, kw: Callable[[], dict[str, Any]]) -> list[Any]:
    """The enabled versions of ``stored``, oldest first in ``history``'s order."""
    ordered = history.newest_first(client.list_properties_of_secret_versions(stored, **kw()))
    return [p for p in reversed(ordered) if p.enabled]


def _read(client: Any, stored: str, version: str, kw: Callable[[], dict[str, Any]]) -> Record:
    return codec.record_of(client.get_secret(stored, version, **kw()))


def _disable(client: Any, stored: str, version: str, kw: Callable[[], dict[str, Any]]) -> None:
    try:
        client.update_secret_properties(stored, version, enabled=False, **kw())
    except ResourceNotFoundError:
        pass  # the log is gone (deleted by hand): nothing left to end
