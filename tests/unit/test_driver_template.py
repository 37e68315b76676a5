"""Every remote driver package has the same template, so a new backend copies one shape:
``codec`` (BACKEND, NAMES, encode_value, decode_value), ``errors`` (a table for the shared
mapper), ``options`` (``Options``), ``driver`` (the Driver and ``open_driver``)."""

from __future__ import annotations

import importlib

import pytest
from pydantic import BaseModel

from secretkit.drivers.base import ErrorTable
from secretkit.names import NameRules

PACKAGES = {"aws": "aws-sm", "gcp": "gcp-sm", "kubernetes": "k8s", "vault": "vault"}
#: Old spellings of the same things, one per package before the template.
RETIRED = ("NAME_RULES", "is_object_name", "encode", "decode", "display_name", "AwsOptions", "GcpOptions",
           "KubernetesOptions", "VaultOptions", "Companions")


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_each_driver_package_has_the_template(package: str) -> None:
    base = f"secretkit.drivers.{package}"
    codec, errors, options, driver = (importlib.import_module(f"{base}.{m}")
                                      for m in ("codec", "errors", "options", "driver"))
    assert codec.BACKEND == PACKAGES[package]
    assert isinstance(codec.NAMES, NameRules)
    assert callable(codec.encode_value) and callable(codec.decode_value)
    assert issubclass(options.Options, BaseModel)
    table = getattr(errors, "TABLE", None) or errors.table("host")
    assert isinstance(table, ErrorTable)
    assert callable(driver.open_driver)
    for module in (codec, errors, options, driver, *(importlib.import_module(f"{base}.{m}") for m in ("stages",)
                                                       if package in ("aws", "kubernetes"))):
        for old in RETIRED:
            assert not hasattr(module, old), f"{module.__name__}.{old}"


@pytest.mark.parametrize("package", ["aws", "gcp", "vault"])
def test_a_backend_with_value_limits_checks_them_in_its_codec(package: str) -> None:
    assert callable(importlib.import_module(f"secretkit.drivers.{package}.codec").check_value)


def test_every_driver_declares_its_sdk_loggers_and_value_keys() -> None:
    from secretkit.drivers.aws.driver import AwsDriver
    from secretkit.drivers.gcp.driver import GcpDriver
    from secretkit.drivers.kubernetes.driver import KubernetesDriver
    from secretkit.drivers.vault.kv import VaultDriverBase

    for cls in (AwsDriver, GcpDriver, KubernetesDriver, VaultDriverBase):
        assert cls.sdk_loggers and cls.sdk_value_keys, cls.__name__
        assert not hasattr(cls, "_owned") and "owned" not in cls.__init__.__code__.co_varnames, cls.__name__


def test_the_shared_aws_layer_is_what_aws_sm_builds_on() -> None:
    from secretkit.drivers.aws import common, errors, options

    assert issubclass(options.Options, common.ClientOptions)
    assert set(common.CODES.items()) <= set(errors.TABLE.codes.items())
