"""The local deny cache: unit tests on a fake clock, then against fakeredis and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from djust_dist.backends import Bucket, Decision, RedisBackend
from djust_dist.engine.deny_cache import SAFETY_MARGIN, DenyCache

SLOW = Bucket("slow", rate=0.5, burst=4)
OTHER = Bucket("other", rate=0.5, burst=4)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> DenyCache:
    return DenyCache(clock=clock, max_age=100.0)


def denial(retry_after: float, remaining: float = 0.0) -> Decision:
    return Decision(allowed=False, retry_after=retry_after, remaining=remaining)


def test_denies_until_wait_from_send_time(cache: DenyCache, clock: FakeClock) -> None:
    sent_at = clock.now
    clock.now += 0.3  # the reply arrives one round trip later
    cache.observe((SLOW,), 1, denial(2.0), sent_at)

    clock.now = sent_at + 2.0 - SAFETY_MARGIN - 1e-6
    still_denied = cache.check((SLOW,), 1)
    clock.now = sent_at + 2.0 - SAFETY_MARGIN
    expired = cache.check((SLOW,), 1)

    assert still_denied is not None
    assert not still_denied.allowed
    assert expired is None


def test_cached_retry_after_is_time_left(cache: DenyCache, clock: FakeClock) -> None:
    cache.observe((SLOW,), 1, denial(2.0, remaining=0.25), clock.now)
    clock.now += 0.5

    decision = cache.check((SLOW,), 1)

    assert decision is not None
    assert decision.retry_after == pytest.approx(1.5, abs=2 * SAFETY_MARGIN)
    assert decision.remaining == 0.25
    assert cache.hits == 1


def test_other_cost_not_matched(cache: DenyCache, clock: FakeClock) -> None:
    cache.observe((SLOW,), 2, denial(3.0), clock.now)

    assert cache.check((SLOW,), 1) is None
    assert cache.check((SLOW,), 3) is None
    assert cache.check((SLOW,), 2) is not None


def test_other_bucket_set_not_matched(cache: DenyCache, clock: FakeClock) -> None:
    cache.observe((SLOW, OTHER), 1, denial(2.0), clock.now)

    assert cache.check((SLOW,), 1) is None
    assert cache.check((OTHER,), 1) is None
    assert cache.check((OTHER, SLOW), 1) is None
    assert cache.check((SLOW, OTHER), 1) is not None


def test_same_key_other_limit_not_matched(cache: DenyCache, clock: FakeClock) -> None:
    cache.observe((SLOW,), 1, denial(2.0), clock.now)

    assert cache.check((Bucket("slow", rate=0.5, burst=5),), 1) is None
    assert cache.check((Bucket("slow", rate=1, burst=4),), 1) is None


def test_allowed_or_stale_reply_not_recorded(cache: DenyCache, clock: FakeClock) -> None:
    cache.observe((SLOW,), 1, Decision(True, 0.0, 3.0), clock.now)
    # The wait was over before the reply was even recorded.
    cache.observe((OTHER,), 1, denial(0.5), clock.now - 1.0)

    assert len(cache) == 0


def test_allowance_drops_overlapping_denials(cache: DenyCache, clock: FakeClock) -> None:
    cache.observe((SLOW,), 3, denial(4.0), clock.now)
    cache.observe((SLOW, OTHER), 3, denial(4.0), clock.now)
    cache.observe((OTHER,), 3, denial(4.0), clock.now)

    cache.observe((SLOW,), 1, Decision(True, 0.0, 0.0), clock.now)

    assert cache.check((SLOW,), 3) is None
    assert cache.check((SLOW, OTHER), 3) is None
    assert cache.check((OTHER,), 3) is not None
    assert len(cache) == 1


def test_max_age_caps_an_entry(clock: FakeClock) -> None:
    cache = DenyCache(clock=clock, max_age=1.0)
    cache.observe((SLOW,), 1, denial(60.0), clock.now)

    clock.now += 0.999
    young = cache.check((SLOW,), 1)
    clock.now += 0.002
    old = cache.check((SLOW,), 1)

    assert young is not None
    assert old is None
    assert len(cache) == 0


def test_size_bounded_oldest_dropped(clock: FakeClock) -> None:
    cache = DenyCache(clock=clock, max_entries=3)
    buckets = [Bucket(f"b{index}", rate=1, burst=1) for index in range(5)]
    for bucket in buckets:
        cache.observe((bucket,), 1, denial(0.5), clock.now)

    assert len(cache) == 3
    assert cache.check((buckets[0],), 1) is None
    assert cache.check((buckets[1],), 1) is None
    assert cache.check((buckets[4],), 1) is not None


def test_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        DenyCache(max_entries=0)
    with pytest.raises(ValueError, match="max_age"):
        DenyCache(max_age=0)


async def test_backend_caches_denial(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend()
    bucket = Bucket("cached", rate=0.01, burst=2)

    decisions = [await backend.consume([bucket]) for _ in range(5)]

    assert [decision.allowed for decision in decisions] == [True, True, False, False, False]
    assert backend.deny_cache is not None
    assert backend.deny_cache.hits == 2
    assert decisions[4].retry_after == pytest.approx(decisions[2].retry_after, abs=1.0)


async def test_backend_allows_after_wait(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend()
    bucket = Bucket("refills", rate=20, burst=1)
    await backend.consume([bucket])

    denied = await backend.consume([bucket])
    await asyncio.sleep(denied.retry_after + 0.02)
    after_wait = await backend.consume([bucket])

    assert not denied.allowed
    assert after_wait.allowed


async def test_other_buckets_go_to_redis(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend()
    empty = Bucket("empty", rate=0.01, burst=1)
    full = Bucket("full", rate=0.01, burst=3)
    await backend.consume([empty])

    both = await backend.consume([full, empty])
    full_alone = await backend.consume([full])

    assert not both.allowed
    assert full_alone.allowed
    assert full_alone.remaining == pytest.approx(2, abs=0.01)
    assert backend.deny_cache is not None
    assert backend.deny_cache.hits == 0


async def test_smaller_cost_goes_to_redis(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend()
    bucket = Bucket("costs", rate=0.01, burst=3)
    await backend.consume([bucket])

    too_big = await backend.consume([bucket], cost=3)
    fits = await backend.consume([bucket], cost=2)

    assert not too_big.allowed
    assert fits.allowed


async def test_disabled_cache_asks_redis(make_backend: Callable[..., RedisBackend]) -> None:
    backend = make_backend(deny_cache=False)
    bucket = Bucket("uncached", rate=0.01, burst=1)

    decisions = [await backend.consume([bucket]) for _ in range(3)]

    assert [decision.allowed for decision in decisions] == [True, False, False]
    assert backend.deny_cache is None
