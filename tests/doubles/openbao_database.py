"""OpenBao's ``database`` secrets engine wired to a real PostgreSQL (tests/doubles/postgres.py).

``configure`` mounts the engine (idempotent) and writes a connection, which OpenBao verifies at
write by logging in. ``dynamic_role`` and ``static_role`` then make fresh roles, one per test, so
that what one test leaves behind (leases, database roles) never shows in another's counts. Every
call goes through the real HTTP API with raw hvac (backends.md §7), never through secretkit: this
is the other side a lease test checks against.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from tests.doubles.openbao import OpenBaoServer
from tests.doubles.postgres import PostgresServer

#: A login role valid until the lease expires; OpenBao's default revocation drops it.
CREATION = ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"]
#: How a static role's password is changed (the plugin's default, spelled out: hvac requires it).
ROTATION = ["ALTER ROLE \"{{name}}\" WITH PASSWORD '{{password}}';"]


@dataclass
class DatabaseEngine:
    """A configured ``database`` mount on one OpenBao server, for one PostgreSQL."""

    bao: OpenBaoServer
    postgres: PostgresServer
    mount: str
    connection: str

    @property
    def root(self) -> Any:
        return self.bao.client()

    def dynamic_role(self, *, default_ttl: int = 3, max_ttl: int = 10) -> str:
        """A new dynamic role; returns its ``creds`` path (``database/creds/<role>``).

        Role names are 8 characters: OpenBao's username template keeps the first 8 of the role
        name (``v-token-<role>-<random>-<unix time>``), so ``usernames_of`` finds exactly its users.
        """
        role = f"app{uuid.uuid4().hex[:5]}"
        self.root.secrets.database.create_role(
            role, db_name=self.connection, creation_statements=CREATION,
            default_ttl=default_ttl, max_ttl=max_ttl, mount_point=self.mount)
        return f"{self.mount}/creds/{role}"

    def static_role(self, *, rotation_period: int = 5) -> str:
        """A new static role over a new database user; returns its ``static-creds`` path.

        ``rotation_period`` cannot be below 5 s (the server refuses it). Writing the role rotates
        the user's password at once, so the password set here is never the served one.
        """
        role = f"stat{uuid.uuid4().hex[:6]}"
        self.postgres.create_login(role, secrets.token_urlsafe(16))
        self.root.secrets.database.create_static_role(
            role, db_name=self.connection, username=role, rotation_statements=ROTATION,
            rotation_period=rotation_period,
            mount_point=self.mount)
        return f"{self.mount}/static-creds/{role}"

    def rotate(self, static_path: str) -> None:
        """Rotate a static role's password now (``POST database/rotate-role/<role>``)."""
        self.root.secrets.database.rotate_static_role_credentials(
            static_path.rsplit("/", 1)[1], mount_point=self.mount)

    def drop_static_role(self, static_path: str) -> None:
        """Stop rotating (delete the static role); its database user stays."""
        self.root.secrets.database.delete_static_role(static_path.rsplit("/", 1)[1], mount_point=self.mount)

    def usernames_of(self, creds_path: str) -> set[str]:
        """The database roles that exist now for the dynamic role at ``creds_path``."""
        return self.postgres.roles(f"v-token-{creds_path.rsplit('/', 1)[1][:8]}-")

    def lease_ids(self, creds_path: str) -> list[str]:
        """The leases OpenBao still holds under ``creds_path`` (``LIST sys/leases/lookup/...``)."""
        import hvac

        try:
            keys = self.root.sys.list_leases(creds_path + "/")["data"]["keys"]
        except hvac.exceptions.InvalidPath:  # nothing under the prefix: 404
            return []
        return [f"{creds_path}/{key}" for key in keys]

    def lookup(self, lease_id: str) -> dict[str, Any] | None:
        """``sys/leases/lookup`` of one lease (``last_renewal``, ``expire_time``, ...), None when invalid."""
        import hvac

        try:
            data: dict[str, Any] = self.root.sys.read_lease(lease_id)["data"]
        except hvac.exceptions.InvalidRequest:  # 400 "invalid lease": revoked, expired or unknown
            return None
        return data


def configure(bao: OpenBaoServer, postgres: PostgresServer, *, mount: str = "database") -> DatabaseEngine:
    """Mount the ``database`` engine on ``bao`` and point a connection at ``postgres``."""
    root = bao.client()
    if f"{mount}/" not in root.sys.list_mounted_secrets_engines()["data"]:
        root.sys.enable_secrets_engine("database", path=mount)
    connection = f"pg{postgres.port}"
    root.secrets.database.configure(
        connection, plugin_name="postgresql-database-plugin", allowed_roles="*", mount_point=mount,
        connection_url=postgres.url("{{username}}", "{{password}}"),
        username=postgres.admin_user, password=postgres.admin_password,
        verify_connection=True)
    return DatabaseEngine(bao, postgres, mount, connection)
