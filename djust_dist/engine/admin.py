"""Read and clear the Redis state of one identity, for operators.

The limiter scripts never read their state back to Python, so this module
decodes the stored values itself: lease expiries, cooldown ends and bucket
TATs, all against the Redis server's clock (``TIME``), as the scripts do.
Every command here touches one key, so it works on Redis Cluster as well.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from djust_dist.engine import connect
from djust_dist.engine.keys import KeyLayout
from djust_dist.engine.scripts import SCRIPT_NAMES, get_script
from djust_dist.engine.types import Bucket

US_PER_S = 1_000_000

# consume.lua writes a TAT as whole seconds and a 15-digit fraction (femtoseconds).
_FS_PER_US = 1_000_000_000


@dataclass(frozen=True, slots=True)
class LeaseState:
    """One connection lease: the member digest and the seconds until it lapses."""

    member: str
    expires_in: float


@dataclass(frozen=True, slots=True)
class BucketState:
    """A token bucket as stored in Redis, with the tokens it holds now on the Redis clock."""

    bucket: Bucket
    redis_key: str
    tokens: float
    stored: bool
    """False when the key does not exist, which means a full bucket."""


@dataclass(frozen=True, slots=True)
class IpState:
    """The Redis state of one IP: live leases, cooldown and its buckets."""

    ip: str
    leases: tuple[LeaseState, ...]
    cooldown_remaining: float
    buckets: tuple[BucketState, ...]


@dataclass(frozen=True, slots=True)
class ServerState:
    """Facts about the Redis server that the limiter depends on."""

    version: str
    ping_ms: float
    scripts_loaded: dict[str, bool]


def open_client(url: str, timeout: float) -> Any:
    """Open a client for operator commands, with ``timeout`` seconds per call.

    Cluster and sentinel URLs get the same clients as the limiter backend.
    """
    return connect.open_client(url, timeout)


async def server_time_us(client: Any) -> int:
    """Return the Redis server's clock in microseconds since the Unix epoch."""
    seconds, microseconds = await client.time()
    return int(seconds) * US_PER_S + int(microseconds)


async def read_server_state(client: Any) -> ServerState:
    """Time a PING, and read the server version and which limiter scripts Redis has loaded."""
    started = time.perf_counter()
    await client.ping()
    ping_ms = (time.perf_counter() - started) * 1000

    info = await client.info("server")
    shas = [get_script(name).sha for name in SCRIPT_NAMES]
    exists = await client.script_exists(*shas)
    return ServerState(
        version=str(info.get("redis_version", "unknown")),
        ping_ms=ping_ms,
        scripts_loaded=_loaded_by_name(exists),
    )


def _loaded_by_name(exists: Any) -> dict[str, bool]:
    # A cluster client returns SCRIPT EXISTS as one list per node, so a script
    # counts as loaded only when every node has it.
    if isinstance(exists, dict):
        per_node = list(exists.values())
        merged = [all(node[index] for node in per_node) for index in range(len(SCRIPT_NAMES))]
    else:
        merged = [bool(flag) for flag in exists]
    return dict(zip(SCRIPT_NAMES, merged, strict=True))


async def read_ip_state(
    client: Any, layout: KeyLayout, ip: str, buckets: Sequence[Bucket] = ()
) -> IpState:
    """Read the leases, the cooldown and the given buckets of ``ip`` (a normalised identity)."""
    now_us = await server_time_us(client)

    members = await client.zrangebyscore(layout.leases(ip), f"({now_us}", "+inf", withscores=True)
    leases = tuple(
        LeaseState(_text(member), (float(score) - now_us) / US_PER_S) for member, score in members
    )

    cooldown_end = await client.get(layout.cooldown(ip))
    cooldown_remaining = 0.0
    if cooldown_end is not None:
        cooldown_remaining = max(int(cooldown_end) - now_us, 0) / US_PER_S

    states = [await read_bucket(client, layout, bucket, now_us) for bucket in buckets]
    return IpState(ip, leases, cooldown_remaining, tuple(states))


async def read_bucket(client: Any, layout: KeyLayout, bucket: Bucket, now_us: int) -> BucketState:
    """Read one bucket and compute the tokens it holds at ``now_us`` (Redis clock)."""
    redis_key = layout.bucket(bucket.key)
    value = await client.get(redis_key)
    if value is None:
        return BucketState(bucket, redis_key, float(bucket.burst), stored=False)
    return BucketState(bucket, redis_key, tokens_at(_text(value), bucket, now_us), stored=True)


def tokens_at(tat: str, bucket: Bucket, now_us: int) -> float:
    """Return the tokens a bucket with theoretical arrival time ``tat`` contains at ``now_us``.

    A TAT in the past means a full bucket. Each ``1 / rate`` seconds that it lies
    ahead of now is one token taken.
    """
    seconds, _, fraction = tat.partition(".")
    tat_us = int(seconds) * US_PER_S + int(fraction or "0") / _FS_PER_US
    debt_s = max(tat_us - now_us, 0) / US_PER_S
    return max(bucket.burst - debt_s * bucket.rate, 0.0)


async def start_cooldown(client: Any, layout: KeyLayout, ip: str, seconds: float) -> None:
    """Start or extend the IP's cooldown with cooldown.lua, as the consumer does after abuse."""
    duration_us = math.ceil(seconds * US_PER_S)
    await get_script("cooldown").run(client, [layout.cooldown(ip)], [duration_us])


async def delete_ip_state(
    client: Any, layout: KeyLayout, ip: str, buckets: Sequence[Bucket] = ()
) -> int:
    """Delete the leases, the cooldown and the given buckets of ``ip``; return the keys removed.

    Keys are deleted one by one because bucket keys live in other cluster slots
    than the IP's keys.
    """
    keys = [layout.leases(ip), layout.cooldown(ip)]
    keys += [layout.bucket(bucket.key) for bucket in buckets]

    removed = 0
    for key in keys:
        removed += int(await client.delete(key))
    return removed


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
