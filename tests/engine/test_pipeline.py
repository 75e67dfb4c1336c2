"""Automatic pipelining: batching, NOSCRIPT recovery, per-call errors, round trips, floods."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.connection import AbstractConnection

from djust_dist.backends import Bucket, RedisBackend
from djust_dist.engine.breaker import CircuitBreaker
from djust_dist.engine.pipeline import ScriptCall, send_calls
from djust_dist.engine.scripts import get_script
from djust_dist.errors import ScriptError
from tests.conftest import RedisServer

OPEN = Bucket("open", rate=1000, burst=1000)


class WriteCounter:
    """Counts the writes of redis-py connections (one per command or pipeline)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = AbstractConnection.send_packed_command

        async def counting_send(connection: AbstractConnection, *args: Any, **kwargs: Any) -> None:
            self.count += 1
            await original(connection, *args, **kwargs)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting_send)


class FailureCounter:
    """Counts the failures that reach the circuit breaker."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = CircuitBreaker.failed

        def counting_failed(breaker: CircuitBreaker, error: BaseException) -> None:
            self.count += 1
            original(breaker, error)

        monkeypatch.setattr(CircuitBreaker, "failed", counting_failed)


def batches_sent(backend: RedisBackend) -> int:
    return backend._pipelines.current().batches_sent


async def test_concurrent_calls_share_batches(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend()
    buckets = [Bucket(f"conn:{index}", rate=0.01, burst=2) for index in range(50)]

    decisions = await asyncio.gather(*(backend.consume([bucket]) for bucket in buckets))

    assert all(decision.allowed for decision in decisions)
    assert [decision.remaining for decision in decisions] == [1.0] * 50
    # The first call goes out at once; the other 49 wait one loop turn and share a pipeline.
    assert batches_sent(backend) == 2


async def test_lone_call_sent_directly(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend()

    for _ in range(3):
        await backend.consume([OPEN])

    assert batches_sent(backend) == 3


async def test_bad_call_fails_alone(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend(on_error="closed")
    script = get_script("consume")
    bad_args: list[str | int | float] = ["not-a-number", "1000000.0", 5]
    await backend.consume([OPEN])  # opens the client, so every call below is batched

    results = await asyncio.gather(
        backend.consume([Bucket("first", rate=0.01, burst=1)]),
        backend._pipelines.call(script, ["djust_dist_bad:bucket:{x}"], bad_args),
        backend.consume([Bucket("second", rate=0.01, burst=1)]),
        return_exceptions=True,
    )

    assert not isinstance(results[0], BaseException)
    assert results[0].allowed
    assert isinstance(results[1], ScriptError)
    assert not isinstance(results[2], BaseException)
    assert results[2].allowed
    assert not backend.circuit_open


@pytest.mark.redis
async def test_noscript_in_pipeline_reloads(redis_server: RedisServer) -> None:
    client = redis.asyncio.Redis.from_url(redis_server.url)
    script = get_script("consume")
    calls = [
        ScriptCall(script, [f"noscript:bucket:{{{index}}}"], [1, "1000000000.0", 3])
        for index in range(5)
    ]
    try:
        await client.script_flush()
        replies = await send_calls(client, calls)
        loaded = await client.script_exists(script.sha)
    finally:
        await client.aclose()

    assert [reply[0] for reply in replies] == [1] * 5
    assert loaded == [True]


@pytest.mark.redis
async def test_script_flush_mid_flood_recovers(redis_server: RedisServer) -> None:
    backend = RedisBackend.from_url(redis_server.url, on_error="closed")
    buckets = [Bucket(f"flush:{index}", rate=0.01, burst=3) for index in range(30)]
    try:
        await backend.consume([OPEN])
        with redis.Redis.from_url(redis_server.url) as admin:
            admin.script_flush()
        decisions = await asyncio.gather(*(backend.consume([bucket]) for bucket in buckets))
    finally:
        await backend.aclose()

    assert all(decision.allowed for decision in decisions)
    assert all(decision.remaining == pytest.approx(2, abs=1e-3) for decision in decisions)
    assert not backend.circuit_open


@pytest.mark.redis
async def test_failed_batch_reaches_breaker_once(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = RedisBackend.from_url(redis_server.url, on_error="closed", retry_interval=30)
    buckets = [Bucket(f"down:{index}", rate=0.01, burst=3) for index in range(40)]
    try:
        await backend.consume([OPEN])
        redis_server.stop()
        failures = FailureCounter(monkeypatch)
        decisions = await asyncio.gather(*(backend.consume([bucket]) for bucket in buckets))
    finally:
        await backend.aclose()

    assert not any(decision.allowed for decision in decisions)
    assert backend.circuit_open
    # The direct call and the one batch of the other 39 calls: two failures, not 40.
    assert failures.count <= 2


@pytest.mark.redis
async def test_renewal_round_trips_constant(
    redis_url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = RedisBackend.from_url(redis_url, key_prefix=key_prefix, lease_ttl=30)
    leases = [(f"10.9.{index // 250}.{index % 250}", f"conn-{index}") for index in range(2000)]
    try:
        for ip, connection_id in leases:
            await backend.admit_connection(ip, connection_id, limit=10)
        writes = WriteCounter(monkeypatch)
        await backend.renew_connections(leases)
        renew_writes = writes.count

        writes.count = 0
        await backend.renew_connections(leases * 5)
        bigger_writes = writes.count
    finally:
        await backend.aclose()

    # 2 000 pairs are 4 renew.lua calls: the first goes out at once, the other
    # three share one pipeline. Ten times as many pairs still cost two writes.
    assert renew_writes == 2
    assert bigger_writes == 2


@pytest.mark.redis
async def test_flood_costs_few_redis_calls(redis_server: RedisServer) -> None:
    backend = RedisBackend.from_url(redis_server.url)
    bucket = Bucket("flood", rate=0.01, burst=3)
    denied = 0

    async def flood(count: int) -> None:
        nonlocal denied
        for _ in range(count):
            decision = await backend.consume([bucket])
            denied += not decision.allowed

    try:
        for _ in range(bucket.burst):
            await backend.consume([bucket])
        before = script_calls(redis_server)
        await asyncio.gather(*(flood(50) for _ in range(20)))
        after = script_calls(redis_server)
    finally:
        await backend.aclose()

    assert denied == 1000
    assert (after - before) / denied <= 0.05


def script_calls(server: RedisServer) -> int:
    with redis.Redis.from_url(server.url) as client:
        stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
