"""Logging helpers for text a client can influence.

``sanitize_for_log`` makes a value safe to put in a log line, and
``log_throttled`` keeps a flood of rejected frames from flooding the log.
"""

from __future__ import annotations

import logging
import reprlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


def _make_bounded_repr() -> reprlib.Repr:
    """Build a repr() that bounds its work on large or deep containers sent by a client."""
    bounded = reprlib.Repr()
    bounded.maxlevel = 3
    bounded.maxdict = bounded.maxlist = bounded.maxtuple = bounded.maxset = 8
    bounded.maxstring = bounded.maxother = 80
    return bounded


_bounded_repr = _make_bounded_repr()

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def sanitize_for_log(value: object, limit: int = 80) -> str:
    """Render ``value`` as one printable log-safe line of at most ``limit`` source characters.

    A ``str`` is used as it is, anything else through a bounded ``repr()``. Control
    characters, line and paragraph separators, format characters such as bidi
    overrides, and backslashes are escaped as in ``repr()``. Longer text is cut and
    ends with a marker saying how many characters were dropped.
    """
    if limit < 1:
        raise ValueError(f"sanitize_for_log limit must be at least 1, got {limit!r}")

    text = value if isinstance(value, str) else _bounded_repr.repr(value)
    head = text[:limit]
    escaped = "".join(_escape_char(char) for char in head)

    dropped = len(text) - len(head)
    if dropped:
        return f"{escaped}...[{dropped} more chars]"
    return escaped


def _escape_char(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char.isprintable():
        return char
    return char.encode("unicode_escape").decode("ascii")


@dataclass(slots=True)
class _KeyState:
    last_emitted: float
    suppressed: int = 0


class LogThrottle:
    """Let through at most one log line per key per interval and count the rest.

    The next line emitted for a key reports how many were suppressed since the
    previous one. At most ``max_keys`` keys are tracked. Once the table is full,
    lines for new keys share a single overflow key, so memory and log volume stay
    bounded even when keys come from clients.
    """

    OVERFLOW_KEY = "<overflow>"

    def __init__(self, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self._max_keys = max_keys
        self._clock = clock
        self._states: dict[str, _KeyState] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def log(
        self,
        logger: logging.Logger,
        level: int,
        key: str,
        msg: str,
        *args: object,
        interval: float = 60.0,
    ) -> bool:
        """Log ``msg % args`` unless ``key`` was logged within ``interval`` seconds.

        Returns whether the line was emitted.
        """
        if not logger.isEnabledFor(level):
            return False

        suppressed = self._admit(f"{logger.name}:{key}", interval)
        if suppressed is None:
            return False

        if suppressed:
            template = f"{msg} (%d similar messages suppressed)"
            logger.log(level, template, *args, suppressed)
        else:
            logger.log(level, msg, *args)
        return True

    def reset(self) -> None:
        """Forget every key, so the next line for each is emitted."""
        with self._lock:
            self._states.clear()
            self._next_sweep = 0.0

    def _admit(self, key: str, interval: float) -> int | None:
        """Return None to suppress, else the number suppressed since the last line."""
        now = self._clock()
        with self._lock:
            state = self._states.get(key)
            if state is None:
                key = self._make_room(key, now, interval)
                state = self._states.get(key)
            if state is None:
                self._states[key] = _KeyState(last_emitted=now)
                return 0

            if now - state.last_emitted < interval:
                state.suppressed += 1
                return None

            suppressed = state.suppressed
            state.last_emitted = now
            state.suppressed = 0
            return suppressed

    def _make_room(self, key: str, now: float, interval: float) -> str:
        """Drop expired keys when the table is full; return the key to count under."""
        if len(self._states) < self._max_keys:
            return key

        # A full table is swept at most once per second, so a flood of new keys
        # does not rescan it on every line.
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            expired = [
                name for name, state in self._states.items() if now - state.last_emitted >= interval
            ]
            for name in expired:
                del self._states[name]

        if len(self._states) < self._max_keys:
            return key
        return self.OVERFLOW_KEY


_default_throttle = LogThrottle()


def log_throttled(
    logger: logging.Logger,
    level: int,
    key: str,
    msg: str,
    *args: object,
    interval: float = 60.0,
) -> bool:
    """Log through the process-wide throttle: at most one line per key per ``interval``.

    ``key`` is scoped by the logger's name. Returns whether the line was emitted.
    """
    return _default_throttle.log(logger, level, key, msg, *args, interval=interval)


def reset_log_throttle() -> None:
    """Forget every key of the process-wide throttle (for tests)."""
    _default_throttle.reset()
