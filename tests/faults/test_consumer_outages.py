"""Redis outages seen through the consumer: stop, restart, script flush, pause.

Each test runs its own redis-server. Latencies are only classified as slow
(close to the Redis timeout) or not, with generous margins, and the tests
count the slow ones rather than time anything precisely.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio
from channels.testing.websocket import WebsocketCommunicator
from django.test import override_settings

from djust_dist import mount_token
from djust_dist.backends import RedisBackend
from tests.conftest import RedisServer
from tests.faults.conftest import Connect
from tests.transport.views import CounterView, SearchView

pytestmark = [
    pytest.mark.faults,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

TIMEOUT = 0.5
RETRY_INTERVAL = 0.5
# A reply slower than this waited on Redis; one without Redis takes milliseconds.
SLOW_S = 0.3
# Warnings are not what these tests look at, so denials never close the socket.
CONFIG: dict[str, Any] = {"rate_limit": {"max_warnings": 100_000, "burst": 1000, "rate": 1000}}
BREAKER_LOGGER = "djust_dist.engine.breaker"


async def send(communicator: WebsocketCommunicator, payload: dict[str, Any]) -> dict[str, Any]:
    await communicator.send_to(text_data=json.dumps(payload))
    output = await communicator.receive_output(timeout=5)
    assert output["type"] == "websocket.send", output
    reply: dict[str, Any] = json.loads(output["text"])
    return reply


async def timed(communicator: WebsocketCommunicator, payload: dict[str, Any]) -> tuple[str, float]:
    """Send one frame; return the reply's type (or error code) and the seconds it took."""
    started = time.monotonic()
    reply = await send(communicator, payload)
    kind = reply.get("error", reply["type"])
    return kind, time.monotonic() - started


async def mounted(connect: Connect, view: type = CounterView) -> WebsocketCommunicator:
    communicator = await connect()
    assert (await send(communicator, {"type": "mount", "token": mount_token(view)}))[
        "type"
    ] == "render"
    return communicator


async def traffic(
    communicator: WebsocketCommunicator, count: int, pause_s: float = 0.02
) -> list[tuple[str, float]]:
    results = []
    for _ in range(count):
        results.append(await timed(communicator, {"type": "event", "event": "increment"}))
        await asyncio.sleep(pause_s)
    return results


def slow_count(results: list[tuple[str, float]], threshold: float = SLOW_S) -> int:
    return sum(seconds > threshold for _, seconds in results)


async def wait_recovered(backend: RedisBackend, communicator: WebsocketCommunicator) -> list[str]:
    """Ping until the breaker closes; return every reply type seen meanwhile."""
    kinds = []
    for _ in range(100):
        kinds.append((await timed(communicator, {"type": "ping"}))[0])
        if not backend.circuit_open:
            return kinds
        await asyncio.sleep(0.1)
    raise AssertionError("the backend did not recover within 10 s")


@pytest.mark.parametrize(
    ("on_error", "expected_kind"),
    [("local", "render"), ("open", "render"), ("closed", "rate_limit_exceeded")],
)
@override_settings(LIVEVIEW_CONFIG=CONFIG)
async def test_stop_mid_traffic_applies_policy(
    redis_server: RedisServer,
    make_backend: Callable[..., RedisBackend],
    connect_to: Callable[..., Connect],
    caplog: pytest.LogCaptureFixture,
    on_error: str,
    expected_kind: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="djust_dist")
    backend = make_backend(
        redis_server.url, on_error=on_error, timeout=TIMEOUT, retry_interval=RETRY_INTERVAL
    )
    connect = connect_to(backend)
    communicator = await mounted(connect)
    before = await traffic(communicator, 5)

    redis_server.stop()
    outage_started = time.monotonic()
    during = await traffic(communicator, 40)
    elapsed = time.monotonic() - outage_started
    print(f"stop/{on_error}: {len(during)} events in {elapsed:.2f} s, {slow_count(during)} slow")

    assert {kind for kind, _ in before} == {"render"}
    assert {kind for kind, _ in during} == {expected_kind}
    assert max(seconds for _, seconds in during) < TIMEOUT + 1.0
    assert slow_count(during) <= math.ceil(elapsed / RETRY_INTERVAL) + 1
    errors = [r for r in caplog.records if r.name == BREAKER_LOGGER and r.levelno == logging.ERROR]
    assert len(errors) == 1


@override_settings(LIVEVIEW_CONFIG=CONFIG)
async def test_closed_rejects_new_connections(
    redis_server: RedisServer,
    make_backend: Callable[..., RedisBackend],
    connect_to: Callable[..., Connect],
) -> None:
    backend = make_backend(redis_server.url, on_error="closed", timeout=TIMEOUT, retry_interval=30)
    connect = connect_to(backend)
    await mounted(connect)
    redis_server.stop()

    communicator = await connect("198.51.100.21")
    first = await communicator.receive_output(timeout=5)
    close = await communicator.receive_output(timeout=5)

    frame = json.loads(first["text"])
    assert frame["type"] == "connection_rejected"
    assert frame["reason"] == "unavailable"
    assert 0 < frame["retry_after"] <= 30
    assert close == {"type": "websocket.close", "code": 1013}


