"""One behavioural suite for every backend: MemoryBackend, fakeredis and a real Redis.

Every test makes the same assertions for each backend, and tests on Redis
backends end by checking that each key has a TTL and no raw identity text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from djust_dist.backends import Admission, Bucket
from tests.engine.conftest import BackendCase

# Identities may be any text; these would break a key built by pasting them in.
HOSTILE_IP = "10.0.0.1 {tag}\n\x00" + "é" * 10_000
HOSTILE_KEY = "user:{42}\r\nDEL *\x00"
HOSTILE_CONNECTION = "conn-}{" + "\x00" * 10

# Tolerance for a retry_after compared with a value computed from the rate.
TOLERANCE_S = 0.002


async def poll_until(check: Callable[[], Awaitable[bool]], deadline_s: float = 5.0) -> None:
    """Await ``check`` every 10 ms until it returns True, failing after ``deadline_s``."""
    for _ in range(int(deadline_s / 0.01) + 1):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {deadline_s} s")


async def test_bucket_allows_exactly_burst(backends: BackendCase) -> None:
    backend = backends.make()
    bucket = Bucket(HOSTILE_KEY, rate=0.01, burst=5)

    decisions = [await backend.consume([bucket]) for _ in range(6)]

    assert [decision.allowed for decision in decisions] == [True] * 5 + [False]
    assert [round(decision.remaining) for decision in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[5].retry_after > 0
    await backends.check_keys((HOSTILE_KEY,))


async def test_bucket_refills_after_interval(backends: BackendCase) -> None:
    backend = backends.make()
    bucket = Bucket("refill", rate=20, burst=1)

    first = await backend.consume([bucket])
    started = time.monotonic()
    denied = await backend.consume([bucket])

    async def passes() -> bool:
        return (await backend.consume([bucket])).allowed

    await poll_until(passes, deadline_s=2.0)
    waited = time.monotonic() - started
    assert first.allowed
    assert not denied.allowed
    assert 0 < denied.retry_after <= 1 / 20
    assert waited >= denied.retry_after - TOLERANCE_S
    await backends.check_keys()


async def test_retry_after_exact(backends: BackendCase) -> None:
    backend = backends.make()
    bucket = Bucket("exact", rate=10, burst=2)

    started = time.monotonic()
    await backend.consume([bucket])
    await backend.consume([bucket])
    denied = await backend.consume([bucket])
    elapsed = time.monotonic() - started

    # Two tokens taken at once leave the bucket one interval (0.1 s) short of a
    # third token, minus the time that passed since the first take.
    assert not denied.allowed
    assert denied.retry_after <= 0.1 + TOLERANCE_S
    assert denied.retry_after >= 0.1 - elapsed - TOLERANCE_S
    assert denied.remaining < 1
    await backends.check_keys()


async def test_cost_takes_several_tokens(backends: BackendCase) -> None:
    backend = backends.make()
    bucket = Bucket("cost", rate=0.01, burst=5)

    three_taken = await backend.consume([bucket], cost=3)
    too_many = await backend.consume([bucket], cost=3)

    assert three_taken.allowed
    assert three_taken.retry_after == 0.0
    assert three_taken.remaining == pytest.approx(2, abs=1e-3)
    assert not too_many.allowed
    assert too_many.retry_after == pytest.approx(100, abs=0.5)
    await backends.check_keys()


async def test_denial_consumes_nothing_anywhere(backends: BackendCase) -> None:
    backend = backends.make()
    scarce = Bucket("scarce", rate=0.01, burst=1)
    plenty = Bucket(HOSTILE_KEY, rate=0.01, burst=3)

    both = await backend.consume([scarce, plenty])
    denied = await backend.consume([plenty, scarce])
    plenty_second = await backend.consume([plenty])
    plenty_third = await backend.consume([plenty])
    plenty_empty = await backend.consume([plenty])

    assert both.allowed
    assert both.remaining == pytest.approx(0, abs=1e-3)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(100, abs=0.5)
    assert plenty_second.allowed
    assert plenty_third.allowed
    assert not plenty_empty.allowed
    await backends.check_keys((HOSTILE_KEY,))


async def test_cost_above_burst_raises(backends: BackendCase) -> None:
    backend = backends.make()
    bucket = Bucket("strict", rate=1, burst=2)

    with pytest.raises(ValueError, match="exceeds the burst"):
        await backend.consume([bucket], cost=3)
    with pytest.raises(ValueError, match="at least 1"):
        await backend.consume([bucket], cost=0)
    with pytest.raises(ValueError, match="at least one bucket"):
        await backend.consume([])
    with pytest.raises(ValueError, match="appears twice"):
        await backend.consume([bucket, bucket])

    untouched = await backend.consume([bucket], cost=2)
    assert untouched.allowed
    await backends.check_keys()


async def test_lease_limit(backends: BackendCase) -> None:
    backend = backends.make(limit_retry_hint=7.5)

    first = await backend.admit_connection(HOSTILE_IP, "c1", limit=2)
    second = await backend.admit_connection(HOSTILE_IP, HOSTILE_CONNECTION, limit=2)
    third = await backend.admit_connection(HOSTILE_IP, "c3", limit=2)
    first_again = await backend.admit_connection(HOSTILE_IP, "c1", limit=2)
    other_ip = await backend.admit_connection("10.0.0.2", "c3", limit=2)

    assert first.admitted
    assert second.admitted
    assert third == Admission(admitted=False, reason="limit", retry_after=7.5)
    assert first_again.admitted
    assert other_ip.admitted

    await backend.release_connection(HOSTILE_IP, "c1")
    after_release = await backend.admit_connection(HOSTILE_IP, "c3", limit=2)
    assert after_release.admitted
    await backends.check_keys((HOSTILE_IP, HOSTILE_CONNECTION))


async def test_release_twice_frees_one_slot(backends: BackendCase) -> None:
    backend = backends.make()

    await backend.admit_connection("10.0.0.3", "c1", limit=1)
    await backend.release_connection("10.0.0.3", "c1")
    await backend.release_connection("10.0.0.3", "c1")
    second = await backend.admit_connection("10.0.0.3", "c2", limit=1)
    third = await backend.admit_connection("10.0.0.3", "c3", limit=1)

    assert second.admitted
    assert third.reason == "limit"
    await backends.check_keys()


async def test_release_unknown_lease_frees_nothing(backends: BackendCase) -> None:
    backend = backends.make()

    await backend.admit_connection("10.0.0.4", "c1", limit=1)
    await backend.release_connection("10.0.0.4", "never-admitted")
    await backend.release_connection("10.0.0.99", "c1")
    rejected = await backend.admit_connection("10.0.0.4", "c2", limit=1)

    assert rejected.reason == "limit"
    await backends.check_keys()


async def test_lease_expires_without_release(backends: BackendCase) -> None:
    backend = backends.make(lease_ttl=0.3)

    started = time.monotonic()
    await backend.admit_connection("10.0.0.5", "c1", limit=1)
    rejected = await backend.admit_connection("10.0.0.5", "c2", limit=1)

    async def admits() -> bool:
        return (await backend.admit_connection("10.0.0.5", "c2", limit=1)).admitted

    await poll_until(admits, deadline_s=3.0)
    assert rejected.reason == "limit"
    assert time.monotonic() - started >= 0.3 - TOLERANCE_S
    await backends.check_keys()


async def test_renew_keeps_lease_alive(backends: BackendCase) -> None:
    backend = backends.make(lease_ttl=0.3)

    await backend.admit_connection("10.0.0.6", "c1", limit=1)
    for _ in range(6):
        await asyncio.sleep(0.1)
        await backend.renew_connections([("10.0.0.6", "c1")])
    rejected = await backend.admit_connection("10.0.0.6", "c2", limit=1)

    assert rejected.reason == "limit"
    await backends.check_keys()


async def test_renew_does_not_revive_lapsed_lease(backends: BackendCase) -> None:
    backend = backends.make(lease_ttl=0.3)

    await backend.admit_connection("10.0.0.7", "c1", limit=2)
    await backend.admit_connection("10.0.0.7", "c2", limit=2)
    await asyncio.sleep(0.4)
    await backend.renew_connections([("10.0.0.7", "c1"), ("10.0.0.7", "never-admitted")])
    second = await backend.admit_connection("10.0.0.7", "c3", limit=2)
    third = await backend.admit_connection("10.0.0.7", "c4", limit=2)

    assert second.admitted
    assert third.admitted
    await backends.check_keys()


async def test_cooldown_rejects_with_time_left(backends: BackendCase) -> None:
    backend = backends.make()

    started = time.monotonic()
    await backend.start_cooldown(HOSTILE_IP, 2)
    rejected = await backend.admit_connection(HOSTILE_IP, "c1", limit=10)
    elapsed = time.monotonic() - started
    other_ip = await backend.admit_connection("10.0.0.8", "c1", limit=10)

    assert rejected.reason == "cooldown"
    assert not rejected.admitted
    assert rejected.retry_after <= 2.0
    assert rejected.retry_after >= 2.0 - elapsed - TOLERANCE_S
    assert other_ip.admitted
    await backends.check_keys((HOSTILE_IP,))


async def test_cooldown_max_merge(backends: BackendCase) -> None:
    backend = backends.make()

    await backend.start_cooldown("10.0.0.9", 30)
    await backend.start_cooldown("10.0.0.9", 1)
    unchanged = await backend.admit_connection("10.0.0.9", "c1", limit=10)
    await backend.start_cooldown("10.0.0.9", 60)
    extended = await backend.admit_connection("10.0.0.9", "c1", limit=10)

    assert unchanged.reason == "cooldown"
    assert unchanged.retry_after > 29
    assert extended.retry_after > 59
    await backends.check_keys()


async def test_cooldown_of_zero_changes_nothing(backends: BackendCase) -> None:
    backend = backends.make()

    await backend.start_cooldown("10.0.0.10", 0)
    admitted = await backend.admit_connection("10.0.0.10", "c1", limit=1)

    assert admitted.admitted
    with pytest.raises(ValueError, match="seconds"):
        await backend.start_cooldown("10.0.0.10", -1)
    await backends.check_keys()


async def test_invalid_arguments_raise(backends: BackendCase) -> None:
    backend = backends.make()

    with pytest.raises(TypeError, match="ip must be a str"):
        await backend.admit_connection(None, "c1", limit=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await backend.admit_connection("10.0.0.11", "c1", limit=0)
    with pytest.raises(TypeError, match="connection_id must be a str"):
        await backend.renew_connections([("10.0.0.11", 5)])  # type: ignore[list-item]
