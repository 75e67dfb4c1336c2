"""Exceptions raised by djust_dist.

Every exception derives from ``DjustDistError``. Errors from redis-py are wrapped
and chained with ``raise ... from exc`` so the original cause stays visible.
"""

from __future__ import annotations


class DjustDistError(Exception):
    """Root of every exception djust_dist raises on purpose."""


class InvalidCostError(DjustDistError, ValueError):
    """A ``consume`` cost is below 1 or larger than a bucket's burst."""

    def __init__(self, cost: int, key: str | None = None, burst: int | None = None) -> None:
        self.cost = cost
        self.key = key
        self.burst = burst

        if key is None:
            message = f"cost must be an int of at least 1, got {cost!r}"
        else:
            message = (
                f"cost {cost!r} exceeds the burst {burst!r} of bucket {key[:64]!r}, "
                f"so the request could never pass; use a cost of at most {burst!r}"
            )
        super().__init__(message)


class BackendUnavailable(DjustDistError):
    """Redis timed out, refused the connection or cannot serve commands right now."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ScriptError(DjustDistError):
    """Redis rejected a limiter script call for a reason other than an outage."""

    def __init__(self, script: str, detail: str) -> None:
        super().__init__(f"Lua script {script!r} failed: {detail}")
        self.script = script
