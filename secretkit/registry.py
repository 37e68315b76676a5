"""URL scheme → driver factory, imported only when a store of that scheme is opened.

Every backend, built-in or third-party, registers the same way: an entry point in the
``secretkit.drivers`` group, named by the scheme, whose value is ``"module:factory"``, followed
by ``[extra]`` when the driver's SDK comes with an extra of its distribution. secretkit's own
backends are the entry points of its ``pyproject.toml``; this module names none of them. A
factory is called as ``factory(url: StoreURL, options: dict, client=None)`` and returns a driver.

Entry points are installed metadata, so secretkit run from a source tree that was never
installed (only on ``sys.path``) knows no scheme: opening one raises a ``ConfigError`` saying to
install it (``pip install -e .``). There is deliberately no fallback list to drift from
``pyproject.toml``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union, overload

from secretkit.config import default_url, load_config_file, split_options
from secretkit.errors import ConfigError, SecretError
from secretkit.store import SecretStore
from secretkit.url import StoreURL, mask_credentials, url_credentials_in

if TYPE_CHECKING:
    from secretkit.layered import LayeredStore

ENTRY_POINT_GROUP = "secretkit.drivers"
#: The distribution whose entry points are secretkit's own backends (they win a scheme clash).
DISTRIBUTION = "secretkit"


@dataclass(frozen=True)
class Registration:
    """Where a scheme's driver comes from."""

    factory: str
    """``"module:function"``."""
    distribution: str | None = None
    """The installed distribution that declares it (None: ``register()`` in this process)."""
    extras: tuple[str, ...] = ()
    """The distribution's extras that install the driver's SDK (for the install hint)."""

    def install_hint(self) -> str | None:
        """``pip install 'dist[extra]'``, or None when no extra brings the SDK."""
        if self.distribution is None or not self.extras:
            return None
        return f"pip install '{self.distribution}[{','.join(self.extras)}]'"


_registered: dict[str, Registration] = {}
#: sys.path at the last scan → what the scan found: reading every distribution's metadata takes
#: milliseconds, too slow for each ``open``; a changed ``sys.path`` scans again.
_scanned: tuple[tuple[str, ...], dict[str, Registration]] | None = None

#: What ``open`` accepts for a layered store: URLs, already-open stores, or nested lists of them.
Layers = Sequence[Union[str, SecretStore, "Layers"]]
#: What the layered overload of ``open`` takes. Sequence (covariant), so a ``list[str]`` or a
#: ``list[SecretStore]`` fits; a ``str`` is a ``Sequence[str]`` too, but the URL overload comes
#: first and wins for it. (An argument typed ``str | list[str]`` is seen as a ``LayeredStore``.)
LayerList = Sequence[Union[str, SecretStore, Layers]]


def register(scheme: str, factory: str) -> None:
    """Register a driver factory (``"module:function"``) for ``scheme`` in this process (it
    takes precedence over an installed entry point of the same name)."""
    _registered[scheme.lower()] = Registration(factory)


def schemes() -> list[str]:
    """Every scheme that can be opened: installed entry points and ``register()``-ed ones."""
    return sorted({*_registered, *registrations()})


def registrations() -> dict[str, Registration]:
    """Every installed entry point of the ``secretkit.drivers`` group, by scheme.

    When two distributions declare one scheme, secretkit's own wins, then the first in name
    order, so what a scheme opens never depends on the order of ``sys.path``.
    """
    global _scanned
    key = tuple(sys.path)
    if _scanned is not None and _scanned[0] == key:
        return _scanned[1]
    from importlib.metadata import entry_points

    found: dict[str, Registration] = {}
    declared = sorted(
        entry_points(group=ENTRY_POINT_GROUP),
        key=lambda ep: (_dist_name(ep) != DISTRIBUTION, _dist_name(ep) or "", ep.name),
    )
    for ep in declared:
        factory, _, extras = ep.value.partition("[")
        # parsed here: ``EntryPoint.extras`` splits a hyphenated extra ("file-keyring") in two
        names = tuple(e.strip() for e in extras.rstrip("] ").split(",") if e.strip())
        found.setdefault(ep.name.lower(), Registration(factory.strip().replace(" ", ""), _dist_name(ep), names))
    _scanned = (key, found)
    return found


def _dist_name(ep: Any) -> str | None:
    dist = getattr(ep, "dist", None)
    return None if dist is None else str(dist.name)


def _resolve(scheme: str) -> Callable[..., Any]:
    found = _registered.get(scheme) or registrations().get(scheme)
    if found is None:
        if not any(reg.distribution == DISTRIBUTION for reg in registrations().values()):
            raise ConfigError(
                f"unknown store scheme {scheme!r}: secretkit's backends are registered by its installed "
                f"metadata (entry points of the {ENTRY_POINT_GROUP!r} group), and none is installed; "
                "install secretkit (pip install secretkit, or pip install -e . in a source tree)"
            )
        raise ConfigError(f"unknown store scheme {scheme!r}; known: {', '.join(schemes())}")
    module_name, _, attr = found.factory.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        # Drivers import their SDK at module top, so a missing extra surfaces here, once.
        missing = getattr(exc, "name", None) or ""
        hint = found.install_hint()
        package = module_name.partition(".")[0]
        ours = missing == package or missing.startswith(f"{package}.")  # a bug of the driver's own, not a missing SDK
        if hint is not None and not ours:
            raise ConfigError(f"the {scheme}:// store needs the {missing or 'SDK'!r} package: {hint}") from exc
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
