"""Run every benchmark once per repetition and print the medians: ``python -m benchmarks``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks import flood, fullstack, redis_memory
from benchmarks.cases import CASES, Case
from benchmarks.measure import measure_concurrent, measure_serial, median
from benchmarks.report import (
    Target,
    ThroughputRow,
    environment_lines,
    ratio_table,
    target_lines,
    throughput_table,
)
from benchmarks.server import Target as RedisTarget
from benchmarks.server import redis_target, server_version
from djust_dist.backends import MemoryBackend, RedisBackend


@dataclass(frozen=True, slots=True)
class Plan:
    """How much work one run does."""

    runs: int
    serial_calls: int
    concurrent_calls: int
    tasks: int
    connections: int
    events_per_connection: int
    flood_events: int
    memory_ips: int


FULL = Plan(
    runs=3,
    serial_calls=2000,
    concurrent_calls=10_000,
    tasks=50,
    connections=20,
    events_per_connection=50,
    flood_events=2000,
    memory_ips=50,
)
QUICK = Plan(
    runs=1,
    serial_calls=200,
    concurrent_calls=1000,
    tasks=50,
    connections=5,
    events_per_connection=10,
    flood_events=200,
    memory_ips=5,
)
WARM_UP_CALLS = 100


@dataclass(frozen=True, slots=True)
class FullStackResult:
    memory_events: float
    redis_events: float


@dataclass(frozen=True, slots=True)
class Results:
    """Medians over the runs of every measurement."""

    throughput: list[ThroughputRow]
    full_stack: FullStackResult
    flood_cached: float
    flood_uncached: float
    memory: redis_memory.MemoryResult


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="one short run: checks the harness, not the speed"
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="repetitions; the table shows medians (default 3)"
    )
    parser.add_argument(
        "--redis-url",
        default=None,
        help="use this Redis under a unique key prefix instead of a private redis-server",
    )
    return parser.parse_args(argv)


async def measure_case(case: Case, target: RedisTarget, plan: Plan) -> ThroughputRow:
    """Measure one case once: serial throughput and latency, then concurrent throughput."""
    async with case.open(target) as operation:
        for index in range(WARM_UP_CALLS):
            await operation(index)
        serial = await measure_serial(operation, plan.serial_calls)
        concurrent = await measure_concurrent(operation, plan.concurrent_calls, plan.tasks)
    return ThroughputRow(case.name, serial.ops_per_s, serial.p50_us, serial.p99_us, concurrent)


async def measure_full_stack(target: RedisTarget, plan: Plan) -> FullStackResult:
    """Measure events per second through the consumer with each backend once."""
    memory_backend = MemoryBackend()
    redis_backend = RedisBackend.from_url(target.url, key_prefix=f"{target.key_prefix}:stack")
    try:
        memory_events = await fullstack.events_per_second(
            memory_backend, plan.connections, plan.events_per_connection
        )
        redis_events = await fullstack.events_per_second(
            redis_backend, plan.connections, plan.events_per_connection
        )
    finally:
        await memory_backend.aclose()
        await redis_backend.aclose()
    return FullStackResult(memory_events, redis_events)


def median_rows(runs: list[list[ThroughputRow]]) -> list[ThroughputRow]:
    """Combine repeated runs row by row into medians."""
    rows = []
    for repeats in zip(*runs, strict=True):
        rows.append(
            ThroughputRow(
                name=repeats[0].name,
                serial_ops=median([row.serial_ops for row in repeats]),
                p50_us=median([row.p50_us for row in repeats]),
                p99_us=median([row.p99_us for row in repeats]),
                concurrent_ops=median([row.concurrent_ops for row in repeats]),
            )
        )
    return rows


async def run_all(target: RedisTarget, plan: Plan) -> Results:
    """Repeat every measurement ``plan.runs`` times, interleaved, and keep the medians."""
    throughput_runs: list[list[ThroughputRow]] = []
    stacks: list[FullStackResult] = []
    cached: list[float] = []
    uncached: list[float] = []

    for run in range(plan.runs):
        print(f"run {run + 1} of {plan.runs} ...", file=sys.stderr, flush=True)
        throughput_runs.append([await measure_case(case, target, plan) for case in CASES])
        stacks.append(await measure_full_stack(target, plan))
        cached.append(
            await flood.calls_per_denied_event(target, plan.flood_events, deny_cache=True)
        )
        uncached.append(
            await flood.calls_per_denied_event(target, plan.flood_events, deny_cache=False)
        )

    return Results(
        throughput=median_rows(throughput_runs),
        full_stack=FullStackResult(
            memory_events=median([stack.memory_events for stack in stacks]),
            redis_events=median([stack.redis_events for stack in stacks]),
        ),
        flood_cached=median(cached),
        flood_uncached=median(uncached),
        memory=await redis_memory.memory_per_ip(target, plan.memory_ips),
    )


def targets(results: Results) -> list[Target]:
    """Compare the results with the project's performance goals."""
    rows = {row.name: row for row in results.throughput}
    ping = rows["redis-py PING (same client)"]
    consume = rows["djust_dist consume, 1 bucket"]
    fastest_limits = max(
        row.concurrent_ops for name, row in rows.items() if name.startswith("limits ")
    )
    return [
        Target("consume ÷ PING, 1 at a time", consume.serial_ops / ping.serial_ops, 0.9),
        Target("consume ÷ PING, 50 tasks", consume.concurrent_ops / ping.concurrent_ops, 2.0),
        Target(
            "consume ÷ fastest limits strategy, 50 tasks",
            consume.concurrent_ops / fastest_limits,
            1.2,
        ),
        Target(
            "Redis calls per denied event (flood)",
            results.flood_cached,
            0.05,
            higher_is_better=False,
        ),
        Target(
            "full stack: Redis ÷ memory backend",
            results.full_stack.redis_events / results.full_stack.memory_events,
            0.8,
        ),
    ]


def report(results: Results, plan: Plan, target: RedisTarget, elapsed: float) -> str:
    """Format the whole report as Markdown."""
    stack = results.full_stack
    lines = [
        f"## Results (medians of {plan.runs} run(s), {elapsed:.0f} s in total)",
        "",
        *environment_lines(server_version(target.url), target.private),
        "",
        "### Throughput and latency",
        "",
        *throughput_table(results.throughput, plan.tasks),
        "",
        f"### Full stack: LiveViewConsumer, {plan.connections} connections, "
        f"{plan.events_per_connection} events each",
        "",
        *ratio_table(
            "backend",
            "events/s",
            [("MemoryBackend", stack.memory_events), ("RedisBackend", stack.redis_events)],
        ),
        "",
        f"### Flood: {plan.flood_events} consumes on one empty bucket, {flood.FLOOD_TASKS} tasks",
        "",
        "| deny cache | Redis script calls per denied event |",
        "|---|---:|",
        f"| on | {results.flood_cached:.4f} |",
        f"| off | {results.flood_uncached:.4f} |",
        "",
        f"### Redis memory per active client IP ({plan.memory_ips} IPs, "
        f"1 connection and {len(redis_memory.EVENTS)} events each)",
        "",
        f"{results.memory.bytes_per_ip:,.0f} bytes in {results.memory.keys_per_ip:.1f} keys per IP",
        "",
        "### Targets",
        "",
        *target_lines(targets(results)),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.runs is not None:
        if args.runs < 1:
            raise SystemExit(f"--runs must be at least 1, got {args.runs}")
        plan = dataclasses.replace(plan, runs=args.runs)

    started = time.monotonic()
    with redis_target(args.redis_url) as target:
        results = asyncio.run(run_all(target, plan))
        print(report(results, plan, target, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
