"""Circuit breaker and failure modes for the Redis backend.

After a failed Redis call the breaker opens: for ``retry_interval`` seconds no
call goes to Redis. Then one call (the probe) goes through; its success closes
the breaker, its failure opens it for another interval. So during an outage,
including a Redis that hangs without refusing connections, at most one call per
interval waits for the timeout.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable

from djust_dist import metrics

logger = logging.getLogger(__name__)


class OnError(enum.StrEnum):
    """Policy of the Redis backend while Redis is unavailable."""

    LOCAL = "local"
    """Apply the limits in this process with a MemoryBackend."""
    OPEN = "open"
    """Allow every event and connection."""
    CLOSED = "closed"
    """Reject every event and connection."""

    @classmethod
    def parse(cls, value: object) -> OnError:
        """Return the mode named by ``value``, else raise TypeError or ValueError."""
        if not isinstance(value, str):
            raise TypeError(f"on_error must be a str, got {value!r}")
        try:
            return cls(value)
        except ValueError:
            accepted = ", ".join(repr(mode.value) for mode in cls)
            raise ValueError(f"on_error must be one of {accepted}, got {value!r}") from None


class CircuitBreaker:
    """Decides whether a call may go to Redis, and logs outages once each.

    ``allow()`` returns True while the breaker is closed, and for one probe once
    ``retry_interval`` has passed since the last failure. Every call that
    ``allow()`` let through must end in ``succeeded()``, ``failed()`` or, when it
    was cancelled, ``abandoned()``. Thread-safe.
    """

    def __init__(
        self,
        retry_interval: float,
        *,
        name: str = "Redis",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry_interval = retry_interval
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._outage_started: float | None = None
        self._next_probe_at = 0.0
        self._probing = False

    @property
    def is_open(self) -> bool:
        """Whether an outage is in progress (calls fall back until a probe succeeds)."""
        return self._outage_started is not None

    def allow(self) -> bool:
        """Return whether the next call may go to Redis, reserving the probe if it is due."""
        with self._lock:
            if self._outage_started is None:
                return True
            if self._probing or self._clock() < self._next_probe_at:
                return False

            self._probing = True
            return True

    def succeeded(self) -> None:
        """Record a successful call; ends an outage and logs its duration."""
        with self._lock:
            started = self._outage_started
            self._outage_started = None
            self._probing = False

        if started is not None:
            logger.warning(
                "%s is available again after an outage of %.1f s",
                self.name,
                self._clock() - started,
            )

    def failed(self, error: BaseException) -> None:
        """Record a failed call; the first failure of an outage is logged at ERROR."""
        with self._lock:
            now = self._clock()
            first_failure = self._outage_started is None
            if first_failure:
                self._outage_started = now
            self._next_probe_at = now + self.retry_interval
            self._probing = False

        metrics.backend_error()
        if first_failure:
            metrics.backend_outage()
            logger.error(
                "%s is unavailable, falling back until it responds again (next try in %.1f s): %s",
                self.name,
                self.retry_interval,
                error,
            )

    def abandoned(self) -> None:
        """Release the probe of a call that was cancelled before it finished."""
        with self._lock:
            self._probing = False

    def seconds_until_probe(self) -> float:
        """Return the time until Redis is tried again: a full interval while a probe is out."""
        with self._lock:
            if self._probing:
                return self.retry_interval
            return max(self._next_probe_at - self._clock(), 0.001)
