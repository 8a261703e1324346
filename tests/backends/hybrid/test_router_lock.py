"""The router's lock and request counter (router.py `_BEGIN` / `_FINISH`): no routing request is
lost, a pass runs only under the lock, and the lock is never left behind by a caller that lives.

Another process's request landing during a pass is injected by wrapping `route_once` (the only way
to place it inside the pass); the passes themselves are the real ones, on a real Redis."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis as redis_lib

from connector.backends.hybrid import router
from connector.config.model import Config
from connector.store import keys

PassHook = Callable[[int], None]


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch, redis: redis_lib.Redis) -> Callable[[PassHook], list[int]]:
    """passes(hook) → a list that records each pass (its number); `hook(n)` runs inside pass n, with
    the lock held, after the real pass."""

    def install(hook: PassHook) -> list[int]:
        ran: list[int] = []
        real = router.route_once

        def route_once(redis_client: redis_lib.Redis, config: Config, now: float | None = None) -> list[router.Offer]:
            ran.append(len(ran) + 1)
            assert redis.get(keys.hybrid_router_lock()) is not None, "a pass runs only under the lock"
            made = real(redis_client, config, now)
            hook(len(ran))
            return made

        monkeypatch.setattr(router, "route_once", route_once)
        return ran

    return install


def _lock_and_counter(redis: redis_lib.Redis) -> tuple[bytes | None, bytes | None]:
    return redis.get(keys.hybrid_router_lock()), redis.get(keys.hybrid_route_wanted())


def test_a_request_made_during_a_pass_is_served_by_a_next_pass_then_the_lock_is_given_back(
    redis: redis_lib.Redis, runtime, passes
) -> None:
    ran = passes(lambda n: redis.incr(keys.hybrid_route_wanted()) if n == 1 else None)
    router.request_route(redis, runtime.config)
    assert ran == [1, 2]
    assert _lock_and_counter(redis) == (None, None)


def test_nothing_asked_runs_no_pass_and_leaves_no_lock(redis: redis_lib.Redis, runtime, passes) -> None:
    ran = passes(lambda n: None)
    router.run_passes(redis, runtime.config)
    assert ran == []
    assert _lock_and_counter(redis) == (None, None)


def test_a_caller_that_finds_the_lock_taken_leaves_its_request_for_the_holder(
    redis: redis_lib.Redis, runtime, passes
) -> None:
    ran = passes(lambda n: None)
    redis.set(keys.hybrid_router_lock(), "another-process", px=10_000)
    router.request_route(redis, runtime.config)
    assert ran == []
    assert _lock_and_counter(redis) == (b"another-process", b"1")


def test_a_pass_that_fails_gives_the_lock_back_and_keeps_its_request(redis: redis_lib.Redis, runtime, passes) -> None:
    def fail(n: int) -> None:
        raise RuntimeError("the pass failed")

    passes(fail)
    with pytest.raises(RuntimeError, match="the pass failed"):
        router.request_route(redis, runtime.config)
    assert _lock_and_counter(redis) == (None, b"1")


def test_a_pass_whose_lock_lapsed_stops_and_leaves_the_holder_alone(redis: redis_lib.Redis, runtime, passes) -> None:
    def lapse_then_ask(n: int) -> None:
        redis.set(keys.hybrid_router_lock(), "next-holder", px=10_000)  # ours lapsed, another took it
        redis.incr(keys.hybrid_route_wanted())

    ran = passes(lapse_then_ask)
    router.request_route(redis, runtime.config)
    assert ran == [1]
    assert _lock_and_counter(redis) == (b"next-holder", b"2")


def test_passes_stop_at_the_limit_and_leave_the_last_request_to_the_tick(
    redis: redis_lib.Redis, runtime, passes
) -> None:
    ran = passes(lambda n: redis.incr(keys.hybrid_route_wanted()))
    router.request_route(redis, runtime.config)
    assert len(ran) == router.MAX_PASSES
    lock, counter = _lock_and_counter(redis)
    assert lock is None
    assert counter is not None
