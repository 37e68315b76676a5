"""azure-kv:// — Azure Key Vault secrets (data plane), through azure-keyvault-secrets.

``azure-kv://VAULT_NAME`` (``https://VAULT_NAME.vault.azure.net``), ``azure-kv://HOST[:PORT]``
for a full vault host (sovereign clouds, a local test server), or the ``vault_url`` option.
Credentials: ``DefaultAzureCredential`` (imported when a store is opened), or a service
principal from ``tenant_id``/``client_id``/``client_secret`` (or ``AZURE_CLIENT_SECRET``), from
the Entra ID ``authority`` of the vault's cloud. See docs/backends/azure.md.

A secret is one Key Vault secret; each ``put`` adds a version (Key Vault's opaque 32-hex ids),
and "current" is what Key Vault returns for the secret without a version.

Modules: ``codec`` (names, values, tags), ``errors`` (SDK exception → portable code),
``options`` (the options), ``credentials`` (the azure-identity credential), ``client`` (the
``SecretClient``), ``history`` (version order), ``driver`` (the calls).
"""
