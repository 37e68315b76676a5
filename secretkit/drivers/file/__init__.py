"""file://PATH — an encrypted local store for development and the CLI's default.

PATH is a directory holding ``store.enc`` (every secret and version, encrypted as one
AES-256-GCM blob), ``store.lock`` (an advisory lock so two processes never interleave a
read-modify-write) and ``store.id`` (a random name for the store; not a secret).

The key is kept out of PATH, so a copy of the directory (a backup, a tarball, a synced
folder) decrypts nothing. It is, in this order: ``$SECRETKIT_FILE_KEY``; the file named by
the ``key_file`` option; else the store's own key, found by its store id in the OS keyring
(with the optional ``keyring`` package) or in ``<config dir>/secretkit/keys/<id>.key``.
The store's own key records the real path of the directory it was made for, and a
directory at any other path is refused: a copy on the same machine, as the same user,
finds the key by id but is not given it. Stores made by older versions keep ``PATH/key``
beside the data; that still opens, with a warning, until ``migrate_legacy_key`` moves it.

No plaintext value touches disk: the document is encrypted in memory and written to a
temporary file that is fsynced and renamed over the old one, so a crash leaves either the
old or the new store, never a torn one. A wrong key fails to decrypt, and since every
write decrypts first, a wrong key can never overwrite anything. The key and the store id
are created whole or not at all and, when two processes create a store at once, once.

The directory, the key and the files in PATH are trusted only if owned by the user (or
root) and not writable by group or others, and never through a symlink in PATH.
"""

from secretkit.drivers.file.keys import key_directory, migrate_legacy_key, new_key

# The helpers users call by hand (docs/backends/file.md); the driver is in .driver.
__all__ = ["key_directory", "migrate_legacy_key", "new_key"]
