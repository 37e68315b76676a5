"""Every code block of docs/async.md runs as written: scripts as scripts, the blocks marked
``<!-- file: NAME -->`` as files of a small project whose tests pytest runs (the FastAPI app
and its TestClient test among them)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "async.md"
BLOCK = re.compile(r"(?:<!-- file: (?P<file>[\w.]+) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)```", re.DOTALL)


def blocks() -> list[tuple[str | None, str, str]]:
    return [(m["file"], m["lang"], m["code"]) for m in BLOCK.finditer(DOC.read_text())]


def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SECRETKIT_", "VAULT_"))}
    clean.update(HOME=str(tmp_path), PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    return clean


SCRIPTS = [code for file, lang, code in blocks() if lang == "python" and file is None]


@pytest.mark.parametrize("code", SCRIPTS, ids=[f"script-{i}" for i in range(len(SCRIPTS))])
def test_script_blocks_run(code: str, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", code], env=env(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def test_file_blocks_make_a_project_whose_tests_pass(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    pytest.importorskip("pytest_asyncio")
    files = {file: code for file, lang, code in blocks() if file is not None}
    assert {"app.py", "test_app.py", "test_async_fixture.py"} <= set(files)
    for file, code in files.items():
        (tmp_path / file).write_text(code)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],  # the plugin loads by entry point
        env=env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout


def test_the_benchmark_command_names_a_real_script_and_options() -> None:
    commands = [code.strip() for _, lang, code in blocks() if lang == "sh"]
    assert commands == ["python benchmarks/bench_async.py --rounds 7"]
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_async.py"), "--help"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "--rounds" in done.stdout and "--latency" in done.stdout


def test_the_async_example_in_the_api_reference_runs(tmp_path: Path) -> None:
    section = (ROOT / "docs" / "api.md").read_text().split("## Async\n", 1)[1].split("\n## ", 1)[0]
    codes = [m["code"] for m in BLOCK.finditer(section) if m["lang"] == "python"]
    assert len(codes) == 1
    done = subprocess.run([sys.executable, "-c", codes[0]], env=env(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
