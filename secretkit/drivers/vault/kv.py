"""What the KV v1 and KV v2 drivers share: the client and its token keeper, where a name lives
(mount, folder), the value encoding, the value checks and the recursive listing."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from secretkit.drivers.base import Capabilities, Classified, InvalidArgumentError, NameRules, Value
from secretkit.drivers.vault import codec
from secretkit.drivers.vault.auth import TokenKeeper
from secretkit.drivers.vault.errors import classify
from secretkit.drivers.vault.leases import VaultLeases

T = TypeVar("T")


class VaultDriverBase(VaultLeases):
    """One KV mount (and folder) of one server; dynamic credentials of any engine (``VaultLeases``)."""

    backend = codec.BACKEND
    capabilities: Capabilities
    names: NameRules = codec.NAMES
    sdk_loggers: tuple[str, ...] = ("hvac", "urllib3", "requests")
    #: KV maps under ``data``; the token in the request header and in login replies.
    sdk_value_keys: tuple[str, ...] = ("data", "X-Vault-Token", "x-vault-token", "client_token")
    #: KV v1 refuses a version without fields.
    empty_map_ok = True

    def __init__(self, client: Any, keeper: TokenKeeper, mount: str, prefix: str, *, owns_client: bool,
                 max_value_bytes: int, value_key: str = codec.DEFAULT_VALUE_KEY) -> None:
        self.client = client
        self.mount = mount.strip("/")
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.value_key = value_key
        self._keeper = keeper
        self._owns_client = owns_client
        self.capabilities = replace(self.capabilities, max_value_bytes=max_value_bytes)

    def _path(self, name: str) -> str:
        return self.prefix + name

    def _run(self, call: Callable[[], T]) -> T:
        return self._keeper.run(call)

    def _encode(self, value: Value) -> dict[str, Any]:
        return codec.encode_value(value, self.value_key)

    def _decode(self, data: Any) -> Value:
        return codec.decode_value(data, self.value_key)

    def check_value(self, name: str, value: Value) -> None:
        """``InvalidArgumentError`` (before any I/O) for a value that would not read back the same."""
        codec.check_value(value, self.value_key, empty_map_ok=self.empty_map_ok)

    def classify(self, exc: BaseException) -> Classified | None:
        return classify(exc)

    def close(self) -> None:
        if self._owns_client:
            self.client.adapter.close()

    def _walk(self, prefix: str, list_folder: Callable[[str], Sequence[str]]) -> Iterator[str]:
        """Names under ``prefix``: LIST folder by folder, descending only where names can match."""
        start = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        pending = [start]
        while pending:
            folder = pending.pop()
            for key in list_folder(self.prefix + folder):
                name = folder + key
                if key.endswith("/"):
                    if name.startswith(prefix) or prefix.startswith(name):
                        pending.append(name)
                elif name.startswith(prefix) and self.names.native(name):
                    yield name


def keys_of(reply: Any) -> list[Any]:
    """The ``keys`` of a LIST reply (none when the reply has none)."""
    data = reply.get("data") if isinstance(reply, dict) else None
    keys = (data or {}).get("keys") or []
    return keys if isinstance(keys, list) else []
