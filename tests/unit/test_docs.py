"""The documentation tells the truth.

* docs/capabilities.md is what the drivers declare.
* Every ``python`` block of README.md and docs/ runs as written, in a fresh interpreter with a
  home, config and data directory of its own and no ``SECRETKIT_*`` variables; ``sh`` blocks
  run where a page says they do (``RUN_SH``). A page's python blocks build on each other, so
  they run joined, as one script, unless the page interleaves shell steps (``IN_ORDER``).
  Backends are local doubles: fake AWS credentials (opening aws-sm:// makes no call), a
  generated service-account key for gcp-sm://, and the Kubernetes API double behind
  ``KUBECONFIG``.

``py`` and ``toml`` blocks of docs/writing-a-driver.md are excerpts of the example driver's files
(examples/third_party_driver), not run here: each must appear in them as written (its own
suite, tests/unit/test_third_party_driver.py, runs the example).

Pages whose blocks need a live server of their own are run by their own suites:
docs/backends/vault.md (tests/interop/test_vault_interop.py, on OpenBao), docs/async.md
(tests/aio/test_aio_docs.py, FastAPI's TestClient) and docs/cli.md (tests/unit/test_cli.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```(python|sh)\n(.*?)^```", re.DOTALL | re.MULTILINE)

#: Pages run by their own suites (see the module docstring), and pages with no code to run.
ELSEWHERE = {"docs/backends/vault.md", "docs/async.md", "docs/cli.md"}
#: Pages whose sh blocks run too (in a scratch directory, with the package's commands on PATH).
RUN_SH = {"docs/backends/file.md"}
#: Pages whose blocks run one by one, in order, sharing one working directory.
IN_ORDER = {"docs/backends/file.md"}
#: Pages whose python blocks are pytest test modules, run with pytest.
PYTEST = {"docs/testing.md"}


def pages() -> list[str]:
    found = [str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]]
    return [page for page in found if page not in ELSEWHERE and BLOCK.search((ROOT / page).read_text())]


def blocks(page: str) -> list[tuple[str, str]]:
    text = (ROOT / page).read_text()
    if page == "README.md":  # the install commands are run on a fresh clone, not here
        text = text.split("## Try it on a fresh machine")[0] + text.split("## Command line")[1].split("## ")[0]
    found = [(lang, code) for lang, code in BLOCK.findall(text)]
    runs_sh = page in RUN_SH or page == "README.md"
    return [(lang, code) for lang, code in found if lang == "python" or runs_sh]


def test_every_page_with_code_is_run_somewhere() -> None:
    assert {"README.md", "docs/names-and-values.md", "docs/rotation.md", "docs/backends/files.md"} <= set(pages())
    for page in ELSEWHERE:
        assert BLOCK.search((ROOT / page).read_text()), f"{page} has no code: drop it from ELSEWHERE"


@pytest.fixture(scope="module")
def kube_api() -> Iterator[str]:
    from tests.doubles import k8s_api

    with k8s_api.FakeKubeAPI() as server:
        yield server.url


def _gcp_key(path: Path) -> Path:
    """A service-account key file google.auth loads without any call (the key is made here)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "my-project", "private_key_id": "0",
        "private_key": pem, "client_email": "docs@my-project.iam.gserviceaccount.com", "client_id": "0",
        "token_uri": "http://127.0.0.1:9/token",
    }))
    return path


def page_env(tmp_path: Path, kube_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SECRETKIT_", "XDG_", "AWS_", "APP_", "SVC_", "VAULT_", "GOOGLE_", "KUBE"))}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "docs",
        "clusters": [{"name": "docs", "cluster": {"server": kube_url}}],
        "users": [{"name": "docs", "user": {}}],
        "contexts": [{"name": "docs", "context": {"cluster": "docs", "user": "docs", "namespace": "default"}}],
    }))
    env.update(
        HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"),
        PYTHONPATH=str(ROOT), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        AWS_ACCESS_KEY_ID="docs", AWS_SECRET_ACCESS_KEY="docs", AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true",
        GOOGLE_APPLICATION_CREDENTIALS=str(_gcp_key(tmp_path / "gcp-key.json")), NO_GCE_CHECK="true",
        KUBECONFIG=str(kubeconfig),
    )
    return env


@pytest.mark.parametrize("page", pages())
def test_code_blocks_run_as_written(page: str, tmp_path: Path, kube_api: str) -> None:
    found = blocks(page)
    assert found, f"{page}: no block to run"
    work = tmp_path / "work"
    work.mkdir()
    env = page_env(tmp_path, kube_api)
    if page in PYTEST:
        (work / "test_doc.py").write_text("\n\n".join(code for _, code in found))
        # the fixtures come from secretkit's pytest plugin, registered by its entry point when installed
        steps = [[sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_doc.py"]]
    elif page in IN_ORDER:
        steps = [[sys.executable, "-c", code] if lang == "python" else ["sh", "-ec", code] for lang, code in found]
    else:
        script = "\n\n".join(code for lang, code in found if lang == "python")
        steps = [[sys.executable, "-c", script]] + [["sh", "-ec", code] for lang, code in found if lang == "sh"]
    for number, command in enumerate(steps, 1):
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, f"{page}, step {number}:\n{command[-1][:2000]}\n{done.stdout[-2000:]}{done.stderr[-3000:]}"


def test_the_driver_walkthrough_quotes_the_example_as_it_is() -> None:
    page = (ROOT / "docs" / "writing-a-driver.md").read_text()
    example = ROOT / "examples" / "third_party_driver"
    sources = {"py": (example / "secretkit_jsonfile.py").read_text() + (example / "test_conformance.py").read_text(),
               "toml": (example / "pyproject.toml").read_text()}
    excerpts = re.findall(r"^```(py|toml)\n(.*?)^```", page, flags=re.DOTALL | re.MULTILINE)
    assert len(excerpts) >= 5
    for lang, excerpt in excerpts:
        assert excerpt in sources[lang], f"docs/writing-a-driver.md quotes what the example no longer says:\n{excerpt}"


def test_capabilities_doc_is_generated_from_the_drivers() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "capabilities_doc.py"), "--check"],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False,
    )
    assert done.returncode == 0, done.stderr


def test_testing_md_counts_and_names_every_fixture_of_the_plugin() -> None:
    source = (ROOT / "secretkit" / "testing" / "plugin.py").read_text()
    fixtures = re.findall(r"^@pytest\.fixture\b.*\ndef (\w+)", source, flags=re.MULTILINE)
    assert len(fixtures) >= 3
    intro = (ROOT / "docs" / "testing.md").read_text().split("## The conformance suite")[0]
    numbers = {2: "two", 3: "three", 4: "four", 5: "five"}
    assert f"pytest plugin with {numbers[len(fixtures)]} fixtures" in intro
    for name in fixtures:
        assert f"`{name}`" in intro, name
