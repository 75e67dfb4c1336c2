"""Local cache of denied consume requests, so a flood costs Redis almost nothing.

When Redis denies ``consume(buckets, cost)`` with ``retry_after``, this worker
denies the same request (the same buckets in the same order, the same cost)
without asking Redis until that wait is over. A flood repeats one request, so
after its first denial it costs Redis one call per ``max_age`` at most.

Why a cached denial is never wrong (apart from the exceptions below):

* A bucket's theoretical arrival time (TAT) only moves forward: a consume
  pushes it ahead, a denial writes nothing, and time alone never moves it
  back. So a request that needed ``retry_after`` more seconds at server time
  ``T`` is denied at any server time before ``T + retry_after``.
* The wait is counted from the local time taken before the request was sent,
  not from when the reply arrived. Redis decided after the send, so
  ``sent_at + retry_after`` ends no later than the server's
  ``T + retry_after``. Counting from the reply would keep denying for up to
  one round trip after Redis would allow again.
* ``retry_after`` is rounded up to a whole microsecond and a request may pass
  1 ns early, so the wait is shortened by ``SAFETY_MARGIN``.
* Only the identical request is served from the cache. A denial of several buckets does not
  say which bucket was short, and another cost or another set of buckets may
  pass, so those requests go to Redis. For the identical request the cached
  ``retry_after`` is Redis's own wait minus the time since, so a client that
  waits it out is not denied again.
* An allowed request takes tokens, so the cached denials that share a bucket
  with it are dropped. Tokens taken by other workers are not seen: until the
  entry expires, its ``retry_after`` can then be shorter than Redis's.
* Buckets are compared whole (key, rate and burst), since the same key with
  another rate or burst is a different limit.

Exceptions: the cache cannot see Redis lose state (a restart without
persistence, a failover to a replica that lagged, an operator deleting keys).
On Redis Cluster a TAT also moves back when tokens are refunded, after a
request that one slot denied and another allowed. Cached denials then outlive
the Redis state, so each entry lives at most ``max_age`` seconds (default
1 s), whatever the wait. The local monotonic clock and the Redis clock are assumed to run at
the same rate. A drift of a few parts per million is far below the margin for
waits of a few seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from djust_dist import metrics
from djust_dist.engine.base import make_decision
from djust_dist.engine.types import Bucket, Decision

# Seconds taken off every cached wait. They cover the microsecond rounding of
# retry_after, the 1 ns slack of consume.lua and float error.
SAFETY_MARGIN = 10e-6

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_AGE = 1.0

RequestKey = tuple[tuple[Bucket, ...], int]


@dataclass(frozen=True, slots=True)
class DeniedRequest:
    """A denial from Redis, in local monotonic seconds."""

    denied_until: float
    """The earliest local time at which the same request may pass."""
    expires_at: float
    """When the entry is dropped: ``denied_until`` or the end of ``max_age``."""
    remaining: float
    """The ``remaining`` Redis reported with the denial."""


class DenyCache:
    """Bounded, thread-safe cache of recent denials (see the module docstring).

    ``hits`` counts the consume calls served from the cache. When the cache
    contains ``max_entries`` requests, recording another drops the oldest.
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_age: float = DEFAULT_MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries!r}")
        if max_age <= 0:
            raise ValueError(f"max_age must be more than 0 seconds, got {max_age!r}")

        self.max_entries = max_entries
        self.max_age = max_age
        self.clock = clock
        self.hits = 0

        self._entries: OrderedDict[RequestKey, DeniedRequest] = OrderedDict()
        # Which cached requests include a bucket, so an allowance can drop them.
        self._keys_by_bucket: dict[Bucket, set[RequestKey]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, buckets: tuple[Bucket, ...], cost: int) -> Decision | None:
        """Return a denial if the same request was denied and its wait is not over, else None."""
        key = (buckets, cost)
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry.expires_at:
                self._drop(key)
                return None
            self.hits += 1

        metrics.deny_cache_hit()
        wait_us = math.ceil((entry.denied_until - now) * 1_000_000)
        return make_decision(False, wait_us, entry.remaining)

    def observe(
        self, buckets: tuple[Bucket, ...], cost: int, decision: Decision, sent_at: float
    ) -> None:
        """Update the cache from a Redis decision, sent at local monotonic time ``sent_at``.

        A denial is remembered. An allowance drops the cached denials that share
        a bucket with it, because it took tokens and their waits grew.
        """
        if decision.allowed:
            if self._entries:
                with self._lock:
                    for bucket in buckets:
                        for key in list(self._keys_by_bucket.get(bucket, ())):
                            self._drop(key)
            return

        denied_until = sent_at + decision.retry_after - SAFETY_MARGIN
        if denied_until <= self.clock():
            return

        entry = DeniedRequest(
            denied_until=denied_until,
            expires_at=min(denied_until, sent_at + self.max_age),
            remaining=decision.remaining,
        )
        with self._lock:
            self._store((buckets, cost), entry)

    def clear(self) -> None:
        """Forget every cached denial."""
        with self._lock:
            self._entries.clear()
            self._keys_by_bucket.clear()

    def _store(self, key: RequestKey, entry: DeniedRequest) -> None:
        # A newer denial replaces an older one: its wait is at least as long
        # unless Redis lost state, and then only the newer one is right.
        self._entries[key] = entry
        self._entries.move_to_end(key)
        for bucket in key[0]:
            self._keys_by_bucket.setdefault(bucket, set()).add(key)

        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: RequestKey) -> None:
        self._entries.pop(key, None)
        for bucket in key[0]:
            keys = self._keys_by_bucket.get(bucket)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._keys_by_bucket[bucket]
