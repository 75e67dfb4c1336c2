"""The throughput cases: PING, djust_dist consume, the limits library, in-process buckets.

Every case opens its clients, yields one operation ``op(index)`` and closes
them afterwards. Buckets and limits are generous, so every call is allowed and
the numbers measure the cost of an allowed decision.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItemPerSecond
from limits.aio import strategies
from limits.storage import storage_from_string

from benchmarks.measure import Operation
from benchmarks.server import Target
from djust_dist.backends import Backend, Bucket, MemoryBackend, RedisBackend
from djust_dist.engine.memory import interval_ns
from djust_dist.engine.scripts import get_script

# Calls rotate over this many identities, as requests from many clients would.
IDENTITIES = 1000

# Never empty during a run: 100 000 tokens per second, a million in the bucket.
OPEN_RATE = 100_000.0
OPEN_BURST = 1_000_000

CaseFactory = Callable[[Target], AbstractAsyncContextManager[Operation]]


@dataclass(frozen=True, slots=True)
class Case:
    """One row of the throughput table."""

    name: str
    open: CaseFactory


@asynccontextmanager
async def redis_ping(target: Target) -> AsyncIterator[Operation]:
    """PING through the redis-py asyncio client that RedisBackend opens (same options)."""
    backend = RedisBackend.from_url(target.url, key_prefix=target.key_prefix)
    # The backend's own per-loop client, so both rows pay the same client overhead.
    client = backend._client()

    async def ping(index: int) -> object:
        return await client.ping()

    try:
        yield ping
    finally:
        await backend.aclose()


@asynccontextmanager
async def raw_evalsha(target: Target) -> AsyncIterator[Operation]:
    """EVALSHA of consume.lua on one bucket, straight through the client: no djust_dist code."""
    backend = RedisBackend.from_url(target.url, key_prefix=target.key_prefix)
    client = backend._client()
    script = get_script("consume")
    keys = [backend.keys.bucket(bucket.key) for bucket in _buckets(IDENTITIES, "raw")]
    interval = repr(interval_ns(OPEN_RATE))
    await client.script_load(script.source)

    async def evalsha(index: int) -> object:
        return await client.evalsha(
            script.sha, 1, keys[index % IDENTITIES], 1, interval, OPEN_BURST
        )

    try:
        yield evalsha
    finally:
        await backend.aclose()


def _buckets(count: int, prefix: str) -> list[Bucket]:
    return [Bucket(f"{prefix}:{index}", OPEN_RATE, OPEN_BURST) for index in range(count)]


@asynccontextmanager
async def _consume(backend: Backend, buckets_per_call: int) -> AsyncIterator[Operation]:
    groups = [_buckets(IDENTITIES, f"bench{group}") for group in range(buckets_per_call)]

    async def consume(index: int) -> object:
        slot = index % IDENTITIES
        return await backend.consume([group[slot] for group in groups])

    try:
        yield consume
    finally:
        await backend.aclose()


def djust_consume(buckets: int, **options: Any) -> CaseFactory:
    """Build a case that calls RedisBackend.consume over ``buckets`` buckets."""

    def open_case(target: Target) -> AbstractAsyncContextManager[Operation]:
        backend = RedisBackend.from_url(target.url, key_prefix=target.key_prefix, **options)
        return _consume(backend, buckets)

    return open_case


def memory_consume(target: Target) -> AbstractAsyncContextManager[Operation]:
    """MemoryBackend.consume over one bucket: the in-process token bucket."""
    return _consume(MemoryBackend(), 1)


def limits_strategy(name: str) -> CaseFactory:
    """Build a case that calls a ``limits`` strategy's ``hit`` on the same Redis via redis-py."""
    strategy_class = strategies.STRATEGIES[name]

    @asynccontextmanager
    async def open_case(target: Target) -> AsyncIterator[Operation]:
        # limits defaults to coredis for async Redis; redispy selects redis-py.
        uri = target.url.replace("redis://", "async+redis://", 1)
        storage = storage_from_string(uri, implementation="redispy", key_prefix=target.key_prefix)
        limiter = strategy_class(storage)
        item = RateLimitItemPerSecond(OPEN_BURST)

        async def hit(index: int) -> object:
            return await limiter.hit(item, "bench", str(index % IDENTITIES))

        try:
            yield hit
        finally:
            await storage.reset()

    return open_case


CASES = [
    Case("redis-py PING (same client)", redis_ping),
    Case("raw EVALSHA consume.lua (same client)", raw_evalsha),
    Case("djust_dist consume, 1 bucket", djust_consume(1)),
    Case("djust_dist consume, 2 buckets", djust_consume(2)),
    Case("djust_dist consume, 1 bucket, pipelining off", djust_consume(1, pipelining=False)),
    Case("limits fixed-window (redis-py)", limits_strategy("fixed-window")),
    Case("limits moving-window (redis-py)", limits_strategy("moving-window")),
    Case("limits sliding-window-counter (redis-py)", limits_strategy("sliding-window-counter")),
    Case("MemoryBackend consume, 1 bucket (in-process)", memory_consume),
]
