"""The helpers drivers share, re-exported by ``secretkit.drivers.base`` (import them from there).

Rules that are the same wherever a backend meets them: the error table every driver's
``classify`` is (one HTTP status table and one gRPC table to start from), whether a listed
native name maps back, the UTF-8 check of field octets, the update-or-create race, and a bounded
call at open. A leaf under the contract: errors, names, values and deadlines only.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from secretkit.deadline import ATTEMPT_END
from secretkit.errors import ConflictError, DeadlineExceededError, ErrorCode, InvalidArgumentError
from secretkit.fields import field_text
from secretkit.names import NameRules
from secretkit.secret import Value

__all__ = [
    "host_of",
    "GRPC_CODES",
    "HTTP_STATUS",
    "Classified",
    "ErrorTable",
    "On",
    "bounded_call",
    "check_utf8_fields",
    "listed_name",
    "retry_after_seconds",
    "upsert",
    "utf8_field_problem",
]


@dataclass(frozen=True)
class Classified:
    """A driver's reading of an SDK exception: the portable code and a safe detail (no values).

    ``cause_safe=False`` says the SDK exception's own text may quote a value (e.g. AWS
    validation messages): the store then raises the portable error without it as ``__cause__``,
    so no traceback or ``logging.exception`` prints it.
    """

    code: ErrorCode
    detail: str
    cause_safe: bool = True
    #: Seconds the backend asked the client to wait before trying again (HTTP ``Retry-After``
    #: on 429/503; ``retry_after_seconds`` reads it): the store's retry waits at least that.
    retry_after: float | None = None


T = TypeVar("T")

#: HTTP status → portable code, the table every HTTP driver starts from (RFC 9110's meanings).
#: A driver overrides an entry where its server uses a status otherwise (``ErrorTable.statuses``);
#: any other 5xx is ``ErrorTable.server_error``.
HTTP_STATUS: Mapping[int, ErrorCode] = MappingProxyType({
    400: ErrorCode.INVALID_ARGUMENT,
    401: ErrorCode.UNAUTHENTICATED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.NOT_SUPPORTED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.INVALID_ARGUMENT,
    415: ErrorCode.INVALID_ARGUMENT,
    422: ErrorCode.INVALID_ARGUMENT,
    429: ErrorCode.THROTTLED,
    504: ErrorCode.DEADLINE_EXCEEDED,
})

#: gRPC status (by name, as ``grpc.StatusCode.X.name`` and Google's REST error bodies spell it)
#: → portable code, after gocloud's ``gcerr.GRPCCode``. ``FAILED_PRECONDITION`` is a conflict:
#: Google APIs answer it to a stale etag or a state a write did not expect. ``UNKNOWN``,
#: ``INTERNAL`` and ``CANCELLED`` are transient, as gRPC's own retry guidance treats them.
GRPC_CODES: Mapping[str, ErrorCode] = MappingProxyType({
    "NOT_FOUND": ErrorCode.NOT_FOUND,
    "ALREADY_EXISTS": ErrorCode.ALREADY_EXISTS,
    "ABORTED": ErrorCode.CONFLICT,
    "FAILED_PRECONDITION": ErrorCode.CONFLICT,
    "INVALID_ARGUMENT": ErrorCode.INVALID_ARGUMENT,
    "OUT_OF_RANGE": ErrorCode.INVALID_ARGUMENT,
    "PERMISSION_DENIED": ErrorCode.PERMISSION_DENIED,
    "UNAUTHENTICATED": ErrorCode.UNAUTHENTICATED,
    "RESOURCE_EXHAUSTED": ErrorCode.THROTTLED,
    "UNAVAILABLE": ErrorCode.UNAVAILABLE,
    "INTERNAL": ErrorCode.UNAVAILABLE,
    "UNKNOWN": ErrorCode.UNAVAILABLE,
    "CANCELLED": ErrorCode.UNAVAILABLE,
    "DEADLINE_EXCEEDED": ErrorCode.DEADLINE_EXCEEDED,
    "DATA_LOSS": ErrorCode.DATA_LOSS,
    "UNIMPLEMENTED": ErrorCode.NOT_SUPPORTED,
})


class On(NamedTuple):
    """One row of an ``ErrorTable``: SDK exceptions of ``catches`` are ``code``.

    ``code`` is a portable code, with ``detail`` formatted with ``kind`` (the exception's class
    name) and ``exc`` (the exception: use ``{exc}`` only where the SDK's text cannot quote a
    value); or a function that reads the exception itself (a status, a body) and returns the
    ``Classified``, or None to let later rows try.
    """

    catches: type[BaseException] | tuple[type[BaseException], ...]
    code: ErrorCode | Callable[[Any], Classified | None]
    detail: str = "{kind}"


@dataclass(frozen=True)
class ErrorTable:
    """A driver's errors as a table, read by one mapper (httpx's ``map_exceptions``, gocloud's
    ``gcerr``): exception rows first, then the backend's own error codes, then the HTTP status.

    ``statuses`` and ``grpc`` override ``HTTP_STATUS`` and ``GRPC_CODES`` entry by entry (None
    removes an entry, so the status no longer decides); a driver documents each override.
    """

    exceptions: Sequence[On] = ()
    codes: Mapping[str, ErrorCode] = field(default_factory=dict)
    """The backend's own error codes (AWS ``ResourceNotFoundException``), read before the status."""
    statuses: Mapping[int, ErrorCode | None] = field(default_factory=dict)
    grpc: Mapping[str, ErrorCode | None] = field(default_factory=dict)
    server_error: ErrorCode | None = ErrorCode.UNAVAILABLE
    """Any 5xx the status table does not name: a server that failed now may answer later."""

    def __post_init__(self) -> None:
        # merged once: the tables are read on every error
        object.__setattr__(self, "_statuses", _merged(HTTP_STATUS, self.statuses))
        object.__setattr__(self, "_grpc", _merged(GRPC_CODES, self.grpc))

    def classify(self, exc: BaseException) -> Classified | None:
        """The first exception row that catches ``exc`` and gives an answer; None if none does."""
        for row in self.exceptions:
            if not isinstance(exc, row.catches):
                continue
            if isinstance(row.code, ErrorCode):
                return Classified(row.code, row.detail.format(kind=type(exc).__name__, exc=exc))
            found = row.code(exc)
            if found is not None:
                return found
        return None

    def for_status(self, status: int | None) -> ErrorCode | None:
        """The portable code of an HTTP status; None when the table leaves it open."""
        if status is None:
            return None
        found: Mapping[int, ErrorCode] = getattr(self, "_statuses")
        if status in found:
            return found[status]
        return self.server_error if 500 <= status <= 599 else None

    def for_grpc(self, name: str | None) -> ErrorCode | None:
        """The portable code of a gRPC status name; None for an unknown or missing one."""
        found: Mapping[str, ErrorCode] = getattr(self, "_grpc")
        return found.get(name) if name else None

    def code(self, backend_code: str | None = None, status: int | None = None) -> ErrorCode:
        """The backend's own error code if the table knows it, else the HTTP status, else UNKNOWN."""
        return (self.codes.get(backend_code or "") or self.for_status(status)) or ErrorCode.UNKNOWN


