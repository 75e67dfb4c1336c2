"""In-process limiter backend: the Redis backend's semantics for one process.

The arithmetic mirrors the Lua scripts (GCRA on theoretical arrival times, the
clock read in whole microseconds, TATs rounded to femtoseconds) so both backends
return the same numbers for the same sequence of calls.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from djust_dist.engine.base import (
    Backend,
    make_decision,
    validate_buckets,
    validate_identity,
    validate_limit,
    validate_seconds,
)
from djust_dist.engine.types import ADMITTED, Admission, Bucket, Decision

DEFAULT_LEASE_TTL = 30.0
DEFAULT_LIMIT_RETRY_HINT = 5.0

NS_PER_S = 1_000_000_000
FS_PER_NS = 1_000_000
FS_PER_US = 1_000_000_000

# A call may pass this many nanoseconds early; it absorbs rounding and is far
# below one token (at least 10 us at the highest rate). consume.lua uses the same.
SLACK_NS = 1.0

# Expired entries of untouched identities are dropped at most this often.
SWEEP_INTERVAL_US = 10_000_000


def interval_ns(rate: float) -> float:
    """Return the emission interval of a bucket: nanoseconds per token."""
    return NS_PER_S / rate


@dataclass(frozen=True, slots=True)
class BucketStep:
    """One bucket's part of a consume: its debt before and after, and its capacity.

    A debt is how far the bucket's TAT lies ahead of now, in nanoseconds.
    """

    interval: float
    capacity: float
    debt: float
    new_debt: float

    @property
    def wait_ns(self) -> float:
        """Nanoseconds until the request fits in this bucket; 0 or less when it fits now."""
        return self.new_debt - self.capacity

    @property
    def fits(self) -> bool:
        return self.wait_ns <= SLACK_NS

    def tokens_left(self, *, consumed: bool) -> float:
        debt = self.new_debt if consumed else self.debt
        return max(0.0, (self.capacity - debt) / self.interval)


@dataclass(slots=True)
class _LimiterState:
    tats_fs: dict[str, int] = field(default_factory=dict)
    leases_us: dict[str, dict[str, int]] = field(default_factory=dict)
    cooldowns_us: dict[str, int] = field(default_factory=dict)


class MemoryBackend(Backend):
    """Token buckets, leases and cooldowns held in this process only.

    Options: ``lease_ttl`` (seconds a lease lives without renewal, default 30) and
    ``limit_retry_hint`` (seconds put in ``retry_after`` of a ``"limit"`` rejection,
    default 5). Safe to share between event loops and threads of one process.
    """

    def __init__(
        self,
        *,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        limit_retry_hint: float = DEFAULT_LIMIT_RETRY_HINT,
    ) -> None:
        self.lease_ttl = validate_seconds("lease_ttl", lease_ttl)
        self.limit_retry_hint = validate_seconds("limit_retry_hint", limit_retry_hint)

        self._lease_ttl_us = math.ceil(self.lease_ttl * 1_000_000)
        self._state = _LimiterState()
        self._lock = threading.Lock()
        self._next_sweep_us = 0

    async def consume(self, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        checked = validate_buckets(buckets, cost)
        with self._lock:
            now_us = self._now_us()
            return self._consume(checked, cost, now_us * FS_PER_US)

    async def admit_connection(self, ip: str, connection_id: str, limit: int) -> Admission:
        validate_identity("ip", ip)
        validate_identity("connection_id", connection_id)
        validate_limit(limit)
        with self._lock:
            return self._admit(ip, connection_id, limit, self._now_us())

    async def release_connection(self, ip: str, connection_id: str) -> None:
        validate_identity("ip", ip)
        validate_identity("connection_id", connection_id)
        with self._lock:
            leases = self._state.leases_us.get(ip)
            if leases is not None:
                leases.pop(connection_id, None)
                if not leases:
                    del self._state.leases_us[ip]

    async def renew_connections(self, items: Iterable[tuple[str, str]]) -> None:
        pairs = [
            (validate_identity("ip", ip), validate_identity("connection_id", connection_id))
            for ip, connection_id in items
        ]
        with self._lock:
            now_us = self._now_us()
            for ip, connection_id in pairs:
                self._renew(ip, connection_id, now_us)

    async def start_cooldown(self, ip: str, seconds: float) -> None:
        validate_identity("ip", ip)
        duration_us = math.ceil(validate_seconds("seconds", seconds, allow_zero=True) * 1_000_000)
        if duration_us == 0:
            return

        with self._lock:
            now_us = self._now_us()
            new_end = now_us + duration_us
            if self._state.cooldowns_us.get(ip, 0) < new_end:
                self._state.cooldowns_us[ip] = new_end

    async def aclose(self) -> None:
        with self._lock:
            self._state = _LimiterState()

    def _now_us(self) -> int:
        """Read the clock in whole microseconds (as Redis TIME does) and sweep now and then."""
        now_us = time.monotonic_ns() // 1000
        if now_us >= self._next_sweep_us:
            self._sweep(now_us)
            self._next_sweep_us = now_us + SWEEP_INTERVAL_US
        return now_us

    def _consume(self, buckets: tuple[Bucket, ...], cost: int, now_fs: int) -> Decision:
        steps = [self._step(bucket, cost, now_fs) for bucket in buckets]

        if not all(step.fits for step in steps):
            wait_ns = max(step.wait_ns for step in steps)
            remaining = min(step.tokens_left(consumed=False) for step in steps)
            return make_decision(False, math.ceil(wait_ns / 1000), remaining)

        for bucket, step in zip(buckets, steps, strict=True):
            self._state.tats_fs[bucket.key] = now_fs + math.floor(step.new_debt * FS_PER_NS + 0.5)
        remaining = min(step.tokens_left(consumed=True) for step in steps)
        return make_decision(True, 0, remaining)

    def _step(self, bucket: Bucket, cost: int, now_fs: int) -> BucketStep:
        interval = interval_ns(bucket.rate)
        tat_fs = self._state.tats_fs.get(bucket.key, now_fs)
        debt = max(0.0, (tat_fs - now_fs) / FS_PER_NS)
        return BucketStep(
            interval=interval,
            capacity=bucket.burst * interval,
            debt=debt,
            new_debt=debt + cost * interval,
        )

    def _admit(self, ip: str, connection_id: str, limit: int, now_us: int) -> Admission:
        cooldown_end = self._state.cooldowns_us.get(ip, 0)
        if cooldown_end > now_us:
            return Admission(False, "cooldown", (cooldown_end - now_us) / 1_000_000)

        leases = self._live_leases(ip, now_us)
        if connection_id not in leases and len(leases) >= limit:
            return Admission(False, "limit", self.limit_retry_hint)

        leases[connection_id] = now_us + self._lease_ttl_us
        self._state.leases_us[ip] = leases
        return ADMITTED

    def _renew(self, ip: str, connection_id: str, now_us: int) -> None:
        leases = self._state.leases_us.get(ip)
        if leases is None or connection_id not in leases:
            return

        if leases[connection_id] > now_us:
            leases[connection_id] = now_us + self._lease_ttl_us
            return

        del leases[connection_id]
        if not leases:
            del self._state.leases_us[ip]

    def _live_leases(self, ip: str, now_us: int) -> dict[str, int]:
        leases = self._state.leases_us.get(ip, {})
        return {member: expiry for member, expiry in leases.items() if expiry > now_us}

    def _sweep(self, now_us: int) -> None:
        """Drop full buckets, expired leases and ended cooldowns, so memory follows activity."""
        now_fs = now_us * FS_PER_US
        state = self._state
        state.tats_fs = {key: tat for key, tat in state.tats_fs.items() if tat > now_fs}
        state.cooldowns_us = {ip: end for ip, end in state.cooldowns_us.items() if end > now_us}

        live_leases = {ip: self._live_leases(ip, now_us) for ip in state.leases_us}
        state.leases_us = {ip: leases for ip, leases in live_leases.items() if leases}
