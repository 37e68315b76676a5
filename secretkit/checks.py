"""The checks a store makes before any I/O, against its backend's own rules: names, version
ids, stages, ``max_age``, values (size, field names, the driver's ``ValueLimits``) and
read-only stores. Each failure is a typed error stating the rule, never the value.
"""

from __future__ import annotations

from collections.abc import Callable

from secretkit.drivers.base import Capabilities, Driver, History, ValueLimits
from secretkit.errors import InvalidArgumentError, NotSupportedError, SecretError
from secretkit.names import NameRules, check_field_name
from secretkit.secret import Kind, SecretInput, Stage, Value

_STAGES = (Stage.CURRENT, Stage.PREVIOUS, Stage.PENDING)


class Checks:
    """One store's checks. ``fill`` names the secret and backend on an error raised below."""

    def __init__(
        self, driver: Driver, names: NameRules, stages: str | None, fill: Callable[[SecretError, str | None], SecretError],
    ) -> None:
        self._driver = driver
        self._names = names
        self._stages = stages
        self._fill = fill

    @property
    def _capabilities(self) -> Capabilities:
        return self._driver.capabilities  # read at each check: a driver may change what it declares

    def name(self, name: str) -> None:
        try:
            self._names.check(name)
        except SecretError as exc:
            raise self._fill(exc, None) from None

    def writable(self, name: str) -> None:
        if self._capabilities.read_only:
            backend = self._driver.backend
            raise NotSupportedError(f"the {backend} store is read-only", name=name, backend=backend)

    def version(self, name: str, version: object, what: str) -> None:
        if not isinstance(version, str) or not version or version != version.strip():
            raise InvalidArgumentError(
                f"{what} is a non-empty version id str without surrounding spaces (got {type(version).__name__})",
                name=name, backend=self._driver.backend,
            )

    def read(self, name: str, version: str | None, stage: str | None, max_age: object = None) -> None:
        self.name(name)
        backend = self._driver.backend
        if version is not None and stage is not None:
            raise InvalidArgumentError("pass version or stage, not both", name=name, backend=backend)
        if version is not None:
            self.version(name, version, "version")
            if not self._capabilities.versions:
                raise NotSupportedError("this backend keeps no versions", name=name, backend=backend)
        if stage is not None and stage != Stage.CURRENT:
            if stage not in _STAGES:
                raise InvalidArgumentError(f"unknown stage {stage!r}; use one of {_STAGES}", name=name, backend=backend)
            if self._stages is None and not (stage == Stage.PREVIOUS and isinstance(self._driver, History)):
                raise NotSupportedError(f"this backend has no {stage!r} stage", name=name, backend=backend)
        self.max_age(name, max_age)

    def max_age(self, name: str, max_age: object) -> None:  # a number of seconds, or None
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, (int, float)) or max_age < 0):
            raise InvalidArgumentError("max_age is a number of seconds >= 0", name=name, backend=self._driver.backend)

    def value(self, name: str, value: SecretInput | Value) -> Value:
        """Check ``name`` and ``value`` the way ``put`` does; returns the value to write."""
        self.name(name)
        try:
            wrapped = value if isinstance(value, Value) else Value.of(value)
        except SecretError as exc:
            raise self._fill(exc, name) from None
        if wrapped.kind is Kind.FIELDS:
            for key in wrapped.map:
                check_field_name(key, name=name)
        limit = self._capabilities.max_value_bytes
        if limit is not None and wrapped.size > limit:
            raise InvalidArgumentError(
                f"value is {wrapped.size} bytes; this backend stores at most {limit}", name=name,
                backend=self._driver.backend,
            )
        driver = self._driver
        if isinstance(driver, ValueLimits):
            try:
                driver.check_value(name, wrapped)
            except SecretError as exc:
                raise self._fill(exc, name) from None
        return wrapped
