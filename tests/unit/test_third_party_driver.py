"""examples/third_party_driver is a backend in its own distribution: installed next to secretkit,
with no edit to secretkit, it opens by its scheme, passes the conformance suite and shows in the
capabilities table (docs/writing-a-driver.md walks through it)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "third_party_driver"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The example pip-installed into a directory of its own; the environment that sees it."""
    work = tmp_path_factory.mktemp("third-party")
    source = work / "src"
    shutil.copytree(EXAMPLE, source)  # a build writes beside its source: not into the repository
    target = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETKIT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), str(ROOT)])
    yield {**env, "SOURCE": str(source), "WORK": str(work)}


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, cwd=env["WORK"], capture_output=True, text=True,
                          timeout=300, check=False)


def test_it_opens_by_its_scheme(installed: dict[str, str], tmp_path: Path) -> None:
    code = (
        "import secretkit\n"
        f"store = secretkit.open('jsonfile://{tmp_path}/secrets.json')\n"
        "store.put('db/password', 's3cr3t')\n"
        "print(store.backend, store.get('db/password').text, 'jsonfile' in secretkit.schemes())\n"
    )
    done = run(installed, "-c", code)
    assert done.stdout.split() == ["jsonfile", "s3cr3t", "True"], done.stderr


def test_it_passes_the_conformance_suite(installed: dict[str, str]) -> None:
    test_file = Path(installed["SOURCE"]) / "test_conformance.py"
    done = run(installed, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
               "--rootdir", installed["WORK"], str(test_file))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_the_capabilities_table_lists_it_and_the_page_stays_secretkits_own(installed: dict[str, str]) -> None:
    printed = run(installed, str(ROOT / "tools" / "capabilities_doc.py"), "--print")
    assert printed.returncode == 0, printed.stderr
    header = printed.stdout.splitlines()[0]
    assert "jsonfile (example)" in header and "memory" in header
    assert run(installed, str(ROOT / "tools" / "capabilities_doc.py"), "--check").returncode == 0


def test_the_driver_imports_only_the_contract_module_of_secretkit() -> None:
    tree = ast.parse((EXAMPLE / "secretkit_jsonfile.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {m for m in imported if m.startswith("secretkit")} == {"secretkit.drivers.base"}
