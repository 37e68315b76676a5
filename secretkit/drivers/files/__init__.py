"""files://PATH — read-only: each file under PATH is a secret, its relative path the name.

This is where most deployed workloads find their secrets: a Kubernetes Secret volume, the
Secrets Store CSI driver, the Vault Agent injector and External Secrets Operator all end as
files in a directory; Docker and Compose put them in ``/run/secrets``. A file reads as its
exact octets (``Kind.BYTES``: no newline stripped; ``.text`` when UTF-8); a directory reads as
one field secret, its files the fields (``Kind.FIELDS``), which is how a mounted Kubernetes
Secret looks.

The kubelet (and the CSI driver, with the same code) updates a mounted Secret with its
AtomicWriter: it writes every key into a new timestamped directory ``..2024_01_01_00_00_00.N``,
points a temporary symlink at it, renames that over ``..data`` (atomic), adds the per-key
links ``key -> ..data/key`` for new keys, removes the links of dropped keys and deletes the old
timestamped directory. So a reader that followed ``key`` links one by one could mix two
generations. This driver instead reads the ``..data`` link of a directory ONCE per read, reads
every file through the directory it names, and checks afterwards that the link still names it
(a seqlock): if the kubelet swapped it meanwhile (and maybe began deleting the old directory),
the read starts again. Timestamped directories are never changed in place, so every read is
one generation, old or new, never a mix. The kubelet's own entries (``..data``, ``..2024_…``:
anything starting with ``..``, which the kubelet refuses as a key) are never names and never
listed; one leading dot is part of a name (a dockerconfigjson Secret's ``.dockerconfigjson``).

Version ids are a digest of what the read saw (the ``..data`` targets, and each file's device,
inode, size and modification time): a kubelet swap, a rename over a file (Vault Agent) or an
in-place rewrite that changes size or mtime gives a new id. ``current_version`` computes the
same digest with ``stat`` alone, so the cache and ``watch`` check for a change without reading
a value. ``watch`` wakes on inotify events on Linux and polls every ``poll_interval`` seconds
in any case (the floor where inotify is missing or misses an event).
"""
