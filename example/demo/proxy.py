"""A small round-robin reverse proxy that replaces nginx in the local stack.

Like deploy/nginx.conf, it spreads connections over the workers and appends the
client address to X-Forwarded-For, so the workers run with
DJUST_TRUSTED_PROXIES=1 in both layouts. It works on raw TCP: it rewrites the
head of the first request on a connection and then copies bytes both ways, which
carries WebSocket upgrades without knowing the protocol.

Plain HTTP requests are sent upstream with `Connection: close`. A keep-alive
connection would carry later requests past the head rewrite, without their
X-Forwarded-For. NOTE: pipelined requests on one connection are therefore not
supported; browsers do not pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence

logger = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 10.0
CHUNK_SIZE = 64 * 1024
CLOSE_GRACE = 5.0
BAD_GATEWAY = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

# Per-hop headers that the proxy replaces on plain HTTP requests.
HOP_HEADERS = {b"connection", b"keep-alive", b"proxy-connection"}


def rewrite_head(head: bytes, client_ip: str) -> bytes:
    """Return the request head with client_ip appended to X-Forwarded-For.

    WebSocket upgrade requests keep their Connection and Upgrade headers; any
    other request gets `Connection: close`.
    """
    request_line, *header_lines = head.rstrip(b"\r\n").split(b"\r\n")
    forwarded: list[bytes] = []
    kept: list[tuple[bytes, bytes]] = []
    for line in header_lines:
        name, _, value = line.partition(b":")
        kept.append((name.strip(), value.strip()))

    is_upgrade = any(
        name.lower() == b"connection" and b"upgrade" in value.lower() for name, value in kept
    )
    headers: list[tuple[bytes, bytes]] = []
    for name, value in kept:
        lowered = name.lower()
        if lowered == b"x-forwarded-for":
            forwarded.append(value)
        elif is_upgrade or lowered not in HOP_HEADERS:
            headers.append((name, value))

    forwarded.append(client_ip.encode("ascii"))
    headers.append((b"X-Forwarded-For", b", ".join(forwarded)))
    if not is_upgrade:
        headers.append((b"Connection", b"close"))

    lines = [request_line, *(name + b": " + value for name, value in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes from reader to writer until end of stream, then half-close writer."""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(CHUNK_SIZE):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def close_writer(writer: asyncio.StreamWriter) -> None:
    """Close a stream, ignoring a peer that already went away."""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def relay(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    upstream_reader: asyncio.StreamReader,
    upstream_writer: asyncio.StreamWriter,
) -> None:
    """Copy bytes both ways until both directions end.

    Once one direction has ended, the other gets CLOSE_GRACE seconds to finish, so
    a peer that never closes its half cannot keep the connection open for ever.
    """
    tasks = {
        asyncio.create_task(pump(client_reader, upstream_writer)),
        asyncio.create_task(pump(upstream_reader, client_writer)),
    }
    try:
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_GRACE)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class RoundRobinProxy:
    """Accept TCP connections and hand each one to the next upstream in turn."""

    def __init__(self, upstreams: Sequence[tuple[str, int]]) -> None:
        if not upstreams:
            raise ValueError("RoundRobinProxy needs at least one upstream (host, port)")
        self.upstreams = list(upstreams)
        self._next_index = itertools.cycle(range(len(self.upstreams)))

    async def start(self, host: str, port: int) -> asyncio.Server:
        """Listen on host:port and return the running server."""
        return await asyncio.start_server(self.handle, host, port, limit=MAX_HEAD_BYTES)

    async def handle(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        """Forward one client connection to an upstream worker."""
        try:
            await self._forward(client_reader, client_writer)
        finally:
            await close_writer(client_writer)

    async def _forward(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT):
                head = await client_reader.readuntil(b"\r\n\r\n")
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            ConnectionError,
        ):
            # A client that sends no complete head in time, or a head over
            # MAX_HEAD_BYTES, is dropped without a response.
            return

        peer = client_writer.get_extra_info("peername")
        client_ip = str(peer[0]) if peer else "unknown"
        upstream = await self._connect_upstream()
        if upstream is None:
            client_writer.write(BAD_GATEWAY)
            return

        upstream_reader, upstream_writer = upstream
        try:
            upstream_writer.write(rewrite_head(head, client_ip))
            await relay(client_reader, client_writer, upstream_reader, upstream_writer)
        finally:
            await close_writer(upstream_writer)

    async def _connect_upstream(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Connect to the next upstream; skip ones that refuse, trying each at most once."""
        for _ in range(len(self.upstreams)):
            host, port = self.upstreams[next(self._next_index)]
            try:
                return await asyncio.open_connection(host, port)
            except OSError as exc:
                logger.warning("upstream %s:%s refused a connection: %s", host, port, exc)
        logger.error("no upstream accepted the connection")
        return None
