"""Per-connection count of rejected frames within a sliding time window."""

from __future__ import annotations

import time
from collections import deque


class WarningCounter:
    """Counts warnings of one connection over the last ``window`` seconds."""

    def __init__(self, max_warnings: int, window: float) -> None:
        self.max_warnings = max_warnings
        self.window = window
        self._times: deque[float] = deque()

    def add(self) -> bool:
        """Record one warning; return True when it reaches ``max_warnings``."""
        now = time.monotonic()
        self._times.append(now)
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        return len(self._times) >= self.max_warnings

    def __len__(self) -> int:
        return len(self._times)
