"""URL scheme → driver factory, imported only when a store of that scheme is opened.

Third-party drivers register under the ``secretkit.drivers`` entry-point group with the
scheme as name and ``"module:factory"`` as value. A factory is called as
``factory(url: StoreURL, options: dict, client=None)`` and returns a driver.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Union, overload

from secretkit.config import default_url, load_config_file, split_options
from secretkit.errors import ConfigError, SecretError
from secretkit.store import SecretStore
from secretkit.url import StoreURL, mask_credentials, url_credentials_in

if TYPE_CHECKING:
    from secretkit.layered import LayeredStore

ENTRY_POINT_GROUP = "secretkit.drivers"

#: scheme → (factory, the extra that installs its SDK or None)
BUILTIN: dict[str, tuple[str, str | None]] = {
    "memory": ("secretkit.drivers.memory:open_driver", None),
    "file": ("secretkit.drivers.file.driver:open_driver", None),
    "files": ("secretkit.drivers.files.driver:open_driver", None),
    "env": ("secretkit.drivers.env:open_driver", None),
    "vault": ("secretkit.drivers.vault.driver:open_driver", "vault"),
    "vault+http": ("secretkit.drivers.vault.driver:open_driver", "vault"),
    "vault+https": ("secretkit.drivers.vault.driver:open_driver", "vault"),
    "openbao": ("secretkit.drivers.vault.driver:open_driver", "vault"),
    "aws-sm": ("secretkit.drivers.aws.driver:open_driver", "aws"),
    "gcp-sm": ("secretkit.drivers.gcp.driver:open_driver", "gcp"),
    "k8s": ("secretkit.drivers.kubernetes.driver:open_driver", "k8s"),
}

_registered: dict[str, tuple[str, str | None]] = {}

#: What ``open`` accepts for a layered store: URLs, already-open stores, or nested lists of them.
Layers = Sequence[Union[str, SecretStore, "Layers"]]
#: What the layered overload of ``open`` takes. Sequence (covariant), so a ``list[str]`` or a
#: ``list[SecretStore]`` fits; a ``str`` is a ``Sequence[str]`` too, but the URL overload comes
#: first and wins for it. (An argument typed ``str | list[str]`` is seen as a ``LayeredStore``.)
LayerList = Sequence[Union[str, SecretStore, Layers]]


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


# Two signatures so that strict type checkers see what a list opens: ``open([...]).origin(name)``
# and ``.layers`` are ``LayeredStore``'s. A list read from a config file is only known at run time,
# so ``open(config=...)`` is typed ``SecretStore`` (a ``LayeredStore`` is one).
@overload
def open(
    url: str | None = None,
    *,
    client: Any = None,
    config: str | os.PathLike[str] | None = None,
    **options: Any,
) -> SecretStore: ...


@overload
def open(
    url: LayerList,
    *,
    client: Any = None,
    config: str | os.PathLike[str] | None = None,
    **options: Any,
) -> LayeredStore: ...


def open(
    url: str | Layers | None = None,
    *,
    client: Any = None,
    config: str | os.PathLike[str] | None = None,
    **options: Any,
) -> SecretStore:
    """Open the store a URL names, e.g. ``"memory://"``, ``"vault://host:8200/secret"``.

    ``url`` defaults to the ``SECRETKIT_URL`` environment variable, else the encrypted file
    store in the user's data directory (``default_url()``); a ``NotFoundError`` from that
    implicit default says it came from there because ``SECRETKIT_URL`` is not set. Options come from the
    URL's query, then the ``config`` TOML file, then keyword arguments (later wins);
    ``client`` passes a ready SDK client to the driver.

    A list (``["env://?prefix=APP_", "file:///…"]``, URLs or already-open stores, also as
    ``url = [...]`` in the config file) opens a layered store (``secretkit.layered``): reads try
    each layer in turn, falling through only on ``NotFoundError``; writes go to the first
    writable layer. Each layer takes its options in its own URL query. Type checkers see a
    list open a ``LayeredStore`` (``origin``, ``layers``) and a URL open a ``SecretStore``.
    """
    file_options: dict[str, Any] = {}
    if config is not None:
        file_options = load_config_file(config)
        file_url = file_options.pop("url", None)
        url = file_url if url is None else url
    # One rule everywhere (open, the CLI, the examples): $SECRETKIT_URL, else the encrypted file
    # store in the user's data directory. That store is personal: a service deployed without
    # SECRETKIT_URL reads it too, so what it cannot find there says where it looked and why.
    hint = None
    if url is None:
        url = default_url()
        if not os.environ.get("SECRETKIT_URL"):
            hint = f"looked in the default store {url}, used because SECRETKIT_URL is not set"
    if isinstance(url, str) and not url.strip():
        raise ConfigError("a store URL must not be empty (omit it for $SECRETKIT_URL or the default store)")
    if not isinstance(url, str):
        return _open_layered(url, client=client, options={**_flatten(file_options), **options})
    parsed, params = StoreURL.parse(url)
    merged: dict[str, Any] = {**params, **_flatten(file_options), **options}
    store_options, driver_options = split_options(merged)
    factory = _resolve(parsed.scheme)
    try:
        driver = factory(parsed, driver_options, client=client)
    except SecretError as exc:
        # A factory's error may quote an option's URL, and chain the SDK's complaint about it
        # ("Invalid endpoint: http://user:password@…"): mask the one, drop the other.
        if not url_credentials_in(exc):
            raise
        mask_credentials(exc)
        exc.__cause__ = exc.__context__ = None
        raise exc.with_traceback(None) from None
    return SecretStore(driver, options=store_options, url=url, not_found_hint=hint)


def _open_layered(layers: Any, *, client: Any, options: dict[str, Any]) -> LayeredStore:
    """A ``LayeredStore`` over ``layers``; the layers opened here are closed with it."""
    from secretkit.layered import LayeredStore

    if isinstance(layers, (bytes, Mapping)) or not isinstance(layers, Sequence) or not layers:
        raise ConfigError("a layered store is a non-empty list of store URLs or open stores")
    if client is not None or options:
        raise ConfigError(
            "a layered store takes no client or options of its own: give each layer its options in its URL "
            f"query (e.g. file:///path?cache=true); got {sorted(options) or ['client']}"
        )
    stores: list[SecretStore] = []
    owned: list[SecretStore] = []
    try:
        for layer in layers:
            if isinstance(layer, SecretStore):
                stores.append(layer)
            elif isinstance(layer, str) or (isinstance(layer, Sequence) and not isinstance(layer, bytes)):
                if not layer:
                    raise ConfigError("a layer of a layered store is an empty URL or list")
                # a nested list is a layered layer (what open(list) makes)
                opened = open(layer) if isinstance(layer, str) else _open_layered(layer, client=None, options={})
                stores.append(opened)
                owned.append(opened)
            else:
                raise ConfigError(f"a layer is a store URL or an open SecretStore, not {type(layer).__name__}")
    except BaseException:
        for store in owned:
            store.close()
        raise
    return LayeredStore(stores, owned=owned)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """TOML tables become dotted keys so they merge with URL parameters key by key."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
