"""vault://host:port/mount[/folder] — HashiCorp Vault and OpenBao KV secrets engines, v1 and v2.

Schemes: ``vault://``, ``vault+https://`` and ``openbao://`` speak HTTPS; ``vault+http://`` (or
``tls=false``) plain HTTP, for dev servers. Without a host the address comes from ``VAULT_ADDR``.
The path names the KV mount and an optional folder inside it; the engine version is detected
unless ``kv_version=1|2`` is given. Options (``options.py``): TLS, namespace, auth method
(token, approle, kubernetes, userpass) and ``value_key``, the KV key that holds a text or
bytes value (default ``value``).

Modules: ``codec`` (names and values, no I/O), ``errors`` (hvac/requests exceptions → portable
codes), ``client`` (the hvac client), ``auth`` (logins and the token keeper), ``kv`` (what both
engine versions share), ``kv1`` and ``driver`` (KV v2 and ``open_driver``).

See docs/backends/vault.md.
"""
