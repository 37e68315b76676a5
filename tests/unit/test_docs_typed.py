"""The documented examples type-check under ``mypy --strict``, as users' code would.

A user who copies an example into a strictly typed project must not meet an error: the types
secretkit declares (``open([...])`` is a ``LayeredStore``, the pytest fixtures, the async facade)
have to say what the pages do with them. The Python blocks of the pages below are written to a
scratch directory as modules, the way they run (test_docs.py, tests/aio/test_aio_docs.py): a
page's blocks joined as one script, except docs/async.md, whose blocks are separate scripts and
the files of a small FastAPI project (``<!-- file: NAME -->``). Beside them, ``USER_CODE``
states the types strict users rely on (``assert_type``). One mypy run checks them all.

The configuration is what a strict user of these libraries has: ``strict = True``, pydantic's
mypy plugin (pydantic-settings classes need it to type ``Settings()``), and the SDKs that ship
no type information (boto3 and friends) left untyped, as in secretkit's own pyproject.toml.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["docs/async.md", "docs/layered.md", "docs/api.md", "docs/settings.md"]
#: Pages whose blocks run as separate scripts or files (tests/aio/test_aio_docs.py); the others run joined.
SEPARATE = {"docs/async.md"}
BLOCK = re.compile(
    r"(?:<!-- file: (?P<file>[\w.]+) -->\n)?^```(?P<lang>\w+)\n(?P<code>.*?)^```", re.DOTALL | re.MULTILINE
)
UNTYPED_SDKS = ["boto3.*", "botocore.*", "hvac.*", "google.*", "kubernetes.*", "moto.*", "grpc.*"]


def modules(page: str) -> dict[str, str]:
    """File name → code of the modules a page's Python blocks make."""
    found = [m for m in BLOCK.finditer((ROOT / page).read_text()) if m["lang"] == "python"]
    stem = "docs_" + Path(page).stem
    if page not in SEPARATE:
        return {f"{stem}.py": "\n\n".join(m["code"] for m in found)}
    return {m["file"] or f"{stem}_{number}.py": m["code"] for number, m in enumerate(found)}


#: What strict users write beside the documented examples: each ``assert_type`` is a promise.
USER_CODE = """
from typing_extensions import assert_type  # typing.assert_type from Python 3.11

import secretkit
from secretkit.layered import LayeredStore

dev = secretkit.open("memory://")
assert_type(dev, secretkit.SecretStore)
assert_type(secretkit.open(), secretkit.SecretStore)
store = secretkit.open(["env://?prefix=APP_", dev])
assert_type(store, LayeredStore)
assert_type(store.origin("db"), secretkit.SecretStore)
assert_type(store.layers, tuple[secretkit.SecretStore, ...])
urls: list[str] = ["env://", "memory://"]
assert_type(secretkit.open(urls), LayeredStore)
assert_type(secretkit.open(("env://", ["memory://", dev])), LayeredStore)
assert_type(secretkit.open_async(["env://", "memory://"]), secretkit.AsyncSecretStore)
"""


def mypy_strict(tmp_path: Path, files: dict[str, str]) -> None:
    """Run mypy once over ``files`` (name → code) written to ``tmp_path``; fail on any error."""
    pytest.importorskip("mypy")
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    (tmp_path / "mypy.ini").write_text(
        "[mypy]\nstrict = True\nplugins = pydantic.mypy\n"
        f"mypy_path = {ROOT}\n"  # this checkout's secretkit, not an installed one
        f"cache_dir = {tmp_path / '.mypy_cache'}\n"
        f"\n[mypy-{','.join(UNTYPED_SDKS)}]\nignore_missing_imports = True\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path)])}
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", *sorted(files)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert f"{len(files)} source file" in done.stdout


def test_the_pages_and_typed_user_code_pass_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    files: dict[str, str] = {}
    for page in PAGES:
        made = modules(page)
        assert made and not set(made) & set(files), f"{page}: no python block, or a module name taken twice"
        files.update(made)
    files["user_code.py"] = USER_CODE  # in the same run: one mypy start-up for everything
    mypy_strict(tmp_path, files)
