"""The ssm:// driver: each portable call as the Parameter Store operations it becomes.

| portable                    | Parameter Store                                                        |
|-----------------------------|------------------------------------------------------------------------|
| read(name[, version])       | GetParameter(WithDecryption, ``name`` / ``name:<version>``)             |
| read_previous(name)         | GetParameterHistory (the version before the latest)                    |
| read_many(names)            | GetParameters(WithDecryption), 10 names a call                         |
| current_version(name)       | DescribeParameters (Name Equals; no value is read)                     |
| versions(name)              | GetParameterHistory (no decryption)                                    |
| list(prefix)                | GetParametersByPath(Recursive) for a path prefix, else DescribeParameters |
|                             | with a Name BeginsWith filter                                          |
| write(...)                  | DescribeParameters, then PutParameter(Overwrite) repeating the type,   |
|                             | data type, tier, KMS key, description and policies it found; when      |
|                             | there is none: PutParameter(Overwrite=False) with the store's options  |
| write(create_only)          | PutParameter(Overwrite=False)                                          |
| write(if_version)           | not supported: SSM has no conditional write (``compare_and_set`` off)   |
| delete(name)                | DeleteParameter (permanent: SSM keeps nothing recoverable)             |

Rotation stages are the store's emulated ones (``History`` plus the atomic create-only write):
``previous`` is SSM's own previous version, and the pending value lives in a companion parameter
only while a rotation runs (docs/backends/ssm.md says why not SSM labels).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import botocore.exceptions as bx

from secretkit.drivers.aws import common
from secretkit.drivers.aws.common import as_datetime
from secretkit.drivers.base import (
    host_of,
    BatchReader,
    Capabilities,
    ChangeEvents,
    Classified,
    ConfigError,
    ErrorCode,
    History,
    NotFoundError,
    NotSupportedError,
    Record,
    SdkClient,
    SecretError,
    Stage,
    StoreURL,
    Value,
    ValueLimits,
    VersionInfo,
    VersionProbe,
    error_for,
    upsert,
    validate_options as validate,
)
from secretkit.drivers.ssm import codec
from secretkit.drivers.ssm.codec import BACKEND
from secretkit.drivers.ssm.errors import classify, code_of
from secretkit.drivers.ssm.options import Options

#: GetParameters takes at most 10 names a call.
BATCH_SIZE = 10
#: The metadata a put repeats so that an overwrite keeps what the parameter had (response key →
#: PutParameter member). Tags are not part of a put, so they stay anyway.
KEPT = ("Type", "DataType", "Description", "AllowedPattern")

#: Parameters as SSM answers them; names (aliases: the driver's own ``list`` shadows the builtin).
Items = list[dict[str, Any]]
Names = list[str]

CAPABILITIES = Capabilities(
    remote=True,
    versions=True,
    compare_and_set=False,  # PutParameter(Overwrite) is never conditional; see docs/backends/ssm.md
    create_only=True,
    recoverable_delete=False,
    idempotent_put=False,  # no idempotency token: a retried put could add a second version
    max_value_bytes=None,  # by tier and by encoding: checked in check_value, naming the limit
)


class SsmDriver:
    """Translates the driver calls to Parameter Store operations; one boto3 ``ssm`` client.

    Implements ``BatchReader``, ``VersionProbe``, ``History``, ``ValueLimits``, ``SdkClient``
    (``client``) and ``ChangeEvents`` besides the required ``Driver`` calls.
    """

    backend = BACKEND
    protocols = (BatchReader, VersionProbe, History, ValueLimits, SdkClient, ChangeEvents)
    capabilities = CAPABILITIES
    names = codec.NAMES
    sdk_loggers = common.SDK_LOGGERS
    #: botocore logs request and response bodies with the value under ``Value``; ``value`` is
    #: the spelling of Python wrappers' keyword arguments.
    sdk_value_keys = ("Value", "value")
    #: ``changes=sqs:QUEUE`` / ``changes=sns:TOPIC_ARN``: Parameter Store's EventBridge events
    #: through the sources aws-sm:// uses (secretkit.changes.aws, ssm_events)
    change_sources = {"sqs": "secretkit.changes.aws:open_ssm_sqs", "sns": "secretkit.changes.aws:open_ssm_sns"}

    def __init__(
        self, client: Any, *, owns_client: bool, parameter_type: str = "SecureString",
        kms_key_id: str | None = None, tier: str = "Standard", client_options: common.ClientOptions | None = None,
    ) -> None:
        self.client = client
        #: what the client was made from (None for a client the user passed): change sources use them too
        self.client_options = client_options
        self._owns_client = owns_client
        self._type = parameter_type
        self._kms_key_id = kms_key_id
        self._tier = tier

    def check_value(self, name: str, value: Value) -> None:
        codec.check_value(value, self._tier)

    def event_names(self, secret: str) -> tuple[str, ...]:
        return codec.names_of_event(secret, self.client.meta.region_name)

    # -- reads -----------------------------------------------------------------------

    def read(self, name: str, *, version: str | None = None, stage: str | None = None) -> Record:
        if stage == Stage.PREVIOUS:
            return self.read_previous(name)
        if stage not in (None, Stage.CURRENT):
            raise NotFoundError(f"stage {stage!r} not found")
        selector = self.names.storage_name(name)
        if version is not None:
            if not (version.isascii() and version.isdigit()):
                raise NotFoundError(f"version {version!r} not found")  # SSM versions are integers
            selector = f"{selector}:{version}"
        parameter = self.client.get_parameter(Name=selector, WithDecryption=True)["Parameter"]
        return codec.to_record(parameter, frozenset({Stage.CURRENT}) if version is None else frozenset())

    def read_previous(self, name: str) -> Record:
        history = self._history(self.names.storage_name(name), decrypt=True)
        newest = max((int(item["Version"]) for item in history), default=0)
        for item in history:
            if int(item["Version"]) == newest - 1:
                return codec.to_record(item, frozenset({Stage.PREVIOUS}))
        raise NotFoundError("parameter has no previous version")

    def read_many(self, names: Sequence[str]) -> dict[str, Record | SecretError]:
        """GetParameters, 10 names a call; a name SSM does not have gets its own NotFoundError."""
        by_storage: dict[str, list[str]] = {}
        for name in dict.fromkeys(names):
            by_storage.setdefault(self.names.storage_name(name), []).append(name)
        wanted = list(by_storage)
        out: dict[str, Record | SecretError] = {}
        for start in range(0, len(wanted), BATCH_SIZE):
            response = self.client.get_parameters(Names=wanted[start : start + BATCH_SIZE], WithDecryption=True)
            for parameter in response.get("Parameters", []):
                for name in by_storage.get(str(parameter.get("Name", "")), ()):
                    out[name] = codec.to_record(parameter)
            for missing in response.get("InvalidParameters", []):
                for name in by_storage.get(str(missing), ()):
                    out[name] = error_for(ErrorCode.NOT_FOUND, "ParameterNotFound", name=name, backend=BACKEND)
        return out

    def current_version(self, name: str) -> str:
        """The latest version, from DescribeParameters (no value is fetched or decrypted)."""
        found = self._metadata(self.names.storage_name(name))
        if found is None:
            raise NotFoundError("ParameterNotFound")
        return str(found["Version"])

    def versions(self, name: str) -> Sequence[VersionInfo]:
        history = self._history(self.names.storage_name(name), decrypt=False)
        newest = max((int(item["Version"]) for item in history), default=0)
        infos = [
            VersionInfo(name, str(item["Version"]), as_datetime(item.get("LastModifiedDate")),
                        codec.version_stages(item.get("Labels"), newest=newest, version=int(item["Version"])))
            for item in history
        ]
        return sorted(infos, key=lambda info: int(info.version), reverse=True)

    def list(self, prefix: str) -> Names:
        """Names starting with ``prefix``, in its spelling: under ``prod/`` SSM's ``/prod/db`` is
        ``prod/db``. With no prefix, a parameter put through its portable name (``prod/db``,
        tagged so at creation) is listed as that name, any other under its own name."""
        if not codec.could_be_name_prefix(prefix):
            return []
        if not prefix:
            portable: set[str] = set(self._names([{"Key": f"tag:{codec.NAME_TAG}", "Option": "Equals",
                                         "Values": [codec.PORTABLE]}]))
            return [native[1:] if native in portable else native for native in self._names([])]
        starts = codec.native_prefixes(prefix)
        if len(starts) == 1 and starts[0].startswith("/") and starts[0].endswith("/"):
            # a path: SSM's own hierarchy walk
            pages = self.client.get_paginator("get_parameters_by_path").paginate(
                Path=starts[0].rstrip("/") or "/", Recursive=True, WithDecryption=False)
            natives: Iterable[str] = [str(p["Name"]) for page in pages for p in page.get("Parameters", [])]
        else:
            natives = self._names([{"Key": "Name", "Option": "BeginsWith", "Values": starts}])
        return [codec.listed(native, prefix) for native in natives]

    def _names(self, filters: Items) -> Names:
        """Names of the parameters DescribeParameters finds with ``filters`` (all pages)."""
        request: dict[str, Any] = {"ParameterFilters": filters} if filters else {}
        pages = self.client.get_paginator("describe_parameters").paginate(**request)
        return [str(p["Name"]) for page in pages for p in page.get("Parameters", [])]

    def _metadata(self, storage: str) -> dict[str, Any] | None:
        """The parameter's metadata (DescribeParameters), or None if there is none."""
        response = self.client.describe_parameters(
            ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [storage]}])
        found = [p for p in response.get("Parameters", []) if p.get("Name") == storage]
        return found[0] if found else None

    def _history(self, storage: str, *, decrypt: bool) -> Items:
        pages = self.client.get_paginator("get_parameter_history").paginate(
            Name=storage, WithDecryption=decrypt, PaginationConfig={"PageSize": 50})
        return [item for page in pages for item in page.get("Parameters", [])]

    # -- writes ----------------------------------------------------------------------

    def write(self, name: str, value: Value, *, if_version: str | None, create_only: bool, token: str) -> VersionInfo:
        if if_version is not None:  # the store refuses it first (compare_and_set is off)
            raise NotSupportedError("SSM Parameter Store has no conditional write (compare-and-set)")
        storage = self.names.storage_name(name)
        text = codec.encode_value(value)
        if create_only:
            return self._create(name, storage, text)
        return upsert(
            lambda: self._overwrite(name, storage, text),
            lambda: self._create(name, storage, text),
            missing=lambda exc: isinstance(exc, NotFoundError),
            exists=lambda exc: isinstance(exc, bx.ClientError) and code_of(exc) == "ParameterAlreadyExists",
        )

    def _create(self, name: str, storage: str, text: str) -> VersionInfo:
        """PutParameter(Overwrite=False): atomic create-only (ParameterAlreadyExists otherwise)."""
        request: dict[str, Any] = {"Name": storage, "Value": text, "Type": self._type, "Overwrite": False,
                                   "Tier": self._tier}
        if self._kms_key_id and self._type == "SecureString":
            request["KeyId"] = self._kms_key_id
        if storage != name:  # written as the portable name: list() shows it so (tags are metadata, no value)
            request["Tags"] = [{"Key": codec.NAME_TAG, "Value": codec.PORTABLE}]
        response = self.client.put_parameter(**request)
        return VersionInfo(name, str(response["Version"]), None, frozenset({Stage.CURRENT}))

    def _overwrite(self, name: str, storage: str, text: str) -> VersionInfo:
        """PutParameter(Overwrite=True) repeating what the parameter has, so that the overwrite
        keeps its type, data type, tier, KMS key, description, allowed pattern and policies
        whatever SSM (or a double of it) does with members a put leaves out."""
        found = self._metadata(storage)
        if found is None:
            raise NotFoundError("ParameterNotFound")
        request: dict[str, Any] = {"Name": storage, "Value": text, "Overwrite": True}
        request.update({key: found[key] for key in KEPT if found.get(key)})
        tier = found.get("Tier") or "Standard"
        if tier == "Standard" and len(text.encode("utf-8")) > codec.TIER_LIMITS["Standard"]:
            tier = self._tier  # checked before I/O: the store's tier holds this value
        request["Tier"] = tier
        if found.get("Type") == "SecureString" and found.get("KeyId"):
            request["KeyId"] = found["KeyId"]
        policies = _policies(found.get("Policies"))
        if policies:
            request["Policies"] = policies
        response = self.client.put_parameter(**request)
        return VersionInfo(name, str(response["Version"]), None, frozenset({Stage.CURRENT}))

    def delete(self, name: str, *, purge: bool) -> None:
        # SSM deletes a parameter and all its versions at once; nothing is recoverable.
        self.client.delete_parameter(Name=self.names.storage_name(name))

    @property
    def server_address(self) -> str | None:
        """The host the SDK client talks to (telemetry's ``server.address``)."""
        return host_of(self.client.meta.endpoint_url)

    # -- errors, lifecycle -----------------------------------------------------------

    def classify(self, exc: BaseException) -> Classified | None:
        return classify(exc)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()


