"""Fixtures for consumer tests: a backend table and a communicator factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import pytest
from channels.testing.websocket import WebsocketCommunicator

from djust_dist.backends import Bucket, MemoryBackend, RedisBackend
from djust_dist.engine.base import Backend
from djust_dist.engine.types import Admission, Decision
from djust_dist.transport.consumer import LiveViewConsumer
from djust_dist.transport.kick import stop_kick_listener


class SpyBackend(Backend):
    """Delegates to a real backend and counts the calls that reach it."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    async def consume(self, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        self._count("consume")
        return await self.inner.consume(buckets, cost)

    async def admit_connection(self, ip: str, connection_id: str, limit: int) -> Admission:
        self._count("admit_connection")
        return await self.inner.admit_connection(ip, connection_id, limit)

    async def release_connection(self, ip: str, connection_id: str) -> None:
        self._count("release_connection")
        await self.inner.release_connection(ip, connection_id)

    async def renew_connections(self, items: Any) -> None:
        self._count("renew_connections")
        await self.inner.renew_connections(items)

    async def start_cooldown(self, ip: str, seconds: float) -> None:
        self._count("start_cooldown")
        await self.inner.start_cooldown(ip, seconds)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture(
    params=[
        pytest.param("memory", id="memory"),
        pytest.param("redis", id="redis", marks=pytest.mark.redis),
    ]
)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[SpyBackend]:
    """The consumer's backend: in-memory, or the real test Redis under a fresh prefix."""
    if request.param == "memory":
        inner: Backend = MemoryBackend()
    else:
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("key_prefix")
        inner = RedisBackend.from_url(url, key_prefix=prefix)

    spy = SpyBackend(inner)
    yield spy
    await spy.aclose()


Connect = Callable[..., Awaitable[WebsocketCommunicator]]


@pytest.fixture
async def connect(backend: SpyBackend) -> AsyncIterator[Connect]:
    """Open communicators to a consumer wired to ``backend``; all are closed afterwards."""

    class TestConsumer(LiveViewConsumer):
        def get_backend(self) -> Backend:
            return backend

    app = TestConsumer.as_asgi()

    async with AsyncExitStack() as stack:
        stack.push_async_callback(stop_kick_listener)

        async def open_socket(
            ip: str = "198.51.100.7", user: Any = None, expect_accept: bool = True
        ) -> WebsocketCommunicator:
            communicator = WebsocketCommunicator(app, "/ws/liveview/")
            communicator.scope["client"] = (ip, 40000)
            if user is not None:
                communicator.scope["user"] = user
            connected, _ = await communicator.connect()
            assert connected is expect_accept
            stack.push_async_callback(communicator.disconnect)
            return communicator

        yield open_socket
