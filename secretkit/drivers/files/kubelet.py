"""A directory laid out and updated exactly as the kubelet's AtomicWriter does it.

For testing code that reads mounted Kubernetes Secrets (or Secrets Store CSI volumes, which
use the same writer) without a cluster::

    volume = KubeletVolume(tmp_path / "app", {"user": "app", "password": "s3cr3t"})
    store = secretkit.open(f"files://{tmp_path}")
    store.get("app").fields             # {'user': 'app', 'password': 's3cr3t'}
    volume.update({"user": "app", "password": "n3w"})   # the kubelet's update, step by step

The layout (``pkg/volume/util/atomic_writer.go``)::

    app/
      ..2024_01_01_00_00_00.123456789/   one generation: the payload's files, never changed in place
        user
        password
      ..data -> ..2024_01_01_00_00_00.123456789
      user -> ..data/user
      password -> ..data/password

An update runs the writer's steps in its order: write the payload into a new timestamped
directory; create ``..data_tmp`` pointing at it; rename ``..data_tmp`` over ``..data`` (the
atomic swap); create the per-key links of new keys; remove the links of dropped keys; delete
the old timestamped directory. ``between(step)`` runs after each step, so a test can read at
every intermediate state or widen the windows a racing reader can fall into.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

DATA_DIR = "..data"
NEW_DATA_DIR = "..data_tmp"

#: The steps ``between`` is called with, in order.
STEPS = (
    "timestamp-dir-written",
    "data-link-created",
    "data-link-swapped",
    "user-visible-links-created",
    "old-user-visible-links-removed",
    "old-timestamp-dir-removed",
)

Payload = Mapping[str, "str | bytes"]


class KubeletVolume:
    """A Secret volume at ``path``, written like the kubelet writes it.

    Payload keys are file paths relative to the volume (``"password"``, or ``"tls/tls.crt"``
    as a projected item path may be); values are text (written as UTF-8) or octets.
    """

    def __init__(self, path: str | os.PathLike[str], payload: Payload | None = None, *, mode: int = 0o644) -> None:
        self.path = Path(path)
        self.mode = mode
        self.path.mkdir(parents=True, exist_ok=True)
        self.updates = 0
        if payload is not None:
            self.update(payload)

    @property
    def generation(self) -> str | None:
        """The timestamped directory ``..data`` names now (None before the first write)."""
        try:
            return os.readlink(self.path / DATA_DIR)
        except FileNotFoundError:
            return None

    def payload(self) -> dict[str, bytes]:
        """The files of the current generation."""
        generation = self.generation
        if generation is None:
            return {}
        base = self.path / generation
        return {
            str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()
        }

    def update(self, payload: Payload, *, between: Callable[[str], None] | None = None) -> bool:
        """Write ``payload`` as the new generation; False (and nothing done) when it is unchanged,
        as the kubelet skips an unchanged payload."""
        step = between or (lambda _: None)
        clean = {_clean(key): value.encode("utf-8") if isinstance(value, str) else bytes(value)
                 for key, value in payload.items()}
        if clean == self.payload() and self.generation is not None:
            return False
        old = self.generation
        old_paths = {key.split("/")[0] for key in self.payload()}
        new_generation = self._new_timestamp_dir()
        for key, data in clean.items():
            target = self.path / new_generation / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(self.mode)
        step("timestamp-dir-written")
        tmp_link = self.path / NEW_DATA_DIR
        os.symlink(new_generation, tmp_link)
        step("data-link-created")
        os.rename(tmp_link, self.path / DATA_DIR)
        step("data-link-swapped")
        new_paths = {key.split("/")[0] for key in clean}
        for first in sorted(new_paths):
            link = self.path / first
            if not os.path.lexists(link):
                os.symlink(os.path.join(DATA_DIR, first), link)
        step("user-visible-links-created")
        for first in sorted(old_paths - new_paths):
            os.unlink(self.path / first)
        step("old-user-visible-links-removed")
        if old is not None:
            shutil.rmtree(self.path / old)
        step("old-timestamp-dir-removed")
        self.updates += 1
        return True

    def _new_timestamp_dir(self) -> str:
        # Go's os.MkdirTemp(dir, "..2006_01_02_15_04_05.") appends a random number.
        stamp = datetime.now(timezone.utc).strftime("..%Y_%m_%d_%H_%M_%S.")
        while True:
            name = f"{stamp}{random.randrange(10**9):09d}"
            try:
                (self.path / name).mkdir(mode=0o755)
            except FileExistsError:
                continue
            return name


def _clean(key: str) -> str:
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") or part.startswith("..") for part in parts):
        raise ValueError(f"not a valid payload path: {key!r}")
    return key


# -- racing readers against updates ----------------------------------------------------------


def generation_payload(gen: int) -> dict[str, str]:
    """A payload every value of which carries its generation; odd generations have one key
    more, so a read that mixed two generations shows either two markers or the wrong keys."""
    payload = {"user": f"user-{gen}", "password": f"pw-{gen}", "big": f"{gen}:" + "x" * 65536}
    if gen % 2:
        payload["extra"] = f"extra-{gen}"
    return payload


def generation_of(fields: Mapping[str, str]) -> int:
    """The one generation a read of a ``generation_payload`` volume belongs to; ``AssertionError``
    for a mix."""
    gens = {int(value.split("-")[-1]) for key, value in fields.items() if key != "big"}
    gens.add(int(fields["big"].split(":")[0]))
    if len(gens) != 1:
        raise AssertionError(f"mixed generations {sorted(gens)}")
    (gen,) = gens
    if ("extra" in fields) != bool(gen % 2):
        raise AssertionError(f"keys of another generation: {sorted(fields)}")
    return gen


def swap_while_reading(path: Path, swaps: int, reads_between: int, reads: Any) -> None:
    """Run ``swaps`` kubelet updates of the volume at ``path`` (generations 1..swaps), each once
    the readers have counted ``reads_between`` more reads in ``reads`` (a shared
    ``multiprocessing.Value``). Meant for another process, so swaps race the readers for real."""
    volume = KubeletVolume(path)
    for gen in range(1, swaps + 1):
        deadline = time.monotonic() + 60
        while reads.value < gen * reads_between and time.monotonic() < deadline:
            time.sleep(0.0005)
        volume.update(generation_payload(gen))


__all__ = ["DATA_DIR", "STEPS", "KubeletVolume", "generation_of", "generation_payload", "swap_while_reading"]
