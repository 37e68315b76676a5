"""``k8s://NAMESPACE`` — Kubernetes Secrets (core/v1) through the official ``kubernetes`` client.

Without a namespace: the pod's, else the kubeconfig context's, else ``default``. Options
(URL query or keyword arguments): ``host``, ``token``, ``ca_cert``, ``verify_tls``,
``kubeconfig``, ``context``, ``in_cluster``, ``include_unmanaged``, ``value_key`` (the data key
of a text or bytes value, default ``value``), ``pending_namespace`` (where a rotation's pending
value lives, default the store's namespace), ``page_size``, ``timeout``, ``field_manager``,
``watch_timeout``.

A secret is one Secret object: fields are its data keys, text and bytes the one key
``value``; a DNS-1123 name is used unchanged, other portable names are mapped. See
docs/backends/kubernetes.md. Modules: ``codec`` (names, values), ``errors``, ``config``,
``api`` (wire calls), ``driver``, ``stages`` (rotation companions), ``watch``.
"""
