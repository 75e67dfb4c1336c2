"""Fault tests on a private redis-server: script cache flush, outages, hangs, recovery."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis

from djust_dist.backends import Admission, Bucket, Decision, RedisBackend
from djust_dist.engine.scripts import Script
from tests.conftest import RedisServer

pytestmark = pytest.mark.faults

BUCKET = Bucket("faults", rate=0.01, burst=3)
LOGGER = "djust_dist"


class CallCounter:
    """Counts the script calls that actually go to Redis."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = Script.run

        async def counting_run(script: Script, *args: Any) -> Any:
            self.count += 1
            return await original(script, *args)

        monkeypatch.setattr(Script, "run", counting_run)


@pytest.fixture
async def make_backend() -> AsyncIterator[Callable[..., RedisBackend]]:
    built: list[RedisBackend] = []

    def make(url: str, **options: Any) -> RedisBackend:
        backend = RedisBackend.from_url(url, timeout=0.25, **options)
        built.append(backend)
        return backend

    yield make

    for backend in built:
        await backend.aclose()


async def poll_until_recovered(backend: RedisBackend, deadline_s: float = 10.0) -> None:
    for _ in range(int(deadline_s / 0.05)):
        await backend.consume([Bucket("probe", rate=100, burst=100)])
        if not backend.circuit_open:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"backend still falling back after {deadline_s} s")


async def test_script_flush_reloads(
    redis_server: RedisServer, make_backend: Callable[..., RedisBackend]
) -> None:
    backend = make_backend(redis_server.url, on_error="closed")

    first = await backend.consume([BUCKET])
    with redis.Redis.from_url(redis_server.url) as client:
        client.script_flush()
    second = await backend.consume([BUCKET])

    assert first.allowed
    assert second.allowed
    assert second.remaining == pytest.approx(1, abs=1e-3)
    assert not backend.circuit_open


@pytest.mark.parametrize(
    ("on_error", "expected_decision", "expected_admission"),
    [
        ("local", Decision(True, 0.0, 2.0), Admission(True, None, 0.0)),
        ("open", Decision(True, 0.0, 3.0), Admission(True, None, 0.0)),
        ("closed", None, None),
    ],
)
async def test_stopped_redis_follows_on_error(
    redis_server: RedisServer,
    make_backend: Callable[..., RedisBackend],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    on_error: str,
    expected_decision: Decision | None,
    expected_admission: Admission | None,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    backend = make_backend(redis_server.url, on_error=on_error, retry_interval=30)
    await backend.consume([Bucket("warm-up", rate=1, burst=1)])
    redis_server.stop()
    calls = CallCounter(monkeypatch)

    decision = await backend.consume([BUCKET])
    admission = await backend.admit_connection("10.1.1.1", "c1", limit=1)
    for _ in range(10):
        await backend.consume([BUCKET])
        await backend.renew_connections([("10.1.1.1", "c1")])
        await backend.release_connection("10.1.1.1", "c2")
        await backend.start_cooldown("10.1.1.2", 1)

    assert calls.count == 1
    assert backend.circuit_open
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "unavailable" in errors[0].getMessage()
    if on_error == "closed":
        assert not decision.allowed
        assert 0 < decision.retry_after <= 30
        assert admission.reason == "unavailable"
        assert 0 < admission.retry_after <= 30
    else:
        assert decision == expected_decision
        assert admission == expected_admission


async def test_local_mode_limits_in_process(
    redis_server: RedisServer, make_backend: Callable[..., RedisBackend]
) -> None:
    backend = make_backend(redis_server.url, on_error="local", retry_interval=30)
    redis_server.stop()

    admitted = await backend.admit_connection("10.1.1.3", "c1", limit=1)
    rejected = await backend.admit_connection("10.1.1.3", "c2", limit=1)
    decisions = [await backend.consume([BUCKET]) for _ in range(4)]

    assert admitted.admitted
    assert rejected.reason == "limit"
    assert [decision.allowed for decision in decisions] == [True, True, True, False]


async def test_recovery_after_restart(
    redis_server: RedisServer,
    make_backend: Callable[..., RedisBackend],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    backend = make_backend(redis_server.url, on_error="closed", retry_interval=0.2)
    await backend.consume([BUCKET])
    redis_server.stop()

    during = await backend.consume([BUCKET])
    redis_server.start()
    await poll_until_recovered(backend)
    after = await backend.consume([BUCKET])

    assert not during.allowed
    assert after.allowed
    levels = [record.levelno for record in caplog.records]
    assert levels == [logging.ERROR, logging.WARNING]
    assert "available again" in caplog.records[1].getMessage()


async def test_hanging_redis_times_out(
    redis_server: RedisServer,
    make_backend: Callable[..., RedisBackend],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = make_backend(redis_server.url, on_error="open", retry_interval=30)
    await backend.consume([BUCKET])
    assert redis_server.process is not None
    pid = redis_server.process.pid
    calls = CallCounter(monkeypatch)

    # A stopped process keeps its listening socket, so connections hang instead
    # of being refused.
    os.kill(pid, signal.SIGSTOP)
    try:
        first = await backend.consume([BUCKET])
        later = [await backend.consume([BUCKET]) for _ in range(20)]
    finally:
        os.kill(pid, signal.SIGCONT)

    assert first.allowed
    assert all(decision.allowed for decision in later)
    assert calls.count == 1
    assert backend.circuit_open
