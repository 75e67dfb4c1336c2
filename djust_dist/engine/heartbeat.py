"""Worker heartbeats: each RedisBackend counts the workers that share its Redis.

Every ``window / 3`` seconds a backend adds its worker id, scored by the Redis
clock, to one sorted set per key prefix and reads back how many workers beat
within ``window`` seconds (``heartbeat.lua``, one round trip). The window is the
lease TTL, so a worker counts as alive exactly as long as its connection leases
would. While Redis is unreachable the last count stays in force, and the local
fallback divides the fleet-wide limits by it (see ``fallback``).

After its first successful heartbeat the backend also inspects the server
once (see ``selfcheck``) and logs what it found.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import uuid
from collections.abc import Callable

from redis.exceptions import RedisError, ResponseError

from djust_dist.engine.connect import RedisClient
from djust_dist.engine.scripts import get_script
from djust_dist.engine.selfcheck import inspect_server, log_report

logger = logging.getLogger(__name__)

# Beats per window: one lost or slow heartbeat never makes a live worker vanish.
BEATS_PER_WINDOW = 3
MIN_INTERVAL = 0.05

_FAILURES = (RedisError, OSError, TimeoutError)


def new_worker_id() -> str:
    """Return an id that names this process for operators and is unique per backend."""
    host = socket.gethostname()[:64] or "localhost"
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Heartbeat:
    """Records this worker in Redis now and then and remembers how many workers it saw.

    One background task per backend beats, in the event loop that first used the
    backend, and is restarted in another loop once that loop has closed. Calls
    bypass the circuit breaker: the heartbeat never delays an event, and its
    failures only keep the last count.
    """

    def __init__(
        self,
        client: Callable[[], RedisClient],
        key: str,
        *,
        window: float,
        timeout: float,
        worker_id: str | None = None,
    ) -> None:
        self.key = key
        self.window = window
        self.timeout = timeout
        self.interval = max(window / BEATS_PER_WINDOW, MIN_INTERVAL)
        self.worker_id = worker_id or new_worker_id()

        self._client = client
        self._window_us = math.ceil(window * 1_000_000)
        self._workers_seen = 1
        self._task: asyncio.Task[None] | None = None
        self._server_checked = False
        self._failing = False

    @property
    def workers_seen(self) -> int:
        """Workers alive at the last successful heartbeat, this one included (at least 1)."""
        return self._workers_seen

    def start(self) -> None:
        """Start the heartbeat task in the running loop unless one is already alive."""
        task = self._task
        if task is not None and not task.done() and not task.get_loop().is_closed():
            return
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"djust_dist heartbeat {self.worker_id}"
        )

    async def beat(self) -> int | None:
        """Send one heartbeat; return the workers alive, or None when the call failed."""
        try:
            async with asyncio.timeout(self.timeout):
                alive = await get_script("heartbeat").run(
                    self._client(), [self.key], [self.worker_id, self._window_us]
                )
        except _FAILURES as exc:
            if not self._failing:
                # The circuit breaker logs the outage itself when events fail.
                logger.debug("Heartbeat of %s failed: %r", self.worker_id, exc)
            self._failing = True
            return None

        self._failing = False
        self._workers_seen = max(int(alive), 1)
        return self._workers_seen

    async def stop(self) -> None:
        """Stop the task and, from the task's own loop, remove this worker from the set."""
        task, self._task = self._task, None
        if task is None or task.done():
            return

        loop = task.get_loop()
        if loop is not asyncio.get_running_loop():
            # A task of another thread's loop must be cancelled from that thread.
            if not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)
            return

        task.cancel()
        # wait() does not raise the task's CancelledError, but a cancellation of
        # the caller still propagates. The bound keeps a stuck task from
        # blocking shutdown.
        await asyncio.wait([task], timeout=self.timeout + 1)
        await self._deregister()

    async def _run(self) -> None:
        task = asyncio.current_task()
        while True:
            try:
                alive = await self.beat()
                if alive is not None and not self._server_checked:
                    self._server_checked = await self._inspect_server()
            except Exception:
                # The task must outlive a bug in one beat, or the count would freeze.
                logger.exception("Heartbeat of %s failed unexpectedly", self.worker_id)

            if task is not None and task.cancelling():
                # redis-py can turn a cancellation in the middle of a command into a
                # connection error, which beat() swallows; stop as asked anyway.
                raise asyncio.CancelledError
            await asyncio.sleep(self.interval)

    async def _inspect_server(self) -> bool:
        """Log the self-check findings once; return False to try again after the next beat."""
        try:
            report = await inspect_server(self._client(), self.timeout)
        except ResponseError as exc:
            # The server replied but rejected INFO or SCRIPT LOAD (an ACL, or a
            # stand-in such as fakeredis), so trying again would not help.
            logger.info("Redis self-check skipped, the server rejected a command: %s", exc)
            return True
        except _FAILURES as exc:
            logger.debug("Redis self-check postponed, Redis did not respond: %r", exc)
            return False

        log_report(report)
        return True

    async def _deregister(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await get_script("heartbeat").run(self._client(), [self.key], [self.worker_id, 0])
        except _FAILURES as exc:
            # Without the removal this worker still counts until its entry ages out.
            logger.debug("Removing heartbeat of %s failed: %r", self.worker_id, exc)
