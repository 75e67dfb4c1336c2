"""Full-stack events per second through LiveViewConsumer, in-process.

Clients are channels ``WebsocketCommunicator`` instances talking to the ASGI
application directly (no sockets): each mounts a small view, then sends
``increment`` events one after another and waits for each render. Every event
passes the whole consumer (size, shape, name guard, allowlist, one ``consume``
call, an async handler, a template render in a worker thread).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from benchmarks.django_setup import configure_django

configure_django()

from channels.testing.websocket import WebsocketCommunicator  # noqa: E402

from djust_dist import LiveView, event_handler, mount_token, rate_limit  # noqa: E402
from djust_dist.backends import Backend  # noqa: E402
from djust_dist.consumers import LiveViewConsumer  # noqa: E402

REPLY_TIMEOUT = 10.0
CLIENT_PORT = 40000


class BenchCounterView(LiveView):
    """A counter with one plain and one rate-limited handler."""

    template_name = "bench/counter.html"

    def mount(self, request: Any, **params: Any) -> None:
        self.count = 0

    @event_handler
    async def increment(self) -> None:
        self.count += 1

    @event_handler
    @rate_limit(rate=1, burst=20)
    async def search(self) -> None:
        self.count -= 1


def consumer_app(backend: Backend) -> Any:
    """Return the ASGI app of a LiveViewConsumer wired to ``backend``."""

    class BenchConsumer(LiveViewConsumer):
        def get_backend(self) -> Backend:
            return backend

    return BenchConsumer.as_asgi()


async def send_event(client: WebsocketCommunicator, event: str, ref: int) -> dict[str, Any]:
    """Send one event and return the server's reply frame."""
    await client.send_to(text_data=json.dumps({"type": "event", "event": event, "ref": ref}))
    reply = await client.receive_from(timeout=REPLY_TIMEOUT)
    frame: dict[str, Any] = json.loads(reply)
    return frame


@asynccontextmanager
async def mounted_clients(app: Any, count: int, ip: str) -> AsyncIterator[list[Any]]:
    """Open ``count`` connections from ``ip``, each with the counter view mounted."""
    token = mount_token(BenchCounterView)
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(count):
            client = WebsocketCommunicator(app, "/ws/liveview/")
            client.scope["client"] = (ip, CLIENT_PORT)
            connected, _ = await client.connect(timeout=REPLY_TIMEOUT)
            if not connected:
                raise RuntimeError(f"the benchmark connection from {ip} was rejected")
            stack.push_async_callback(client.disconnect)

            await client.send_to(text_data=json.dumps({"type": "mount", "token": token}))
            frame = json.loads(await client.receive_from(timeout=REPLY_TIMEOUT))
            if frame.get("type") != "render":
                raise RuntimeError(f"mounting the benchmark view failed: {frame}")
            clients.append(client)
        yield clients


async def events_per_second(backend: Backend, connections: int, events_each: int) -> float:
    """Return events per second with ``connections`` clients sending events concurrently."""
    app = consumer_app(backend)
    async with mounted_clients(app, connections, "198.51.100.10") as clients:

        async def run_client(client: WebsocketCommunicator) -> None:
            for ref in range(events_each):
                frame = await send_event(client, "increment", ref)
                if frame.get("type") != "render":
                    raise RuntimeError(f"a benchmark event was not rendered: {frame}")

        started = time.perf_counter()
        await asyncio.gather(*(run_client(client) for client in clients))
        elapsed = time.perf_counter() - started
    return connections * events_each / elapsed
