"""A minimal Microsoft Entra ID (v2.0) token service, served by the Key Vault double.

What ``azure.identity.ClientSecretCredential(tenant, client, secret, authority=<double>,
disable_instance_discovery=True, connection_verify=<ca>)`` asks, through MSAL (azure-identity
1.27, msal 1.39: ``msal/authority.py``, ``msal/oauth2cli/oauth2.py``):

1. ``GET {authority}/{tenant}/v2.0/.well-known/openid-configuration`` (tenant discovery; with
   instance discovery off, nothing is asked of login.microsoftonline.com). MSAL needs
   ``authorization_endpoint`` and ``token_endpoint``; the rest is what the service publishes.
   An unknown tenant is 400 ``invalid_tenant`` / AADSTS90002 **[unverified: the exact body]**.
2. ``POST {token_endpoint}`` (form-encoded): ``grant_type=client_credentials``, ``client_id``,
   ``client_secret``, ``scope=https://vault.azure.net/.default`` (and ``claims`` asking for
   the CP1 capability, as the Key Vault client turns CAE on). The answer is
   ``{"token_type": "Bearer", "expires_in", "ext_expires_in", "access_token"}``.
   A wrong secret is 401 ``invalid_client`` with AADSTS7000215 and the service's other fields
   (``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``, ``error_uri``), the shape
   seen in public wire captures; an unknown client is 400 ``unauthorized_client`` /
   AADSTS700016 **[unverified: the exact wording]**. azure-identity raises
   ``ClientAuthenticationError("Authentication failed: <error_description>")`` for both.

Tokens are opaque random strings (the SDKs never parse them), valid for ``lifetime`` seconds,
for the one scope they were asked for; the vault side accepts a token only for its resource.
``token_requests`` counts the POSTs (to see that the SDK caches its token); ``register()``
adds a client; ``unavailable(n)`` answers the next ``n`` token requests as a token service in an
outage does (503, or any 5xx/429, optionally with ``Retry-After``) and ``available()`` ends
that early. A token service that cannot be reached at all (refused, reset) is a matter of the
connection, not of this model: put a ``FaultProxy`` (``http=False``) in front of the authority. Not modelled: certificates and assertions, refresh tokens, user flows,
``client_secret_basic`` (MSAL sends the secret in the body).
"""

from __future__ import annotations

import datetime
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

CLIENT_ID = "0f3c5a0e-8c1d-4a39-9a54-2c1e7b7e5d11"
CLIENT_SECRET = "entra-double-client-secret~Q8"


