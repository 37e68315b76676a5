"""Selecting a store by URL, environment and TOML config; the import stays light."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

import secretkit
from secretkit.url import redact_url


def test_open_without_url_or_env_is_the_default_file_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The same rule as the CLI's: $SECRETKIT_URL, else the encrypted store in the data directory."""
    monkeypatch.delenv("SECRETKIT_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with secretkit.open() as store:
        assert store.backend == "file"
        assert store.url == secretkit.default_url() == (tmp_path / "data" / "secretkit" / "store").as_uri()
        store.put("a", "1")
    assert secretkit.open().get("a").text == "1"


def test_not_found_in_the_implicit_default_store_says_where_and_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A deployed service that forgot SECRETKIT_URL must not just see "secret not found"."""
    monkeypatch.delenv("SECRETKIT_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    where = (tmp_path / "data" / "secretkit" / "store").as_uri()
    with pytest.raises(secretkit.NotFoundError) as missing_store:
        secretkit.open().get("db/password")  # no store there yet
    secretkit.open().put("other", "v")
    with pytest.raises(secretkit.NotFoundError) as missing_secret:
        secretkit.open().get("db/password")
    batch = secretkit.open().get_many(["db/password"]).errors["db/password"]
    for error in (missing_store.value, missing_secret.value, batch):
        assert "default store" in str(error) and "SECRETKIT_URL is not set" in str(error) and where in str(error)
        assert error.name == "db/password" and error.backend == "file"
    # only when the URL was implicit: the same store named explicitly, or through the variable, says nothing of it
    with pytest.raises(secretkit.NotFoundError) as explicit:
        secretkit.open(where).get("db/password")
    monkeypatch.setenv("SECRETKIT_URL", where)
    with pytest.raises(secretkit.NotFoundError) as from_env:
        secretkit.open().get("db/password")
    for error in (explicit.value, from_env.value):
        assert "default store" not in str(error) and "SECRETKIT_URL" not in str(error)


def test_open_uses_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRETKIT_URL", "memory://from-env")
    store = secretkit.open()
    store.put("a", "1")
    assert secretkit.open("memory://from-env").get("a").text == "1"  # named memory stores are shared
    assert not secretkit.open("memory://").exists("a")  # an unnamed one is fresh


def test_unknown_scheme_and_option() -> None:
    with pytest.raises(secretkit.ConfigError, match="unknown store scheme"):
        secretkit.open("nosuch://x")
    with pytest.raises(secretkit.ConfigError, match="bogus"):
        secretkit.open("memory://?bogus=1")
    with pytest.raises(secretkit.ConfigError, match="retry.max_attempts"):
        secretkit.open("memory://?retry.max_attempts=0")


def test_url_query_and_kwargs_map_onto_the_same_models() -> None:
    store = secretkit.open("memory://?max_value_bytes=10&retry.max_attempts=2")
    assert store.capabilities.max_value_bytes == 10
    assert store.options.retry.max_attempts == 2
    store = secretkit.open("memory://?max_value_bytes=10", max_value_bytes=20)
    assert store.capabilities.max_value_bytes == 20


def test_toml_config(tmp_path: Path) -> None:
    cfg = tmp_path / "secretkit.toml"
    cfg.write_text('url = "memory://cfg"\nmax_value_bytes = 99\n[retry]\nmax_attempts = 3\n')
    store = secretkit.open(config=cfg)
    assert store.backend == "memory"
    assert store.capabilities.max_value_bytes == 99 and store.options.retry.max_attempts == 3
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.secretkit]\nurl = "memory://"\n[tool.secretkit.retry]\ndeadline = 5\n')
    assert secretkit.open(config=pyproject).options.retry.deadline == 5
    bad = tmp_path / "bad.toml"
    bad.write_text("url = \n")
    with pytest.raises(secretkit.ConfigError, match="not valid TOML"):
        secretkit.open(config=bad)


def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, distribution: str, entry_points: str) -> None:
    """Make ``distribution`` look installed with ``entry_points`` (entry_points.txt syntax): its
    metadata on ``sys.path``, exactly as pip leaves it."""
    info = tmp_path / f"{distribution}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[secretkit.drivers]\n{entry_points}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_missing_extra_gives_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    installed(tmp_path, monkeypatch, "fake-dist", "fake-cloud = secretkit_tests_missing_sdk_driver:open_driver [fake]")
    monkeypatch.setitem(sys.modules, "secretkit_tests_missing_sdk_driver", None)
    with pytest.raises((secretkit.ConfigError, ImportError)):
        secretkit.open("fake-cloud://x")


def test_install_hint_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mod = tmp_path / "sk_hint_driver.py"
    mod.write_text("import sdk_that_is_not_installed_anywhere\n")
    installed(tmp_path, monkeypatch, "secretkit-hinted", "hinted = sk_hint_driver:open_driver [hinted-extra]")
    with pytest.raises(secretkit.ConfigError, match=r"pip install 'secretkit-hinted\[hinted-extra\]'"):
        secretkit.open("hinted://x")


@pytest.mark.parametrize(("scheme", "extra", "sdk"), [
    ("vault", "vault", "hvac"), ("openbao", "vault", "hvac"), ("vault+https", "vault", "hvac"),
    ("aws-sm", "aws", "boto3"), ("gcp-sm", "gcp", "google"), ("k8s", "k8s", "kubernetes"),
])
def test_a_missing_sdk_names_secretkits_extra(scheme: str, extra: str, sdk: str) -> None:
    # The hint comes from the built-in's own entry point (pyproject.toml), like any other driver's.
    # A fresh interpreter, so that no module of the driver's package is already imported (a
    # cached one would hide the missing SDK); None in sys.modules makes the SDK's import fail as
    # if it were not installed.
    code = (
        f"import sys; sys.modules[{sdk!r}] = None\n"
        "import secretkit\n"
        "try:\n"
        f"    secretkit.open({scheme + '://host/x'!r})\n"
        "except secretkit.ConfigError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"pip install 'secretkit[{extra}]'" in done.stdout, done.stdout


def test_every_backend_is_an_entry_point_and_the_aliases_open_one_factory() -> None:
    from secretkit import registry

    found = registry.registrations()
    assert {"memory", "file", "files", "env", "vault", "vault+http", "vault+https", "openbao", "aws-sm", "gcp-sm",
            "k8s"} <= set(found)
    assert {found[s].factory for s in ("vault", "vault+http", "vault+https", "openbao")} == {found["vault"].factory}
    assert all(found[s].distribution == "secretkit" for s in ("memory", "vault", "k8s"))


def test_a_source_tree_never_installed_says_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the package on sys.path and no metadata: no scheme is known, and the error says why.
    import importlib.metadata

    from secretkit import registry

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    monkeypatch.setattr(registry, "_scanned", None)
    with pytest.raises(secretkit.ConfigError, match=r"none is installed.*pip install -e \."):
        secretkit.open("memory://")
    monkeypatch.undo()
    assert secretkit.open("memory://").backend == "memory"


def test_third_party_driver_by_register() -> None:
    secretkit.register("mine", "secretkit.drivers.memory:open_driver")
    assert secretkit.open("mine://").backend == "memory"
    assert "mine" in secretkit.schemes()


def test_redact_url_hides_credentials() -> None:
    shown = redact_url("vault://user:pw@host:8200/secret?token=abc&mount=kv")
    assert "pw" not in shown and "abc" not in shown and "mount=kv" in shown
    store = secretkit.open("memory://user:hunter2@shared-name")
    assert "hunter2" not in repr(store) and "shared-name" in repr(store)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("aws-sm://?region=eu-west-1&token=abc", "aws-sm://?region=eu-west-1&token=***"),
        ("k8s://", "k8s://"),
        ("file:///tmp/store", "file:///tmp/store"),
        ("gcp-sm://proj?location=europe-west1", "gcp-sm://proj?location=europe-west1"),
    ],
)
def test_redacted_url_keeps_the_users_spelling(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_import_secretkit_imports_no_cloud_sdk_nor_pydantic() -> None:
    code = (
        "import sys, json, secretkit; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3','botocore','hvac','google','kubernetes','grpc','pydantic','tenacity','cryptography'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


@pytest.mark.parametrize(
    "url",
    [
        "vault://admin:pa/ss@vault.example:8200/secret",
        "vault://admin:pa?ss@vault.example:8200/secret",
        "vault://admin:p@ss#w@vault.example:8200/secret",
        "memory://?endpoint_url=http://u:pa55word@localhost:5000&cache=maybe",
    ],
)
def test_passwords_in_urls_are_never_shown(url: str) -> None:
    for password in ("pa/ss", "pa?ss", "p@ss#w", "pa55word"):
        assert password not in redact_url(url)
    with pytest.raises(secretkit.SecretError) as info:  # an unknown option or a bad value: shown masked
        secretkit.open(url.replace("vault://", "nosuchscheme://"))
    for password in ("pa/ss", "pa?ss", "p@ss#w", "pa55word"):
        assert password not in str(info.value)


def test_store_url_masks_credentials_inside_url_valued_options() -> None:
    from secretkit.drivers.memory import MemoryDriver

    store = secretkit.SecretStore(MemoryDriver(), url="aws-sm://?endpoint_url=http://user:s3cr3t@host:5000&region=x")
    assert "s3cr3t" not in store.url and "s3cr3t" not in repr(store)
    assert store.url == "aws-sm://?endpoint_url=http://***@host:5000&region=x"


@pytest.mark.parametrize("url", ["vault://[::1", "vault://[zz::1]:8200/x", "vault://host:99999/x", "vault://host:port/x"])
def test_malformed_urls_are_config_errors(url: str) -> None:
    with pytest.raises(secretkit.ConfigError) as info:
        secretkit.open(url)
    assert info.value.__cause__ is None


MALFORMED_WITH_PASSWORD = [
    "vault://user:hunter2@host:badport/x",
    "vault://user:hunter2@host:-1/x",
    "vault://user:hunter2@host:8200:99/x",
    "vault://user:hunter2@[::1/x",
    "vault://user:hunter2@[zz::1]:8200/x",
    "vault://user:hunter2@[fe80::1%eth0]:x/",
    "vault://user:hunter2/x@host:badport/x",
    "vault://user:hunter2@ho st:x/",
]


def _shown(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error) + str(error)


@pytest.mark.parametrize("url", MALFORMED_WITH_PASSWORD)
def test_a_malformed_url_never_shows_its_password(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the URL is passed, read from a config file or from $SECRETKIT_URL."""
    config = tmp_path / "secretkit.toml"
    config.write_text(f"url = {json.dumps(url)}\n")
    monkeypatch.setenv("SECRETKIT_URL", url)
    for opening in (lambda: secretkit.open(url), lambda: secretkit.open(config=config), lambda: secretkit.open()):
        with pytest.raises(secretkit.ConfigError, match="malformed") as info:
            opening()
        assert "hunter2" not in _shown(info.value)
        assert "vault://***@" in str(info.value)  # the rest of the URL still says which one


def test_non_str_url_is_a_config_error() -> None:
    with pytest.raises(secretkit.ConfigError):
        secretkit.open(b"memory://")  # type: ignore[arg-type]
