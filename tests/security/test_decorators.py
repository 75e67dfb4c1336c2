"""@event_handler and @rate_limit."""

from __future__ import annotations

import inspect
import math
from typing import Any

import pytest

from djust_dist import event_handler as exported_event_handler
from djust_dist.security.decorators import (
    HandlerRateLimit,
    event_handler,
    get_rate_limit,
    is_event_handler,
    rate_limit,
)


def test_event_handler_bare() -> None:
    def increment(self: Any) -> None: ...

    assert event_handler(increment) is increment
    assert is_event_handler(increment)


def test_event_handler_called() -> None:
    @event_handler()
    def increment(self: Any) -> None: ...

    assert is_event_handler(increment)


def test_event_handler_public_export() -> None:
    assert exported_event_handler is event_handler


def test_undecorated_not_handler() -> None:
    def increment(self: Any) -> None: ...

    assert not is_event_handler(increment)
    assert get_rate_limit(increment) is None


def test_is_event_handler_needs_true() -> None:
    class Impostor:
        _djust_event_handler = "yes"

    assert not is_event_handler(Impostor())


def test_async_handler_event_then_rate() -> None:
    @event_handler
    @rate_limit(2, 5)
    async def search(self: Any, query: str) -> None: ...

    assert inspect.iscoroutinefunction(search)
    assert is_event_handler(search)
    assert get_rate_limit(search) == HandlerRateLimit(2.0, 5)


def test_async_handler_rate_then_event() -> None:
    @rate_limit(rate=2, burst=5)
    @event_handler()
    async def search(self: Any, query: str) -> None: ...

    assert inspect.iscoroutinefunction(search)
    assert is_event_handler(search)
    assert get_rate_limit(search) == HandlerRateLimit(2.0, 5)


def test_sync_handler_keeps_identity() -> None:
    def increment(self: Any) -> int:
        return 1

    decorated = rate_limit(1.5, 3)(event_handler(increment))

    assert decorated is increment
    assert not inspect.iscoroutinefunction(decorated)
    assert decorated(None) == 1


def test_rate_limit_stores_float() -> None:
    @rate_limit(3, 1)
    def handler(self: Any) -> None: ...

    limit = get_rate_limit(handler)
    assert limit is not None
    assert isinstance(limit.rate, float)
    assert limit.burst == 1


def test_rate_limit_bounds_accepted() -> None:
    assert HandlerRateLimit(0.01, 1).rate == 0.01
    assert HandlerRateLimit(100_000, 1).rate == 100_000.0


@pytest.mark.parametrize(
    ("rate", "burst", "error", "culprit"),
    [
        pytest.param(0, 5, ValueError, "rate", id="rate-zero"),
        pytest.param(-1, 5, ValueError, "rate", id="rate-negative"),
        pytest.param(math.nan, 5, ValueError, "rate", id="rate-nan"),
        pytest.param(math.inf, 5, ValueError, "rate", id="rate-inf"),
        pytest.param(0.001, 5, ValueError, "rate", id="rate-below-min"),
        pytest.param(100_001, 5, ValueError, "rate", id="rate-above-max"),
        pytest.param("2", 5, TypeError, "rate", id="rate-str"),
        pytest.param(True, 5, TypeError, "rate", id="rate-bool"),
        pytest.param(None, 5, TypeError, "rate", id="rate-none"),
        pytest.param(2, 0, ValueError, "burst", id="burst-zero"),
        pytest.param(2, -3, ValueError, "burst", id="burst-negative"),
        pytest.param(2, 1.5, TypeError, "burst", id="burst-float"),
        pytest.param(2, 2.0, TypeError, "burst", id="burst-whole-float"),
        pytest.param(2, True, TypeError, "burst", id="burst-bool"),
        pytest.param(2, "5", TypeError, "burst", id="burst-str"),
    ],
)
def test_rate_limit_invalid(rate: Any, burst: Any, error: type[Exception], culprit: str) -> None:
    with pytest.raises(error) as info:
        rate_limit(rate, burst)

    message = str(info.value)
    bad_value = rate if culprit == "rate" else burst
    assert f"rate_limit {culprit}" in message
    assert repr(bad_value) in message


def test_event_handler_rejects_non_callable() -> None:
    with pytest.raises(TypeError, match="'search'"):
        event_handler("search")  # type: ignore[call-overload]


def test_rate_limit_rejects_non_callable() -> None:
    with pytest.raises(TypeError, match="rate_limit"):
        rate_limit(1, 1)(42)  # type: ignore[type-var]
