"""An ASGI lifespan app that closes the limiter backend when the server stops."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from djust_dist.conf.runtime import close_backend
from djust_dist.transport.kick import stop_kick_listener

logger = logging.getLogger(__name__)

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BackendLifespan:
    """Handles the ASGI ``lifespan`` scope: stops the kick listener and closes Redis on shutdown.

    Route it as ``ProtocolTypeRouter({"lifespan": BackendLifespan(), ...})`` and
    run the server with lifespan events on (uvicorn's default ``--lifespan auto``).
    """

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._shutdown(send)
                return

    async def _shutdown(self, send: Send) -> None:
        try:
            await stop_kick_listener()
            await close_backend()
        except Exception as exc:
            # Report the failure and let shutdown go on, since the server stops anyway.
            logger.exception("Closing the limiter backend failed")
            await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})
