"""Redis Cluster support: one script call per slot, and refunds for split consumes.

Every key carries a hash tag (see ``keys``), so the keys of one IP share a slot
and admit, release and cooldown calls each touch one slot. The heartbeat
touches its one key. Renewals are batched per slot.

A ``consume`` over buckets of several slots (a connection's bucket and a
user's, say) becomes one consume.lua call per slot, sent concurrently so that
their round trips overlap. If every slot allows, the request passed. If any
slot denies, refund.lua gives back the tokens taken in the slots that allowed,
so the request takes nothing anywhere. That refund is the only second round
trip, and only a denial causes it.

Between the take and the refund, the allowing buckets are ``cost`` tokens
short, so a concurrent request of the same caller may be denied during that
round trip though it would have passed. Such a request is never allowed
wrongly. When a slot fails or Redis stops responding before the refund, the
tokens stay taken until the bucket refills, which also errs on the strict side.
A caller cancelled after the calls were sent gets no refund either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.crc import key_slot

from djust_dist.engine.base import make_decision
from djust_dist.engine.keys import KeyLayout
from djust_dist.engine.memory import interval_ns
from djust_dist.engine.types import Bucket, Decision
from djust_dist.errors import BackendUnavailable

ScriptArgs = list[str | int | float]
ScriptRunner = Callable[[str, list[str], ScriptArgs], Awaitable[Any]]
"""Runs one script by name on ``(keys, args)``, like ``RedisBackend._run``."""


def slot_of(key: str) -> int:
    """Return the Redis Cluster slot of ``key``, honouring its hash tag."""
    return key_slot(key.encode("utf-8"))


def group_buckets_by_slot(layout: KeyLayout, buckets: Sequence[Bucket]) -> list[tuple[Bucket, ...]]:
    """Split the buckets into groups whose keys share a slot, in first-seen order."""
    groups: dict[int, list[Bucket]] = {}
    for bucket in buckets:
        groups.setdefault(slot_of(layout.bucket(bucket.key)), []).append(bucket)
    return [tuple(group) for group in groups.values()]


def batch_pairs_by_slot(
    layout: KeyLayout, pairs: Sequence[tuple[str, str]], batch_size: int
) -> list[list[tuple[str, str]]]:
    """Split ``(ip, connection_id)`` pairs into batches of one slot, ``batch_size`` at most."""
    groups: dict[int, list[tuple[str, str]]] = {}
    for pair in pairs:
        groups.setdefault(slot_of(layout.leases(pair[0])), []).append(pair)

    return [
        group[start : start + batch_size]
        for group in groups.values()
        for start in range(0, len(group), batch_size)
    ]


async def consume_across_slots(
    run: ScriptRunner,
    layout: KeyLayout,
    groups: Sequence[tuple[Bucket, ...]],
    cost: int,
) -> Decision:
    """Take ``cost`` tokens from buckets of several slots, all or nothing.

    Returns the combined Decision: allowed only if every slot allowed,
    ``retry_after`` the longest wait of the denying slots, ``remaining`` the
    smallest count among all buckets. Raises what a slot's call raised, after
    refunding the slots that allowed.
    """
    outcomes = await asyncio.gather(
        *(_consume_slot(run, layout, group, cost) for group in groups),
        return_exceptions=True,
    )
    allowed = [
        (group, outcome)
        for group, outcome in zip(groups, outcomes, strict=True)
        if isinstance(outcome, Decision) and outcome.allowed
    ]
    if len(allowed) == len(groups):
        return Decision(True, 0.0, min(decision.remaining for _, decision in allowed))

    await _refund(run, layout, [group for group, _ in allowed], cost)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome

    decisions = [outcome for outcome in outcomes if isinstance(outcome, Decision)]
    # After the refund a slot has the tokens it had before the take.
    remaining = [
        decision.remaining + cost if decision.allowed else decision.remaining
        for decision in decisions
    ]
    return Decision(
        allowed=False,
        retry_after=max(decision.retry_after for decision in decisions if not decision.allowed),
        remaining=min(remaining),
    )


async def _consume_slot(
    run: ScriptRunner, layout: KeyLayout, group: tuple[Bucket, ...], cost: int
) -> Decision:
    keys = [layout.bucket(bucket.key) for bucket in group]
    args: ScriptArgs = [cost]
    for bucket in group:
        args += [repr(interval_ns(bucket.rate)), bucket.burst]

    allowed, retry_after_us, remaining = await run("consume", keys, args)
    return make_decision(bool(allowed), int(retry_after_us), float(remaining))


async def _refund(
    run: ScriptRunner, layout: KeyLayout, groups: Sequence[tuple[Bucket, ...]], cost: int
) -> None:
    """Give ``cost`` tokens back to every bucket of ``groups``, one refund.lua call per slot."""
    calls = []
    for group in groups:
        keys = [layout.bucket(bucket.key) for bucket in group]
        args: ScriptArgs = [cost, *(repr(interval_ns(bucket.rate)) for bucket in group)]
        calls.append(run("refund", keys, args))

    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        # Without Redis the tokens stay taken until the bucket refills: stricter
        # than intended, never looser. Any other error is a bug and is raised.
        if isinstance(result, BaseException) and not isinstance(result, BackendUnavailable):
            raise result
