"""The cache's non-blocking half: ``Flight.add_done_callback`` and ``Cache.join``."""

from __future__ import annotations

import threading

import pytest

from secretkit.cache import Cache, CachedNotFoundError, CachePolicy, Flight, Key
from secretkit.errors import NotFoundError
from secretkit.secret import Secret, Value

KEY: Key = "db/password"


def secret(text: str = "v", version: str = "1") -> Secret:
    return Secret(KEY, version, Value.of(text))


def test_done_callbacks_run_once_settled_from_the_settling_thread_or_at_once() -> None:
    flight = Flight()
    calls: list[tuple[str, str]] = []
    flight.add_done_callback(lambda f: calls.append(("early", threading.current_thread().name)))
    flight.add_done_callback(lambda f: 1 / 0)  # a failing callback does not starve the others
    flight.add_done_callback(lambda f: calls.append(("early2", f.outcome()[0].text)))
    flight.result = secret("x")
    settler = threading.Thread(target=flight.settle, name="settler")
    settler.start()
    settler.join()
    flight.add_done_callback(lambda f: calls.append(("late", threading.current_thread().name)))
    assert calls == [("early", "settler"), ("early2", "x"), ("late", threading.current_thread().name)]
    assert Flight.answered(secret("y"), "hit").outcome()[0].text == "y"


def test_join_starts_one_load_that_every_joiner_shares() -> None:
    loads: list[Key] = []
    cache = Cache(CachePolicy(jitter=0), lambda key: (loads.append(key), secret())[1])
    assert cache.join(KEY, start=False) is None  # nothing cached, nothing in flight
    flight, load = cache.join(KEY)  # type: ignore[misc]
    again, no_load = cache.join(KEY)  # type: ignore[misc]
    also = cache.join(KEY, start=False)
    assert load is not None and no_load is None and again is flight and also == (flight, None)
    woken: list[str] = []
    flight.add_done_callback(lambda f: woken.append(f.outcome()[1]))
    assert not flight.done.is_set()
    load()
    assert woken == ["miss"] and loads == [KEY]
    hit, none = cache.join(KEY)  # type: ignore[misc]
    assert none is None and hit.outcome() == (flight.outcome()[0], "hit")
    assert cache.stats().misses == 3 and cache.stats().hits == 1


def test_a_write_during_a_joined_load_keeps_the_old_value_out_but_wakes_the_waiters() -> None:
    gate = threading.Event()
    cache = Cache(CachePolicy(jitter=0), lambda key: (gate.wait(5), secret("old"))[1])
    flight, load = cache.join(KEY)  # type: ignore[misc]
    assert load is not None
    woken = threading.Event()
    flight.add_done_callback(lambda f: woken.set())
    runner = threading.Thread(target=load)
    runner.start()
    cache.invalidate(KEY)  # a put landed meanwhile
    gate.set()
    runner.join()
    assert woken.is_set() and cache.stats().size == 0


def test_join_raises_a_cached_not_found() -> None:
    cache = Cache(CachePolicy(jitter=0, negative_ttl=30), lambda key: secret())
    cache.insert(KEY, NotFoundError("secret not found", name=KEY), cache.clock())
    with pytest.raises(CachedNotFoundError):
        cache.join(KEY)
