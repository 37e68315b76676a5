"""The call pipeline a store holds: every driver call runs through it, the same on every backend.

One call, in order: retry (``retry.call``: transient codes only, within the ``RetryPolicy``'s
deadline), each attempt run where its caller can stop waiting for it (``attempts``, for remote
backends), the SDK's exceptions translated into portable errors that name the secret and the
backend and never carry a value (``fill``), and one audit event for the whole call.

``read`` is the cache's loader: a miss goes store → cache → here → driver, in a straight line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TypeVar

from secretkit import retry as _retry
from secretkit.attempts import AttemptRunner
from secretkit.audit import AuditEvent, AuditHook, emit
from secretkit.drivers.base import BatchReader, Driver, History, Record, VersionProbe
from secretkit.entries import Key, name_of
from secretkit.errors import NotFoundError, SecretError, error_for
from secretkit.observer import NO_OBSERVER, Observer
from secretkit.policies import RetryPolicy
from secretkit.secret import Secret, Stage
from secretkit.url import mask_credentials, mask_url_credentials, url_credentials_in

T = TypeVar("T")


class Calls:
    """The call pipeline of one store (see the module docstring).

    ``hooks`` is the store's own list of audit hooks (shared, so hooks added later count);
    ``read_pending`` reads a pending value kept in a companion, where stages are ``emulated``;
    ``cache`` is the audit label of a backend read (``"miss"`` when the store caches, else None).
    """

    def __init__(
        self, driver: Driver, policy: RetryPolicy, *, hooks: list[AuditHook], not_found_hint: str | None = None,
        stages: str | None = None, read_pending: Callable[[str], Record] | None = None, cache: str | None = None,
    ) -> None:
        self.driver = driver
        self.backend = driver.backend
        self.policy = policy
        self.hooks = hooks
        self.not_found_hint = not_found_hint
        self._stages = stages
        self._read_pending = read_pending
        self._cache = cache
        # a remote attempt runs where its caller can stop waiting for it; the runner's worker
        # threads (started on a remote call's first need) belong to this pipeline and end with ``close``
        self.runner = AttemptRunner()
        #: called before every backend read (the change-event consumer starts on the first one)
        self.on_read: Callable[[], None] | None = None
        #: what telemetry hears of each attempt and retry (the store's; a no-op unless it is on)
        self.observer: Observer = NO_OBSERVER

    def close(self) -> None:
        """Stop the attempt workers (an abandoned attempt's worker ends when its attempt does)."""
        self.runner.close()

    # -- reads the cache loads through ----------------------------------------------------

    def read(self, key: Key) -> Secret:
        """Read one key from the backend (audited, retried, translated)."""
        name, version, stage = (key, None, None) if isinstance(key, str) else key  # parts_of, inline: the miss path
        if self.on_read is not None:
            self.on_read()
        driver = self.driver
        if stage == Stage.PENDING and self._stages == "emulated" and self._read_pending is not None:
            record = self._read_pending(name)
        elif stage == Stage.PREVIOUS and self._stages != "native" and isinstance(driver, History):
            # the backend's own history answers ``previous``, whether or not it can rotate
            record = self.call("get", name, partial(driver.read_previous, name), cache=self._cache)
        else:
            native_stage = stage if stage != Stage.CURRENT else None
            record = self.call("get", name, partial(driver.read, name, version=version, stage=native_stage),
                               cache=self._cache)
        return secret_of(name, record)

    def read_many(self, keys: list[Key]) -> dict[Key, Secret | SecretError]:
        """Read several current values: the driver's batch call, else one read per name."""
        driver = self.driver
        if self.on_read is not None:
            self.on_read()
        if not isinstance(driver, BatchReader):
            out: dict[Key, Secret | SecretError] = {}
            for key in keys:
                try:
                    out[key] = self.read(key)
                except SecretError as exc:
                    out[key] = exc
            return out
        if not keys:
            return {}
        names = [name_of(key) for key in keys]
        results: Mapping[str, Record | SecretError] = self.call(
            "get_many", None, partial(driver.read_many, names), cache=self._cache
        )
        answers: dict[Key, Secret | SecretError] = {}
        for key in keys:
            name = name_of(key)
            outcome = results.get(name)
            if isinstance(outcome, Record):
                answers[key] = secret_of(name, outcome)
            else:
                answers[key] = self.fill(outcome or NotFoundError("secret not found"), name)
        return answers

    def probe(self) -> Callable[[str], str] | None:
        """The driver's cheap current-version read, run like any driver call; None if it has none."""
        driver = self.driver
        if not isinstance(driver, VersionProbe):
            return None

        def version_of(name: str) -> str:
            return str(self.call("version_check", name, partial(driver.current_version, name), cache="miss"))

        return version_of

    # -- one call ---------------------------------------------------------------------

    def call(
        self, operation: str, name: str | None, fn: Callable[[], T], *, retry: bool = True, cache: str | None = None,
        sensitive: bool = False,
    ) -> T:
        """One audited, retried, translated driver call (``sensitive``: it carries a value), each
        attempt and the whole call within the retry policy's ``attempt_timeout`` and ``deadline``."""
        start = time.perf_counter()
        attempts = 1
        attempt: Callable[[], T] = partial(self._attempt, name, fn, sensitive)
        if self.observer.on:  # each attempt timed and traced on the caller's thread (see telemetry.py)
            attempt = partial(self.observer.attempt, operation, name, attempt)
        try:
            result, attempts = _retry.call(self.policy, attempt, retry=retry)
        except SecretError as exc:
            attempts = getattr(exc, "attempts", attempts)
            self.audit(operation, name, exc.code.value, start, cache=cache, attempts=attempts)
            raise
        version = getattr(result, "version", None)
        self.audit(
            operation, name, "ok", start, cache=cache, version=version if isinstance(version, str) else None,
            attempts=attempts,
        )
        return result

    def _attempt(self, name: str | None, fn: Callable[[], T], sensitive: bool) -> T:
        """One attempt of a driver call; the SDK's exceptions become portable errors.

        The SDK exception stays as ``__cause__`` (the escape hatch) unless its text may quote a
        value (``Classified.cause_safe``), the call carries a value (``sensitive``: a write),
        whose SDK and driver frames hold it in their locals, or the chain shows a URL with
        credentials (an ``endpoint_url``/``host`` option of ``http://user:password@…``): then
        the error is raised afresh, with no chain and a traceback that starts in the store,
        where values are wrapped. Credentials in a URL are masked in the message too.

        On a remote backend the call runs where its caller can stop waiting for it at the end of
        the attempt (``DeadlineExceededError``; see ``attempts.AttemptRunner``); a local one runs here.
        """
        try:
            return self.runner.run(fn) if self.driver.capabilities.remote else fn()
        except SecretError as exc:
            error = self.fill(exc, name)
            if not sensitive and not url_credentials_in(error):
                raise
            mask_credentials(error)
        except Exception as exc:
            classified = self.driver.classify(exc)
            if classified is None:
                raise
            detail = mask_url_credentials(classified.detail)
            error = error_for(classified.code, detail, name=name, backend=self.backend)
            error.retry_after = classified.retry_after
            if classified.cause_safe and not sensitive and not url_credentials_in(exc):
                raise error from exc
        error.__cause__ = error.__context__ = None
        raise error.with_traceback(None)

    def fill(self, exc: SecretError, name: str | None) -> SecretError:
        """``exc`` naming the secret and the backend (and, for a miss, the store's hint)."""
        if exc.name is None:
            exc.name = name
        if exc.backend is None:
            exc.backend = self.backend
        hint = self.not_found_hint
        if hint and isinstance(exc, NotFoundError) and hint not in exc.message:
            exc.message = f"{exc.message}; {hint}"
            exc.args = (exc.message,)
        return exc

    def audit(
        self, operation: str, name: str | None, outcome: str, start: float, *,
        cache: str | None = None, version: str | None = None, attempts: int = 1,
    ) -> None:
        event = AuditEvent(operation, name, self.backend, outcome, time.perf_counter() - start, cache, version, attempts)
        emit(event, self.hooks)
        if attempts > 1:
            self.observer.retried(operation, attempts - 1)


def secret_of(name: str, record: Record) -> Secret:
    return Secret(name, record.version, record.value, record.created_at, record.stages)
