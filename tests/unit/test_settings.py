"""The pydantic-settings source: real settings models against memory://, file:// and moto's aws-sm://."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest

pytest.importorskip("pydantic_settings")

from pydantic import BaseModel, Json, SecretBytes, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

import secretkit
from secretkit.errors import (
    ConfigError,
    InvalidArgumentError,
    PermissionDeniedError,
    SecretError,
)
from secretkit.settings import SecretRef, SecretsSource, fresh_settings, secret_reference
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver

ROOT = Path(__file__).resolve().parents[2]
CANARY = "canary-3f9a7c-must-never-show"


class Database(BaseModel):
    user: str
    password: SecretStr
    host: str = "localhost"
    port: int = 5432


def settings_class(
    store: SecretStore, *, prefix: str | None = None, first: bool = False, **config: Any
) -> type[BaseSettings]:
    """A realistic settings class; the secrets source after env and dotenv (usual), or ``first``."""

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_nested_delimiter="__", **config)  # type: ignore[typeddict-item]

        db_password: Annotated[SecretStr, SecretRef("payments/db#password")]
        db: Annotated[Database, SecretRef("payments/db")]
        api_key: SecretStr  # prefix + field name
        signing_key: Annotated[SecretBytes, SecretRef("payments/signing")]
        log_level: str = "info"

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            secrets = SecretsSource(settings_cls, store=store, prefix=prefix)
            if first:
                return init_settings, secrets, env_settings, dotenv_settings
            return init_settings, env_settings, dotenv_settings, secrets

    return Settings


def fill(store: SecretStore) -> None:
    store.put("payments/db", {"user": "app", "password": CANARY, "host": "db.internal", "port": "6432"})
    store.put("payments/api_key", "k-" + CANARY)
    store.put("payments/signing", b"\x00\xff" + CANARY.encode())


# -- the stores: memory, file, moto ---------------------------------------------------


@contextlib.contextmanager
def moto_store() -> Iterator[SecretStore]:
    """aws-sm:// on moto in-process, with the repository's fake credentials and AWS-faithful patches."""
    moto = pytest.importorskip("moto")
    from tests.doubles.aws import aws_faithful_moto, fake_aws_env

    with fake_aws_env(), aws_faithful_moto(), moto.mock_aws(), secretkit.open("aws-sm://?region=us-east-1") as store:
        yield store


