"""Unit tests of the engine's pieces: keys, options, scripts, breaker, event loops."""

from __future__ import annotations

import asyncio
import logging

import fakeredis
import pytest

from djust_dist.backends import Bucket, Decision, RedisBackend
from djust_dist.engine.breaker import CircuitBreaker, OnError
from djust_dist.engine.keys import KeyLayout, digest, hash_tag, validate_key_prefix
from djust_dist.engine.redis import RedisOptions
from djust_dist.engine.scripts import SCRIPT_NAMES, get_script, script_versions
from djust_dist.errors import DjustDistError, InvalidCostError


def test_digest_fixed_length_for_any_text() -> None:
    identities = ["", "1.2.3.4", "x" * 10_000, "{a}\n\x00", "\ud800 lone surrogate"]

    digests = [digest(identity) for identity in identities]

    assert all(len(value) == 32 for value in digests)
    assert len(set(digests)) == len(identities)


def test_keys_share_tag_per_ip() -> None:
    layout = KeyLayout("app")

    leases = layout.leases("10.0.0.1")
    cooldown = layout.cooldown("10.0.0.1")

    assert hash_tag(leases) == hash_tag(cooldown) == digest("10.0.0.1")
    assert hash_tag(layout.bucket("a")) != hash_tag(layout.bucket("b"))
    assert leases.startswith("app:ip:{")


def test_hash_tag_without_braces() -> None:
    assert hash_tag("plain") == "plain"
    assert hash_tag("a{}b") == "a{}b"
    assert hash_tag("a{x}b{y}") == "x"


@pytest.mark.parametrize("prefix", ["", "has space", "brace{", "x" * 129, "new\nline"])
def test_key_prefix_rejected(prefix: str) -> None:
    with pytest.raises(ValueError, match="key_prefix"):
        validate_key_prefix(prefix)


def test_options_defaults() -> None:
    options = RedisOptions.parse()

    assert options == RedisOptions(
        key_prefix="djust_dist",
        timeout=0.25,
        lease_ttl=30.0,
        on_error=OnError.LOCAL,
        retry_interval=1.0,
        limit_retry_hint=5.0,
    )


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"on_error": "ignore"}, ValueError, "on_error must be one of 'local', 'open', 'closed'"),
        ({"on_error": 1}, TypeError, "on_error must be a str"),
        ({"timeout": 0}, ValueError, "timeout must be a finite number"),
        ({"timeout": "fast"}, TypeError, "timeout must be a number"),
        ({"lease_ttl": float("inf")}, ValueError, "lease_ttl"),
        ({"retry_interval": -1}, ValueError, "retry_interval"),
        ({"limit_retry_hint": True}, TypeError, "limit_retry_hint"),
        ({"key_prefix": 3}, TypeError, "key_prefix must be a str"),
        ({"lease": 3}, TypeError, "unknown RedisBackend option"),
    ],
)
def test_options_invalid(options: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        RedisBackend.from_url("redis://127.0.0.1:6379/15", **options)


def test_invalid_cost_error_is_value_error() -> None:
    error = InvalidCostError(3, "key", 2)

    assert isinstance(error, ValueError)
    assert isinstance(error, DjustDistError)
    assert error.burst == 2


def test_scripts_have_header_and_sha() -> None:
    versions = script_versions()

    assert set(versions) == set(SCRIPT_NAMES)
    for name in SCRIPT_NAMES:
        source = get_script(name).source
        assert source.startswith(f"-- {name}.lua:")
        assert "KEYS[1]" in source or "KEYS[i]" in source
        assert "Returns" in source
        assert "'KEYS'" not in source


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_probe_after_interval(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(2.0, clock=clock)
    caplog.set_level(logging.WARNING, logger="djust_dist")

    breaker.failed(ConnectionError("refused"))
    breaker.failed(ConnectionError("refused again"))
    blocked = breaker.allow()
    clock.now += 2.0
    probe = breaker.allow()
    second_probe = breaker.allow()
    breaker.succeeded()

    assert not blocked
    assert probe
    assert not second_probe
    assert breaker.allow()
    assert [record.levelno for record in caplog.records] == [logging.ERROR, logging.WARNING]
    assert "2.0 s" in caplog.records[1].getMessage()


def test_breaker_abandoned_probe_frees_slot() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1.0, clock=clock)

    breaker.failed(ConnectionError("refused"))
    clock.now += 1.0
    assert breaker.allow()
    breaker.abandoned()

    assert breaker.allow()
    assert breaker.seconds_until_probe() == 1.0


def run_twice_on_two_loops(backend: RedisBackend) -> list[bool]:
    """Consume once on each of two event loops, closing the loop's client before it ends."""

    async def consume_and_close() -> bool:
        decision = await backend.consume([Bucket("loops", rate=0.01, burst=2)])
        await backend.aclose()
        return decision.allowed

    return [asyncio.run(consume_and_close()), asyncio.run(consume_and_close())]


def test_backend_on_two_loops_fakeredis() -> None:
    server = fakeredis.FakeServer()
    backend = RedisBackend(lambda: fakeredis.FakeAsyncRedis(server=server), on_error="closed")

    assert run_twice_on_two_loops(backend) == [True, True]
    assert not backend.circuit_open


@pytest.mark.redis
def test_backend_on_two_loops_redis(redis_url: str, key_prefix: str) -> None:
    backend = RedisBackend.from_url(redis_url, key_prefix=key_prefix, on_error="closed")

    async def consume_and_close() -> Decision:
        decision = await backend.consume([Bucket("loops", rate=0.01, burst=2)])
        await backend.aclose()
        return decision

    results = run_twice_on_two_loops(backend)
    third = asyncio.run(consume_and_close())

    assert results == [True, True]
    assert not third.allowed
    assert not backend.circuit_open


@pytest.mark.redis
async def test_ping_real_redis(redis_url: str, key_prefix: str) -> None:
    backend = RedisBackend.from_url(redis_url, key_prefix=key_prefix)

    assert await backend.ping()
    await backend.aclose()


async def test_ping_unreachable_redis() -> None:
    from tests.conftest import free_port

    backend = RedisBackend.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)

    assert not await backend.ping()
    await backend.aclose()


def test_backend_after_unclosed_loop() -> None:
    server = fakeredis.FakeServer()
    backend = RedisBackend(lambda: fakeredis.FakeAsyncRedis(server=server), on_error="closed")

    async def consume_once() -> bool:
        return (await backend.consume([Bucket("loops", rate=0.01, burst=2)])).allowed

    async def consume_and_close() -> bool:
        allowed = await consume_once()
        await backend.aclose()
        return allowed

    # The first loop ends without aclose(); the second must open its own client.
    assert asyncio.run(consume_once())
    assert asyncio.run(consume_and_close())
    assert not backend.circuit_open
