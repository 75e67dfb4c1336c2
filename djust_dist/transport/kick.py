"""Closing every connection of one IP on every worker, through the channel layer.

Each worker process runs one listener per event loop, which joins the
channel-layer group ``djust_dist.kick``. ``send_kick`` sends one message to that
group naming the target (a digest of the key prefix and the IP), and each
listener closes its own connections of that target with close code 4429.

Connections do not get a channel-layer channel of their own: with channels_redis
a receive cancelled right after it started can keep blocking Redis for ever,
and refused or short-lived connections would each leave such a task behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections.abc import Awaitable
from typing import Any, Protocol

from djust_dist.logutil import log_throttled
from djust_dist.transport.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

KICK_GROUP = "djust_dist.kick"
KICK_MESSAGE_TYPE = "djust_dist.kick"

# Channels drops group members after the layer's group expiry (one day by
# default for channels_redis), so the listener joins again well before that.
GROUP_REFRESH_INTERVAL = 3600.0
RETRY_DELAY = 1.0


class Kickable(Protocol):
    def kick(self) -> Awaitable[None]: ...


def kick_target(key_prefix: str, ip: str) -> str:
    """Return the name under which the connections of ``ip`` are kicked.

    The key prefix is part of the digest, so two deployments that share a
    channel layer but not a key prefix never close each other's connections,
    and the IP never appears in a channel-layer message.
    """
    data = f"{key_prefix}\n{ip}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:40]


async def send_kick(channel_layer: Any, key_prefix: str, ip: str) -> None:
    """Ask every worker to close its connections of ``ip``; ``ip`` must be normalised."""
    message = {"type": KICK_MESSAGE_TYPE, "target": kick_target(key_prefix, ip)}
    await channel_layer.group_send(KICK_GROUP, message)


class KickListener:
    """Receives kick messages for one event loop and closes the matching connections."""

    def __init__(self, channel_layer: Any) -> None:
        self.channel_layer = channel_layer
        self.connections: dict[str, weakref.WeakSet[Any]] = {}
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def register(self, target: str, connection: Kickable) -> None:
        """Close ``connection`` on kicks of ``target``; starts the listener on first use.

        The listener joins the group in the background, so a connection never
        waits for the channel layer. A kick sent before it joined is missed.
        """
        self.connections.setdefault(target, weakref.WeakSet()).add(connection)
        if self._task is None or self._task.done():
            self.ready.clear()
            self._task = asyncio.get_running_loop().create_task(self._run())

    def unregister(self, target: str, connection: Kickable) -> None:
        members = self.connections.get(target)
        if members is None:
            return
        members.discard(connection)
        if not members:
            del self.connections[target]

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except Exception as exc:
                # A channel-layer outage must not end kicks for good: log it
                # once per minute and join again after a pause.
                log_throttled(
                    logger,
                    logging.ERROR,
                    "kick_listener",
                    "The kick listener failed: %r; joining the channel layer again",
                    exc,
                )
                self.ready.clear()
                await asyncio.sleep(RETRY_DELAY)

    async def _listen(self) -> None:
        channel = await self.channel_layer.new_channel()
        await self.channel_layer.group_add(KICK_GROUP, channel)
        self.ready.set()
        loop = asyncio.get_running_loop()
        joined_at = loop.time()

        while True:
            message = await self.channel_layer.receive(channel)
            if loop.time() - joined_at > GROUP_REFRESH_INTERVAL:
                await self.channel_layer.group_add(KICK_GROUP, channel)
                joined_at = loop.time()
            if message.get("type") == KICK_MESSAGE_TYPE:
                await self._kick(str(message.get("target", "")))

    async def _kick(self, target: str) -> None:
        for connection in list(self.connections.get(target, ())):
            await connection.kick()


_stopping: set[asyncio.Task[None]] = set()
_listeners: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, KickListener] = (
    weakref.WeakKeyDictionary()
)


def listener_for(channel_layer: Any) -> KickListener:
    """Return the kick listener of the running event loop, creating it on first use."""
    loop = asyncio.get_running_loop()
    listener = _listeners.get(loop)
    if listener is None or listener.channel_layer is not channel_layer:
        if listener is not None:
            # The settings named another channel layer: retire the old listener.
            stopping = loop.create_task(listener.stop())
            _stopping.add(stopping)
            stopping.add_done_callback(_stopping.discard)
        listener = KickListener(channel_layer)
        _listeners[loop] = listener
    return listener


async def stop_kick_listener() -> None:
    """Stop the kick listener of the running event loop, if one runs."""
    listener = _listeners.pop(asyncio.get_running_loop(), None)
    if listener is not None:
        await listener.stop()
