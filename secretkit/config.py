"""Options as pydantic models; URL query parameters and TOML config files map onto them.

One validation path serves every source, so a bad option reads the same whether it came
from a URL, a keyword argument or a config file.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import SplitResult, parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from secretkit.cache import CachePolicy
from secretkit.errors import ConfigError, SecretError
from secretkit.retry import RetryPolicy

M = TypeVar("M", bound=BaseModel)

#: Query parameters whose values are never shown (in reprs, errors or logs).
_SENSITIVE_PARAMS = ("token", "password", "secret", "key", "credential")


class StoreOptions(BaseModel):
    """Options of the portable store, the same for every backend."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    cache: CachePolicy | None = Field(
        None, description="None: the backend's default (on for remote backends such as vault, aws-sm, gcp-sm, k8s; "
        "off for memory, file)"
    )
    pending_prefix: str = Field(
        "secretkit-pending/",
        description="where a rotation keeps its pending value on backends without native stages (Vault KV v2, GCP): "
        "the companion of NAME is PREFIX + NAME, deleted at promotion",
    )


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


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"retry.max_attempts": "3"}`` → ``{"retry": {"max_attempts": "3"}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"option {key!r} conflicts with option {part!r}")
            node = child
        if isinstance(value, Mapping) and isinstance(node.get(leaf), dict):
            node[leaf].update(value)
        else:
            node[leaf] = value
    return out


#: How store-level options are spelled (in a URL query, keyword arguments or a config file);
#: named in every "unknown option" error, since a driver's own model does not list them.
STORE_OPTION_SPELLINGS = ("cache", "cache_<field>", "cache.<field>", "retry.<field>", "pending_prefix")


def validate(model: type[M], data: Mapping[str, Any], *, what: str) -> M:
    """Validate options, turning pydantic's error into a ``ConfigError`` that names each bad option
    (with a "did you mean" for a misspelt one) and lists the known ones."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        known = sorted(model.model_fields)
        problems = "; ".join(_problem(err, known) for err in exc.errors())
        allowed = ", ".join(known)
        if model is not StoreOptions and "retry" not in model.model_fields:
            allowed += "; store options: " + ", ".join(STORE_OPTION_SPELLINGS)
        raise ConfigError(f"invalid {what} options: {problems} (known options: {allowed})") from None


def _problem(err: Any, known: list[str]) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "(options)"
    message = str(err["msg"])
    if err.get("type") == "extra_forbidden":
        import difflib

        close = difflib.get_close_matches(where, [*known, "cache", "cache_ttl", "retry"], n=1)
        message = "unknown option" + (f" (did you mean {close[0]!r}?)" if close else "")
    return f"{where}: {message}"


def _cache_aliases(options: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``cache=false`` → ``cache.enabled``, ``cache_ttl=60`` → ``cache.ttl``; returns the
    options and, for error messages, how the user spelled each cache option."""
    out: dict[str, Any] = {}
    spelled: dict[str, str] = {}
    for key, value in options.items():
        if key == "cache" and (value is None or isinstance(value, (CachePolicy, Mapping))):
            out[key] = value
        elif key == "cache":
            out["cache.enabled"] = value
            spelled["enabled"] = key
        elif key.startswith("cache_"):
            field = key[len("cache_"):]
            out[f"cache.{field}"] = value
            spelled[field] = key
        else:
            if key.startswith("cache."):
                spelled[key[len("cache."):]] = key
            out[key] = value
    return out, spelled


def split_options(options: Mapping[str, Any]) -> tuple[StoreOptions, dict[str, Any]]:
    """Separate store-level options (retry, cache, ...) from the driver's own."""
    aliased, spelled = _cache_aliases(options)
    nested = nest(aliased)
    store_part = {k: v for k, v in nested.items() if k in StoreOptions.model_fields}
    driver_part = {k: v for k, v in nested.items() if k not in StoreOptions.model_fields}
    cache = store_part.get("cache")
    if isinstance(cache, Mapping):
        try:
            store_part["cache"] = validate(CachePolicy, cache, what="cache")
        except ConfigError as exc:
            message = str(exc)
            for field, key in spelled.items():
                message = message.replace(f"{field}: ", f"{key}: ", 1)
            raise ConfigError(message) from None
    return validate(StoreOptions, store_part, what="store"), driver_part


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML config: top-level keys, or a ``[tool.secretkit]`` table (pyproject.toml).

    ``url`` names the store; ``[retry]``/``[cache]`` tables are store options; every other
    key is an option of the driver.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {os.fspath(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {os.fspath(path)!r} is not valid TOML: {exc}") from None
    section = data.get("tool", {}).get("secretkit", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {os.fspath(path)!r}: [tool.secretkit] must be a table")
    return dict(section)


def user_data_dir() -> Path:
    """Where the default ``file://`` store lives (XDG on Linux, the platform's folder elsewhere)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "secretkit"


def default_url() -> str:
    """``SECRETKIT_URL`` if set, else the encrypted file store in the user's data directory."""
    return os.environ.get("SECRETKIT_URL") or (user_data_dir() / "store").as_uri()
