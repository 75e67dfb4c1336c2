"""Concurrency proofs on the real Redis: N attempts from several processes, exactly k pass."""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from djust_dist.backends import Bucket, Decision, RedisBackend
from tests.engine import workers

pytestmark = [pytest.mark.redis, pytest.mark.multiprocess]

PROCESSES = 4
CALLS_PER_PROCESS = 125


async def consume_once(redis_url: str, key_prefix: str) -> Decision:
    backend = RedisBackend.from_url(redis_url, key_prefix=key_prefix)
    decision = await backend.consume([Bucket("skewed", rate=0.01, burst=10)])
    await backend.aclose()
    return decision


def run_in_processes(redis_url: str, key_prefix: str, job: str) -> list[int]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        barrier = manager.Barrier(PROCESSES)
        futures = [
            pool.submit(
                workers.run_calls, redis_url, key_prefix, barrier, CALLS_PER_PROCESS, job, worker
            )
            for worker in range(PROCESSES)
        ]
        return [future.result(timeout=120) for future in futures]


def test_admit_concurrent_processes(redis_url: str, key_prefix: str) -> None:
    passed = run_in_processes(redis_url, key_prefix, "admit")

    assert sum(passed) == 7


def test_consume_concurrent_processes(redis_url: str, key_prefix: str) -> None:
    passed = run_in_processes(redis_url, key_prefix, "consume")

    assert sum(passed) == 50


def test_skewed_clocks_share_bucket(redis_url: str, key_prefix: str) -> None:
    context = multiprocessing.get_context("spawn")
    offsets = [3600.0, -3600.0, 7200.0]

    with (
        context.Manager() as manager,
        ProcessPoolExecutor(len(offsets), mp_context=context) as pool,
    ):
        barrier = manager.Barrier(len(offsets))
        futures = [
            pool.submit(workers.run_skewed, redis_url, key_prefix, barrier, offset, 15)
            for offset in offsets
        ]
        passed = [future.result(timeout=120) for future in futures]

    after = asyncio.run(consume_once(redis_url, key_prefix))

    assert sum(passed) == 10
    assert not after.allowed
    assert after.retry_after > 90
