"""The reader agreement suite: one value, every reader, the same text, on every store.

An application reads a secret in many ways: ``get().text``, ``get_many``, ``resolve`` and
``resolve_many``, a ``SecretRef`` settings field, ``secretkit run --env VAR=NAME``,
``secretkit get`` (and ``--json``, ``--field``), through a layered store or the async facade.
Moved from one backend to another, none of them may hand it a different password. So for each
value below, put once (or, on a read-only store, written the way the system feeding it would),
every reader must give exactly the text this table says, whatever the backend::

    class TestMyStoreReaders(ReaderAgreement):
        @pytest.fixture
        def store(self):
            with secretkit.open("my-scheme://...") as s:
                yield s

        @pytest.fixture
        def cli_url(self):
            return "my-scheme://...?token=..."   # what `secretkit --url` opens the same store with

A read-only store also gives a ``seed`` fixture, as for ``ReadOnlyStoreConformance``.

The rule every reader follows (docs/names-and-values.md): a reference ``NAME`` is the
secret's ``.text``; ``NAME#FIELD`` is that field's text; ``secretkit get`` prints ``.text``
(octets as they are) and ``--json`` prints ``.text`` as JSON (an object when the text is a JSON
object, else a string). A missing field is ``NotFoundError`` naming the secret and the backend.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Union

import pytest

from secretkit.errors import NotFoundError
from secretkit.references import Reference, resolve_many
from secretkit.store import SecretStore
from secretkit.testing.common import UNICODE_TEXT, NameFactory, Seed, StoreFixtures

__all__ = ["CASES", "Case", "ReaderAgreement"]


@dataclass(frozen=True)
class Case:
    """A value, the text every reader gives for ``NAME``, what ``get --json`` prints, and the
    text of each ``NAME#FIELD``."""

    id: str
    value: Union[str, Mapping[str, str]]
    text: str
    json: str
    fields: Mapping[str, str] = field(default_factory=dict)


JSON_TEXT = '{"user": "app", "port": 5432}'  # JSON text as Terraform or the AWS console writes it

CASES = (
    Case("plain", "k-bao", "k-bao", '"k-bao"'),
    Case("json-text", JSON_TEXT, JSON_TEXT, '{"port":5432,"user":"app"}', {"user": "app", "port": "5432"}),
    Case("unicode", UNICODE_TEXT, UNICODE_TEXT, json.dumps(UNICODE_TEXT, ensure_ascii=False)),
    Case(
        "fields",
        {"user": "app", "password": "pä ss 🔑", "host": "db.internal"},
        '{"host":"db.internal","password":"pä ss 🔑","user":"app"}',
        '{"host":"db.internal","password":"pä ss 🔑","user":"app"}',
        {"user": "app", "password": "pä ss 🔑", "host": "db.internal"},
    ),
    # One field under a key that is not the backend's text key: a map like any other, so its
    # canonical JSON (AWS and GCP hold exactly that text; Vault and Kubernetes hold the map).
    Case("one-field", {"password": "x-ß"}, '{"password":"x-ß"}', '{"password":"x-ß"}', {"password": "x-ß"}),
)


