"""RedisBackend behind Redis Sentinel: limits resume on the new master after a failover."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis.asyncio

from djust_dist.backends import Bucket, RedisBackend
from tests.servers import LocalSentinel

pytestmark = [pytest.mark.sentinel, pytest.mark.faults]

# Each loop is bounded by a count and by time; together they stay under 30 s.
TRAFFIC_ROUNDS = 400
FAILOVER_DEADLINE_S = 20.0
PAUSE_S = 0.02


async def current_master(sentinel_port: int) -> int:
    """Return the port of the master that the sentinel names now."""
    client = redis.asyncio.Redis(port=sentinel_port, socket_timeout=2)
    try:
        _, port = await client.execute_command(
            "SENTINEL GET-MASTER-ADDR-BY-NAME", LocalSentinel.service
        )
    finally:
        await client.aclose()
    return int(port)


async def is_master(port: int) -> bool:
    client = redis.asyncio.Redis(port=port, socket_timeout=2)
    try:
        info = await client.info("replication")
    finally:
        await client.aclose()
    return info.get("role") == "master"


async def test_limits_resume_after_failover(
    redis_sentinel: LocalSentinel, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    backend = RedisBackend.from_url(
        redis_sentinel.url, key_prefix=key_prefix, timeout=0.5, retry_interval=0.2
    )
    traffic = Bucket("traffic", rate=1000, burst=1000)
    assert await current_master(redis_sentinel.sentinel_port) == redis_sentinel.master_port
    assert (await backend.consume([traffic])).allowed

    # A killed master cannot keep accepting writes from open connections, as a
    # master demoted by SENTINEL FAILOVER does until the sentinel reconfigures it.
    redis_sentinel.kill_master()

    # Traffic during the switch: the failure policy (local) decides while no
    # master is reachable, and the backend finds the new master itself.
    caplog.set_level(logging.WARNING, logger="djust_dist")
    deadline = time.monotonic() + FAILOVER_DEADLINE_S
    switched = False
    for round_index in range(TRAFFIC_ROUNDS):
        await backend.consume([traffic])
        await backend.admit_connection("10.3.0.1", f"c{round_index}", limit=1000)
        switched = await current_master(
            redis_sentinel.sentinel_port
        ) == redis_sentinel.replica_port and await is_master(redis_sentinel.replica_port)
        if (switched and not backend.circuit_open) or time.monotonic() > deadline:
            break
        await asyncio.sleep(PAUSE_S)
    assert switched, "the sentinel did not promote the replica in time"

    # Limits are enforced by the new master: exactly burst requests pass.
    fresh = Bucket("after-failover", rate=0.01, burst=3)
    decisions = [await backend.consume([fresh]) for _ in range(5)]
    admissions = [await backend.admit_connection("10.3.0.2", f"n{i}", limit=2) for i in range(3)]
    circuit_open = backend.circuit_open
    await backend.aclose()

    new_master = redis.asyncio.Redis(port=redis_sentinel.replica_port, socket_timeout=2)
    try:
        stored = await new_master.exists(backend.keys.bucket(fresh.key))
    finally:
        await new_master.aclose()

    assert [decision.allowed for decision in decisions] == [True] * 3 + [False] * 2
    assert [admission.admitted for admission in admissions] == [True, True, False]
    assert not circuit_open
    assert stored == 1
    assert not [record for record in caplog.records if record.exc_info]
