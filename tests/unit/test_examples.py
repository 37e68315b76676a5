"""Every script in examples/ runs to completion (each asserts its own results)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Examples that need servers of their own, run by their own suites instead.
ELSEWHERE = {"leases_sqlalchemy.py": "tests/leases/test_leases_sqlalchemy.py"}
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if p.name not in ELSEWHERE)


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SECRETKIT_", "VAULT_"))}
    env.update(SECRETKIT_URL="memory://", HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "OK" in done.stdout


def test_examples_run_elsewhere_are_run_there() -> None:
    for script, suite in ELSEWHERE.items():
        assert (ROOT / "examples" / script).exists(), f"{script} is gone: drop it from ELSEWHERE"
        assert script in (ROOT / suite).read_text(), f"{suite} does not run {script}"


def test_the_quickstart_never_writes_into_your_own_store(tmp_path: Path) -> None:
    """Run as the README says, with no SECRETKIT_URL: a throwaway store, nothing left in the user's
    data or config directory or keyring, and it says so."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SECRETKIT_", "VAULT_", "XDG_"))}
    home = tmp_path / "home"
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"),
               PYTHONPATH=str(ROOT), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", TMPDIR=str(tmp_path))
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "quickstart OK" in done.stdout and "temporary" in done.stdout
    assert "secretkit.open()" in (ROOT / "examples" / "quickstart.py").read_text()  # still shows the default
    # no store and no key in the user's directories (HOME was never made), and the throwaway one is gone
    assert list(tmp_path.iterdir()) == []
