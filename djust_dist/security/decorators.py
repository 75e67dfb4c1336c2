"""Decorators that mark LiveView methods as event handlers and give them rate limits.

Both decorators set an attribute on the function they receive and return that
same function, so an ``async def`` handler stays a coroutine function and the two
decorators can be stacked in either order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from djust_dist.engine.types import MAX_RATE, MIN_RATE

F = TypeVar("F", bound=Callable[..., Any])

_EVENT_HANDLER_ATTR = "_djust_event_handler"
_RATE_LIMIT_ATTR = "_djust_rate_limit"


@dataclass(frozen=True, slots=True)
class HandlerRateLimit:
    """A per-handler token bucket: ``rate`` tokens per second, capacity ``burst``.

    The constructor raises TypeError or ValueError for values the limiter
    backends would reject, so a bad ``@rate_limit`` fails when the class is defined.
    """

    rate: float
    burst: int

    def __post_init__(self) -> None:
        if isinstance(self.rate, bool) or not isinstance(self.rate, int | float):
            raise TypeError(
                f"rate_limit rate must be a number of tokens per second, got {self.rate!r}"
            )
        if not math.isfinite(self.rate) or not MIN_RATE <= self.rate <= MAX_RATE:
            raise ValueError(
                f"rate_limit rate must be between {MIN_RATE} and {MAX_RATE:g} tokens per "
                f"second, got {self.rate!r}"
            )

        if isinstance(self.burst, bool) or not isinstance(self.burst, int):
            raise TypeError(f"rate_limit burst must be an int, got {self.burst!r}")
        if self.burst < 1:
            raise ValueError(f"rate_limit burst must be at least 1, got {self.burst!r}")

        # Store the rate as a float whatever number type it was given as.
        object.__setattr__(self, "rate", float(self.rate))


@overload
def event_handler(func: F, /) -> F: ...


@overload
def event_handler(func: None = None, /) -> Callable[[F], F]: ...


def event_handler(func: F | None = None, /) -> F | Callable[[F], F]:
    """Mark a LiveView method as callable from the client.

    Works bare (``@event_handler``) and called (``@event_handler()``).
    """
    if func is None:
        return _mark_event_handler
    return _mark_event_handler(func)


def is_event_handler(func: object) -> bool:
    """Tell whether ``func`` was marked with ``@event_handler``."""
    return getattr(func, _EVENT_HANDLER_ATTR, False) is True


def rate_limit(rate: float, burst: int) -> Callable[[F], F]:
    """Give an event handler its own token bucket of ``rate`` tokens per second and ``burst``.

    Raises TypeError or ValueError at decoration time for a rate outside 0.01 to
    100000 tokens per second, a burst below 1, or values that are not numbers.
    """
    limit = HandlerRateLimit(rate, burst)

    def decorate(func: F) -> F:
        _set_marker(func, _RATE_LIMIT_ATTR, limit, "rate_limit")
        return func

    return decorate


def get_rate_limit(func: object) -> HandlerRateLimit | None:
    """Return the limit set with ``@rate_limit`` on ``func``, or None."""
    limit = getattr(func, _RATE_LIMIT_ATTR, None)
    return limit if isinstance(limit, HandlerRateLimit) else None


def _mark_event_handler(func: F) -> F:
    _set_marker(func, _EVENT_HANDLER_ATTR, True, "event_handler")
    return func


def _set_marker(func: object, attr: str, value: object, decorator: str) -> None:
    """Set ``attr`` on ``func``; raise TypeError for objects that are not functions."""
    if not callable(func):
        raise TypeError(
            f"@{decorator} decorates a method, got {func!r}; "
            f"write @{decorator} directly above the def"
        )
    try:
        setattr(func, attr, value)
    except (AttributeError, TypeError) as exc:
        raise TypeError(f"@{decorator} cannot mark {func!r}: it accepts no attributes") from exc