@pytest.fixture(params=["memory", "file", "aws-sm"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecretStore]:
    if request.param == "memory":
        with secretkit.open("memory://") as s:
            yield s
    elif request.param == "file":
        with secretkit.open((tmp_path / "store").as_uri()) as s:
            yield s
    else:
        with moto_store() as s:
            yield s


@pytest.fixture
def aws() -> Iterator[SecretStore]:
    with moto_store() as s:
        yield s


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("DB_PASSWORD", "API_KEY", "LOG_LEVEL", "DB__HOST", "DB", "SIGNING_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


pytestmark = pytest.mark.usefixtures("clean_env")


# -- reading ----------------------------------------------------------------------------


def test_fields_nested_models_and_bytes_on_every_store(store: SecretStore) -> None:
    fill(store)
    settings: Any = settings_class(store, prefix="payments/")()
    assert settings.db_password.get_secret_value() == CANARY
    assert settings.api_key.get_secret_value() == "k-" + CANARY
    assert settings.db == Database(user="app", password=SecretStr(CANARY), host="db.internal", port=6432)
    assert settings.db.port == 6432  # "6432" in the secret, an int in the model
    assert settings.signing_key.get_secret_value() == b"\x00\xff" + CANARY.encode()
    assert settings.log_level == "info"  # payments/log_level does not exist: the default stays
    assert type(settings.db.user) is str  # the masked carrier never reaches the model


def test_values_stay_masked_in_repr_and_str(store: SecretStore) -> None:
    fill(store)
    settings = settings_class(store, prefix="payments/")()
    assert CANARY not in repr(settings)
    assert CANARY not in str(settings)
    assert CANARY not in repr(settings.model_dump())  # SecretStr/SecretBytes stay wrapped


def test_without_a_prefix_only_secret_refs_are_read(store: SecretStore) -> None:
    fill(store)
    settings_cls = settings_class(store)  # api_key has no SecretRef and no prefix: env must give it
    with pytest.raises(ValidationError) as caught:
        settings_cls()
    assert [e["loc"] for e in caught.value.errors()] == [("api_key",)]
    assert caught.value.errors()[0]["type"] == "missing"
    assert CANARY not in str(caught.value)  # the input dict of a "missing" error holds the others, masked


def test_nested_model_from_json_text_as_aws_tools_write_it(aws: SecretStore) -> None:
    aws.client.create_secret(Name="payments/db", SecretString='{"user": "app", "password": "pw", "port": 7000}')
    aws.put("payments/api_key", "k")
    aws.put("payments/signing", b"\x01")
    settings: Any = settings_class(aws, prefix="payments/")()
    assert settings.db.port == 7000 and settings.db.password.get_secret_value() == "pw"
    assert settings.db_password.get_secret_value() == "pw"


def test_json_lists_dicts_and_bytes_fields(store: SecretStore) -> None:
    store.put("svc/list", "[1, 2]")
    store.put("svc/map", {"a": "1", "b": "2"})
    store.put("svc/blob", b"\x00" + CANARY.encode())

    class Typed(BaseSettings):
        as_json: Annotated[Json[list[int]], SecretRef("svc/list")]  # pydantic parses the text itself
        as_list: Annotated[list[int], SecretRef("svc/list")]
        as_dict: Annotated[dict[str, int], SecretRef("svc/map")]
        one: Annotated[int, SecretRef("svc/map#b")]
        raw: Annotated[bytes, SecretRef("svc/blob")]

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], **sources: PydanticBaseSettingsSource
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (SecretsSource(settings_cls, store=store),)

    settings: Any = Typed()
    assert (settings.as_json, settings.as_list, settings.as_dict, settings.one) == ([1, 2], [1, 2], {"a": 1, "b": 2}, 2)
    assert settings.raw == b"\x00" + CANARY.encode()
    assert CANARY not in repr(settings)  # a bytes field keeps the masked bytes subclass


def test_a_malformed_reference_fails_when_the_class_is_defined() -> None:
    with pytest.raises(InvalidArgumentError):
        SecretRef("payments/db#")


# -- one batch call --------------------------------------------------------------------


def ten_field_settings(store: SecretStore) -> type[BaseSettings]:
    class Ten(BaseSettings):
        f0: SecretStr
        f1: SecretStr
        f2: SecretStr
        f3: SecretStr
        f4: SecretStr
        f5: SecretStr
        f6: Annotated[SecretStr, SecretRef("svc/shared#user")]
        f7: Annotated[SecretStr, SecretRef("svc/seven#password")]
        f8: Annotated[str, SecretRef("svc/eight")]
        f9: Annotated[int, SecretRef("svc/nine")]

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], **sources: PydanticBaseSettingsSource
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return *sources.values(), SecretsSource(settings_cls, store=store, prefix="svc/")

    return Ten


