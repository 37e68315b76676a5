"""gcp-sm:// behaviour beyond the portable contract, through the real client and the wire double.

Each behaviour runs over both client transports (gRPC and REST) where the transport matters.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import google_crc32c
import grpc
import pytest
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager_v1 as sm
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

import secretkit
from secretkit.config import StoreOptions, StoreURL
from secretkit.drivers import gcp
from secretkit.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    DataLossError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    NotSupportedError,
    PermissionDeniedError,
    ThrottledError,
    UnavailableError,
)
from secretkit.retry import RetryPolicy
from secretkit.secret import Kind, Value
from secretkit.store import SecretStore
from secretkit.testing.spy import CountingDriver
from tests.doubles import gcp_sm

PROJECT = "test-project"
NUMBER = "123456789012"
FAST_RETRY = {"retry.initial_backoff": 0.01, "retry.max_backoff": 0.02}


@pytest.fixture(scope="session")
def double() -> gcp_sm.RunningDouble:
    return gcp_sm.shared()


@pytest.fixture(scope="session")
def regional_double() -> gcp_sm.RunningDouble:
    return gcp_sm.shared("europe-west1")


@pytest.fixture
def model(double: gcp_sm.RunningDouble) -> Iterator[gcp_sm.SecretManagerModel]:
    double.model.reset()
    yield double.model
    double.model.reset()


def _open(double: gcp_sm.RunningDouble, transport: str, **options: Any) -> SecretStore:
    endpoint = double.grpc_target if transport == "grpc" else double.rest_url
    return secretkit.open(f"gcp-sm://{PROJECT}", endpoint=endpoint, insecure=True, transport=transport, **options)


@pytest.fixture(params=["grpc", "rest"])
def store(request: pytest.FixtureRequest, double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel) -> Iterator[SecretStore]:
    with _open(double, request.param, **FAST_RETRY) as s:
        yield s


@pytest.fixture(scope="session")
def raw(double: gcp_sm.RunningDouble) -> sm.SecretManagerServiceClient:
    """The SDK client used directly, standing in for gcloud and other tools."""
    transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(double.grpc_target))
    return sm.SecretManagerServiceClient(transport=transport)


def _path(sid: str, version: str | None = None) -> str:
    return f"projects/{PROJECT}/secrets/{sid}" + (f"/versions/{version}" if version else "")


def _raw_put(raw: sm.SecretManagerServiceClient, sid: str, data: bytes) -> None:
    try:
        raw.create_secret(parent=f"projects/{PROJECT}", secret_id=sid, secret={"replication": {"automatic": {}}})
    except gexc.AlreadyExists:
        pass
    raw.add_secret_version(parent=_path(sid), payload={"data": data})


def _raw_data(raw: sm.SecretManagerServiceClient, sid: str, version: str = "latest") -> bytes:
    return bytes(raw.access_secret_version(name=_path(sid, version)).payload.data)


# -- value encoding ---------------------------------------------------------------------------


def test_text_is_stored_as_plain_utf8_for_other_tools(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    store.put("app/db.password", "pässwörd")
    assert _raw_data(raw, "app_2fdb_2epassword") == "pässwörd".encode()
    store.put("app/blob", b"\x00\x80\xff binary")
    assert _raw_data(raw, "app_2fblob") == b"\x00\x80\xff binary"


def test_secrets_written_by_other_tools_read_naturally(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    _raw_put(raw, "from-gcloud", b'{"user": "x"}\n')
    _raw_put(raw, "from-gcloud-bin", b"\xde\xad\xbe\xef")
    _raw_put(raw, "from-gcloud-ff", b"\xffskz not ours")
    assert store.get("from-gcloud").kind is Kind.TEXT
    assert store.get("from-gcloud").text == '{"user": "x"}\n'
    assert store.get("from-gcloud-bin").bytes == b"\xde\xad\xbe\xef"
    assert store.get("from-gcloud-ff").bytes == b"\xffskz not ours"


@pytest.mark.parametrize(
    "value, payload",
    [
        ("", b"\xffskt"),
        (b"", b"\xffskb"),
        (b"ascii", b"\xffskbascii"),
        (b"\xffskt", b"\xffskb\xffskt"),
        (b"\xffx", b"\xffx"),
        ({"b": "2", "a": "1"}, b'\xffskf{"a":"1","b":"2"}'),
    ],
    ids=["empty-text", "empty-bytes", "utf8-bytes", "magic-bytes", "ff-bytes", "fields"],
)
def test_framed_payloads(value: Any, payload: bytes) -> None:
    encoded = gcp.encode_value(_value(value))
    assert encoded == payload
    assert gcp.decode_value(encoded) == _value(value)


def _value(value: Any) -> Value:
    return Value.of(value)


def test_worst_case_value_fits_the_payload_limit(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    limit = store.capabilities.max_value_bytes
    assert limit == gcp_sm.MAX_PAYLOAD - gcp.HEADER_LEN
    store.put("big/ascii-bytes", b"a" * limit)  # UTF-8-valid bytes need the frame: exactly 64 KiB
    assert store.get("big/ascii-bytes").bytes == b"a" * limit
    assert len(_value(b"a" * limit).to_bytes()) + gcp.HEADER_LEN == gcp_sm.MAX_PAYLOAD


def test_corrupt_frame_is_data_loss_not_a_value(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    _raw_put(raw, "badframe", b"\xffskf{not json")
    with pytest.raises(DataLossError):
        store.get("badframe")


# -- names ------------------------------------------------------------------------------------


def test_names_map_reversibly_and_foreign_ids_are_skipped(
    store: SecretStore, raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel
) -> None:
    store.put("team/app.cfg_v1", "x")
    ids = {s.name.rsplit("/", 1)[1] for s in raw.list_secrets(parent=f"projects/{PROJECT}")}
    assert ids == {"team_2fapp_2ecfg_5fv1"}
    _raw_put(raw, "my_secret", b"native")  # not a valid escape: no portable name reaches it
    _raw_put(raw, "team_41", b"non-canonical")  # would unescape to "teamA", which maps elsewhere
    _raw_put(raw, "plain-native", b"native")
    assert list(store.list("")) == ["plain-native", "team/app.cfg_v1"]
    assert store.get("plain-native").text == "native"


def test_list_uses_a_server_side_filter(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    for n in ("a/x", "a/y", "ab", "b/a/x"):
        store.put(n, "v")
    assert list(store.list("a/")) == ["a/x", "a/y"]
    assert model.last_request["ListSecrets"].filter == 'name:"a_2f"'
    assert list(store.list("a")) == ["a/x", "a/y", "ab"]


def test_list_follows_pages(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    names = [f"paged/n{i:02d}" for i in range(17)]  # the double serves 7 per page
    for n in names:
        store.put(n, "v")
    assert list(store.list("paged/")) == names
    assert model.calls["ListSecrets"] == 3


def test_long_names_rejected_before_io(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    name = "/".join(["abcdefghij"] * 18)  # 197 portable chars, 248 after escaping: fits
    store.put(name, "ok")
    assert store.get(name).text == "ok"
    too_long = "/".join(["a.b"] * 50)  # 199 portable chars, far beyond 255 after escaping
    spy = CountingDriver(store.driver)
    counted = SecretStore(spy, options=store.options)
    with pytest.raises(InvalidArgumentError, match="255"):
        counted.put(too_long, "v")
    assert spy.total == 0


# -- integrity --------------------------------------------------------------------------------


def test_crc32c_is_sent_on_add(store: SecretStore, raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel) -> None:
    store.put("crc/sent", "value")
    meta = raw.get_secret_version(name=_path("crc_2fsent", "1"))
    assert meta.client_specified_payload_checksum is True
    sent = model.last_request["AddSecretVersion"].payload
    assert sent.data_crc32c == google_crc32c.value(sent.data)


def test_crc32c_mismatch_on_access_is_data_loss(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    store.put("crc/check", "SENTINEL-crc-value")
    model.corrupt_next_access = 1
    with pytest.raises(DataLossError) as info:
        store.get("crc/check")
    assert "SENTINEL" not in str(info.value) and "CRC32C" in str(info.value)
    assert model.calls["AccessSecretVersion"] == 1  # data loss is not retried
    assert store.get("crc/check").text == "SENTINEL-crc-value"


def test_double_rejects_a_wrong_checksum(raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel) -> None:
    raw.create_secret(parent=f"projects/{PROJECT}", secret_id="crc-bad", secret={"replication": {"automatic": {}}})
    with pytest.raises(gexc.InvalidArgument):
        raw.add_secret_version(parent=_path("crc-bad"), payload={"data": b"abc", "data_crc32c": 1})


# -- version states ---------------------------------------------------------------------------


def test_disabled_latest_is_not_skipped(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    store.put("states/s", "one")
    store.put("states/s", "two")
    raw.disable_secret_version(name=_path("states_2fs", "2"))
    with pytest.raises(NotFoundError, match=r"latest version \(2\) is disabled"):
        store.get("states/s")
    assert not store.exists("states/s")
    assert store.get("states/s", version="1").text == "one"
    with pytest.raises(NotFoundError, match="version 2 is disabled"):
        store.get("states/s", version="2")
    assert [(v.version, v.state) for v in store.versions("states/s")] == [("2", "disabled"), ("1", "enabled")]
    raw.enable_secret_version(name=_path("states_2fs", "2"))
    assert store.get("states/s").text == "two"


def test_destroyed_version_reads_as_not_found(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    store.put("states/d", "one")
    store.put("states/d", "two")
    raw.destroy_secret_version(name=_path("states_2fd", "1"))
    with pytest.raises(NotFoundError, match="version 1 is destroyed"):
        store.get("states/d", version="1")
    with pytest.raises(NotFoundError, match="version 1 is destroyed"):
        store.get("states/d", stage="previous")
    assert store.versions("states/d")[1].state == "destroyed"


def test_versions_and_stages(store: SecretStore) -> None:
    for v in ("a", "b", "c"):
        store.put("stages/s", v)
    infos = store.versions("stages/s")
    assert [(i.version, sorted(i.stages)) for i in infos] == [("3", ["current"]), ("2", ["previous"]), ("1", [])]
    assert store.get("stages/s", stage="previous").version == "2"
    with pytest.raises(NotFoundError):  # pending lives in a rotation companion; there is none
        store.get("stages/s", stage="pending")
    with pytest.raises(NotFoundError):
        store.get("stages/s", version="latest")
    assert store.driver.current_version("stages/s") == "3"  # type: ignore[attr-defined]


def test_previous_of_a_first_version_is_not_found(store: SecretStore) -> None:
    store.put("stages/one", "a")
    with pytest.raises(NotFoundError, match="no previous"):
        store.get("stages/one", stage="previous")


# -- writes, creation, delete -----------------------------------------------------------------


def test_create_race_between_two_writers(
    store: SecretStore, raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel
) -> None:
    # Another writer creates the secret between our NOT_FOUND and our CreateSecret.
    model.before["CreateSecret"] = lambda: _raw_put(raw, "race_2fnew", b"other")
    info = store.put("race/new", "mine")
    assert info.version == "2"
    assert store.get("race/new").text == "mine"
    assert model.calls["CreateSecret"] == 2  # the other writer's and ours (ALREADY_EXISTS)


def test_many_writers_to_a_new_secret_all_land(store: SecretStore) -> None:
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.put("race/many", f"w{i}")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [v.version for v in store.versions("race/many")] == ["6", "5", "4", "3", "2", "1"]


def test_create_only_on_an_empty_secret_is_already_exists(
    store: SecretStore, raw: sm.SecretManagerServiceClient
) -> None:
    raw.create_secret(parent=f"projects/{PROJECT}", secret_id="empty", secret={"replication": {"automatic": {}}})
    with pytest.raises(AlreadyExistsError):
        store.put("empty", "v", create_only=True)
    store.put("empty", "v")
    assert store.get("empty").version == "1"


def test_concurrent_create_only_has_one_winner(store: SecretStore) -> None:
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def contender(i: int) -> None:
        barrier.wait()
        try:
            store.put("race/once", f"w{i}", create_only=True)
            outcomes.append(f"w{i}")
        except AlreadyExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o != "exists"]
    assert len(winners) == 1
    assert [v.version for v in store.versions("race/once")] == ["1"]
    assert store.get("race/once").text == winners[0]


def test_delete_removes_every_version(store: SecretStore, raw: sm.SecretManagerServiceClient) -> None:
    store.put("del/s", "a")
    store.put("del/s", "b")
    store.delete("del/s")
    with pytest.raises(gexc.NotFound):
        raw.get_secret(name=_path("del_2fs"))
    store.put("del/s", "c")
    assert store.get("del/s").version == "1"  # a new secret starts counting again


def test_replication_policy_on_create(double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel, raw: sm.SecretManagerServiceClient) -> None:
    with _open(double, "grpc") as s:
        s.put("repl/auto", "v")
    with _open(double, "rest", replication="us-east1, europe-west1") as s:
        s.put("repl/user", "v")
    assert "automatic" in raw.get_secret(name=_path("repl_2fauto")).replication
    replicas = raw.get_secret(name=_path("repl_2fuser")).replication.user_managed.replicas
    assert [r.location for r in replicas] == ["us-east1", "europe-west1"]


# -- compare-and-set (declared unsupported) and the etag race -----------------------------------


def test_compare_and_set_is_not_supported_and_does_no_io(store: SecretStore) -> None:
    store.put("cas/s", "one")
    spy = CountingDriver(store.driver)
    counted = SecretStore(spy, options=store.options)
    with pytest.raises(NotSupportedError):
        counted.put("cas/s", "two", if_version="1")
    assert spy.total == 0
    assert store.capabilities.compare_and_set is False


def test_etag_race_shows_why_aliases_cannot_give_cas(
    store: SecretStore, raw: sm.SecretManagerServiceClient, model: gcp_sm.SecretManagerModel
) -> None:
    """Two writers try 'add a version, then move an alias under the etag they read'.

    The etag lets only one alias update win, but AddSecretVersion is unconditional, so the
    loser's version is already what GCP (and every other tool) calls ``latest``.
    """
    store.put("cas/alias", "base")
    sid = "cas_2falias"
    etag = raw.get_secret(name=_path(sid)).etag
    won = raw.add_secret_version(parent=_path(sid), payload={"data": b"winner"})
    lost = raw.add_secret_version(parent=_path(sid), payload={"data": b"loser"})
    raw.update_secret(
        secret={"name": _path(sid), "etag": etag, "version_aliases": {"current": int(won.name.rsplit("/", 1)[1])}},
        update_mask={"paths": ["version_aliases"]},
    )
    with pytest.raises(gexc.FailedPrecondition) as race:
        raw.update_secret(
            secret={"name": _path(sid), "etag": etag, "version_aliases": {"current": int(lost.name.rsplit("/", 1)[1])}},
            update_mask={"paths": ["version_aliases"]},
        )
    assert _raw_data(raw, sid, "current") == b"winner"
    assert _raw_data(raw, sid, "latest") == b"loser"  # what readers of latest see
    assert store.get("cas/alias").bytes == b"loser"
    classified = store.driver.classify(race.value)
    assert classified is not None and classified.code.value == "conflict"


def test_stale_etag_on_delete_is_a_conflict_over_rest(
    double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel, raw: sm.SecretManagerServiceClient
) -> None:
    rest = sm.SecretManagerServiceClient(
        credentials=AnonymousCredentials(), transport="rest", client_options=ClientOptions(api_endpoint=double.rest_url)
    )
    _raw_put(raw, "etagged", b"v")
    with pytest.raises(gexc.BadRequest) as info:  # REST: the class only says HTTP 400
        rest.delete_secret(request={"name": _path("etagged"), "etag": '"stale"'}, retry=None)
    classified = gcp.classify(info.value)
    assert classified is not None and classified.code.value == "conflict"


# -- errors and retries -----------------------------------------------------------------------


def test_unavailable_then_success_is_retried_by_the_store(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    store.put("retry/s", "v")
    model.fail("AccessSecretVersion", grpc.StatusCode.UNAVAILABLE, times=2)
    attempts: list[int] = []
    store.add_audit_hook(lambda e: attempts.append(e.attempts))
    assert store.get("retry/s").text == "v"
    assert model.calls["AccessSecretVersion"] == 3  # no SDK retry stacked under ours
    assert attempts[-1] == 3


def test_permission_denied_is_one_call(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    model.fail("AccessSecretVersion", grpc.StatusCode.PERMISSION_DENIED, message="Permission 'secretmanager.versions.access' denied")
    with pytest.raises(PermissionDeniedError, match="versions.access"):
        store.get("retry/denied")
    assert model.calls["AccessSecretVersion"] == 1


def test_puts_are_not_retried(store: SecretStore, model: gcp_sm.SecretManagerModel) -> None:
    store.put("retry/put", "v")
    before = model.calls["AddSecretVersion"]
    model.fail("AddSecretVersion", grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(UnavailableError):
        store.put("retry/put", "w")
    assert model.calls["AddSecretVersion"] == before + 1  # AddSecretVersion is not idempotent
    assert [v.version for v in store.versions("retry/put")] == ["1"]


@pytest.mark.parametrize(
    "code, error",
    [
        (grpc.StatusCode.NOT_FOUND, NotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, AlreadyExistsError),
        (grpc.StatusCode.ABORTED, ConflictError),
        (grpc.StatusCode.FAILED_PRECONDITION, ConflictError),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDeniedError),
        (grpc.StatusCode.UNAUTHENTICATED, AuthenticationError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ThrottledError),
        (grpc.StatusCode.UNAVAILABLE, UnavailableError),
        (grpc.StatusCode.INTERNAL, UnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
    ],
    ids=lambda v: getattr(v, "name", getattr(v, "__name__", str(v))),
)
def test_status_codes_map_the_same_on_both_transports(
    store: SecretStore, model: gcp_sm.SecretManagerModel, code: grpc.StatusCode, error: type[Exception]
) -> None:
    store.put("codes/s", "v")
    once = SecretStore(store.driver, options=StoreOptions(retry=RetryPolicy.none()))
    model.fail("DeleteSecret", code, message="injected for mapping")
    with pytest.raises(error) as info:
        once.delete("codes/s")
    if code is grpc.StatusCode.UNAUTHENTICATED and store.client.transport.kind == "rest":
        # On a 401 google-auth's session refreshes the credentials and retries; anonymous
        # credentials cannot refresh, and that google-auth error maps to the same code.
        assert "cannot be refreshed" in str(info.value)
        return
    assert "injected for mapping" in str(info.value)
    cause: BaseException | None = info.value
    while cause is not None and not isinstance(cause, gexc.GoogleAPICallError):
        cause = cause.__cause__
    assert cause is not None  # the SDK exception stays reachable
    model.reset()


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_client_timeout_is_deadline_exceeded(double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel, transport: str) -> None:
    with _open(double, transport, timeout=0.3, **{"retry.max_attempts": 1}) as s:
        s.put("slow/s", "v")
        model.stall["AccessSecretVersion"] = 1.0
        with pytest.raises(DeadlineExceededError):
            s.get("slow/s")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_unreachable_endpoint_is_unavailable(transport: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"127.0.0.1:{port}" if transport == "grpc" else f"http://127.0.0.1:{port}"
    with secretkit.open(
        f"gcp-sm://{PROJECT}", endpoint=endpoint, insecure=True, transport=transport, timeout=2,
        **{"retry.max_attempts": 1},
    ) as s, pytest.raises((UnavailableError, DeadlineExceededError)) as info:
        s.get("nowhere")
    assert info.value.transient


# -- regional secrets and configuration ---------------------------------------------------------


def test_regional_secrets_use_location_names(regional_double: gcp_sm.RunningDouble) -> None:
    regional_double.model.reset()
    url = f"gcp-sm://{PROJECT}?location=europe-west1&endpoint={regional_double.grpc_target}&insecure=true"
    with secretkit.open(url) as s:
        s.put("eu/key", "v")
        assert s.get("eu/key").text == "v"
        assert list(s.list("eu/")) == ["eu/key"]
    req = regional_double.model.last_request["CreateSecret"]
    assert req.parent == f"projects/{PROJECT}/locations/europe-west1"
    assert not req.secret.HasField("replication")  # regional secrets take none
    # the global endpoint does not serve regional names, and vice versa
    url = f"gcp-sm://{PROJECT}?endpoint={regional_double.grpc_target}&insecure=true"
    with secretkit.open(url) as s, pytest.raises(InvalidArgumentError):
        s.put("global/key", "v")


def test_regional_endpoint_and_default_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth

    monkeypatch.setattr(google.auth, "default", lambda scopes=None: (AnonymousCredentials(), "adc-project"))
    driver = gcp.open_driver(StoreURL.parse("gcp-sm://")[0], {"location": "europe-west1"})
    try:
        assert driver.client.api_endpoint == "secretmanager.europe-west1.rep.googleapis.com"
        assert driver._parent == "projects/adc-project/locations/europe-west1"
    finally:
        driver.close()
    rest = gcp.open_driver(StoreURL.parse("gcp-sm://p1?transport=rest")[0], {"transport": "rest"})
    assert rest.client.api_endpoint == "secretmanager.googleapis.com"
    assert type(rest.client.transport).__name__ == "SecretManagerServiceRestTransport"
    rest.close()


@pytest.mark.parametrize(
    "url",
    [
        "gcp-sm://p?bogus=1&insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p?transport=http&insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p?location=eu&replication=us-east1&insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p/extra/path?insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p?replication=,&insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p?timeout=0&insecure=true&endpoint=127.0.0.1:1",
        "gcp-sm://p?insecure=true",
    ],
)
def test_bad_configuration(url: str) -> None:
    with pytest.raises(ConfigError):
        secretkit.open(url)


def test_user_client_is_used_and_not_closed(double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel, raw: sm.SecretManagerServiceClient) -> None:
    with secretkit.open(f"gcp-sm://{PROJECT}", client=raw) as s:
        s.put("client/s", "v")
        assert s.client is raw
    assert _raw_data(raw, "client_2fs") == b"v"  # still usable after the store closed


def test_every_call_passes_retry_none_and_a_timeout(double: gcp_sm.RunningDouble, model: gcp_sm.SecretManagerModel) -> None:
    seen: list[tuple[str, Any, Any]] = []
    transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(double.grpc_target))
    client = sm.SecretManagerServiceClient(transport=transport)

    class Recording:
        def __getattr__(self, attr: str) -> Any:
            method = getattr(client, attr)

            def call(*args: Any, **kwargs: Any) -> Any:
                seen.append((attr, kwargs.get("retry", "missing"), kwargs.get("timeout")))
                return method(*args, **kwargs)

            return call

    with secretkit.open(f"gcp-sm://{PROJECT}", client=Recording(), timeout=7) as s:
        s.put("calls/s", "v")
        s.put("calls/s", {"f": "v"}, create_only=False)
        s.get("calls/s")
        s.get("calls/s", stage="previous")
        s.versions("calls/s")
        list(s.list("calls/"))
        s.delete("calls/s")
        s.put("calls/t", "v", create_only=True)
    assert {name for name, _, _ in seen} >= {
        "add_secret_version", "create_secret", "access_secret_version", "get_secret_version",
        "list_secret_versions", "list_secrets", "delete_secret",
    }
    assert all(retry is None and timeout == 7 for _, retry, timeout in seen), seen


def test_secure_grpc_client_is_built_through_the_reconnect_capped_transport() -> None:
    """The Google-endpoint path hands the client library a transport factory; it must fit its signature."""
    client = sm.SecretManagerServiceClient(
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        transport=gcp._grpc_transport,
        client_options=ClientOptions(api_endpoint="127.0.0.1:9"),
    )
    assert type(client.transport).__name__ == "SecretManagerServiceGrpcTransport"
    client.transport.close()
