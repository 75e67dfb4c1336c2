"""Timing helpers: serial and concurrent loops over one async operation."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Operation = Callable[[int], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class SerialResult:
    """One call at a time: throughput and latency percentiles."""

    ops_per_s: float
    p50_us: float
    p99_us: float


async def measure_serial(operation: Operation, count: int) -> SerialResult:
    """Await ``operation`` ``count`` times in a row and time each call."""
    latencies: list[float] = []
    started = time.perf_counter()
    for index in range(count):
        before = time.perf_counter()
        await operation(index)
        latencies.append(time.perf_counter() - before)
    elapsed = time.perf_counter() - started

    percentiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return SerialResult(
        ops_per_s=count / elapsed,
        p50_us=percentiles[49] * 1e6,
        p99_us=percentiles[98] * 1e6,
    )


async def measure_concurrent(operation: Operation, count: int, tasks: int) -> float:
    """Run ``count`` calls spread over ``tasks`` concurrent tasks; return calls per second."""
    per_task = max(count // tasks, 1)

    async def worker(first: int) -> None:
        for index in range(first, first + per_task):
            await operation(index)

    started = time.perf_counter()
    await asyncio.gather(*(worker(task * per_task) for task in range(tasks)))
    return per_task * tasks / (time.perf_counter() - started)


def median(values: list[float]) -> float:
    """Return the median of repeated measurements."""
    return statistics.median(values)
