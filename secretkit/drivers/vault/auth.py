"""Vault/OpenBao authentication for vault://: token, AppRole, Kubernetes, userpass.

``TokenKeeper`` owns the client's token. It renews a renewable token before it expires and,
for the login-based methods, logs in again when the server rejects the token as expired or
revoked -- once per failing call, then the call is tried once more, so a dead token never
becomes a loop of failed requests. It holds no secret values other than what the client
itself needs (the token, and the login credential for re-login).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import hvac.exceptions as hx

from secretkit.drivers.base import AuthenticationError, ConfigError, at_fork
from secretkit.drivers.vault.errors import acl_denied
from secretkit.drivers.vault.options import AuthMethod

T = TypeVar("T")

#: Where Kubernetes mounts a pod's service-account token.
K8S_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


@dataclass(frozen=True, repr=False)
class Credentials:
    """What one auth method needs; ``repr`` never shows a credential."""

    method: AuthMethod
    mount: str
    token: str | None = None
    role_id: str | None = None
    secret_id: str | None = None
    role: str | None = None
    jwt_path: str = K8S_TOKEN_PATH
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(method={self.method!r}, mount={self.mount!r})"

    @property
    def can_login(self) -> bool:
        return self.method != "token"


def token_from_environment() -> str | None:
    """``VAULT_TOKEN``, else ``~/.vault-token``, where the vault and bao CLIs keep the token after a login."""
    token = os.environ.get("VAULT_TOKEN")
    if token:
        return token.strip()
    path = Path.home() / ".vault-token"
    try:
        saved = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return saved or None


def credentials(
    method: AuthMethod,
    *,
    mount: str | None,
    token: str | None,
    role_id: str | None,
    secret_id: str | None,
    role: str | None,
    jwt_path: str | None,
    username: str | None,
    password: str | None,
    need_token: bool = True,
) -> Credentials:
    """Fill each method's settings from options, then from the environment; ConfigError if incomplete."""
    env = os.environ.get
    if method == "token":
        found = token or token_from_environment()
        if found is None and need_token:
            raise ConfigError("no Vault token: set VAULT_TOKEN, log in with the vault/bao CLI (~/.vault-token), "
                              "or choose auth=approle|kubernetes|userpass")
        return Credentials("token", mount or "token", token=found)
    if method == "approle":
        role_id = role_id or env("VAULT_ROLE_ID")
        secret_id = secret_id or env("VAULT_SECRET_ID")
        if not role_id:
            raise ConfigError("auth=approle needs role_id (option or VAULT_ROLE_ID)")
        return Credentials("approle", mount or "approle", role_id=role_id, secret_id=secret_id)
    if method == "kubernetes":
        role = role or env("VAULT_K8S_ROLE")
        if not role:
            raise ConfigError("auth=kubernetes needs role (option or VAULT_K8S_ROLE)")
        return Credentials("kubernetes", mount or "kubernetes", role=role, jwt_path=jwt_path or K8S_TOKEN_PATH)
    if method == "userpass":
        username = username or env("VAULT_USERNAME")
        password = password or env("VAULT_PASSWORD")
        if not username or password is None:
            raise ConfigError("auth=userpass needs username and password (options or VAULT_USERNAME/VAULT_PASSWORD)")
        return Credentials("userpass", mount or "userpass", username=username, password=password)
    raise ConfigError(f"unknown Vault auth method {method!r}")  # pragma: no cover - pydantic restricts it


def login(client: Any, creds: Credentials) -> dict[str, Any]:
    """Log in with a login-based method; the client keeps the new token. Returns the ``auth`` block.

    A refused login (bad role, secret id, JWT or password) is an ``AuthenticationError``
    carrying the server's reason, which never includes the credential.
    """
    try:
        return _login(client, creds)
    except (hx.InvalidRequest, hx.Forbidden, hx.Unauthorized) as exc:
        reason = "; ".join(str(e) for e in (exc.errors or [])) or type(exc).__name__
        raise AuthenticationError(f"vault login ({creds.method} at auth/{creds.mount}) refused: {reason}") from exc