def _policies(described: Any) -> str | None:
    """PutParameter's ``Policies`` (a JSON array) from DescribeParameters' ``Policies``; None
    when there are none, or when a ``PolicyText`` is not JSON (moto 5.2 describes them as a
    Python repr): the member is then left out, and the service keeps what the parameter has."""
    try:
        texts = [json.loads(p["PolicyText"]) for p in described or () if p.get("PolicyText")]
    except ValueError:
        return None
    return json.dumps(texts) if texts else None


#: The driver classes this factory opens, by the title docs/capabilities.md gives them.
DRIVERS: dict[str, type] = {"ssm": SsmDriver}


def open_driver(url: StoreURL, options: dict[str, Any], client: Any = None) -> SsmDriver:
    """Build the driver for ``ssm://?region=...``; ``client`` is a ready boto3 ``ssm`` client."""
    if url.host or url.path.strip("/"):
        raise ConfigError("ssm:// takes no host or path; use ssm://?region=eu-west-1")
    opts = validate(Options, options, what="ssm store")
    if client is None:
        client, owns = common.make_client("ssm", opts, title="AWS SSM Parameter Store"), True
    else:
        owns = False
    return SsmDriver(client, owns_client=owns, parameter_type=opts.parameter_type, kms_key_id=opts.kms_key_id,
                     tier=opts.tier, client_options=opts if owns else None)
