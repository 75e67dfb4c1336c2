"""Worker process bodies for the multi-process tests (imported by spawned children).

The barrier is a multiprocessing manager proxy, which has the threading.Barrier API.
"""

from __future__ import annotations

import asyncio
import time
from threading import Barrier
from typing import Any

from djust_dist.backends import Bucket, RedisBackend

# Generous, so a loaded machine does not trip the breaker; on_error="closed"
# turns any failure into a rejection, which the tests would count as a bug.
WORKER_OPTIONS: dict[str, Any] = {"timeout": 10.0, "on_error": "closed"}


async def _run_calls(
    url: str, key_prefix: str, barrier: Barrier, calls: int, job: str, worker: int
) -> int:
    backend = RedisBackend.from_url(url, key_prefix=key_prefix, **WORKER_OPTIONS)
    await backend.ping()
    await asyncio.to_thread(barrier.wait, 30)

    if job == "admit":
        results = await asyncio.gather(
            *(
                backend.admit_connection("10.9.9.9", f"w{worker}-c{i}", limit=7)
                for i in range(calls)
            )
        )
        passed = sum(result.admitted for result in results)
    else:
        bucket = Bucket("shared", rate=0.01, burst=50)
        decisions = await asyncio.gather(*(backend.consume([bucket]) for _ in range(calls)))
        passed = sum(decision.allowed for decision in decisions)

    circuit_open = backend.circuit_open
    await backend.aclose()
    if circuit_open:
        raise RuntimeError("Redis failed during the concurrency run")
    return passed


def run_calls(
    url: str, key_prefix: str, barrier: Barrier, calls: int, job: str, worker: int
) -> int:
    """Run ``calls`` concurrent admits or consumes after the barrier; return how many passed."""
    return asyncio.run(_run_calls(url, key_prefix, barrier, calls, job, worker))


def run_skewed(url: str, key_prefix: str, barrier: Barrier, offset_s: float, calls: int) -> int:
    """Consume from a shared bucket with every local clock shifted by ``offset_s``."""
    shift_ns = int(offset_s * 1_000_000_000)
    real_time, real_time_ns = time.time, time.time_ns
    real_monotonic, real_monotonic_ns = time.monotonic, time.monotonic_ns
    time.time = lambda: real_time() + offset_s
    time.time_ns = lambda: real_time_ns() + shift_ns
    time.monotonic = lambda: real_monotonic() + offset_s
    time.monotonic_ns = lambda: real_monotonic_ns() + shift_ns

    async def consume_all() -> int:
        backend = RedisBackend.from_url(url, key_prefix=key_prefix, **WORKER_OPTIONS)
        await backend.ping()
        await asyncio.to_thread(barrier.wait, 30)

        passed = 0
        for _ in range(calls):
            passed += (await backend.consume([Bucket("skewed", rate=0.01, burst=10)])).allowed
            await asyncio.sleep(0.01)
        await backend.aclose()
        return passed

    return asyncio.run(consume_all())