def count_batch_calls(store: SecretStore) -> Counter[str]:
    calls: Counter[str] = Counter()

    def on_call(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    store.client.meta.events.register("before-call.secrets-manager.*", on_call)
    return calls


def test_ten_fields_cost_one_batch_call_on_aws(aws: SecretStore) -> None:
    for i in range(6):
        aws.put(f"svc/f{i}", f"v{i}")
    aws.put("svc/shared", {"user": "u", "password": "x"})
    aws.put("svc/seven", {"user": "x", "password": "p"})
    aws.put("svc/eight", "8")
    aws.put("svc/nine", "9")
    settings_cls = ten_field_settings(aws)
    calls = count_batch_calls(aws)

    settings: Any = settings_cls()

    assert calls == {"BatchGetSecretValue": 1}  # 10 fields, 10 distinct secrets: one call
    assert [settings.f0.get_secret_value(), settings.f7.get_secret_value(), settings.f8, settings.f9] == [
        "v0", "p", "8", 9,
    ]
    calls.clear()
    settings_cls()
    assert calls == {}  # the store's cache answers a second Settings()
    fresh_settings(settings_cls)
    assert calls == {"BatchGetSecretValue": 1}  # fresh_settings re-reads, still in one call


# -- precedence ------------------------------------------------------------------------


def test_env_and_dotenv_override_secrets_placed_after_them(store: SecretStore, monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    fill(store)
    settings_cls = settings_class(store, prefix="payments/")
    monkeypatch.setenv("DB_PASSWORD", "from-env")
    monkeypatch.setenv("DB__HOST", "env-host")  # one key of the nested model
    dotenv = tmp_path / "test.env"
    dotenv.write_text("API_KEY=from-dotenv\nLOG_LEVEL=debug\n")

    settings: Any = settings_cls(_env_file=dotenv)

    assert settings.db_password.get_secret_value() == "from-env"
    assert settings.api_key.get_secret_value() == "from-dotenv"
    assert settings.log_level == "debug"
    assert settings.db.host == "env-host"  # merged with the secret's other fields
    assert settings.db.password.get_secret_value() == CANARY and settings.db.port == 6432
    assert settings_cls(db_password="from-init").db_password.get_secret_value() == "from-init"  # type: ignore[attr-defined]


def test_secrets_placed_first_win_over_env(store: SecretStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(store)
    monkeypatch.setenv("DB_PASSWORD", "from-env")
    settings: Any = settings_class(store, prefix="payments/", first=True)()
    assert settings.db_password.get_secret_value() == CANARY


# -- missing secrets and other errors --------------------------------------------------


def test_a_missing_secret_of_a_required_field_names_the_field_and_the_reference(store: SecretStore) -> None:
    fill(store)
    store.delete("payments/api_key", purge=True)
    store.put("payments/db", {"user": "app", "host": CANARY})  # no password field
    with pytest.raises(ValidationError) as caught:
        settings_class(store, prefix="payments/")()
    errors = {e["loc"]: e for e in caught.value.errors()}
    assert set(errors) == {("db_password",), ("api_key",)}
    assert errors[("api_key",)]["type"] == "secret_not_found"
    text = str(caught.value)
    assert "db_password" in text and "'payments/db#password'" in text and "no field 'password'" in text
    assert "api_key" in text and "'payments/api_key'" in text
    assert CANARY not in text


def test_a_missing_secret_is_fine_when_env_gives_the_field(store: SecretStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(store)
    store.delete("payments/api_key", purge=True)
    monkeypatch.setenv("API_KEY", "from-env")
    settings: Any = settings_class(store, prefix="payments/")()
    assert settings.api_key.get_secret_value() == "from-env"


def test_a_field_with_a_default_keeps_it(store: SecretStore) -> None:
    class WithDefault(BaseSettings):
        timeout: Annotated[int, SecretRef("svc/timeout")] = 30
        token: Annotated[SecretStr | None, SecretRef("svc/token")] = None

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], **sources: PydanticBaseSettingsSource
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (SecretsSource(settings_cls, store=store),)

    settings: Any = WithDefault()
    assert (settings.timeout, settings.token) == (30, None)
    store.put("svc/timeout", "45")
    assert WithDefault().timeout == 45  # type: ignore[attr-defined]


def test_a_bad_value_is_a_masked_validation_error(store: SecretStore) -> None:
    fill(store)
    store.put("payments/db", {"user": "app", "password": "pw", "port": CANARY})
    with pytest.raises(ValidationError) as caught:
        settings_class(store, prefix="payments/")()
    assert [e["loc"] for e in caught.value.errors()] == [("db", "port")]
    assert CANARY not in str(caught.value)
    assert CANARY not in repr(caught.value.errors())
    assert CANARY not in caught.value.json(include_input=False)


def test_a_field_secret_that_is_not_json_for_a_nested_model(store: SecretStore) -> None:
    class Nested(BaseSettings):
        db: Annotated[Database, SecretRef("svc/db")]

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], **sources: PydanticBaseSettingsSource
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (SecretsSource(settings_cls, store=store),)

    store.put("svc/db", CANARY)
    with pytest.raises(ValidationError) as caught:
        Nested()
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(("db",), "secret_not_json")]
    assert "'svc/db'" in str(caught.value)
    assert CANARY not in str(caught.value) and CANARY not in caught.value.json()


def test_field_on_a_secret_without_fields_is_raised_as_invalid_argument(store: SecretStore) -> None:
    fill(store)
    store.put("payments/db", "plain text")
    with pytest.raises(InvalidArgumentError, match="without fields"):
        settings_class(store, prefix="payments/")()


def test_an_outage_or_permission_error_is_raised_as_itself_never_as_missing(store: SecretStore) -> None:
    fill(store)

    class Denied(CountingDriver):
        def _before(self, attr: str, args: Any, kwargs: Any) -> None:
            raise PermissionDeniedError("not allowed to read")

    denied = SecretStore(Denied(store.driver), options=store.options.model_copy(update={"cache": None}))  # type: ignore[arg-type]
    with pytest.raises(PermissionDeniedError) as caught:
        settings_class(denied, prefix="payments/")()
    assert isinstance(caught.value, SecretError) and not isinstance(caught.value, ValidationError)


def test_store_or_url_not_both(store: SecretStore) -> None:
    with pytest.raises(ConfigError):
        SecretsSource(BaseSettings, store=store, url="memory://")


def test_url_opens_one_shared_store_and_secretkit_url_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    first = SecretsSource(BaseSettings, url="memory://settings-shared")
    second = SecretsSource(BaseSettings, url="memory://settings-shared")
    assert first.store is second.store
    monkeypatch.setenv("SECRETKIT_URL", "memory://settings-shared")
    assert SecretsSource(BaseSettings).store is first.store
    monkeypatch.delenv("SECRETKIT_URL")
    assert SecretsSource(BaseSettings).store.backend == "file"  # the default store, as secretkit.open()


def open_counting_driver(url: Any, options: dict[str, Any], client: Any = None) -> CountingDriver:
    """Driver factory of the ``counting://`` scheme the test below registers: memory, read counted."""
    from secretkit.drivers.memory import MemoryDriver

    return CountingDriver(MemoryDriver())


def test_settings_and_an_async_app_share_one_store_and_its_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The FastAPI + settings setup of docs/async.md: ``Settings()`` reads through the process's
    store for $SECRETKIT_URL, and the app's facade over ``shared_store()`` reads the same cache,
    so the app's first read of a secret the settings just read costs no backend call."""
    import asyncio

    from secretkit import registry
    from secretkit import settings as settings_module
    from secretkit.aio import AsyncSecretStore
    from secretkit.settings import shared_store

    monkeypatch.setitem(registry._registered, "counting", registry.Registration(f"{__name__}:open_counting_driver"))
    monkeypatch.setattr(settings_module, "_stores", {})  # this test's shared stores only
    monkeypatch.setenv("SECRETKIT_URL", "counting://?cache=true")
    store = shared_store()
    assert shared_store() is store and shared_store("counting://?cache=true") is store
    backend = store.driver
    assert isinstance(backend, CountingDriver)
    store.put("payments/db", {"user": "app", "password": CANARY})

    class AppSettings(BaseSettings):
        db_password: Annotated[SecretStr, SecretRef("payments/db#password")]

        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], **sources: PydanticBaseSettingsSource
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (SecretsSource(settings_cls),)  # neither store= nor url=: $SECRETKIT_URL's shared store

    assert AppSettings().db_password.get_secret_value() == CANARY
    reads = backend.calls["read"] + backend.calls["read_many"]
    assert reads == 1

    async def app_reads() -> str:
        async with AsyncSecretStore(shared_store()) as secrets:  # the app's lifespan
            return (await secrets.get("payments/db")).fields["password"]

    assert asyncio.run(app_reads()) == CANARY
    assert backend.calls["read"] + backend.calls["read_many"] == reads  # a cache hit: no backend read
    store.get("payments/db")  # leaving the facade left the shared store open


