"""Application settings from secrets with pydantic-settings (``pip install 'secretkit[settings]'``).

Runs as is on an in-memory store; in production only the store URL changes. See docs/settings.md.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

import secretkit
from secretkit.settings import SecretRef, SecretsSource, fresh_settings, secret_reference

# A real application: store = secretkit.open("vault://vault.internal:8200/secret") or aws-sm://...
store = secretkit.open("memory://")
store.put("payments/db", {"user": "app", "password": "initial-password", "host": "db.internal", "port": "5432"})
store.put("payments/stripe_key", "sk-example")


class Database(BaseModel):
    user: str
    password: SecretStr
    host: str
    port: int


class Settings(BaseSettings):
    database: Annotated[Database, SecretRef("payments/db")]  # a field secret fills a nested model
    db_password: Annotated[SecretStr, SecretRef("payments/db#password")]  # one field of it
    stripe_key: SecretStr  # no SecretRef: the prefix rule reads "payments/stripe_key"
    debug: bool = False  # "payments/debug" does not exist: the default stays

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # env and dotenv first: a developer can override any value locally
        return init_settings, env_settings, dotenv_settings, SecretsSource(settings_cls, store=store, prefix="payments/")


def main() -> None:
    settings = Settings()
    assert settings.database.port == 5432
    assert settings.db_password.get_secret_value() == "initial-password"
    assert "initial-password" not in repr(settings)
    print(settings)

    os.environ["DEBUG"] = "true"  # the environment wins over the store here
    assert Settings().debug is True
    del os.environ["DEBUG"]

    # A rotation elsewhere; fresh_settings re-reads every secret from the backend now.
    store.rotate("payments/db", field="password")
    settings = fresh_settings(Settings)
    assert settings.db_password.get_secret_value() != "initial-password"

    # "The database rejected the password": re-read past the cache and retry once.
    accepted = store.resolve("payments/db#password")

    def connect(password: str) -> str:
        if password != accepted:
            raise PermissionError("password authentication failed")
        return "connected"

    reference = secret_reference(Settings, "db_password")
    assert reference == "payments/db#password"
    assert store.refreshing(reference, connect, on=PermissionError) == "connected"

    # A missing secret for a required field names the field and the secret, never a value.
    store.delete("payments/stripe_key")
    try:
        Settings()
    except ValidationError as exc:
        assert "'payments/stripe_key'" in str(exc) and "sk-example" not in str(exc)
        print(str(exc).splitlines()[1:3])
    else:
        raise AssertionError("expected a ValidationError")
    print("OK")


if __name__ == "__main__":
    main()