def _merged(base: Mapping[Any, ErrorCode], overrides: Mapping[Any, ErrorCode | None]) -> Mapping[Any, ErrorCode]:
    merged = {**base, **overrides}
    return MappingProxyType({k: v for k, v in merged.items() if v is not None})


def listed_name(rules: NameRules, native: str, recorded: str | None) -> str:
    """What ``list()`` shows for an object called ``native`` whose metadata recorded the name as
    written ``recorded``: that name only when it really maps to this object (a copied, renamed or
    hand-edited object keeps a stale record), else the native name unchanged."""
    if recorded and recorded != native:
        try:
            if rules.storage_name(recorded) == native:
                return recorded
        except InvalidArgumentError:  # not a name any store of this backend could hold
            pass
    return native


def utf8_field_problem(value: Value, rule: str) -> str | None:
    """Why a backend whose fields are JSON text cannot hold ``value`` (fields given as octets that
    are not UTF-8), followed by the backend's ``rule``; None if it can. Names fields, never values."""
    raw = value.raw
    if not isinstance(raw, Mapping):
        return None
    binary = [key for key, item in raw.items() if isinstance(item, bytes) and field_text(item) is None]
    if not binary:
        return None
    which = f"field {binary[0]!r} holds" if len(binary) == 1 else f"fields {', '.join(map(repr, binary))} hold"
    return f"{which} octets that are not UTF-8: {rule}"


