"""Fixtures for fault tests: backends on private servers, consumers, worker processes."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from channels.testing.websocket import WebsocketCommunicator

from djust_dist.backends import RedisBackend
from djust_dist.engine.base import Backend
from djust_dist.logutil import reset_log_throttle
from djust_dist.transport.consumer import LiveViewConsumer

REPOSITORY = Path(__file__).resolve().parents[2]
REPLY_TIMEOUT_S = 15.0


@pytest.fixture(autouse=True)
def fresh_log_throttle() -> None:
    """Let every test see the first log line of each kind."""
    reset_log_throttle()


@pytest.fixture
async def make_backend() -> AsyncIterator[Callable[..., RedisBackend]]:
    """Build RedisBackends that are closed after the test."""
    built: list[RedisBackend] = []

    def make(url: str, **options: Any) -> RedisBackend:
        backend = RedisBackend.from_url(url, **options)
        built.append(backend)
        return backend

    yield make

    for backend in built:
        await backend.aclose()


Connect = Callable[..., Awaitable[WebsocketCommunicator]]


@pytest.fixture
async def connect_to() -> AsyncIterator[Callable[[Backend], Connect]]:
    """Return a factory of ``connect(ip)`` functions for a consumer wired to a backend."""
    async with AsyncExitStack() as stack:

        def bind(backend: Backend) -> Connect:
            class FaultConsumer(LiveViewConsumer):
                def get_backend(self) -> Backend:
                    return backend

            app = FaultConsumer.as_asgi()

            async def connect(ip: str = "198.51.100.20") -> WebsocketCommunicator:
                communicator = WebsocketCommunicator(app, "/ws/liveview/")
                communicator.scope["client"] = (ip, 40000)
                connected, _ = await communicator.connect(timeout=5)
                assert connected
                stack.push_async_callback(communicator.disconnect)
                return communicator

            return connect

        yield bind


@dataclass
class WorkerProcess:
    """A ``tests.faults.worker`` child process and its command pipe."""

    process: asyncio.subprocess.Process

    async def call(self, **command: Any) -> dict[str, Any]:
        """Send one command and return its JSON reply."""
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()
        return await self.read()

    async def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), REPLY_TIMEOUT_S)
        assert line, "the worker process exited"
        reply: dict[str, Any] = json.loads(line)
        return reply

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


@pytest.fixture
async def spawn_worker() -> AsyncIterator[Callable[..., Awaitable[WorkerProcess]]]:
    """Start worker processes; every one is killed and reaped after the test."""
    workers: list[WorkerProcess] = []

    async def spawn(url: str, key_prefix: str, lease_ttl: float) -> WorkerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.faults.worker",
            url,
            key_prefix,
            str(lease_ttl),
            cwd=REPOSITORY,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = WorkerProcess(process)
        workers.append(worker)
        assert await worker.read() == {"ready": True}
        return worker

    yield spawn

    for worker in workers:
        worker.kill()
        await worker.process.wait()
