"""A limiter worker process driven over stdin/stdout, for the fault tests.

Run as ``python -m tests.faults.worker URL KEY_PREFIX LEASE_TTL``. The process
builds one RedisBackend (``on_error="local"``), renews its leases every
``LEASE_TTL / 3`` seconds, and writes one JSON line per command line:

- ``{"cmd": "fleet"}`` → ``{"workers": <workers seen by the heartbeat>}``
- ``{"cmd": "admit", "ip": ..., "count": n, "limit": k}`` → ``{"admitted": m}``
- ``{"cmd": "consume", "key": ..., "rate": r, "burst": b, "count": n}`` → ``{"allowed": m}``
- ``{"cmd": "exit"}`` → closes the backend and exits.

It also exits when stdin closes or after ``LIFETIME_S`` seconds, so a test that
dies never leaves it behind.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from typing import Any

from djust_dist.backends import Bucket, RedisBackend

LIFETIME_S = 60.0


class Worker:
    """One backend plus the leases this process holds."""

    def __init__(self, url: str, key_prefix: str, lease_ttl: float) -> None:
        self.backend = RedisBackend.from_url(
            url,
            key_prefix=key_prefix,
            lease_ttl=lease_ttl,
            on_error="local",
            timeout=0.25,
            retry_interval=0.5,
        )
        self.lease_ttl = lease_ttl
        self.leases: list[tuple[str, str]] = []

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        """Run one command and return the reply."""
        name = command["cmd"]
        if name == "fleet":
            return {"workers": self.backend.workers_seen}
        if name == "admit":
            return {"admitted": await self.admit(command["ip"], command["count"], command["limit"])}
        if name == "consume":
            bucket = Bucket(command["key"], command["rate"], command["burst"])
            results = [await self.backend.consume([bucket]) for _ in range(command["count"])]
            return {"allowed": sum(result.allowed for result in results)}
        raise ValueError(f"unknown command {name!r}")

    async def admit(self, ip: str, count: int, limit: int) -> int:
        admitted = 0
        for _ in range(count):
            connection_id = uuid.uuid4().hex
            if (await self.backend.admit_connection(ip, connection_id, limit)).admitted:
                self.leases.append((ip, connection_id))
                admitted += 1
        return admitted

    async def renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            if self.leases:
                await self.backend.renew_connections(self.leases)


async def read_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def reply(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def serve(worker: Worker) -> None:
    reader = await read_lines()
    # The first call opens the client, which starts the heartbeat.
    await worker.backend.ping()
    reply({"ready": True})

    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "exit":
            return
        reply(await worker.handle(command))


async def main(url: str, key_prefix: str, lease_ttl: float) -> None:
    worker = Worker(url, key_prefix, lease_ttl)
    renewer = asyncio.create_task(worker.renew_forever())
    try:
        async with asyncio.timeout(LIFETIME_S):
            await serve(worker)
    finally:
        renewer.cancel()
        await asyncio.wait([renewer])
        await worker.backend.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
