"""URL scheme → driver factory, imported only when a store of that scheme is opened.

Third-party drivers register under the ``secretkit.drivers`` entry-point group with the
scheme as name and ``"module:factory"`` as value. A factory is called as
``factory(url: StoreURL, options: dict, client=None)`` and returns a driver.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any

from secretkit.config import StoreURL, load_config_file, split_options
from secretkit.errors import ConfigError
from secretkit.store import SecretStore

ENTRY_POINT_GROUP = "secretkit.drivers"

#: scheme → (factory, the extra that installs its SDK or None)
BUILTIN: dict[str, tuple[str, str | None]] = {
    "memory": ("secretkit.drivers.memory:open_driver", None),
    "file": ("secretkit.drivers.file:open_driver", None),
    "vault": ("secretkit.drivers.vault:open_driver", "vault"),
    "vault+http": ("secretkit.drivers.vault:open_driver", "vault"),
    "vault+https": ("secretkit.drivers.vault:open_driver", "vault"),
    "openbao": ("secretkit.drivers.vault:open_driver", "vault"),
    "aws-sm": ("secretkit.drivers.aws.driver:open_driver", "aws"),
    "gcp-sm": ("secretkit.drivers.gcp:open_driver", "gcp"),
    "k8s": ("secretkit.drivers.kubernetes:open_driver", "k8s"),
}

_registered: dict[str, tuple[str, str | None]] = {}


def register(scheme: str, factory: str) -> None:
    """Register a driver factory (``"module:function"``) for ``scheme`` in this process."""
    _registered[scheme.lower()] = (factory, None)


def schemes() -> list[str]:
    """Every scheme that can be opened: built-in, registered and installed entry points."""
    return sorted({*BUILTIN, *_registered, *_entry_points()})


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _resolve(scheme: str) -> Callable[..., Any]:
    spec, extra = _registered.get(scheme) or BUILTIN.get(scheme) or (None, None)
    if spec is None:
        spec = _entry_points().get(scheme)
    if spec is None:
        raise ConfigError(f"unknown store scheme {scheme!r}; known: {', '.join(schemes())}")
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        # Drivers import their SDK at module top, so a missing extra surfaces here, once.
        missing = getattr(exc, "name", None) or ""
        if extra is not None and not missing.startswith("secretkit"):
            raise ConfigError(
                f"the {scheme}:// store needs the {missing or 'SDK'!r} package: pip install 'secretkit[{extra}]'"
            ) from exc
        raise
    factory: Callable[..., Any] = getattr(module, attr)
    return factory


def open(
    url: str | None = None,
    *,
    client: Any = None,
    config: str | os.PathLike[str] | None = None,
    **options: Any,
) -> SecretStore:
    """Open the store a URL names, e.g. ``"memory://"``, ``"vault://host:8200/secret"``.

    ``url`` defaults to the ``SECRETKIT_URL`` environment variable. Options come from the
    URL's query, then the ``config`` TOML file, then keyword arguments (later wins);
    ``client`` passes a ready SDK client to the driver.
    """
    file_options: dict[str, Any] = {}
    if config is not None:
        file_options = load_config_file(config)
        file_url = file_options.pop("url", None)
        url = url or file_url
    url = url or os.environ.get("SECRETKIT_URL")
    if not url:
        raise ConfigError(
            "no store URL: call secretkit.open(url) or set SECRETKIT_URL "
            "(e.g. memory://, file:///path/to/store, vault://host:8200/secret, aws-sm://?region=eu-west-1)"
        )
    parsed, params = StoreURL.parse(url)
    merged: dict[str, Any] = {**params, **_flatten(file_options), **options}
    store_options, driver_options = split_options(merged)
    factory = _resolve(parsed.scheme)
    driver = factory(parsed, driver_options, client=client)
    return SecretStore(driver, options=store_options, url=url)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """TOML tables become dotted keys so they merge with URL parameters key by key."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
