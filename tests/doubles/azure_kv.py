"""A wire-level double of the Azure Key Vault secrets data plane, for the real Azure SDK.

``start()`` (or ``shared()`` for one per test process) serves one vault over HTTPS on a free
loopback port, with a certificate made at start (``cryptography``: a CA, and a server
certificate it signs for DNS ``localhost`` and IP ``127.0.0.1``); the client trusts it with
azure-core's ``connection_verify=<ca_path>``. The vault's semantics are in ``azure_kv_model``.

What the SDK sees, as Key Vault does it (backends.md §11):

* TLS only (the SDK refuses bearer tokens over http).
* The bearer challenge: a request without ``Authorization`` (the SDK's first, sent without a
  body) is 401 with ``WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/
  <tenant>", resource="https://vault.azure.net"`` and the AKV10000 body; the SDK's
  ``ChallengeAuthPolicy`` asks its credential for ``https://vault.azure.net/.default`` in that
  tenant and resends with the token. A wrong token is 401 with the same header. **Loopback
  needs** ``verify_challenge_resource=False``: by default the SDK wants the vault host to be a
  subdomain of the challenge's resource (``*.vault.azure.net``), which ``127.0.0.1`` is not.
  ``client_kwargs()`` gives exactly what a client (or a driver under test) must pass; code
  that builds its own ``SecretClient(vault_url, credential)`` with no kwargs (pydantic-settings'
  ``AzureKeyVaultSettingsSource._load_env_vars``) must be given a client built with them. The
  SDK caches the challenge per host:port for the whole process (``ChallengeCache``), so only
  a process's first client for a double sees the 401.
* The same server is also a Microsoft Entra ID token service for the vault's tenant
  (``entra_id``): ``authority`` is the URL an azure-identity credential is given (with
  ``disable_instance_discovery=True`` and the CA), ``secret_credential()`` a real
  ``ClientSecretCredential`` of its registered client, and the vault accepts the tokens it
  issues for ``https://vault.azure.net/.default`` as well as the static test token. The
  switches below act on vault requests only (``unavailable("refuse")`` closes both).
* ``api-version`` is required on every request, from the versions azure-keyvault-secrets 4.12
  accepts (400 BadParameter otherwise) **[unverified: the service's exact messages]**.
* Routes: ``PUT/GET/DELETE /secrets/{name}``, ``GET/PATCH /secrets/{name}/[{version}]``,
  ``GET /secrets``, ``GET /secrets/{name}/versions``, ``GET /deletedsecrets[/{name}]``,
  ``DELETE /deletedsecrets/{name}`` (purge, 204), ``POST /deletedsecrets/{name}/recover``.
  Error bodies are ``{"error": {"code", "message", "innererror"}}``; answers carry
  ``x-ms-request-id`` and echo ``x-ms-client-request-id``.

Test switches: ``throttle(n, retry_after=1)`` answers the next ``n`` requests with 429
Throttled and ``Retry-After`` (azure-core's retry policy waits it out and retries, even a
POST); ``fail_next(status, code, ...)`` answers the next requests with any Key Vault error;
``delay_next(seconds, n)`` holds the next answers (after acting on the requests); ``unavailable("503")`` answers every request 503 ServiceUnavailable (without
``Retry-After``: give the client ``retry_total=0`` to fail fast) and ``unavailable("refuse")``
closes the listener and every open connection so connects are refused, until
``available()``. ``log`` records (method, path, query, status, authorized) of every request
(thread-safe); ``reset()`` (the ``azure_kv`` fixture calls it per test) empties the vault,
the log and the switches. A TLS-terminating double cannot sit behind secretkit's
``FaultProxy`` in ``http=True`` mode (the proxy sees only ciphertext); use ``http=False``.
"""

from __future__ import annotations

import atexit
import datetime
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.credentials import AccessToken

from tests.doubles.azure_kv_model import KvError, VaultModel, bad_parameter
from tests.doubles.entra_id import CLIENT_ID, CLIENT_SECRET, EntraId

TOKEN = "azure-kv-double-token"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
RESOURCE = "https://vault.azure.net"
SCOPE = RESOURCE + "/.default"
API_VERSIONS = ("2026-04-01", "2025-07-01", "7.6", "7.5", "7.4", "7.3", "7.2", "7.1", "7.0", "2016-10-01")
SERVICE_VERSION = "1.9.2707.1"


