"""Redis memory per active client IP, after a connection and a few events each."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

import redis.asyncio
from django.test import override_settings

from benchmarks.fullstack import consumer_app, mounted_clients, send_event
from benchmarks.server import Target
from djust_dist.backends import RedisBackend

EVENTS = ("increment", "increment", "search", "search")

# The default connection bucket (100 per second, burst 20) is full again 40 ms
# after the events, and its key is gone. At 1 per second the key stays for seconds.
MEMORY_LIVEVIEW_CONFIG = {
    "rate_limit": {"rate": 1, "burst": 20, "max_connections_per_ip": 10},
}

# Addresses come from 203.0.113.0/24 (TEST-NET-3), one per client.
MAX_IPS = 250


@dataclass(frozen=True, slots=True)
class MemoryResult:
    """Redis bytes and keys used by one active client IP."""

    bytes_per_ip: float
    keys_per_ip: float


async def memory_per_ip(target: Target, ips: int) -> MemoryResult:
    """Connect once from each of ``ips`` addresses, send a few events, sum MEMORY USAGE.

    The sum is taken while every connection is still open, so the leases count.
    """
    if not 1 <= ips <= MAX_IPS:
        raise ValueError(f"ips must be between 1 and {MAX_IPS}, got {ips!r}")

    prefix = f"{target.key_prefix}:memory"
    backend = RedisBackend.from_url(target.url, key_prefix=prefix)
    app = consumer_app(backend)
    try:
        async with AsyncExitStack() as stack:
            stack.enter_context(override_settings(LIVEVIEW_CONFIG=MEMORY_LIVEVIEW_CONFIG))
            for index in range(ips):
                ip = f"203.0.113.{index + 1}"
                clients = await stack.enter_async_context(mounted_clients(app, 1, ip))
                for ref, event in enumerate(EVENTS):
                    await send_event(clients[0], event, ref)
            used, keys = await _usage(target.url, prefix)
    finally:
        await backend.aclose()
    return MemoryResult(used / ips, keys / ips)


async def _usage(url: str, prefix: str) -> tuple[int, int]:
    client = redis.asyncio.Redis.from_url(url)
    try:
        used, keys = 0, 0
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            used += int(await client.memory_usage(key, samples=0) or 0)
            keys += 1
        return used, keys
    finally:
        await client.aclose()
