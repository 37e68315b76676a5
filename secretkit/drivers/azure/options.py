"""The options of azure-kv:// (URL query parameters, keyword arguments of ``open``, config keys)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class Options(BaseModel):
    """Options of the azure-kv:// store (URL query, config file or keyword arguments)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    vault_url: str | None = Field(
        None, description="the vault's full URL (https://NAME.vault.azure.net); instead of azure-kv://NAME"
    )
    credential: Any = Field(
        None, description="a ready azure-core TokenCredential (keyword argument only); the store does not close it"
    )
    tenant_id: str | None = Field(None, description="service principal tenant (with client_id and client_secret)")
    client_id: str | None = Field(
        None, description="service principal client id; alone: the managed identity DefaultAzureCredential uses"
    )
    client_secret: SecretStr | None = Field(
        None, description="service principal secret (with tenant_id, client_id); default AZURE_CLIENT_SECRET"
    )
    authority: str | None = Field(
        None, description="Microsoft Entra ID host or https URL tokens come from (login.microsoftonline.us, "
        "login.chinacloudapi.cn, Azure Stack); default AZURE_AUTHORITY_HOST, else login.microsoftonline.com",
    )
    disable_instance_discovery: bool | None = Field(
        None, description="skip MSAL's check of the authority with login.microsoftonline.com (a private authority, "
        "e.g. Azure Stack); default: off, on for a loopback authority",
    )
    ca_bundle: str | None = Field(
        None, description="a PEM file of CAs the vault's and the authority's TLS certificates are checked against"
    )
    verify_challenge_resource: bool | None = Field(
        None,
        description="check that the vault's bearer challenge names a resource of the vault's own domain; default: "
        "on for *.vault.azure.net-style hosts, off for a loopback test server",
    )
    api_version: str | None = Field(None, description="Key Vault REST api-version (default: the SDK's newest)")
    timeout: float = Field(
        30.0, gt=0, description="seconds per HTTP request (connect and each read); also capped by the store's retry policy"
    )
