"""The helpers drivers share (secretkit.drivers.base): one error mapper over tables, upsert."""

from __future__ import annotations

import pytest

from secretkit.drivers.base import GRPC_CODES, HTTP_STATUS, ErrorTable, On, upsert
from secretkit.errors import ConflictError, ErrorCode


def test_a_table_overrides_the_default_status_table_entry_by_entry() -> None:
    default = ErrorTable()
    aws_like = ErrorTable(statuses={400: None, 504: ErrorCode.UNAVAILABLE})
    assert default.for_status(400) is ErrorCode.INVALID_ARGUMENT and aws_like.for_status(400) is None
    assert default.for_status(504) is ErrorCode.DEADLINE_EXCEEDED and aws_like.for_status(504) is ErrorCode.UNAVAILABLE
    assert default.for_status(599) is ErrorCode.UNAVAILABLE and default.for_status(418) is None
    assert aws_like.for_status(404) is HTTP_STATUS[404]
    assert ErrorTable(grpc={"UNKNOWN": ErrorCode.UNKNOWN}).for_grpc("UNKNOWN") is ErrorCode.UNKNOWN
    assert ErrorTable().for_grpc("UNKNOWN") is GRPC_CODES["UNKNOWN"]
    assert ErrorTable(codes={"Gone": ErrorCode.NOT_FOUND}).code("Gone", 400) is ErrorCode.NOT_FOUND
    assert ErrorTable().code("New", 418) is ErrorCode.UNKNOWN


def test_exception_rows_are_read_in_order_and_a_function_may_pass() -> None:
    table = ErrorTable(exceptions=(
        On(TimeoutError, ErrorCode.DEADLINE_EXCEEDED, "no answer ({kind})"),
        On(OSError, lambda exc: None if exc.errno == 1 else None),
        On(OSError, ErrorCode.UNAVAILABLE),
    ))
    found = table.classify(TimeoutError("x"))
    assert found is not None and (found.code, found.detail) == (ErrorCode.DEADLINE_EXCEEDED, "no answer (TimeoutError)")
    found = table.classify(ConnectionRefusedError())
    assert found is not None and found.code is ErrorCode.UNAVAILABLE
    assert table.classify(ValueError()) is None


class Missing(Exception):
    pass


class Taken(Exception):
    pass


def test_upsert_updates_again_when_another_writer_created_the_secret_first() -> None:
    calls: list[str] = []
    state = {"exists": False}

    def update() -> str:
        calls.append("update")
        if not state["exists"]:
            raise Missing
        return "updated"

    def create() -> str:
        calls.append("create")
        state["exists"] = True  # the other writer won the race
        raise Taken

    assert upsert(update, create, missing=lambda e: isinstance(e, Missing), exists=lambda e: isinstance(e, Taken)) == "updated"
    assert calls == ["update", "create", "update"]


def test_upsert_reports_a_secret_created_and_deleted_meanwhile_as_a_conflict() -> None:
    def update() -> str:
        raise Missing

    def create() -> str:
        raise Taken

    with pytest.raises(ConflictError, match="put again"):
        upsert(update, create, missing=lambda e: isinstance(e, Missing), exists=lambda e: isinstance(e, Taken),
               vanished="created and deleted concurrently; put again")
    with pytest.raises(Missing):
        upsert(update, create, missing=lambda e: isinstance(e, Missing), exists=lambda e: isinstance(e, Taken))
