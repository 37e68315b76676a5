"""gcp-sm:// — Google Cloud Secret Manager (v1), over gRPC (default) or REST.

``gcp-sm://PROJECT`` (a project id or number; ``gcp-sm://`` uses the project google-auth's
default credentials name). Options: ``location`` (regional secrets), ``replication``
(``automatic`` or replica locations), ``transport`` (``grpc``/``rest``), ``timeout``,
``endpoint`` and ``insecure`` (local test servers only).

A secret is one Secret Manager secret; each ``put`` adds a version, and "current" is what
Secret Manager calls ``latest``. Secret ids GCP accepts are used unchanged, payloads are what
GCP's own tools store (text, a JSON object for fields, octets). See docs/backends/gcp.md.

Modules: ``codec`` (names and payloads), ``errors`` (status → portable code), ``client``
(options, credentials, the client), ``driver`` (the calls).
"""
