"""Redis calls per denied event while one client floods an empty bucket."""

from __future__ import annotations

import asyncio

from benchmarks.server import Target, script_calls
from djust_dist.backends import Bucket, RedisBackend

# 0.1 token per second: no token comes back during a flood of a few seconds.
FLOOD_BUCKET = Bucket("flood", rate=0.1, burst=5)
FLOOD_TASKS = 50


async def calls_per_denied_event(target: Target, events: int, *, deny_cache: bool) -> float:
    """Empty a bucket, flood it with ``events`` consumes and return script calls per denial.

    The count comes from the server's INFO commandstats, so on a shared server
    other clients' script calls are counted too.
    """
    prefix = f"{target.key_prefix}:flood:{int(deny_cache)}"
    backend = RedisBackend.from_url(target.url, key_prefix=prefix, deny_cache=deny_cache)
    try:
        for _ in range(FLOOD_BUCKET.burst):
            await backend.consume([FLOOD_BUCKET])

        before = await asyncio.to_thread(script_calls, target.url)
        denied = await _flood(backend, events)
        after = await asyncio.to_thread(script_calls, target.url)
    finally:
        await backend.aclose()

    if denied == 0:
        raise RuntimeError("the flood bucket allowed every event; nothing was measured")
    return (after - before) / denied


async def _flood(backend: RedisBackend, events: int) -> int:
    per_task = max(events // FLOOD_TASKS, 1)
    denied = 0

    async def flood_task() -> None:
        nonlocal denied
        for _ in range(per_task):
            decision = await backend.consume([FLOOD_BUCKET])
            denied += not decision.allowed

    await asyncio.gather(*(flood_task() for _ in range(FLOOD_TASKS)))
    return denied