@pytest.mark.parametrize("on_error", ["local", "open"])
@override_settings(LIVEVIEW_CONFIG=CONFIG)
async def test_other_modes_accept_new_connections(
    redis_server: RedisServer,
    make_backend: Callable[..., RedisBackend],
    connect_to: Callable[..., Connect],
    on_error: str,
) -> None:
    backend = make_backend(redis_server.url, on_error=on_error, timeout=TIMEOUT, retry_interval=30)
    connect = connect_to(backend)
    await mounted(connect)
    redis_server.stop()

    communicator = await mounted(connect)
    kind, _ = await timed(communicator, {"type": "ping"})

    assert kind == "pong"


@override_settings(LIVEVIEW_CONFIG=CONFIG)
async def test_restart_empty_resumes_limits(
    redis_server: RedisServer,
    make_backend: Callable[..., RedisBackend],
    connect_to: Callable[..., Connect],
    caplog: pytest.LogCaptureFixture,
    key_prefix: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="djust_dist")
    backend = make_backend(
        redis_server.url,
        key_prefix=key_prefix,
        on_error="local",
        timeout=TIMEOUT,
        retry_interval=0.3,
    )
    connect = connect_to(backend)
    communicator = await mounted(connect, SearchView)
    search = {"type": "event", "event": "search", "params": {"query": "x"}}
    # Five searches empty the Redis bucket without a denial, which the deny cache
    # would remember past the restart.
    first_round = [(await timed(communicator, search))[0] for _ in range(5)]

    redis_server.stop()
    during = [(await timed(communicator, search))[0] for _ in range(3)]
    redis_server.start()
    recovery = await wait_recovered(backend, communicator)
    second_round = [(await timed(communicator, search))[0] for _ in range(6)]

    async with redis.asyncio.Redis.from_url(redis_server.url) as client:
        bucket_keys = [key async for key in client.scan_iter(match=f"{key_prefix}:bucket:*")]

    assert first_round == ["render"] * 5
    # The local fallback has its own, still full, buckets during the outage.
    assert during == ["render"] * 3
    assert set(recovery) == {"pong"}
    # Redis restarted empty: the emptied handler bucket is full again, then denies.
    assert second_round == ["render"] * 5 + ["rate_limit_exceeded"]
    assert bucket_keys
    breaker_lines = [r for r in caplog.records if r.name == BREAKER_LOGGER]
    assert [r.levelno for r in breaker_lines] == [logging.ERROR, logging.WARNING]
    assert re.search(r"after an outage of \d+\.\d s", breaker_lines[1].getMessage())
    assert not [
        r for r in caplog.records if r.levelno >= logging.ERROR and r is not breaker_lines[0]
    ]


@override_settings(LIVEVIEW_CONFIG=CONFIG)
async def test_script_flush_under_load(
    redis_server: RedisServer,
    make_backend: Callable[..., RedisBackend],
    connect_to: Callable[..., Connect],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="djust_dist")
    backend = make_backend(redis_server.url, on_error="closed", timeout=TIMEOUT)
    connect = connect_to(backend)
    sockets = [await mounted(connect) for _ in range(5)]
    stop = asyncio.Event()
    flushes = 0

    async def flush_repeatedly() -> None:
        nonlocal flushes
        async with redis.asyncio.Redis.from_url(redis_server.url) as admin:
            for _ in range(200):
                if stop.is_set():
                    return
                await admin.script_flush()
                flushes += 1
                await asyncio.sleep(0.005)

    flusher = asyncio.create_task(flush_repeatedly())
    results = await asyncio.gather(*(traffic(socket, 40, pause_s=0.002) for socket in sockets))
    stop.set()
    await flusher

    kinds = {kind for per_socket in results for kind, _ in per_socket}
    print(f"flush: {flushes} flushes during {5 * 40} events, replies {sorted(kinds)}")
    assert flushes >= 5
    assert kinds == {"render"}
    assert not backend.circuit_open
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@override_settings(LIVEVIEW_CONFIG=CONFIG)
async def test_client_pause_honours_timeout(
    redis_server: RedisServer,
    make_backend: Callable[..., RedisBackend],
    connect_to: Callable[..., Connect],
) -> None:
    pause_ms = 1500
    backend = make_backend(
        redis_server.url, on_error="open", timeout=0.25, retry_interval=RETRY_INTERVAL
    )
    connect = connect_to(backend)
    communicator = await mounted(connect)

    async with redis.asyncio.Redis.from_url(redis_server.url) as admin:
        await admin.client_pause(pause_ms, all=True)
    paused_at = time.monotonic()
    during = []
    while time.monotonic() - paused_at < pause_ms / 1000 + 0.5:
        during.append(await timed(communicator, {"type": "event", "event": "increment"}))
        await asyncio.sleep(0.01)
    recovery = await wait_recovered(backend, communicator)
    print(f"pause: {len(during)} events, {slow_count(during, 0.2)} slow")

    assert {kind for kind, _ in during} == {"render"}
    assert max(seconds for _, seconds in during) < 0.25 + 1.0
    # At most one call per retry interval waits for the timeout, plus one of slack.
    assert 1 <= slow_count(during, 0.2) <= math.ceil(pause_ms / 1000 / RETRY_INTERVAL) + 2
    assert set(recovery) == {"pong"}
