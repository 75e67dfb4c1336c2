"""sanitize_for_log and the log throttle."""

from __future__ import annotations

import logging

import pytest

from djust_dist.logutil import LogThrottle, log_throttled, reset_log_throttle, sanitize_for_log

logger = logging.getLogger("djust_dist.tests.logutil")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("increment", "increment", id="plain"),
        pytest.param("a\nb", "a\\nb", id="newline"),
        pytest.param("a\r\nFAKE LOG LINE", "a\\r\\nFAKE LOG LINE", id="crlf"),
        pytest.param("tab\there", "tab\\there", id="tab"),
        pytest.param("esc\x1b[31m", "esc\\x1b[31m", id="ansi"),
        pytest.param("nul\x00", "nul\\x00", id="nul"),
        pytest.param("bidi\u202eevil", "bidi\\u202eevil", id="bidi-override"),
        pytest.param("line\u2028sep", "line\\u2028sep", id="line-separator"),
        pytest.param("back\\slash", "back\\\\slash", id="backslash"),
        pytest.param("café", "café", id="printable-unicode"),
        pytest.param(None, "None", id="none"),
        pytest.param(42, "42", id="int"),
        pytest.param(b"x\n", "b'x\\\\n'", id="bytes"),
    ],
)
def test_sanitize_escapes(value: object, expected: str) -> None:
    assert sanitize_for_log(value) == expected


def test_sanitize_truncates() -> None:
    text = sanitize_for_log("x" * 100, limit=10)

    assert text == "xxxxxxxxxx...[90 more chars]"


def test_sanitize_at_limit_untouched() -> None:
    assert sanitize_for_log("x" * 80) == "x" * 80


def test_sanitize_bounds_large_list() -> None:
    text = sanitize_for_log(list(range(100_000)))

    assert len(text) < 100
    assert "..." in text


def test_sanitize_bounds_deep_nesting() -> None:
    nested: object = "bottom"
    for _ in range(50):
        nested = [nested]

    assert "bottom" not in sanitize_for_log(nested)


def test_sanitize_rejects_zero_limit() -> None:
    with pytest.raises(ValueError, match="0"):
        sanitize_for_log("x", limit=0)


def test_throttle_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    throttle = LogThrottle(clock=clock)

    with caplog.at_level(logging.WARNING, logger=logger.name):
        emitted = [throttle.log(logger, logging.WARNING, "k", "event %s", i) for i in range(5)]
        clock.now += 61
        throttle.log(logger, logging.WARNING, "k", "event %s", "late")

    assert emitted == [True, False, False, False, False]
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ["event 0", "event late (4 similar messages suppressed)"]


def test_throttle_keys_independent(caplog: pytest.LogCaptureFixture) -> None:
    throttle = LogThrottle(clock=FakeClock())

    with caplog.at_level(logging.WARNING, logger=logger.name):
        throttle.log(logger, logging.WARNING, "a", "first")
        throttle.log(logger, logging.WARNING, "b", "second")

    assert [record.getMessage() for record in caplog.records] == ["first", "second"]


def test_throttle_interval_per_call(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    throttle = LogThrottle(clock=clock)

    with caplog.at_level(logging.WARNING, logger=logger.name):
        throttle.log(logger, logging.WARNING, "k", "one", interval=5)
        clock.now += 5
        throttle.log(logger, logging.WARNING, "k", "two", interval=5)

    assert len(caplog.records) == 2


def test_throttle_disabled_level_not_counted(caplog: pytest.LogCaptureFixture) -> None:
    throttle = LogThrottle(clock=FakeClock())

    with caplog.at_level(logging.ERROR, logger=logger.name):
        assert not throttle.log(logger, logging.INFO, "k", "quiet")
    with caplog.at_level(logging.INFO, logger=logger.name):
        assert throttle.log(logger, logging.INFO, "k", "heard")

    assert [record.getMessage() for record in caplog.records] == ["heard"]


def test_throttle_key_table_bounded(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    throttle = LogThrottle(max_keys=3, clock=clock)

    with caplog.at_level(logging.WARNING, logger=logger.name):
        for index in range(100):
            throttle.log(logger, logging.WARNING, f"client-{index}", "from %s", index)

    # Three tracked keys, then every other key shares the overflow key.
    assert [record.getMessage() for record in caplog.records] == [
        "from 0",
        "from 1",
        "from 2",
        "from 3",
    ]


def test_throttle_expired_keys_dropped(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    throttle = LogThrottle(max_keys=2, clock=clock)

    with caplog.at_level(logging.WARNING, logger=logger.name):
        throttle.log(logger, logging.WARNING, "a", "a")
        throttle.log(logger, logging.WARNING, "b", "b")
        clock.now += 61
        throttle.log(logger, logging.WARNING, "c", "c")

    assert [record.getMessage() for record in caplog.records] == ["a", "b", "c"]


def test_log_throttled_shared(caplog: pytest.LogCaptureFixture) -> None:
    reset_log_throttle()

    with caplog.at_level(logging.WARNING, logger=logger.name):
        assert log_throttled(logger, logging.WARNING, "shared", "hello %s", "world")
        assert not log_throttled(logger, logging.WARNING, "shared", "hello %s", "again")

    assert [record.getMessage() for record in caplog.records] == ["hello world"]
    reset_log_throttle()
