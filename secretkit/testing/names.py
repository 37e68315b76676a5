"""Names that have broken secret stores before: for your driver's tests and your own.

``AWKWARD_NAMES`` are names some backend holds natively and another must map or refuse
(Terraform-style AWS names that look like ARN suffixes, GCP's underscores, kubectl's
lowercase names, AWS's ``+=@``). A store must either hold each one as written (``get``,
``list`` and ``delete`` by that exact name) or refuse it before any I/O, quoting its rule.
``UNSTORABLE_NAMES`` no store may accept.
"""

from __future__ import annotations

AWKWARD_NAMES: tuple[str, ...] = (
    "zabbix-db",  # a kubectl-made Secret: lowercase DNS name, holds a 'z'
    "app-config",  # '-' plus 6 characters: the shape of an AWS ARN suffix
    "rds/db-master",  # Terraform-made AWS names look like this
    "my_secret",  # GCP's ids allow '_'; Kubernetes does not
    "Upper_Case.v1",
    "a.b",
    "a_b",  # must never reach the same object as "a.b" or "a/b"
    "a/b",
    "dots.and-dashes_and_underscores",
    "a+b=c@d",  # AWS allows + = @
    "x" * 180,
    "1-starts-with-digit",
)

UNSTORABLE_NAMES: tuple[object, ...] = (
    "",
    "a\nb",
    "tab\there",
    "nul\x00byte",
    "lone\ud800surrogate",
    "x" * 5000,
    None,
    42,
    b"bytes-name",
)