@dataclass(frozen=True)
class Call:
    """One request as the double saw it (``path`` decoded, without the query)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    authorized: bool


class StaticTokenCredential:
    """An ``azure.core.credentials.TokenCredential`` that always returns one token, recording
    the scopes and tenant the SDK asked for (``requests``)."""

    def __init__(self, token: str = TOKEN, lifetime: int = 3600) -> None:
        self.token, self.lifetime = token, lifetime
        self.requests: list[tuple[tuple[str, ...], str | None]] = []

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        self.requests.append((scopes, tenant_id))
        return AccessToken(self.token, int(time.time()) + self.lifetime)

    def close(self) -> None:
        pass

    def __enter__(self) -> StaticTokenCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class AsyncStaticTokenCredential(StaticTokenCredential):
    """The ``AsyncTokenCredential`` twin, for ``azure.keyvault.secrets.aio.SecretClient``."""

    async def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,  # type: ignore[override]
                        enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        return StaticTokenCredential.get_token(self, *scopes, tenant_id=tenant_id)

    async def close(self) -> None:  # type: ignore[override]
        pass

    async def __aenter__(self) -> AsyncStaticTokenCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A CA and a server certificate it signs (SAN DNS:localhost, IP:127.0.0.1), written to
    ``directory``; returns (CA certificate path, server cert+key PEM path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azure-kv double CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, server_path = directory / "ca.pem", directory / "server.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return ca_path, server_path


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], double: AzureKeyVaultDouble) -> None:
        self.double = double
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        # the handshake runs in the connection's own thread (first read), not in the accept loop
        return self.double._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up, refused certificates, sockets closed by unavailable("refuse")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.double._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.double._track(self.connection, False)

    def do_GET(self) -> None:
        self.server.double._serve(self)

    do_PUT = do_PATCH = do_DELETE = do_POST = do_HEAD = do_GET

    def answer(self, status: int, doc: dict[str, Any] | None, headers: dict[str, str]) -> None:
        body = b"" if doc is None else json.dumps(doc, separators=(",", ":")).encode()
        self.send_response(status)
        if doc is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        self.send_header("x-ms-keyvault-service-version", SERVICE_VERSION)
        if self.headers.get("x-ms-client-request-id"):
            self.send_header("x-ms-client-request-id", self.headers["x-ms-client-request-id"])
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class AzureKeyVaultDouble:
    """One vault served over HTTPS on ``127.0.0.1``. Use ``vault_url``, ``ca_path`` and
    ``credential()`` (or ``client()``/``client_kwargs()``) from tests."""

    def __init__(self, model: VaultModel | None = None, token: str = TOKEN, tenant: str = TENANT,
                 resource: str = RESOURCE) -> None:
        self.model = model or VaultModel()
        self.token, self.tenant, self.resource = token, tenant, resource
        self.entra = EntraId(tenant)
        self._dir = tempfile.TemporaryDirectory(prefix="azure-kv-double-")
        self.ca_path, server_pem = make_certificate(Path(self._dir.name))
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(server_pem)
        self._lock = threading.Lock()
        self._log: list[Call] = []
        self._faults: list[KvError] = []
        self._delays: list[float] = []
        self._down: str | None = None
        self._connections: set[Any] = set()
        self._server: _Server | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> AzureKeyVaultDouble:
        """Listen (once: ``with start(...)`` does not start a second listener)."""
        if self._server is None and self._down is None:
            self._listen()
        return self

    def _listen(self) -> None:
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="azure-kv-double", daemon=True).start()

    def _close_listener(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        with self._lock:
            live = list(self._connections)
        for conn in live:  # pooled keep-alive connections would otherwise still be answered
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self._close_listener()
        self._dir.cleanup()

    def __enter__(self) -> AzureKeyVaultDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """An empty vault, an empty log, no throttling, available (the per-test state)."""
        self.available()
        self.model.reset()
        self.entra.reset()
        with self._lock:
            self._log.clear()
            self._faults.clear()
            self._delays.clear()

    # -- what tests use ---------------------------------------------------------------------

    @property
    def vault_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def credential(self, token: str | None = None) -> StaticTokenCredential:
        return StaticTokenCredential(self.token if token is None else token)

    def async_credential(self, token: str | None = None) -> AsyncStaticTokenCredential:
        return AsyncStaticTokenCredential(self.token if token is None else token)

    @property
    def authority(self) -> str:
        """The Entra ID authority this server also is (``authority=`` of an azure-identity credential)."""
        return self.vault_url

    def secret_credential(self, client_secret: str = CLIENT_SECRET, **kwargs: Any) -> Any:
        """A real ``azure.identity.ClientSecretCredential`` of the registered client, asking this
        server's Entra ID for its tokens."""
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(self.tenant, CLIENT_ID, client_secret, authority=self.authority,
                                      disable_instance_discovery=True, connection_verify=str(self.ca_path), **kwargs)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments a ``SecretClient`` (sync or aio) needs for this double: trust its CA,
        and accept a challenge resource that is not a parent domain of ``127.0.0.1``."""
        return {"connection_verify": str(self.ca_path), "verify_challenge_resource": False}

    def client(self, **kwargs: Any) -> Any:
        """A real ``azure.keyvault.secrets.SecretClient`` for this vault (kwargs pass through)."""
        from azure.keyvault.secrets import SecretClient

        credential = kwargs.pop("credential", None) or self.credential()
        return SecretClient(self.vault_url, credential, **{**self.client_kwargs(), **kwargs})

    def aio_client(self, **kwargs: Any) -> Any:
        """A real ``azure.keyvault.secrets.aio.SecretClient`` for this vault."""
        from azure.keyvault.secrets.aio import SecretClient

        credential = kwargs.pop("credential", None) or self.async_credential()
        return SecretClient(self.vault_url, credential, **{**self.client_kwargs(), **kwargs})

    @property
    def log(self) -> list[Call]:
        with self._lock:
            return list(self._log)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Call]:
        """Logged calls, optionally only one method and/or one path."""
        return [c for c in self.log if (method is None or c.method == method) and (path is None or c.path == path)]

    def throttle(self, count: int, retry_after: float = 1) -> None:
        """Answer the next ``count`` requests 429 Throttled with ``Retry-After: retry_after``
        (the service sends whole seconds; a fraction keeps tests fast and azure-core accepts it)."""
        # [unverified: the service's exact code and message for throttling]
        self.fail_next(429, "Throttled", "Request was not processed because too many requests were received. "
                       "Reason: A generic throttling reason", count, {"Retry-After": f"{retry_after:g}"})

    def fail_next(self, status: int, code: str, message: str = "Injected fault.", count: int = 1,
                  headers: dict[str, str] | None = None, inner: str | None = None) -> None:
        """Answer the next ``count`` requests (whatever they are, before authentication) with
        this Key Vault error, e.g. ``fail_next(500, "InternalServerError")``; a FaultProxy cannot
        pick requests out of TLS, this can."""
        with self._lock:
            self._faults.extend(KvError(status, code, message, inner, dict(headers or {})) for _ in range(count))

    def delay_next(self, seconds: float, count: int = 1) -> None:
        """Hold the answers to the next ``count`` requests for ``seconds`` (the request is acted on
        first, like a slow service), for deadline tests."""
        with self._lock:
            self._delays.extend([seconds] * count)

    def unavailable(self, mode: str = "503") -> None:
        """``"503"``: every request is 503 ServiceUnavailable; ``"refuse"``: nothing listens."""
        if mode not in ("503", "refuse"):
            raise ValueError(f"unknown mode {mode!r}")
        self.available()
        with self._lock:
            self._down = mode
        if mode == "refuse":
            self._close_listener()

    def available(self) -> None:
        with self._lock:
            down, self._down = self._down, None
        if down == "refuse":
            self._listen()  # the same port (the listener reuses the address)

    # -- serving ----------------------------------------------------------------------------

    def _track(self, conn: Any, alive: bool) -> None:
        with self._lock:
            (self._connections.add if alive else self._connections.discard)(conn)

    def _serve(self, h: _Handler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        url = urlsplit(h.path)
        path = unquote(url.path)
        segments = [unquote(s) for s in url.path.strip("/").split("/")] if url.path.strip("/") else []
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        authorized = self._accepts(h.headers.get("Authorization"))
        base = f"https://{h.headers.get('Host') or f'127.0.0.1:{self.port}'}"
        if len(segments) >= 2 and self.entra.handles(segments):
            status, doc, extra = self.entra.answer(h.command, segments, raw, base)
            with self._lock:
                self._log.append(Call(h.command, path, query, status, False))
            h.answer(status, doc, extra)
            return
        try:
            status, doc, headers = self._respond(h.command, path, segments, query, raw,
                                                 h.headers.get("Authorization"), base)
        except KvError as e:
            status, doc, headers = e.status, e.body(), e.headers
        with self._lock:
            self._log.append(Call(h.command, path, query, status, authorized))
            delay = self._delays.pop(0) if self._delays else 0.0
        if delay:
            time.sleep(delay)
        h.answer(status, doc, headers)

    def _gate(self, authorization: str | None, query: dict[str, str]) -> None:
        with self._lock:
            down = self._down
            fault = self._faults.pop(0) if self._faults else None
        if down:
            raise KvError(503, "ServiceUnavailable", "The service is temporarily unavailable. Please retry later.")
        if fault:
            raise fault
        if not self._accepts(authorization):
            challenge = f'Bearer authorization="https://login.microsoftonline.com/{self.tenant}", resource="{self.resource}"'
            message = ("AKV10000: Request is missing a Bearer or PoP token." if not authorization
                       else "AKV10022: Invalid audience or token.")  # [unverified: the wording for a bad token]
            raise KvError(401, "Unauthorized", message, headers={"WWW-Authenticate": challenge})
        version = query.get("api-version")
        if not version:
            raise bad_parameter("The api-version query parameter is required.")  # [unverified wording]
        if version not in API_VERSIONS:
            raise bad_parameter(f"The specified version ({version}) is not recognized. Consider using the latest "
                                f"supported version ({API_VERSIONS[0]}).")

    def _accepts(self, authorization: str | None) -> bool:
        """The static test token, or a token the Entra ID side issued for this vault's resource."""
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization[len("Bearer "):]
        return token == self.token or self.entra.accepts(token, self.resource + "/.default")

    def _respond(self, method: str, path: str, parts: list[str], query: dict[str, str], raw: bytes,
                 authorization: str | None, base: str) -> tuple[int, dict[str, Any] | None, dict[str, str]]:
        self._gate(authorization, query)
        api, m, page = query["api-version"], self.model, (query.get("maxresults"), query.get("$skiptoken"))
        trailing = path.endswith("/") and len(parts) == 2  # /secrets/{name}/ = the latest version
        body = _json(raw) if method in ("PUT", "PATCH") else None
        route = (method, parts[0] if parts else "", len(parts))
        if route == ("GET", "secrets", 1):
            return 200, m.list_secrets(base, api, *page), {}
        if parts[:1] == ["secrets"] and len(parts) >= 2:
            name = parts[1]
            if route == ("PUT", "secrets", 2) and not trailing:
                return 200, m.set_secret(base, name, body), {}
            if route == ("DELETE", "secrets", 2) and not trailing:
                return 200, m.delete_secret(base, name), {}
            if len(parts) == 3 and parts[2] == "versions" and method == "GET":
                return 200, m.list_versions(base, name, api, *page), {}
            version = parts[2] if len(parts) == 3 else ""
            if method == "GET" and len(parts) in (2, 3):
                return 200, m.get_secret(base, name, version), {}
            if method == "PATCH" and (len(parts) == 3 or trailing):
                return 200, m.update_secret(base, name, version, body), {}
        if route == ("GET", "deletedsecrets", 1):
            return 200, m.list_deleted(base, api, *page), {}
        if parts[:1] == ["deletedsecrets"] and len(parts) >= 2:
            if route == ("GET", "deletedsecrets", 2):
                return 200, m.get_deleted(base, parts[1]), {}
            if route == ("DELETE", "deletedsecrets", 2):
                m.purge(parts[1])
                return 204, None, {}
            if route == ("POST", "deletedsecrets", 3) and parts[2] == "recover":
                return 200, m.recover(base, parts[1]), {}
        # [unverified: what the service answers for an unknown route or method]
        raise KvError(405 if parts[:1] in (["secrets"], ["deletedsecrets"]) else 404, "BadRequest",
                      f"The requested operation {method} {path} is not supported.")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise bad_parameter("The request body is not valid JSON.") from None


_shared: AzureKeyVaultDouble | None = None
_shared_lock = threading.Lock()


def shared() -> AzureKeyVaultDouble:
    """One double per test process (started on first use, stopped at exit); tests reset it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = AzureKeyVaultDouble().start()
            atexit.register(_shared.stop)
        return _shared


def start(model: VaultModel | None = None, **kwargs: Any) -> AzureKeyVaultDouble:
    """A double of its own (e.g. with ``VaultModel(soft_delete=False)``); the caller stops it."""
    return AzureKeyVaultDouble(model, **kwargs).start()
