"""A logging filter that masks secret values in log lines, ours and the SDKs'.

botocore at DEBUG prints whole response bodies (``SecretString``), hvac/urllib3 and the
Kubernetes client can print request bodies and tokens. secretkit never logs values itself;
this filter is for the SDK loggers around it. Logger-level filters do not see records that
child loggers propagate, so the filter is put on handlers as well.

This module names no backend: each driver declares its SDK's loggers (``sdk_loggers``) and the
JSON keys that carry values (``sdk_value_keys``), and opening a store adds them here.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"

_QUOTED = r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')"""
#: Keys whose values are credentials whatever the SDK (not values of one backend's API: those
#: are declared by each driver as ``sdk_value_keys`` and added by ``install_redaction``).
CREDENTIAL_KEYS = ("password", "passwd", "token", "secret_id", "private_key", "api_key")
_AUTHORIZATION = (
    re.compile(r"((?:authorization|Authorization)['\"]?\s*[:=]\s*['\"]?(?:Bearer|bearer|Basic)\s+)[^\s'\",}]+"),
    rf"\1{MASK}",
)

#: Loggers the filter always goes on; each store adds its driver's ``sdk_loggers``.
DEFAULT_LOGGERS = ("secretkit",)


class _Keys:
    """The keys masked so far (credentials, and every driver's declared value keys) and the
    patterns built from them; rebuilt only when a key is added."""

    def __init__(self) -> None:
        self.keys: tuple[str, ...] = ()
        self.loggers: tuple[str, ...] = DEFAULT_LOGGERS
        self.then_quote: re.Pattern[str]
        self.patterns: list[tuple[re.Pattern[str], str]]
        self._lock = threading.Lock()
        self.add(CREDENTIAL_KEYS)

    def add(self, keys: Iterable[str]) -> None:
        with self._lock:
            new = tuple(k for k in dict.fromkeys(keys) if k not in self.keys)
            if not new:
                return
            self.keys = (*self.keys, *new)
            alternatives = "|".join(re.escape(k) for k in sorted(self.keys, key=len, reverse=True))
            key = rf"""((?:["']|\b)(?:{alternatives})["']?\s*[:=]\s*)"""
            # A sensitive key followed by an opening quote: the quoted value is masked by _quoted_end.
            self.then_quote = re.compile(rf"{key}b?([\"'])")
            self.patterns = [
                # a flat map ("data": {...} of Vault KV, Kubernetes Secrets), then a bare word
                (re.compile(rf"{key}(\{{[^{{}}]*\}}|b?{_QUOTED})"), rf"\1'{MASK}'"),
                (re.compile(rf"{key}(b?{_QUOTED}|[^\s,;}}&{{]+)"), rf"\1'{MASK}'"),
                _AUTHORIZATION,
            ]

    def add_loggers(self, names: Iterable[str]) -> None:
        with self._lock:
            self.loggers = tuple(dict.fromkeys((*self.loggers, *names)))


_keys = _Keys()


def mask_value_keys(keys: Iterable[str]) -> None:
    """Mask what follows each of ``keys`` in every line ``redact`` sees, from now on (process-wide:
    the filter is shared). ``SecretStore`` calls it with its driver's ``sdk_value_keys``."""
    _keys.add(keys)


def _quoted_end(text: str, start: int, quote: str) -> int:
    """Index just past the quote that closes the value opened at ``start``.

    A value logged inside a bytes ``repr`` of a JSON body (botocore's "Response body: b'...'")
    has its JSON escapes doubled: an embedded quote shows as two backslashes and a quote. A
    quote therefore only closes the value when the backslashes before it number a multiple
    of four; this over-masks a value that ends in a backslash rather than leak one that
    contains a quote. No closing quote: mask to the end.
    """
    backslashes = 0
    for i in range(start + 1, len(text)):
        ch = text[i]
        if ch == "\\":
            backslashes += 1
            continue
        if ch == quote and backslashes % 4 == 0:
            return i + 1
        backslashes = 0
    return len(text)


def _mask_quoted(text: str) -> str:
    out = []
    pos = 0
    while True:
        match = _keys.then_quote.search(text, pos)
        if match is None:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos : match.start()])
        out.append(f"{match.group(1)}'{MASK}'")
        pos = _quoted_end(text, match.start(2), match.group(2))


def redact(text: str) -> str:
    """``text`` with anything that looks like a secret value or credential masked."""
    text = _mask_quoted(text)
    for pattern, repl in _keys.patterns:
        text = pattern.sub(repl, text)
    return text


#: Record attributes in which SDKs put whole requests and responses for structured log formatters
#: (google-api-core's ``StructuredLogFormatter`` prints them; so do JSON log handlers).
STRUCTURED_EXTRAS = ("request", "response", "httpRequest", "httpResponse")


class RedactingFilter(logging.Filter):
    """Rewrites a record's message, and the request/response extras structured SDK logs carry,
    with values masked; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging system's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        for attr in STRUCTURED_EXTRAS:
            extra = record.__dict__.get(attr)
            if extra is not None:
                record.__dict__[attr] = _redact_structure(extra)
        return True


def _redact_structure(item: object) -> object:
    """A logged request or response with every string in it passed through ``redact``."""
    if isinstance(item, str):
        return redact(item)
    if isinstance(item, dict):
        return {k: _redact_structure(v) for k, v in item.items()}
    if isinstance(item, (list, tuple)):
        return [_redact_structure(v) for v in item]
    return redact(repr(item)) if not isinstance(item, (int, float, bool)) else item


def install_redaction(
    loggers: Iterable[str] | None = None,
    handlers: Iterable[logging.Handler] | None = None,
    *,
    value_keys: Iterable[str] = (),
) -> RedactingFilter:
    """Put one ``RedactingFilter`` on the named loggers (and their existing children) and on
    ``handlers`` (default: the root logger's handlers), masking ``value_keys`` besides the keys
    already declared. ``loggers`` defaults to ``secretkit`` and every SDK logger the drivers of
    stores opened so far declared. Idempotent; returns the filter."""
    flt = _shared
    _keys.add(value_keys)
    targets: list[logging.Filterer] = list(logging.getLogger().handlers if handlers is None else handlers)
    names = _keys.loggers if loggers is None else tuple(loggers)
    if loggers is not None:
        _keys.add_loggers(names)
    for name in names:
        targets.append(logging.getLogger(name))
    for existing in list(logging.root.manager.loggerDict):
        if existing.startswith(tuple(f"{n}." for n in names)):
            targets.append(logging.getLogger(existing))
    for target in targets:
        if flt not in target.filters:
            target.addFilter(flt)
    return flt


_shared = RedactingFilter()
