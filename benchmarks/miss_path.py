"""How many times one cache-miss ``get`` crosses from one secretkit source file into another.

    python3 benchmarks/miss_path.py [--secretkit PATH] [--trace]

A miss should read as a straight line: store → call pipeline → driver, the cache taking its
one turn. This counts, with ``sys.setprofile``, every Python call during one ``get`` of a
``memory://`` store with the cache on (a miss: the key was never read) whose callee lives in
a different secretkit file than its caller: an *entry* into that file. It prints the total,
the entries per file, and the bounces between pairs of files (A→B and B→A counted together).
``--trace`` prints each entry in order. ``--secretkit PATH`` measures another checkout (e.g.
the base commit exported with ``git archive``).
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path
from types import FrameType
from typing import Any


def measure(trace: bool = False) -> dict[str, Any]:
    import secretkit
    from secretkit import CachePolicy

    root = str(Path(secretkit.__file__).parent) + "/"
    store = secretkit.open("memory://", cache=CachePolicy())
    store.put("miss", "value")
    entries: list[tuple[str, str, str]] = []

    def short(path: str) -> str:
        return path[len(root):]

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        callee = frame.f_code.co_filename
        caller = frame.f_back.f_code.co_filename if frame.f_back is not None else ""
        if callee.startswith(root) and callee != caller and frame.f_code.co_name != "profile":
            entries.append((short(caller) if caller.startswith(root) else "(caller)", short(callee), frame.f_code.co_name))

    sys.setprofile(profile)
    try:
        secret = store.get("miss")
    finally:
        sys.setprofile(None)
    assert secret.text == "value" and store.cache_stats().misses == 1
    store.close()
    per_file = collections.Counter(callee for _, callee, _ in entries)
    pairs = collections.Counter(" <-> ".join(sorted((a, b))) for a, b, _ in entries if a != "(caller)")
    if trace:
        for caller, callee, function in entries:
            print(f"  {caller} -> {callee}:{function}")
    return {"entries": len(entries), "per_file": dict(per_file), "pairs": dict(pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secretkit", help="measure the secretkit package under this directory")
    parser.add_argument("--trace", action="store_true", help="print each entry")
    args = parser.parse_args()
    if args.secretkit:
        sys.path.insert(0, args.secretkit)
    result = measure(args.trace)
    print(f"file entries during one cache-miss get: {result['entries']}")
    for name, count in sorted(result["per_file"].items(), key=lambda kv: -kv[1]):
        print(f"  into {name}: {count}")
    for pair, count in sorted(result["pairs"].items(), key=lambda kv: -kv[1]):
        print(f"  {pair}: {count}")


if __name__ == "__main__":
    main()