def _login(client: Any, creds: Credentials) -> dict[str, Any]:
    if creds.method == "approle":
        response = client.auth.approle.login(role_id=creds.role_id, secret_id=creds.secret_id, mount_point=creds.mount)
    elif creds.method == "kubernetes":
        try:
            jwt = Path(creds.jwt_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the Kubernetes service-account token at {creds.jwt_path}: {exc.strerror}") from None
        response = client.auth.kubernetes.login(role=creds.role, jwt=jwt, mount_point=creds.mount)
    elif creds.method == "userpass":
        response = client.auth.userpass.login(username=creds.username, password=creds.password, mount_point=creds.mount)
    else:
        raise AuthenticationError("a token cannot log in again; provide a new token")
    auth: dict[str, Any] = response["auth"]
    return auth


class TokenKeeper:
    """Keeps the client's token usable: renew before expiry, one re-login on a rejected token.

    ``renew_fraction``: renew once less than this fraction of the token's TTL is left, early
    enough that a slow or failed renewal still leaves time for another try or a login.
    """

    def __init__(self, client: Any, creds: Credentials | None, *, renew_fraction: float = 1 / 3,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.creds = creds
        self.renew_fraction = renew_fraction
        self._clock = clock
        self._lock = threading.Lock()
        self._known = False
        self._renewable = False
        self._ttl = 0.0
        self._expires_at: float | None = None  # None: never expires (root tokens) or unknown
        at_fork(self, TokenKeeper._after_fork)

    def _after_fork(self) -> None:
        # A thread of the parent may have been logging in or renewing at the fork: its lock
        # would never be released in the child. The token and its lease are the parent's and
        # stay valid (Vault tokens are not bound to a process).
        self._lock = threading.Lock()

    # -- token state -------------------------------------------------------------------

    def login(self) -> None:
        """Log in now (login-based methods) and remember the new token's lease."""
        assert self.creds is not None and self.creds.can_login
        auth = login(self.client, self.creds)
        self._remember(float(auth.get("lease_duration") or 0), bool(auth.get("renewable")))

    def _remember(self, ttl: float, renewable: bool) -> None:
        self._known = True
        self._ttl = ttl
        self._renewable = renewable
        self._expires_at = self._clock() + ttl if ttl > 0 else None

    def _learn(self) -> None:
        """Ask the server about a token we were handed (one lookup-self, first call only)."""
        try:
            data = self.client.auth.token.lookup_self()["data"]
        except hx.Forbidden:
            # A dead token, or one without the default policy: the call itself will tell which.
            self._remember(0, False)
            return
        self._remember(float(data.get("ttl") or 0), bool(data.get("renewable")))

    def refresh(self) -> None:
        """Before a call: renew (or re-login) when the token is close to its expiry."""
        if self.creds is None:
            return
        with self._lock:
            if not self._known:
                if self.creds.can_login:
                    self.login()
                    return
                self._learn()
            if self._expires_at is None:
                return
            left = self._expires_at - self._clock()
            if left > self._ttl * self.renew_fraction:
                return
            if self._renewable:
                try:
                    auth = self.client.auth.token.renew_self()["auth"]
                    lease = float(auth.get("lease_duration") or 0)
                    self._renewable = bool(auth.get("renewable"))
                    self._expires_at = self._clock() + lease if lease > 0 else None
                    # At its max TTL a token renews to less than asked; then only a fresh login helps.
                    if self._expires_at is None or lease > self._ttl * self.renew_fraction or not self.creds.can_login:
                        return
                except Exception:
                    if not self.creds.can_login:
                        raise
            if self.creds.can_login:
                self.login()

    def token_rejected(self) -> bool:
        """After a 403: True if the token itself is dead (not merely lacking a policy). A live
        token without the ``default`` policy may not look itself up either: its 403 is the ACL's."""
        try:
            self.client.auth.token.lookup_self()
        except hx.Forbidden as exc:
            return not acl_denied(exc)
        return False

    def run(self, call: Callable[[], T]) -> T:
        """Run one backend call with a fresh token; on a dead token re-login once and retry once."""
        self.refresh()
        used = self.client.token
        try:
            return call()
        except hx.Forbidden as exc:
            if self.creds is None:
                raise
            with self._lock:
                # Another thread may have logged in already: then just repeat with the new token.
                if self.client.token == used:
                    if not self.token_rejected():
                        raise
                    if not self.creds.can_login:
                        raise AuthenticationError("the Vault token is invalid, expired or revoked") from exc
                    self.login()
        return call()
