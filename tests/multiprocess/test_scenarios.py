"""The demo scenarios against three real uvicorn workers sharing the test Redis.

Each test starts its own workers (see conftest.py) and runs the same scenario
function as `make demo`. The expected numbers come from the configured limits.
"""

from __future__ import annotations

import dataclasses

import pytest
from demo.runner import HAMMER_MAX_WARNINGS
from demo.scenarios import (
    CLOSE_ABUSE,
    EARLY_TOLERANCE,
    SEARCH_BURST,
    SEARCH_RATE,
    TIMING_SLACK_TOKENS,
    DemoConfig,
    abuse_cooldown,
    connection_limit,
    lease_expiry,
    search_budget,
)
from shop.views import SearchView

from djust_dist.security.decorators import get_rate_limit
from tests.multiprocess.conftest import StartStack, target_of

pytestmark = [pytest.mark.multiprocess, pytest.mark.redis, pytest.mark.slow]

DEFAULTS = DemoConfig()
# Denied searches count as warnings; the default of 3 would close the hammering
# connections before the budget is measured.
HAMMER = dataclasses.replace(DEFAULTS, max_warnings=HAMMER_MAX_WARNINGS)


def test_search_limit_matches_view() -> None:
    spec = get_rate_limit(SearchView.search)
    assert spec is not None
    assert (spec.rate, spec.burst) == (SEARCH_RATE, SEARCH_BURST)


async def test_connection_limit_holds(start_stack: StartStack) -> None:
    target = target_of(start_stack(HAMMER), HAMMER)

    result = await connection_limit(target, connections=15)

    limit = HAMMER.max_connections_per_ip
    assert result.admitted == limit
    assert len(result.refusals) == 15 - limit
    assert set(result.refusals) == {("limit", CLOSE_ABUSE)}
    assert result.held


async def test_search_budget_holds(start_stack: StartStack) -> None:
    target = target_of(start_stack(HAMMER), HAMMER)

    result = await search_budget(target, connections=10, duration=5.0)

    assert result.closed_early == 0
    assert result.denied > 0
    assert result.accepted >= SEARCH_BURST
    assert result.accepted <= SEARCH_BURST + SEARCH_RATE * result.elapsed + TIMING_SLACK_TOKENS
    assert result.held


async def test_abuse_cooldown_every_worker(start_stack: StartStack) -> None:
    target = target_of(start_stack(DEFAULTS), DEFAULTS)

    result = await abuse_cooldown(target)

    assert result.close_code == CLOSE_ABUSE
    assert result.invalid_frames == DEFAULTS.max_warnings
    assert result.refusals_per_worker == ("cooldown",) * len(target.ports)
    assert result.readmitted_after is not None
    assert result.readmitted_after >= DEFAULTS.reconnect_cooldown - EARLY_TOLERANCE
    assert result.held


async def test_killed_worker_frees_slots(start_stack: StartStack) -> None:
    stack = start_stack(DEFAULTS)
    target = target_of(stack, DEFAULTS)

    result = await lease_expiry(target, lambda: stack.kill_worker(0))

    assert result.filled == DEFAULTS.max_connections_per_ip
    assert stack.started[0].process.returncode is not None
    assert result.refusal_after_kill == "limit"
    assert result.all_admitted_after is not None
    assert result.all_admitted_after <= (DEFAULTS.lease_ttl + DEFAULTS.renew_interval + 1.0)
    assert result.held


async def test_in_process_limits_overshoot(start_stack: StartStack) -> None:
    target = target_of(start_stack(HAMMER, use_redis=False), HAMMER)

    connections = await connection_limit(target, connections=15)
    searches = await search_budget(target, connections=10, duration=3.0)

    # Each of the 3 workers admits its 5 connections under its own limit of 10.
    assert connections.admitted > HAMMER.max_connections_per_ip
    assert connections.admitted == 15
    assert not connections.held
    # Each worker has its own search bucket, so the one caller gets about 3 budgets.
    assert searches.accepted > searches.allowed
