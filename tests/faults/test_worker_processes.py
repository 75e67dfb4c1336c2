"""Real worker processes: the fleet-wide local fallback, and leases of a killed worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from djust_dist.backends import RedisBackend
from tests.conftest import RedisServer
from tests.faults.conftest import WorkerProcess

pytestmark = [pytest.mark.faults, pytest.mark.redis, pytest.mark.multiprocess]

Spawn = Callable[..., Awaitable[WorkerProcess]]

WORKERS = 3
LIMIT = 6
IP = "203.0.113.9"


async def wait_for_fleet(workers: list[WorkerProcess], size: int, deadline_s: float = 10) -> None:
    """Poll until every worker's heartbeat has seen ``size`` workers."""
    for _ in range(int(deadline_s / 0.1)):
        seen = [(await worker.call(cmd="fleet"))["workers"] for worker in workers]
        if seen == [size] * len(workers):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"workers saw {seen} workers, expected {size} each")


async def test_fleet_shares_limits_without_redis(
    redis_server: RedisServer, key_prefix: str, spawn_worker: Spawn
) -> None:
    workers = [await spawn_worker(redis_server.url, key_prefix, 1.5) for _ in range(WORKERS)]
    await wait_for_fleet(workers, WORKERS)

    # Through Redis, worker 0 takes 4 of the 6 slots before the outage.
    held_before = (await workers[0].call(cmd="admit", ip=IP, count=4, limit=LIMIT))["admitted"]
    redis_server.stop()

    admitted = [
        (await worker.call(cmd="admit", ip=IP, count=LIMIT, limit=LIMIT))["admitted"]
        for worker in workers
    ]
    shared = [
        (await worker.call(cmd="consume", key="handler:ip:x", rate=0.01, burst=9, count=9))[
            "allowed"
        ]
        for worker in workers
    ]
    own = [
        (await worker.call(cmd="consume", key="conn:abc", rate=0.01, burst=6, count=6))["allowed"]
        for worker in workers
    ]

    print(f"fleet: held {held_before}, admitted {admitted}, shared {shared}, own {own}")

    assert held_before == 4
    # Each worker's share is ceil(6 / 3) = 2, and worker 0 already has 4.
    assert admitted == [0, 2, 2]
    assert held_before + sum(admitted) <= LIMIT + WORKERS
    assert shared == [3, 3, 3]
    assert own == [6, 6, 6]


async def test_killed_worker_frees_slots(
    redis_server: RedisServer,
    key_prefix: str,
    spawn_worker: Spawn,
    make_backend: Callable[..., RedisBackend],
) -> None:
    lease_ttl = 1.0
    worker = await spawn_worker(redis_server.url, key_prefix, lease_ttl)
    observer = make_backend(redis_server.url, key_prefix=key_prefix, on_error="closed")
    assert (await worker.call(cmd="admit", ip=IP, count=3, limit=3))["admitted"] == 3

    # For twice the TTL the worker's renewals keep every slot taken.
    held = []
    for attempt in range(10):
        held.append(await observer.admit_connection(IP, f"early-{attempt}", 3))
        await asyncio.sleep(2 * lease_ttl / 10)

    worker.kill()
    await worker.process.wait()
    killed_at = time.monotonic()
    freed_after = None
    for attempt in range(60):
        if (await observer.admit_connection(IP, f"late-{attempt}", 3)).admitted:
            freed_after = time.monotonic() - killed_at
            break
        await asyncio.sleep(0.05)

    print(f"SIGKILL: slot freed {freed_after} s after the kill (lease_ttl {lease_ttl} s)")

    assert [admission.reason for admission in held] == ["limit"] * 10
    assert freed_after is not None, "no slot was freed within 3 s of SIGKILL"
    # Generous: the lease TTL plus scheduling slack on a loaded machine.
    assert freed_after <= lease_ttl + 1.5