def test_secret_reference_names_what_fills_a_field(store: SecretStore) -> None:
    settings_cls = settings_class(store)
    assert secret_reference(settings_cls, "db_password") == "payments/db#password"
    assert secret_reference(settings_cls, "api_key") is None
    assert secret_reference(settings_cls, "api_key", prefix="payments/") == "payments/api_key"


# -- rotation, then fresh settings -----------------------------------------------------


def test_a_rotation_then_fresh_settings(aws: SecretStore) -> None:
    fill(aws)
    settings_cls = settings_class(aws, prefix="payments/")
    before: Any = settings_cls()
    other = SecretStore(aws.driver)  # another process rotates; this one's cache still has the old value
    other.rotate("payments/db", field="password")
    assert settings_cls().db_password.get_secret_value() == CANARY  # type: ignore[attr-defined]

    after: Any = fresh_settings(settings_cls)

    assert after.db_password.get_secret_value() != CANARY
    assert after.db_password.get_secret_value() == other.resolve("payments/db#password")
    assert after.db.user == before.db.user == "app"  # the other fields kept
    assert settings_cls().db_password == after.db_password  # type: ignore[attr-defined]  # the cache was updated


def test_refresh_on_rejection_with_settings(aws: SecretStore) -> None:
    fill(aws)
    settings_cls = settings_class(aws, prefix="payments/")
    other = SecretStore(aws.driver)

    def connect(password: str) -> str:  # a database that accepts only the current password
        if password != other.resolve("payments/db#password"):
            raise PermissionError("password authentication failed")
        return "connected"

    settings: Any = settings_cls()
    other.rotate("payments/db", field="password")
    with pytest.raises(PermissionError):
        connect(settings.db_password.get_secret_value())
    reference = secret_reference(settings_cls, "db_password")
    assert reference is not None
    assert aws.refreshing(reference, connect, on=PermissionError) == "connected"
    assert connect(fresh_settings(settings_cls).db_password.get_secret_value()) == "connected"  # type: ignore[attr-defined]


# -- the docs and the example run as written -------------------------------------------


def test_import_secretkit_does_not_import_pydantic_settings() -> None:
    code = "import sys, secretkit, secretkit.store; print('pydantic_settings' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "False"