@dataclass(frozen=True)
class EntraError(Exception):
    """An OAuth error answer of Entra ID."""

    status: int
    error: str
    code: int
    description: str

    def body(self) -> dict[str, Any]:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        return {
            "error": self.error,
            "error_description": f"AADSTS{self.code}: {self.description}\r\nTrace ID: {trace}\r\n"
                                 f"Correlation ID: {correlation}\r\nTimestamp: {now}",
            "error_codes": [self.code], "timestamp": now, "trace_id": trace, "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


class EntraId:
    """The tenant, its registered clients and the tokens issued (thread-safe)."""

    def __init__(self, tenant: str, lifetime: int = 3599) -> None:
        self.tenant, self.lifetime = tenant, lifetime
        self._lock = threading.Lock()
        self._clients: dict[str, str] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._requests = 0
        self._outage: list[tuple[int, float | None]] = []
        self.reset()

    def reset(self) -> None:
        """One registered client (``CLIENT_ID``/``CLIENT_SECRET``), no tokens, no requests counted."""
        with self._lock:
            self._clients = {CLIENT_ID: CLIENT_SECRET}
            self._tokens.clear()
            self._requests = 0
            self._outage.clear()

    def unavailable(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        """Answer the next ``count`` token requests (POSTs; discovery still answers) ``status``
        with an OAuth ``temporarily_unavailable`` body, and ``Retry-After`` when given; the
        requests are counted in ``token_requests`` all the same."""
        if not (status == 429 or 500 <= status <= 599):
            raise ValueError(f"an outage answers 5xx or 429, not {status}")
        with self._lock:
            self._outage.extend([(status, retry_after)] * count)

    def available(self) -> None:
        """End an outage started by ``unavailable``."""
        with self._lock:
            self._outage.clear()

    def register(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self._clients[client_id] = client_secret

    @property
    def token_requests(self) -> int:
        """How many token requests (POSTs, granted or not) were made since the last reset."""
        with self._lock:
            return self._requests

    def accepts(self, token: str, scope: str) -> bool:
        """True if ``token`` was issued here for ``scope`` and has not expired."""
        with self._lock:
            found = self._tokens.get(token)
        return found is not None and found[0] == scope and found[1] > time.time()

    def handles(self, parts: list[str]) -> bool:
        """True if the path (``/{tenant}/v2.0/.well-known/openid-configuration`` or
        ``/{tenant}/oauth2/v2.0/token``) is one of this service's."""
        return parts[1:] in (["v2.0", ".well-known", "openid-configuration"], ["oauth2", "v2.0", "token"])

    def respond(self, method: str, parts: list[str], raw: bytes, base: str) -> tuple[int, dict[str, Any]]:
        status, doc, _ = self.answer(method, parts, raw, base)
        return status, doc

    def answer(self, method: str, parts: list[str], raw: bytes,
               base: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """``respond`` with the answer's headers (``Retry-After`` during an outage)."""
        if parts[1] == "oauth2" and method == "POST":
            with self._lock:
                down = self._outage.pop(0) if self._outage else None
                self._requests += down is not None
            if down is not None:
                status, retry_after = down
                return status, _TRANSIENT.body(), {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        return (*self._respond(method, parts, raw, base), {})

    def _respond(self, method: str, parts: list[str], raw: bytes, base: str) -> tuple[int, dict[str, Any]]:
        try:
            if parts[1] == "v2.0" and method == "GET":
                return 200, self._configuration(parts[0], base)
            if parts[1] == "oauth2" and method == "POST":
                return 200, self._token(parts[0], raw)
            raise EntraError(405, "invalid_request", 900561,  # [unverified: the service's answer]
                             "The endpoint only accepts POST requests." if parts[1] == "oauth2"
                             else "The endpoint only accepts GET requests.")
        except EntraError as e:
            return e.status, e.body()

    def _check_tenant(self, tenant: str) -> None:
        if tenant != self.tenant:
            raise EntraError(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make sure you "
                             "have the correct tenant ID and are signing into the correct cloud.")

    def _configuration(self, tenant: str, base: str) -> dict[str, Any]:
        self._check_tenant(tenant)
        root = f"{base}/{tenant}"
        return {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{root}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }

    def _token(self, tenant: str, raw: bytes) -> dict[str, Any]:
        with self._lock:
            self._requests += 1
        form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        self._check_tenant(tenant)
        if form.get("grant_type") != "client_credentials":
            raise EntraError(400, "unsupported_grant_type", 70003,
                             "The app requested an unsupported grant type: this double grants client credentials only.")
        client_id = form.get("client_id", "")
        with self._lock:
            expected = self._clients.get(client_id)
        if expected is None:
            raise EntraError(400, "unauthorized_client", 700016,
                             f"Application with identifier '{client_id}' was not found in the directory "
                             f"'{tenant}'. This can happen if the application has not been installed by the "
                             "administrator of the tenant or consented to by any user in the tenant.")
        if "client_secret" not in form:
            raise EntraError(401, "invalid_client", 7000218, "The request body must contain the following "
                             "parameter: 'client_assertion' or 'client_secret'.")
        if not secrets.compare_digest(form["client_secret"].encode(), expected.encode()):
            raise EntraError(401, "invalid_client", 7000215,
                             "Invalid client secret provided. Ensure the secret being sent in the request is the "
                             f"client secret value, not the client secret ID, for a secret added to app '{client_id}'.")
        scope = form.get("scope", "")
        if not scope.endswith("/.default") or " " in scope:
            raise EntraError(400, "invalid_scope", 1002012,
                             f"The provided value for scope {scope} is not valid. Client credential flows must have "
                             "a scope value with /.default suffixed to the resource identifier (application ID URI).")
        token = "entra-double-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = (scope, time.time() + self.lifetime)
        return {"token_type": "Bearer", "expires_in": self.lifetime, "ext_expires_in": self.lifetime,
                "access_token": token}


#: The body of an answer during an outage: RFC 6749's transient error code
#: [unverified: what Entra ID's front door sends with a 5xx; a gateway may send HTML].
_TRANSIENT = EntraError(503, "temporarily_unavailable", 90033,
                        "A transient error has occurred. Please try again.")
