"""Where options come from: URL query parameters and keyword arguments (dotted keys, the
``cache_ttl`` aliases) and TOML config files, split into the store's part and the driver's.

The models themselves, and the one validation path every source goes through, are in
``secretkit.policies`` (``StoreOptions`` stays importable from here: it is public API).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from secretkit.errors import ConfigError
from secretkit.policies import CachePolicy, StoreOptions, validate

__all__ = ["StoreOptions", "default_url", "load_config_file", "nest", "split_options", "user_data_dir"]


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
