"""WebSocket client helpers for the demo scenarios: mount tokens, attempts, frames.

Every helper connects straight to one worker's port on 127.0.0.1, as a load
balancer would after picking that worker. No X-Forwarded-For header is sent, so
the workers see the socket peer 127.0.0.1 as the client IP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

HOST = "127.0.0.1"
WS_PATH = "/ws/liveview/"
RECEIVE_TIMEOUT = 10.0
TOKEN_PATTERN = re.compile(r'data-djust-token="([^"]+)"')


class DemoError(RuntimeError):
    """A worker replied in a way the demo did not expect. The message names the frame."""


@dataclass(frozen=True)
class Attempt:
    """The outcome of one connection attempt.

    An admitted attempt keeps its socket open and mounted, so it occupies one of the
    IP's connection slots until the caller closes it. A refused one carries the
    `connection_rejected` reason, its retry_after and the close code.
    """

    port: int
    socket: ClientConnection | None
    reason: str | None = None
    retry_after: float | None = None
    close_code: int | None = None

    @property
    def admitted(self) -> bool:
        return self.socket is not None


def http_url(port: int, path: str = "/") -> str:
    return f"http://{HOST}:{port}{path}"


def fetch_mount_token(port: int, path: str) -> str:
    """Fetch a LiveView page from one worker and return its embedded mount token."""
    with urllib.request.urlopen(http_url(port, path), timeout=RECEIVE_TIMEOUT) as response:
        page = response.read().decode()
    match = TOKEN_PATTERN.search(page)
    if match is None:
        raise DemoError(f"no data-djust-token in the page {http_url(port, path)}")
    return match.group(1)


async def open_socket(port: int) -> ClientConnection:
    """Open a WebSocket to one worker, with the Origin that the example allows."""
    return await connect(
        f"ws://{HOST}:{port}{WS_PATH}",
        # The example wraps the consumer in AllowedHostsOriginValidator.
        origin=Origin(http_url(port).rstrip("/")),
        open_timeout=RECEIVE_TIMEOUT,
        close_timeout=2,
    )


async def receive_frame(socket: ClientConnection) -> dict[str, Any]:
    """Receive one JSON frame; raise ConnectionClosed when the server closed first."""
    async with asyncio.timeout(RECEIVE_TIMEOUT):
        raw = await socket.recv()
    frame = json.loads(raw)
    if not isinstance(frame, dict):
        raise DemoError(f"expected a JSON object, got {raw!r}")
    return frame


async def send_frame(socket: ClientConnection, frame: dict[str, Any]) -> None:
    await socket.send(json.dumps(frame))


async def receive_reply(socket: ClientConnection, ref: int) -> dict[str, Any]:
    """Receive frames until the reply to the event with this ref arrives."""
    while True:
        frame = await receive_frame(socket)
        if frame.get("ref") == ref:
            return frame


async def wait_closed(socket: ClientConnection) -> int | None:
    """Wait until the server has closed the socket and return its close code."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(RECEIVE_TIMEOUT):
            await socket.wait_closed()
    return socket.close_code


async def attempt_connection(port: int, token: str) -> Attempt:
    """Connect to a worker and mount a view: admitted on `render`, else refused.

    The server accepts a refused connection, sends `connection_rejected` and then
    closes with 4429, so the first frame distinguishes the two cases.
    """
    socket = await open_socket(port)
    try:
        # A refused socket may already be closing, so the mount may not go out.
        with contextlib.suppress(ConnectionClosed):
            await send_frame(socket, {"type": "mount", "token": token})
        try:
            frame = await receive_frame(socket)
        except ConnectionClosed:
            return Attempt(port, None, close_code=await wait_closed(socket))
    except BaseException:
        await socket.close()
        raise

    if frame.get("type") == "render":
        return Attempt(port, socket)
    if frame.get("type") != "connection_rejected":
        await socket.close()
        raise DemoError(f"expected render or connection_rejected from port {port}, got {frame}")
    return Attempt(
        port,
        None,
        reason=frame.get("reason"),
        retry_after=frame.get("retry_after"),
        close_code=await wait_closed(socket),
    )


async def close_attempts(attempts: Iterable[Attempt]) -> None:
    """Close every admitted socket; sockets to a killed worker are already dead."""
    sockets = [attempt.socket for attempt in attempts if attempt.socket is not None]
    await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
