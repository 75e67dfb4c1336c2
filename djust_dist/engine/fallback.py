"""The limits a RedisBackend applies in its own process while Redis is unreachable.

Under ``on_error="local"`` each worker falls back to an in-process MemoryBackend.
Limits that the whole fleet shares are an IP's connection limit and the per-IP
and per-caller buckets. Each worker applies them divided by the number of
workers the heartbeat last saw alive. The fleet together then stays near the
configured limit, instead of multiplying it by the number of workers:

- connection limit: ``ceil(limit / workers)``, so every worker admits at least one;
- bucket: rate ``rate / workers`` (at least ``MIN_RATE``) and burst
  ``ceil(burst / workers)`` (at least the cost asked for).

A bucket whose key starts with ``CONNECTION_BUCKET_PREFIX`` belongs to a single
connection, which lives in one worker, so it keeps its full rate and burst.

While Redis is up, the backend also records its own admissions, renewals and
releases here, so a worker that falls back still counts the connections it
already holds against its share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from djust_dist.engine.base import validate_buckets, validate_identity, validate_limit
from djust_dist.engine.memory import MemoryBackend
from djust_dist.engine.types import MIN_RATE, Admission, Bucket, Decision

CONNECTION_BUCKET_PREFIX = "conn:"


def share_limit(limit: int, workers: int) -> int:
    """Return one worker's share of a fleet-wide connection limit, rounded up."""
    return max(1, math.ceil(limit / max(workers, 1)))


def share_bucket(bucket: Bucket, workers: int, cost: int = 1) -> Bucket:
    """Return one worker's share of a fleet-wide bucket; per-connection buckets stay whole."""
    if workers <= 1 or bucket.key.startswith(CONNECTION_BUCKET_PREFIX):
        return bucket

    return Bucket(
        key=bucket.key,
        rate=max(bucket.rate / workers, MIN_RATE),
        burst=max(math.ceil(bucket.burst / workers), cost),
    )


class LocalFallback(MemoryBackend):
    """A MemoryBackend that applies this worker's share of the fleet-wide limits.

    ``fleet_size`` returns the number of workers last seen alive; it is read on
    every call, so a new count applies at once.
    """

    def __init__(
        self,
        fleet_size: Callable[[], int],
        *,
        lease_ttl: float,
        limit_retry_hint: float,
    ) -> None:
        super().__init__(lease_ttl=lease_ttl, limit_retry_hint=limit_retry_hint)
        self._fleet_size = fleet_size

    async def consume(self, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        workers = self._fleet_size()
        shares = [share_bucket(bucket, workers, cost) for bucket in validate_buckets(buckets, cost)]
        return await super().consume(shares, cost)

    async def admit_connection(self, ip: str, connection_id: str, limit: int) -> Admission:
        share = share_limit(validate_limit(limit), self._fleet_size())
        return await super().admit_connection(ip, connection_id, share)

    def record_lease(self, ip: str, connection_id: str) -> None:
        """Hold a lease that Redis granted, without checking the local limit or cooldown."""
        validate_identity("ip", ip)
        validate_identity("connection_id", connection_id)
        with self._lock:
            expiry = self._now_us() + self._lease_ttl_us
            self._state.leases_us.setdefault(ip, {})[connection_id] = expiry
