"""`python -m demo run`: the scenarios on Redis-backed and in-process stacks, one table.

Three stacks run one after the other, each with its own workers and limits:

- "redis-hammer": Redis, max_warnings raised to HAMMER_MAX_WARNINGS, for the
  connection limit and the search budget. Every denied search counts as a
  warning, and the default of 3 would close the hammering connections and put
  the IP in a cooldown long before the budget is measured.
- "redis-abuse": Redis with the default max_warnings of 3, for the abuse
  cooldown and the killed worker.
- "in-process": the "redis-hammer" limits without REDIS_URL, so each worker
  limits with its own MemoryBackend, for the same first two scenarios.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from websockets.exceptions import WebSocketException

from .client import DemoError
from .report import Row, format_table
from .scenarios import (
    DemoConfig,
    Target,
    abuse_cooldown,
    connection_limit,
    lease_expiry,
    search_budget,
)
from .stack import Stack, StackError

# High enough that no hammering connection is closed for its denied searches:
# each one sends at most connection_rate / 2 frames a second for 5 s.
HAMMER_MAX_WARNINGS = 10_000

# Seconds one scenario may take before it is stopped and counted as failed.
SCENARIO_TIMEOUT = 30.0
# Seconds the whole run may take; stacks not yet started after that are skipped.
RUN_BUDGET = 110.0

CONNECTION_LIMIT = "1. connections per IP"
SEARCH_BUDGET = "2. search budget"
ABUSE_COOLDOWN = "3. abuse cooldown"
LEASE_EXPIRY = "4. killed worker"


class Result(Protocol):
    """Interface of every scenario result that the table reads."""

    @property
    def held(self) -> bool: ...

    @property
    def configured(self) -> str: ...

    @property
    def observed(self) -> str: ...


@dataclass(frozen=True)
class Outcome:
    """A scenario's result, or the error that stopped it."""

    result: Result | None = None
    error: str | None = None

    @property
    def observed(self) -> str:
        return self.result.observed if self.result is not None else f"error: {self.error}"


ScenarioCall = Callable[[Target, Stack], Awaitable[Result]]


@dataclass(frozen=True)
class StackPlan:
    """One stack to start, how it is configured, and the scenarios it runs."""

    name: str
    use_redis: bool
    config: DemoConfig
    scenarios: dict[str, ScenarioCall]

    def describe(self, workers: int) -> str:
        backend = "Redis" if self.use_redis else "in-process MemoryBackend, no REDIS_URL"
        config = self.config
        return (
            f"{self.name}: {workers} uvicorn workers, {backend}, "
            f"max_connections_per_ip={config.max_connections_per_ip}, "
            f"max_warnings={config.max_warnings}, "
            f"reconnect_cooldown={config.reconnect_cooldown:g} s, "
            f"lease_ttl={config.lease_ttl:g} s; runs {', '.join(self.scenarios)}"
        )


def demo_plans() -> list[StackPlan]:
    """Return the three stacks of the demo, in the order they run."""
    defaults = DemoConfig()
    hammer = dataclasses.replace(defaults, max_warnings=HAMMER_MAX_WARNINGS)
    first_two: dict[str, ScenarioCall] = {
        CONNECTION_LIMIT: lambda target, stack: connection_limit(target),
        SEARCH_BUDGET: lambda target, stack: search_budget(target),
    }
    return [
        StackPlan("redis-hammer", True, hammer, first_two),
        StackPlan(
            "redis-abuse",
            True,
            defaults,
            {
                ABUSE_COOLDOWN: lambda target, stack: abuse_cooldown(target),
                LEASE_EXPIRY: lambda target, stack: lease_expiry(
                    target, lambda: stack.kill_worker(0)
                ),
            },
        ),
        StackPlan("in-process", False, hammer, first_two),
    ]


async def run_scenario(call: ScenarioCall, target: Target, stack: Stack, budget: float) -> Outcome:
    """Run one scenario for at most `budget` seconds; a failure becomes an error outcome."""
    try:
        async with asyncio.timeout(budget):
            return Outcome(result=await call(target, stack))
    except TimeoutError:
        return Outcome(error=f"timed out after {budget:.0f} s")
    except (DemoError, WebSocketException, OSError) as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}")


async def run_plan(plan: StackPlan, stack: Stack, deadline: float) -> dict[str, Outcome]:
    """Run the scenarios of one plan against its started stack, in order."""
    target = Target(tuple(worker.port for worker in stack.started), plan.config)
    outcomes: dict[str, Outcome] = {}
    for name, call in plan.scenarios.items():
        budget = min(SCENARIO_TIMEOUT, max(deadline - time.monotonic(), 1.0))
        print(f"  running {name} ...", flush=True)
        outcomes[name] = await run_scenario(call, target, stack, budget)
    return outcomes


def start_and_run(
    plan: StackPlan, workers: int, log_dir: Path, deadline: float
) -> dict[str, Outcome]:
    """Start the stack of one plan, run its scenarios and stop every process again."""
    if time.monotonic() > deadline:
        return {name: Outcome(error="skipped: the run budget is spent") for name in plan.scenarios}

    print(plan.describe(workers), flush=True)
    try:
        with Stack(
            workers=workers,
            log_dir=log_dir / plan.name,
            use_redis=plan.use_redis,
            extra_env=plan.config.worker_env(),
        ) as stack:
            return asyncio.run(run_plan(plan, stack, deadline))
    except StackError as exc:
        return {name: Outcome(error=f"stack failed to start: {exc}") for name in plan.scenarios}


def build_rows(redis: dict[str, Outcome], in_process: dict[str, Outcome]) -> list[Row]:
    """Pair each scenario's Redis outcome with its in-process outcome, if any."""
    rows = []
    for name, outcome in redis.items():
        result = outcome.result
        other = in_process.get(name)
        rows.append(
            Row(
                scenario=name,
                configured=result.configured if result is not None else "-",
                with_redis=outcome.observed,
                held=result is not None and result.held,
                in_process=other.observed if other is not None else "-",
            )
        )
    return rows


LEGEND = """
(a+b+c) counts per worker. "at most" adds one token of timing slack to
burst + rate x elapsed. Scenario 2 runs with max_warnings=10000, so its
denials do not close the sockets; scenarios 3 and 4 use the default of 3.
"refused (limit)": new connections got connection_rejected with reason
"limit" while the killed worker's leases were still live.
The in-process column runs the same traffic with MemoryBackend, one per
worker: each worker enforces the limit on its own, so the fleet lets through
up to workers x limit. That overshoot is expected and is why the limits live
in Redis. Scenarios 3 and 4 ("-") need shared state across workers, so they
run with Redis only."""


def run_demo(workers: int, log_dir: Path) -> int:
    """Run every plan, print the table and return 0 only if every Redis row held."""
    if workers < 2:
        raise ValueError(f"the demo needs at least 2 workers, got {workers}")
    deadline = time.monotonic() + RUN_BUDGET
    redis_outcomes: dict[str, Outcome] = {}
    in_process_outcomes: dict[str, Outcome] = {}

    for plan in demo_plans():
        outcomes = start_and_run(plan, workers, log_dir, deadline)
        (redis_outcomes if plan.use_redis else in_process_outcomes).update(outcomes)

    rows = build_rows(redis_outcomes, in_process_outcomes)
    print()
    print(format_table(rows))
    print(LEGEND)
    print(f"\nworker logs: {log_dir}")
    if all(row.held for row in rows):
        print("every Redis-backed limit held")
        return 0
    print("a Redis-backed limit did NOT hold (see the rows marked NO)")
    return 1
