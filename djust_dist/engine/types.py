"""Value types shared by every limiter backend."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

AdmissionReason = Literal["limit", "cooldown", "unavailable"]

# Rates outside this range lose precision in the scripts' integer arithmetic.
MIN_RATE = 0.01
MAX_RATE = 100_000.0


@dataclass(frozen=True, slots=True)
class Bucket:
    """A token bucket: starts full at ``burst`` and refills at ``rate`` tokens per second."""

    key: str
    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise TypeError(f"Bucket key must be a non-empty str, got {self.key!r}")

        if isinstance(self.rate, bool) or not isinstance(self.rate, int | float):
            raise TypeError(f"Bucket rate must be a number, got {self.rate!r}")
        if not math.isfinite(self.rate) or not MIN_RATE <= self.rate <= MAX_RATE:
            raise ValueError(
                f"Bucket rate must be between {MIN_RATE} and {MAX_RATE} tokens per second, "
                f"got {self.rate!r}"
            )

        if isinstance(self.burst, bool) or not isinstance(self.burst, int):
            raise TypeError(f"Bucket burst must be an int, got {self.burst!r}")
        if self.burst < 1:
            raise ValueError(f"Bucket burst must be at least 1, got {self.burst!r}")


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one ``consume`` call over one or more buckets.

    ``retry_after`` is 0.0 when allowed, else the seconds until the same request
    would pass. ``remaining`` is the smallest token count left among the buckets.
    """

    allowed: bool
    retry_after: float
    remaining: float


@dataclass(frozen=True, slots=True)
class Admission:
    """The outcome of ``admit_connection``.

    ``reason`` is None when admitted. For ``"cooldown"`` ``retry_after`` is the exact
    time left; for ``"limit"`` and ``"unavailable"`` it is a hint.
    """

    admitted: bool
    reason: AdmissionReason | None
    retry_after: float


ADMITTED = Admission(admitted=True, reason=None, retry_after=0.0)