def check_utf8_fields(value: Value, rule: str) -> None:
    """``InvalidArgumentError`` (before any I/O) with ``utf8_field_problem``'s reason, if any."""
    problem = utf8_field_problem(value, rule)
    if problem is not None:
        raise InvalidArgumentError(problem)


def upsert(
    update: Callable[[], T],
    create: Callable[[], T],
    *,
    missing: Callable[[BaseException], bool],
    exists: Callable[[BaseException], bool],
    vanished: str | None = None,
) -> T:
    """Write to a secret that may not exist yet, on a backend with no native upsert.

    ``update()``; if that finds the secret ``missing``, ``create()``; if another writer created it
    in between (``exists``), ``update()`` once more, so two first writers both succeed, the later
    one winning. ``vanished``: the ``ConflictError`` message when that last update finds the
    secret gone again (created and deleted meanwhile); None lets that error through as it is.
    """
    try:
        return update()
    except Exception as exc:
        if not missing(exc):
            raise
    try:
        return create()
    except Exception as exc:
        if not exists(exc):
            raise
    try:
        return update()
    except Exception as exc:
        if vanished is None or not missing(exc):
            raise
        raise ConflictError(vanished) from exc


def bounded_call(fn: Callable[[], T], seconds: float) -> T:
    """Run ``fn`` (a driver's own request outside any store call, e.g. a probe at open) as one
    attempt of at most ``seconds``, as the store bounds its calls: SDK timeouts that read
    ``request_timeout`` fit inside it, and the caller stops waiting at its end
    (``DeadlineExceededError``) even if the server answers a byte at a time."""
    end = time.monotonic() + seconds
    outcome: list[tuple[bool, Any]] = []

    def attempt() -> None:
        # the attempt's end, as the store's attempts set it, so request_timeout() caps each
        # request and an abandoned attempt starts no further one
        ATTEMPT_END.set(end)
        try:
            outcome.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            outcome.append((False, exc))

    # A daemon thread of its own, not the store's attempt workers: this runs while a driver is
    # being opened, before any store exists, and the contract must not import the machinery.
    worker = threading.Thread(target=contextvars.copy_context().run, args=(attempt,),
                              name="secretkit-bounded-call", daemon=True)
    worker.start()
    worker.join(max(0.0, end - time.monotonic()))
    if not outcome:
        raise DeadlineExceededError(f"no answer within {seconds:g} s")
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value



def host_of(url: object) -> str | None:
    """The host of ``url`` (an SDK client's endpoint), or None: what a driver's optional
    ``server_address`` gives telemetry as ``server.address``. Never raises."""
    from urllib.parse import urlsplit  # here: the contract's import stays cheap

    try:
        return urlsplit(str(url)).hostname if url else None
    except ValueError:
        return None


#: The headers a server says how long to wait in: the standard one (seconds or an HTTP date),
#: and the millisecond ones Microsoft services add (azure-core reads the same three).
_DELAY_HEADERS = (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0))


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The delay a throttled or unavailable server asked for, in seconds (None: it said none,
    or nothing readable). ``headers`` is looked up case-insensitively."""
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    for header, unit in _DELAY_HEADERS:
        text = lower.get(header, "").strip()
        if not text:
            continue
        try:
            seconds = float(text) * unit
        except ValueError:
            seconds = _http_date_delay(text) if unit == 1.0 else -1.0
        if seconds >= 0 and seconds == seconds and seconds != float("inf"):  # finite, not negative
            return seconds
    return None


def _http_date_delay(text: str) -> float:
    """Seconds until an HTTP date (``Retry-After: Wed, 21 Oct 2015 07:28:00 GMT``); -1 if unreadable."""
    from email.utils import parsedate_to_datetime  # rare: only for the date form

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return -1.0
    return max(0.0, when.timestamp() - time.time())
