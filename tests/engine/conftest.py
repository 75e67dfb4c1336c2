"""The table of limiter backends that the behavioural suite runs against."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
import redis.asyncio

from djust_dist.backends import Backend, MemoryBackend, RedisBackend
from djust_dist.engine.connect import open_cluster_client

KeyScanner = Callable[[], "redis.asyncio.Redis | redis.asyncio.RedisCluster"]


@dataclass
class BackendCase:
    """Builds backends of one kind and checks the Redis keys they leave behind."""

    kind: str
    build: Callable[..., Backend]
    open_client: KeyScanner | None = None
    key_prefix: str = ""
    built: list[Backend] = field(default_factory=list)

    def make(self, **options: Any) -> Backend:
        backend = self.build(**options)
        self.built.append(backend)
        return backend

    async def check_keys(self, identities: tuple[str, ...] = ()) -> None:
        """Assert that every key has a TTL and is made of the prefix and digests only."""
        if self.open_client is None:
            return

        layout = re.compile(
            re.escape(self.key_prefix)
            + r":(bucket:\{[0-9a-f]{32}\}|ip:\{[0-9a-f]{32}\}:(leases|cooldown)|workers)"
        )
        # A cluster client's SCAN visits every master.
        client = self.open_client()
        try:
            async for raw_key in client.scan_iter(match=f"{self.key_prefix}:*", count=500):
                key = raw_key.decode()
                ttl_ms = await client.pttl(raw_key)
                # -2: the key expired between SCAN and PTTL, which is fine.
                assert ttl_ms > 0 or ttl_ms == -2, f"{key} has no TTL (PTTL {ttl_ms})"
                assert layout.fullmatch(key), f"unexpected key name {key!r}"
                for identity in identities:
                    assert identity not in key
        finally:
            await client.aclose()


def _memory_case(request: pytest.FixtureRequest) -> BackendCase:
    return BackendCase(kind="memory", build=lambda **options: MemoryBackend(**options))


def _fakeredis_case(request: pytest.FixtureRequest) -> BackendCase:
    server = fakeredis.FakeServer()

    def open_client() -> redis.asyncio.Redis:
        return fakeredis.FakeAsyncRedis(server=server)

    def build(**options: Any) -> Backend:
        return RedisBackend(open_client, key_prefix="djust_dist_fake", **options)

    return BackendCase("fakeredis", build, open_client, key_prefix="djust_dist_fake")


def _fakeredis_slots_case(request: pytest.FixtureRequest) -> BackendCase:
    """fakeredis with the cluster code path: one script call per slot, refunds on denial."""
    server = fakeredis.FakeServer()

    def open_client() -> redis.asyncio.Redis:
        return fakeredis.FakeAsyncRedis(server=server)

    def build(**options: Any) -> Backend:
        return RedisBackend(open_client, cluster=True, key_prefix="djust_dist_fake", **options)

    return BackendCase("fakeredis-slots", build, open_client, key_prefix="djust_dist_fake")


def _redis_case(request: pytest.FixtureRequest) -> BackendCase:
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("key_prefix")

    def open_client() -> redis.asyncio.Redis:
        return redis.asyncio.Redis.from_url(url)

    def build(**options: Any) -> Backend:
        return RedisBackend.from_url(url, key_prefix=prefix, **options)

    return BackendCase("redis", build, open_client, key_prefix=prefix)


def _cluster_case(request: pytest.FixtureRequest) -> BackendCase:
    cluster = request.getfixturevalue("redis_cluster")
    prefix = request.getfixturevalue("key_prefix")

    def open_client() -> redis.asyncio.RedisCluster:
        return open_cluster_client(cluster.url, timeout=5.0)

    def build(**options: Any) -> Backend:
        return RedisBackend.from_url(cluster.url, key_prefix=prefix, **options)

    return BackendCase("cluster", build, open_client, key_prefix=prefix)


BACKEND_TABLE = [
    pytest.param(_memory_case, id="memory"),
    pytest.param(_fakeredis_case, id="fakeredis"),
    pytest.param(_fakeredis_slots_case, id="fakeredis-slots"),
    pytest.param(_redis_case, id="redis", marks=pytest.mark.redis),
    pytest.param(_cluster_case, id="cluster", marks=pytest.mark.cluster),
]


@pytest.fixture(params=BACKEND_TABLE)
async def backends(request: pytest.FixtureRequest) -> AsyncIterator[BackendCase]:
    """One BackendCase per backend kind; its backends are closed after the test."""
    case: BackendCase = request.param(request)
    yield case

    # A Redis failure would hide behind the local fallback and still pass.
    failed = [backend for backend in case.built if getattr(backend, "circuit_open", False)]
    for backend in case.built:
        await backend.aclose()
    assert not failed, f"{case.kind}: Redis failed during the test, the fallback answered"


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
async def make_backend(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[..., RedisBackend]]:
    """Build RedisBackends on fakeredis or the test Redis, closed after the test."""
    built: list[RedisBackend] = []
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()

        def make(**options: Any) -> RedisBackend:
            return RedisBackend(lambda: fakeredis.FakeAsyncRedis(server=server), **options)

    else:
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("key_prefix")

        def make(**options: Any) -> RedisBackend:
            return RedisBackend.from_url(url, key_prefix=prefix, **options)

    def build(**options: Any) -> RedisBackend:
        backend = make(**options)
        built.append(backend)
        return backend

    yield build

    for backend in built:
        await backend.aclose()
