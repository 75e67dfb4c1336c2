"""The lifespan app completes startup and closes the backend on shutdown."""

from __future__ import annotations

import asyncio
from typing import Any

from djust_dist.conf import runtime
from djust_dist.transport.lifespan import BackendLifespan


async def test_lifespan_closes_backend() -> None:
    backend = runtime.get_backend()
    closed = asyncio.Event()
    original_aclose = backend.aclose

    async def aclose() -> None:
        closed.set()
        await original_aclose()

    backend.aclose = aclose  # type: ignore[method-assign]
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: list[dict[str, Any]] = []
    for message_type in ("lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": message_type})

    async def send(message: dict[str, Any]) -> None:
        outbox.append(message)

    await asyncio.wait_for(BackendLifespan()({"type": "lifespan"}, inbox.get, send), timeout=5)

    assert [message["type"] for message in outbox] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert closed.is_set()
    assert runtime.get_backend() is not backend
