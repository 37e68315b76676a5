"""Every Python block of the pages on mounted files, the environment, layered stores and
deadlines runs as written (each in a fresh interpreter, with no SECRETKIT_* variables and a
temporary home)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["docs/backends/files.md", "docs/backends/env.md", "docs/layered.md", "docs/reliability.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def blocks() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for i, match in enumerate(BLOCK.finditer((ROOT / page).read_text())):
            found.append((f"{page}#{i + 1}", match.group(1)))
    return found


def test_each_page_has_runnable_blocks() -> None:
    assert {name.split("#")[0] for name, _ in blocks()} == set(PAGES)


@pytest.mark.parametrize(("where", "code"), blocks(), ids=[name for name, _ in blocks()])
def test_block_runs(where: str, code: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SECRETKIT_", "APP_", "SVC_"))}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, f"{where} failed:\n{done.stderr[-2000:]}"
