"""Store URLs: parsing (``StoreURL``) and showing them safely (credentials masked).

A leaf module: no threads, no I/O, nothing of the store's machinery. Drivers reach it through
``secretkit.drivers.base``; the store and the registry use the masking helpers on error
messages, which may quote an endpoint URL with a password in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import SplitResult, parse_qsl, urlsplit

from secretkit.errors import ConfigError, SecretError

#: Query parameters whose values are never shown (in reprs, errors or logs).
_SENSITIVE_PARAMS = ("token", "password", "secret", "key", "credential")


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL: ``scheme://host:port/path?query``."""

    scheme: str
    host: str
    port: int | None
    path: str
    raw: str

    @classmethod
    def parse(cls, url: str) -> tuple[StoreURL, dict[str, str]]:
        if not isinstance(url, str):
            raise ConfigError(f"a store URL is a str, not {type(url).__name__}")
        try:
            parts: SplitResult = urlsplit(url)
            port = parts.port
        except ValueError as exc:  # a bad port, or a broken IPv6 literal ("vault://[::1")
            raise ConfigError(f"store URL {redact_url(url)!r} is malformed: {_why(exc)}") from None
        if not parts.scheme:
            raise ConfigError(f"store URL {redact_url(url)!r} has no scheme; e.g. memory://, file:///path, vault://host:8200/secret")
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        return cls(parts.scheme.lower(), parts.hostname or "", port, parts.path, url), params


def _why(exc: ValueError) -> str:
    """A URL parser's complaint without the URL (which may hold a password) in it."""
    text = str(exc)
    return "bad port" if "port" in text.lower() else "invalid IPv6 address" if "IPv6" in text else "cannot parse it"


#: What follows the ``@`` of user info: the host and port, then the path. Deliberately loose
#: (anything but the characters that end an authority or belong to a query), so that a
#: malformed host or port ("host:badport", "[::1", "[fe80::1%eth0]:x") is still recognised
#: as one and the password before it masked: the URLs whose parsing fails are exactly those
#: shown in an error message.
_HOST = re.compile(r"[^/?#@&=]*(?:[/?#]|$)")


def redact_url(url: str) -> str:
    """The URL as safe to show: user info (``user:password@``), sensitive query values and
    credentials inside URL-valued options (``endpoint_url=http://u:p@h``) become ``***``.

    Built to fail safe on malformed input: a password containing ``/`` or ``?`` makes a naive
    parser see the rest as a path, so everything up to the last ``@`` of the authority part is
    masked, even if that masks a little too much.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if at >= 0 and _HOST.match(rest, at + 1):  # user info, whatever characters the password holds
        rest = "***" + rest[at:]
    head, q, query = rest.partition("?")
    head = head.partition("#")[0]
    shown_query = "&".join(_redact_param(k, v) for k, v in parse_qsl(query, keep_blank_values=True))
    return f"{scheme}{sep}{head}" + (f"?{shown_query}" if q else "")


#: The user info of a URL inside any text (an SDK's "Could not connect to the endpoint URL:
#: "http://user:pw@host/"", a driver's detail): up to the last ``@`` before a space or quote, so a
#: password holding ``/``, ``?`` or ``#`` is masked whole.
_URL_USER_INFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?!\*\*\*@)[^\s'\"<>`]*@")


def mask_url_credentials(text: str) -> str:
    """``text`` with the user info (``user:password@``) of every URL in it shown as ``***@``."""
    return _URL_USER_INFO.sub(r"\g<scheme>***@", text)


def url_credentials_in(error: BaseException) -> bool:
    """True if the text of ``error`` or of any exception chained to it (``__cause__`` or
    ``__context__``: what a traceback prints) shows a URL's user info."""
    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        exc = pending.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        try:
            text = str(exc)
        except Exception:  # an SDK exception whose __str__ fails: assume the worst
            return True
        if _URL_USER_INFO.search(text):
            return True
        pending.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)
    return False


def mask_credentials(error: SecretError) -> None:
    """Mask URL user info in ``error``'s own message (in place)."""
    masked = mask_url_credentials(error.message)
    if masked != error.message:
        error.message = masked
        error.args = (masked, *error.args[1:])


def _redact_param(key: str, value: str) -> str:
    if any(s in key.lower() for s in _SENSITIVE_PARAMS):
        return f"{key}=***"
    if "://" in value or "@" in value:
        value = redact_url(value)
    return f"{key}={value}"
