"""Pipelining and the deny cache change no decision.

A seeded random schedule of consume calls (several buckets, costs, concurrent
groups) runs against MemoryBackend and against RedisBackend with every
combination of ``pipelining`` and ``deny_cache``. All must allow and deny the
same calls. The buckets refill at 0.01 token per second, so the second or two
a run takes adds under 0.05 token. With whole-token costs and bursts the
decisions then do not depend on timing. The calls of one group run concurrently
and touch disjoint buckets, so their order inside a batch does not matter.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest

from djust_dist.backends import Backend, Bucket, Decision, MemoryBackend, RedisBackend

SEEDS = [7, 1234, 987_654]
GROUPS = 60
MAX_GROUP_SIZE = 6
BUCKETS = 8
# Seconds; far below one token (100 s at 0.01 token per second).
RETRY_AFTER_TOLERANCE = 5.0


@dataclass(frozen=True, slots=True)
class Request:
    buckets: tuple[Bucket, ...]
    cost: int


def make_schedule(seed: int) -> list[list[Request]]:
    """Build groups of concurrent requests; the buckets within one group are disjoint."""
    rng = random.Random(seed)
    pool = [
        Bucket(f"schedule:{seed}:{index}", rate=0.01, burst=rng.randint(1, 5))
        for index in range(BUCKETS)
    ]

    groups = []
    for _ in range(GROUPS):
        free = rng.sample(pool, len(pool))
        group_size = rng.randint(1, MAX_GROUP_SIZE)
        group: list[Request] = []
        while free and len(group) < group_size:
            take = min(rng.randint(1, 3), len(free))
            chosen = tuple(free[:take])
            del free[:take]
            cost = rng.randint(1, min(bucket.burst for bucket in chosen))
            group.append(Request(chosen, cost))
        groups.append(group)
    return groups


async def run_schedule(backend: Backend, schedule: list[list[Request]]) -> list[Decision]:
    decisions: list[Decision] = []
    for group in schedule:
        decisions += await asyncio.gather(
            *(backend.consume(request.buckets, request.cost) for request in group)
        )
    return decisions


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
async def make_backend(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[..., RedisBackend]]:
    """Build RedisBackends, each with fresh state: a new FakeServer or a new key prefix."""
    built: list[RedisBackend] = []
    counter = itertools.count()

    if request.param == "fakeredis":

        def make(**options: Any) -> RedisBackend:
            server = fakeredis.FakeServer()
            return RedisBackend(lambda: fakeredis.FakeAsyncRedis(server=server), **options)

    else:
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("key_prefix")

        def make(**options: Any) -> RedisBackend:
            return RedisBackend.from_url(url, key_prefix=f"{prefix}:{next(counter)}", **options)

    def build(**options: Any) -> RedisBackend:
        backend = make(**options)
        built.append(backend)
        return backend

    yield build

    for backend in built:
        await backend.aclose()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("pipelining", [False, True], ids=["unpipelined", "pipelined"])
@pytest.mark.parametrize("deny_cache", [False, True], ids=["uncached", "cached"])
async def test_same_decisions_as_memory(
    make_backend: Callable[..., RedisBackend], seed: int, pipelining: bool, deny_cache: bool
) -> None:
    schedule = make_schedule(seed)
    reference = await run_schedule(MemoryBackend(), schedule)
    backend = make_backend(pipelining=pipelining, deny_cache=deny_cache)

    decisions = await run_schedule(backend, schedule)

    assert [decision.allowed for decision in decisions] == [
        decision.allowed for decision in reference
    ]
    for decision, expected in zip(decisions, reference, strict=True):
        assert decision.retry_after == pytest.approx(
            expected.retry_after, abs=RETRY_AFTER_TOLERANCE
        )
    if deny_cache:
        # The schedule must exercise the cache, or this test proves nothing about it.
        assert backend.deny_cache is not None
        assert backend.deny_cache.hits > 0
    if pipelining:
        calls = sum(len(group) for group in schedule)
        assert backend._pipelines.current().batches_sent < calls


def test_schedule_has_denials_and_concurrency() -> None:
    schedule = make_schedule(SEEDS[0])

    assert max(len(group) for group in schedule) > 1
    assert any(len(request.buckets) > 1 for group in schedule for request in group)
    assert len({request.cost for group in schedule for request in group}) > 1
