"""RedisBackend on a private three-master Redis Cluster.

Buckets of one request may live in different slots, so a consume is split per
slot and refunded on a denial. These tests check that no tokens are taken on a
denial, that every script call stays within one slot, and that limits hold for
concurrent processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from djust_dist.backends import Bucket, RedisBackend
from djust_dist.engine import admin
from djust_dist.engine.cluster import slot_of
from djust_dist.engine.connect import open_cluster_client
from djust_dist.engine.keys import KeyLayout
from djust_dist.errors import ScriptError
from tests.engine import workers
from tests.servers import LocalCluster

pytestmark = pytest.mark.cluster

# Generous, so a loaded machine does not trip the breaker; "closed" turns any
# Redis failure into a denial, which the assertions would catch.
STRICT_OPTIONS = {"timeout": 5.0, "on_error": "closed"}
PROCESSES = 4
CALLS_PER_PROCESS = 125


def distinct_slot_buckets(layout: KeyLayout, count: int, rate: float, burst: int) -> list[Bucket]:
    """Return ``count`` buckets whose keys all hash to different cluster slots."""
    buckets: list[Bucket] = []
    slots: set[int] = set()
    for index in range(1000):
        bucket = Bucket(f"user:{index}", rate=rate, burst=burst)
        slot = slot_of(layout.bucket(bucket.key))
        if slot not in slots:
            slots.add(slot)
            buckets.append(bucket)
        if len(buckets) == count:
            return buckets
    raise AssertionError(f"found only {len(buckets)} buckets in distinct slots")


@pytest.fixture
async def cluster_client(redis_cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    client = open_cluster_client(redis_cluster.url, timeout=5.0)
    # Loads the slot map, so get_primaries() returns the nodes.
    await client.initialize()
    yield client
    await client.aclose()


@pytest.fixture(params=[True, False], ids=["pipelined", "direct"])
async def backend(
    request: pytest.FixtureRequest, redis_cluster: LocalCluster, key_prefix: str
) -> AsyncIterator[RedisBackend]:
    """A cluster backend that fails closed, with and without automatic pipelining."""
    built = RedisBackend.from_url(
        redis_cluster.url, key_prefix=key_prefix, pipelining=request.param, **STRICT_OPTIONS
    )
    yield built

    circuit_open = built.circuit_open
    await built.aclose()
    assert not circuit_open, "Redis failed during the test"


async def tokens_of(client: RedisCluster, layout: KeyLayout, bucket: Bucket) -> float:
    now_us = await admin.server_time_us(client)
    return (await admin.read_bucket(client, layout, bucket, now_us)).tokens


def test_from_url_builds_cluster_backend(redis_cluster: LocalCluster) -> None:
    backend = RedisBackend.from_url(redis_cluster.url)

    assert backend.cluster


async def test_cross_slot_denial_takes_nothing(
    backend: RedisBackend, cluster_client: RedisCluster
) -> None:
    first, second, scarce = distinct_slot_buckets(backend.keys, 3, rate=0.01, burst=5)
    scarce = Bucket(scarce.key, rate=0.01, burst=1)

    allowed = await backend.consume([first, second])
    emptied = await backend.consume([scarce])
    denied = await backend.consume([first, scarce, second])

    assert allowed.allowed
    assert allowed.remaining == pytest.approx(4, abs=0.01)
    assert emptied.allowed
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(100, abs=0.5)
    assert denied.remaining == pytest.approx(0, abs=0.01)
    # The refund gives back exactly what the denied request took, no more.
    assert await tokens_of(cluster_client, backend.keys, first) == pytest.approx(4, abs=0.01)
    assert await tokens_of(cluster_client, backend.keys, second) == pytest.approx(4, abs=0.01)
    assert await tokens_of(cluster_client, backend.keys, scarce) == pytest.approx(0, abs=0.01)


async def test_cross_slot_allowed_takes_everywhere(
    backend: RedisBackend, cluster_client: RedisCluster
) -> None:
    buckets = distinct_slot_buckets(backend.keys, 3, rate=0.01, burst=5)
    buckets[1] = Bucket(buckets[1].key, rate=0.01, burst=3)

    decision = await backend.consume(buckets, cost=2)

    assert decision.allowed
    assert decision.remaining == pytest.approx(1, abs=0.01)
    for bucket in buckets:
        expected = bucket.burst - 2
        assert await tokens_of(cluster_client, backend.keys, bucket) == pytest.approx(
            expected, abs=0.01
        )


async def test_cross_slot_denial_refunds_partly_used(
    backend: RedisBackend, cluster_client: RedisCluster
) -> None:
    used, scarce = distinct_slot_buckets(backend.keys, 2, rate=0.01, burst=5)
    scarce = Bucket(scarce.key, rate=0.01, burst=2)

    for _ in range(3):
        await backend.consume([used])
    await backend.consume([scarce], cost=2)
    denied = [await backend.consume([used, scarce]) for _ in range(5)]

    assert not any(decision.allowed for decision in denied)
    assert await tokens_of(cluster_client, backend.keys, used) == pytest.approx(2, abs=0.01)


async def test_every_script_stays_in_one_slot(backend: RedisBackend) -> None:
    ips = [f"10.1.{index // 256}.{index % 256}" for index in range(300)]
    buckets = distinct_slot_buckets(backend.keys, 3, rate=100, burst=50)

    admissions = [await backend.admit_connection(ip, f"conn-{ip}", limit=2) for ip in ips]
    await backend.renew_connections([(ip, f"conn-{ip}") for ip in ips])
    decision = await backend.consume(buckets)
    for ip in ips[:20]:
        await backend.start_cooldown(ip, 5)
        await backend.release_connection(ip, f"conn-{ip}")
    rejected = await backend.admit_connection(ips[0], "another", limit=2)
    workers_alive = await backend._heartbeat.beat()

    assert all(admission.admitted for admission in admissions)
    assert decision.allowed
    assert rejected.reason == "cooldown"
    assert workers_alive is not None


async def test_unsplit_consume_would_cross_slots(
    redis_cluster: LocalCluster, key_prefix: str
) -> None:
    # Without the cluster code path the same request spans slots: this is the
    # error the other tests would surface if a script call crossed slots.
    single_call = RedisBackend(
        lambda: open_cluster_client(redis_cluster.url, timeout=5.0),
        cluster=False,
        key_prefix=key_prefix,
        pipelining=False,
        **STRICT_OPTIONS,
    )
    buckets = distinct_slot_buckets(single_call.keys, 2, rate=1, burst=5)

    try:
        with pytest.raises((RedisClusterException, ScriptError), match="slot"):
            await single_call.consume(buckets)
    finally:
        await single_call.aclose()


async def test_scripts_reloaded_on_every_node(
    backend: RedisBackend, cluster_client: RedisCluster
) -> None:
    buckets = distinct_slot_buckets(backend.keys, 6, rate=100, burst=50)
    await backend.consume(buckets)
    # The heartbeat's self-check loads every script once; the flush must come after it.
    for _ in range(500):
        if backend._heartbeat._server_checked:
            break
        await asyncio.sleep(0.01)
    assert backend._heartbeat._server_checked

    for node in cluster_client.get_primaries():
        await cluster_client.execute_command("SCRIPT", "FLUSH", target_nodes=node)
    flushed = await admin.read_server_state(cluster_client)
    decisions = [await backend.consume(buckets[:3]), await backend.consume(buckets[3:])]
    admitted = await backend.admit_connection("10.2.0.1", "c1", limit=1)

    assert not any(flushed.scripts_loaded.values())
    assert all(decision.allowed for decision in decisions)
    assert admitted.admitted


@pytest.mark.multiprocess
def test_admit_concurrent_processes(redis_cluster: LocalCluster, key_prefix: str) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        barrier = manager.Barrier(PROCESSES)
        futures = [
            pool.submit(
                workers.run_calls,
                redis_cluster.url,
                key_prefix,
                barrier,
                CALLS_PER_PROCESS,
                "admit",
                worker,
            )
            for worker in range(PROCESSES)
        ]
        passed = [future.result(timeout=120) for future in futures]

    # workers.run_calls admits one IP with a limit of 7.
    assert PROCESSES * CALLS_PER_PROCESS >= 500
    assert sum(passed) == 7