class ReaderAgreement(StoreFixtures):
    """Every reader agrees with ``.text``. Subclasses give ``store`` and ``cli_url`` (and
    ``seed`` for a read-only store)."""

    @pytest.fixture
    def seed(self, store: SecretStore) -> Seed:
        """Make a value readable as a name: ``store.put`` (a read-only store overrides this)."""
        def put(name: str, value: Union[str, bytes, Mapping[str, str]]) -> None:
            store.put(name, value)

        return put

    @pytest.fixture
    def cli_url(self, store: SecretStore) -> str:
        """The URL ``secretkit --url`` opens this same store with. ``store.url`` by default; a
        store opened with keyword arguments (a token, a test endpoint) or one ``memory://``
        gives its own."""
        return store.url

    @pytest.fixture
    def cli(self, cli_url: str, capsysbinary: pytest.CaptureFixture[bytes]) -> Callable[..., tuple[int, bytes, bytes]]:
        """``secretkit --url URL -q ARGS...`` run in this process: (exit code, stdout, stderr)."""
        from secretkit.cli import main

        def cli(*args: str) -> tuple[int, bytes, bytes]:
            capsysbinary.readouterr()
            code = main(["--url", cli_url, "-q", *args])
            out, err = capsysbinary.readouterr()
            return code, out, err

        return cli

    @pytest.fixture(params=CASES, ids=[case.id for case in CASES])
    def case(self, request: pytest.FixtureRequest) -> Case:
        return request.param  # type: ignore[no-any-return]

    @pytest.fixture
    def written(self, seed: Seed, new_name: NameFactory, case: Case) -> str:
        name = new_name(f"readers-{case.id}")
        seed(name, case.value)
        return name

    # -- the library's readers -----------------------------------------------------------

    def test_get_text_is_the_value(self, store: SecretStore, written: str, case: Case) -> None:
        assert store.get(written).text == case.text
        assert store.get(written).bytes == case.text.encode("utf-8")

    def test_get_many_agrees(self, store: SecretStore, written: str, case: Case) -> None:
        assert store.get_many([written])[written].text == case.text

    def test_resolve_agrees(self, store: SecretStore, written: str, case: Case) -> None:
        assert store.resolve(written) == case.text
        for name, text in case.fields.items():
            assert store.resolve(f"{written}#{name}") == text

    def test_resolve_many_agrees(self, store: SecretStore, written: str, case: Case) -> None:
        refs = [written, *(f"{written}#{name}" for name in case.fields)]
        found = resolve_many(store, refs)
        assert {str(ref): text for ref, text in found.items()} == dict(
            [(written, case.text), *((f"{written}#{name}", text) for name, text in case.fields.items())]
        )

    def test_settings_agree(self, store: SecretStore, written: str, case: Case) -> None:
        pytest.importorskip("pydantic_settings")
        refs = [written, *(f"{written}#{name}" for name in case.fields)]
        assert _settings_values(store, refs) == [case.text, *case.fields.values()]

    def test_layered_store_agrees(self, store: SecretStore, written: str, case: Case) -> None:
        from secretkit.layered import LayeredStore

        with LayeredStore([store]) as layered:
            assert layered.get(written).text == case.text
            assert layered.resolve(written) == case.text
            assert layered.get_many([written])[written].text == case.text

    def test_async_facade_agrees(self, store: SecretStore, written: str, case: Case) -> None:
        from secretkit.aio import AsyncSecretStore

        facade = AsyncSecretStore(store)

        async def read() -> tuple[str, str]:
            return (await facade.get(written)).text, (await facade.get_many([written]))[written].text

        try:
            assert asyncio.run(read()) == (case.text, case.text)
        finally:
            facade._shutdown()

    # -- the command line ----------------------------------------------------------------

    def test_cli_get_agrees(self, cli: Callable[..., tuple[int, bytes, bytes]], written: str, case: Case) -> None:
        assert cli("get", written) == (0, case.text.encode("utf-8") + b"\n", b"")
        assert cli("get", written, "--json") == (0, case.json.encode("utf-8") + b"\n", b"")
        assert json.loads(case.json) == (json.loads(case.text) if case.json.startswith("{") else case.text)
        for name, text in case.fields.items():
            assert cli("get", written, "--field", name) == (0, text.encode("utf-8") + b"\n", b"")

    def test_cli_run_agrees(
        self, cli: Callable[..., tuple[int, bytes, bytes]], written: str, case: Case, tmp_path: Path
    ) -> None:
        refs = [written, *(f"{written}#{name}" for name in case.fields)]
        variables = {f"SKREADER_{i}": ref for i, ref in enumerate(refs)}
        out = tmp_path / "environment.json"
        dump = ("import json, os, sys; json.dump({k: v for k, v in os.environ.items() if k.startswith('SKREADER_')}, "
                "open(sys.argv[1], 'w', encoding='utf-8'))")
        args = [arg for var, ref in variables.items() for arg in ("--env", f"{var}={ref}")]
        code, _, err = cli("run", *args, "--", sys.executable, "-c", dump, str(out))
        assert code == 0, err
        got = json.loads(out.read_text(encoding="utf-8"))
        assert [got[var] for var in variables] == [case.text, *case.fields.values()]

    # -- a missing field -----------------------------------------------------------------

    def test_a_missing_field_names_the_secret_and_the_backend(
        self, store: SecretStore, cli: Callable[..., tuple[int, bytes, bytes]], seed: Seed, new_name: NameFactory
    ) -> None:
        name = new_name("readers-missing-field")
        seed(name, {"user": "app"})
        where = f"secret {name!r}, backend {store.backend}"
        with pytest.raises(NotFoundError) as info:
            store.resolve(f"{name}#missing")
        assert where in str(info.value) and "'missing'" in str(info.value)
        failed = resolve_many(store, [f"{name}#missing"])[Reference(name, "missing")]
        assert isinstance(failed, NotFoundError) and where in str(failed)
        code, out, err = cli("get", name, "--field", "missing")
        assert (code, out) == (1, b"")
        assert where.encode() in err and b"'missing'" in err and b"app" not in err


def _settings_values(store: SecretStore, refs: list[str]) -> list[str]:
    """The values of ``SecretStr`` settings fields, one ``SecretRef`` each, read through ``store``."""
    from pydantic import SecretStr, create_model
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

    from secretkit.settings import SecretRef, SecretsSource

    class FromStore(BaseSettings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (SecretsSource(settings_cls, store=store),)

    fields: dict[str, Any] = {f"f{i}": (Annotated[SecretStr, SecretRef(ref)], ...) for i, ref in enumerate(refs)}
    settings = create_model("ReaderSettings", __base__=FromStore, **fields)()
    return [getattr(settings, f"f{i}").get_secret_value() for i in range(len(refs))]
