"""The interface every limiter backend implements."""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Sequence

from djust_dist.engine.types import Admission, Bucket, Decision
from djust_dist.errors import InvalidCostError


class Backend(abc.ABC):
    """Token buckets, per-IP connection leases and reconnect cooldowns.

    Identities (``ip``, bucket keys, connection ids) may be any text. Every method
    is a coroutine and may be awaited from any event loop of the process.
    """

    @abc.abstractmethod
    async def consume(self, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        """Take ``cost`` tokens from every bucket, or from none of them.

        Raises ValueError when ``cost`` exceeds a bucket's burst or is below 1.
        """

    @abc.abstractmethod
    async def admit_connection(self, ip: str, connection_id: str, limit: int) -> Admission:
        """Check the IP's cooldown, then grant a lease if it holds fewer than ``limit``."""

    @abc.abstractmethod
    async def release_connection(self, ip: str, connection_id: str) -> None:
        """Drop a lease. Releasing an unknown or already released lease changes nothing."""

    @abc.abstractmethod
    async def renew_connections(self, items: Iterable[tuple[str, str]]) -> None:
        """Extend the leases of live ``(ip, connection_id)`` pairs; lapsed ones stay gone."""

    @abc.abstractmethod
    async def start_cooldown(self, ip: str, seconds: float) -> None:
        """Refuse the IP for ``seconds``; never shortens a longer cooldown already running."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections and background tasks held by the backend."""

    async def ping(self) -> bool:
        """Return whether the backend's store replies. An in-process store always does."""
        return True


def validate_buckets(buckets: Sequence[Bucket], cost: int) -> tuple[Bucket, ...]:
    """Check the arguments of ``consume`` and return the buckets as a tuple.

    Raises TypeError for a cost that is not an int or an item that is not a Bucket.
    Raises ValueError for an empty list or a repeated bucket key, and its subclass
    InvalidCostError for a cost below 1 or above a bucket's burst.
    """
    if isinstance(cost, bool) or not isinstance(cost, int):
        raise TypeError(f"cost must be an int, got {cost!r}")
    if cost < 1:
        raise InvalidCostError(cost)

    checked = tuple(buckets)
    if not checked:
        raise ValueError("consume needs at least one bucket, got an empty sequence")

    seen: set[str] = set()
    for bucket in checked:
        if not isinstance(bucket, Bucket):
            raise TypeError(f"buckets must contain Bucket objects, got {bucket!r}")
        if bucket.key in seen:
            raise ValueError(f"bucket key {bucket.key[:64]!r} appears twice in one consume call")
        if cost > bucket.burst:
            raise InvalidCostError(cost, bucket.key, bucket.burst)
        seen.add(bucket.key)
    return checked


def validate_identity(name: str, value: object) -> str:
    """Return ``value`` if it is a str, else raise TypeError naming the argument."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r}")
    return value


def validate_limit(limit: object) -> int:
    """Return ``limit`` if it is an int of at least 1, else raise TypeError or ValueError."""
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int, got {limit!r}")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    return limit


def validate_seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is a finite positive number of seconds.

    With ``allow_zero`` the value may also be 0. Raises TypeError or ValueError
    naming ``name``, the bad value and the accepted range.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")

    seconds = float(value)
    lowest_ok = seconds >= 0 if allow_zero else seconds > 0
    if not math.isfinite(seconds) or not lowest_ok:
        accepted = "0 or more" if allow_zero else "more than 0"
        raise ValueError(f"{name} must be a finite number of seconds, {accepted}, got {value!r}")
    return seconds


def make_decision(allowed: bool, retry_after_us: int, remaining: float) -> Decision:
    """Build a Decision from script units: microseconds to wait, fractional tokens left."""
    # Six decimals are far finer than one token and hide float noise such as 3.9999999999.
    return Decision(
        allowed=allowed,
        retry_after=retry_after_us / 1_000_000,
        remaining=round(max(remaining, 0.0), 6),
    )
