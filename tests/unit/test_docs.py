"""The documentation tells the truth: docs/capabilities.md is what the drivers declare."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_capabilities_doc_is_generated_from_the_drivers() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "capabilities_doc.py"), "--check"],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False,
    )
    assert done.returncode == 0, done.stderr
