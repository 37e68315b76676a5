"""The options of vault:// (URL query parameters, keyword arguments of ``secretkit.open``, config keys)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from secretkit.drivers.vault.codec import DEFAULT_VALUE_KEY, ENCODING_KEY

AuthMethod = Literal["token", "approle", "kubernetes", "userpass"]

#: Portable octets per value. Vault's JSON may grow a value up to 6x (``\\u0000`` escapes)
#: and integrated storage refuses entries over 1 MiB, so 128 KiB always fits.
DEFAULT_MAX_VALUE_BYTES = 128 * 1024


class Options(BaseModel):
    """Options of vault:// (see docs/backends/vault.md)."""

    model_config = ConfigDict(extra="forbid")

    tls: bool | None = Field(None, description="false: plain http (dev servers); default from the scheme")
    ca_cert: str | None = Field(None, description="CA bundle file or directory (default VAULT_CACERT/VAULT_CAPATH)")
    tls_verify: bool = Field(True, description="false disables certificate checks (testing only)")
    client_cert: str | None = Field(None, description="client certificate (PEM) for TLS client auth")
    client_key: str | None = Field(None, description="its private key (PEM)")
    namespace: str | None = Field(None, description="Enterprise/OpenBao namespace (default VAULT_NAMESPACE)")
    kv_version: Literal["auto", "1", "2"] = Field("auto", description="KV engine version; auto asks the server")
    mount: str | None = Field(None, description="KV mount path, when kv_version is given and the mount is nested")
    timeout: float = Field(
        30.0, gt=0, description="seconds per socket read of an HTTP request (also capped by the store's retry policy)"
    )
    auth: AuthMethod = Field("token", description="token, approle, kubernetes or userpass")
    auth_mount: str | None = Field(None, description="auth method mount path (default: the method's name)")
    token: SecretStr | None = Field(None, description="token (default VAULT_TOKEN, then ~/.vault-token)")
    role_id: str | None = Field(None, description="AppRole role id (default VAULT_ROLE_ID)")
    secret_id: SecretStr | None = Field(None, description="AppRole secret id (default VAULT_SECRET_ID)")
    role: str | None = Field(None, description="Kubernetes auth role (default VAULT_K8S_ROLE)")
    jwt_path: str | None = Field(None, description="service-account JWT file (default the in-cluster path)")
    username: str | None = Field(None, description="userpass user (default VAULT_USERNAME)")
    password: SecretStr | None = Field(None, description="userpass password (default VAULT_PASSWORD)")
    renew_fraction: float = Field(1 / 3, gt=0, lt=1, description="renew once less than this share of the TTL is left")
    max_value_bytes: int = Field(DEFAULT_MAX_VALUE_BYTES, gt=0, description="largest value accepted")
    value_key: str = Field(DEFAULT_VALUE_KEY, min_length=1,
                           description="the KV key holding a text or bytes value (what `kv get -field=` names)")

    @field_validator("kv_version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("value_key")
    @classmethod
    def _not_the_marker(cls, value: str) -> str:
        if value == ENCODING_KEY:
            raise ValueError(f"{ENCODING_KEY!r} is the key that marks base64 bytes; choose another value_key")
        return value
