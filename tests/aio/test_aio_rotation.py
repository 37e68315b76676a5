"""``await store.rotate(...)`` with plain and async generate/apply/verify."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest

import secretkit
from secretkit.aio import AsyncSecretStore, open_async
from secretkit.errors import ConflictError, RotationError
from secretkit.secret import Secret, Stage
from secretkit.store import SecretStore
from secretkit.testing.rotation import WithoutNativeStages
from tests.aio.helpers import until


@pytest.fixture(params=["native", "emulated"])
def store(request: pytest.FixtureRequest) -> SecretStore:
    memory = secretkit.open("memory://")
    if request.param == "native":
        return memory
    return SecretStore(WithoutNativeStages(memory.driver))  # type: ignore[arg-type]


def test_async_steps_are_awaited_on_the_callers_loop(store: SecretStore) -> None:
    store.put("db/password", "old")
    where: dict[str, object] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        facade = AsyncSecretStore(store)

        async def generate(current: Secret) -> str:
            where["generate"] = asyncio.get_running_loop() is loop
            assert current.text == "old"
            return "new"

        async def apply(pending: Secret) -> None:
            await asyncio.sleep(0)
            where["apply"] = asyncio.get_running_loop() is loop
            where["readers during apply"] = (await facade.get("db/password")).text  # the facade is usable

        async def verify(pending: Secret) -> bool:
            where["verify"] = pending.text
            return True

        result = await facade.rotate("db/password", generate=generate, apply=apply, verify=verify)
        assert result is not None and not result.already_done
        assert (await facade.get("db/password")).text == "new"
        assert (await facade.get("db/password", stage=Stage.PREVIOUS)).text == "old"
        await facade.close()

    asyncio.run(main())
    assert where == {"generate": True, "apply": True, "readers during apply": "old", "verify": "new"}


def test_plain_steps_run_off_the_loop_so_they_may_block(store: SecretStore) -> None:
    store.put("db/password", "old")
    threads: list[str] = []

    def apply(pending: Secret) -> None:
        threads.append(threading.current_thread().name)
        threading.Event().wait(0.01)  # blocking I/O is fine here

    async def main() -> str:
        async with AsyncSecretStore(store) as facade:
            await facade.rotate("db/password", generate=lambda c: "new", apply=apply, verify=lambda p: True)
            return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert threads and threads[0] != loop_thread and threads[0].startswith("secretkit-aio")
    assert store.get("db/password").text == "new"


def test_async_verify_false_or_raising_keeps_current_and_pending(store: SecretStore) -> None:
    store.put("db/password", "working")

    async def main() -> None:
        async with AsyncSecretStore(store) as facade:
            async def refuse(pending: Secret) -> bool:
                return False

            with pytest.raises(RotationError) as info:
                await facade.rotate("db/password", generate=lambda c: "broken", verify=refuse)
            assert info.value.step == "verify" and "broken" not in str(info.value)

            async def explode(pending: Secret) -> None:
                raise OSError("the database said no")

            with pytest.raises(ConflictError):  # the unfinished rotation holds the pending stage
                await facade.rotate("db/password", generate=lambda c: "other", apply=explode)
            with pytest.raises(RotationError) as info:
                await facade.rotate("db/password", resume=True, apply=explode)
            assert info.value.step == "apply" and isinstance(info.value.__cause__, OSError)
            assert (await facade.get("db/password")).text == "working"
            assert (await facade.get("db/password", stage=Stage.PENDING)).text == "broken"
            assert await facade.discard_pending("db/password") is not None
            assert await facade.discard_pending("db/password") is None

    asyncio.run(main())


def test_a_cancelled_rotation_stops_at_its_step_and_resumes(store: SecretStore) -> None:
    store.put("db/password", "old")
    applying = threading.Event()
    cancelled: list[bool] = []
    verified: list[str] = []

    async def main() -> None:
        async with AsyncSecretStore(store) as facade:
            async def slow_apply(pending: Secret) -> None:
                applying.set()
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    cancelled.append(True)
                    raise

            def verify(pending: Secret) -> bool:
                verified.append(pending.text)
                return True

            task = asyncio.create_task(facade.rotate("db/password", generate=lambda c: "new", apply=slow_apply,
                                                     verify=verify, token="tok-1"))
            await until(applying.is_set)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await until(lambda: bool(cancelled))
            await asyncio.sleep(0.05)
            assert verified == []  # no step ran after the cancel
            assert (await facade.get("db/password")).text == "old"
            result = await facade.rotate("db/password", token="tok-1", resume=True, verify=verify)
            assert result is not None and (await facade.get("db/password")).text == "new"

    asyncio.run(main())
    assert cancelled == [True] and verified == ["new"]


def test_rotate_if_older_than_and_generated_default() -> None:
    async def main() -> None:
        async with open_async("memory://") as facade:
            await facade.put("k", "fresh")
            assert await facade.rotate("k", if_older_than=timedelta(days=1)) is None
            assert await facade.rotate("k", if_older_than=timedelta(0)) is not None
            assert len((await facade.get("k")).text) >= 32

    asyncio.run(main())
