"""Batched renewal of the connection leases held by this worker process."""

from __future__ import annotations

import asyncio
import logging
import weakref

from djust_dist.engine.base import Backend
from djust_dist.transport.tasks import cancel_and_wait

logger = logging.getLogger(__name__)


class LeaseRenewer:
    """Renews every live connection lease of one event loop in one backend call.

    One renewer runs per event loop, so a worker with thousands of connections
    costs the backend one ``renew_connections`` call per interval, not one per
    connection. The task stops by itself when no lease is left.
    """

    def __init__(self, backend: Backend, interval: float) -> None:
        self.backend = backend
        self.interval = interval
        self.leases: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, ip: str, connection_id: str) -> None:
        self.leases.add((ip, connection_id))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, ip: str, connection_id: str) -> None:
        self.leases.discard((ip, connection_id))

    async def renew_now(self) -> None:
        """Renew every registered lease once."""
        if self.leases:
            await self.backend.renew_connections(sorted(self.leases))

    async def _run(self) -> None:
        while self.leases:
            await asyncio.sleep(self.interval)
            try:
                await self.renew_now()
            except Exception:
                # The loop must survive a backend failure: a missed renewal only
                # shortens the leases, and the next interval tries again.
                logger.exception("Renewing %d connection leases failed", len(self.leases))

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None


_renewers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, LeaseRenewer]] = (
    weakref.WeakKeyDictionary()
)


def renewer_for(backend: Backend, lease_ttl: float) -> LeaseRenewer:
    """Return the renewer of ``backend`` for the running event loop.

    Leases are renewed three times per ``lease_ttl``, so one missed or slow
    renewal never lets a live connection's lease lapse.
    """
    loop = asyncio.get_running_loop()
    per_loop = _renewers.setdefault(loop, {})
    renewer = per_loop.get(id(backend))
    if renewer is None or renewer.backend is not backend:
        renewer = LeaseRenewer(backend, interval=max(lease_ttl / 3, 0.05))
        per_loop[id(backend)] = renewer
    return renewer
