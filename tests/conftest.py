"""Shared fixtures: the test Redis, private redis-server processes, key prefixes."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import redis.asyncio

from tests.servers import LocalCluster, LocalSentinel, free_port

IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"


def missing_infrastructure(message: str) -> None:
    """Fail under CI (where .ci/run installs everything), skip on a developer machine."""
    if IN_CI:
        pytest.fail(f"{message} (CI=true, so missing infrastructure is a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the shared test Redis (db 15 unless the REDIS_URL variable sets another)."""
    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing_infrastructure(f"no Redis answers at {TEST_REDIS_URL}: {exc}")
    finally:
        client.close()
    return TEST_REDIS_URL


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A key prefix unique to this test; its keys are deleted afterwards when Redis is up."""
    prefix = f"djust_dist_test:{uuid.uuid4().hex[:12]}"
    yield prefix

    try:
        client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=1)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    except redis.RedisError:
        pass


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@dataclass
class RedisServer:
    """A private redis-server process on a free port, for tests that stop or flush it."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra_args: str) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 10.0) -> None:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[[], RedisServer]]:
    """Start private redis-server processes; every one is stopped after the test."""
    if shutil.which("redis-server") is None:
        missing_infrastructure("redis-server is not installed (apt-get install redis-server)")

    servers: list[RedisServer] = []

    def start() -> RedisServer:
        workdir = tmp_path / f"redis-{len(servers)}"
        workdir.mkdir()
        server = RedisServer(port=free_port(), workdir=workdir)
        server.start()
        servers.append(server)
        return server

    yield start

    for server in servers:
        server.kill()


@pytest.fixture
def redis_server(redis_server_factory: Callable[[], RedisServer]) -> RedisServer:
    return redis_server_factory()


def _require_cluster_tools() -> None:
    for tool in ("redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            missing_infrastructure(f"{tool} is not installed (apt-get install redis-server)")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A private Redis Cluster of three masters, shared by the session and stopped after it."""
    _require_cluster_tools()
    cluster = LocalCluster.start(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_sentinel(tmp_path: Path) -> Iterator[LocalSentinel]:
    """A private master, replica and sentinel for one test (a failover changes them)."""
    _require_cluster_tools()
    deployment = LocalSentinel.start(tmp_path)
    try:
        yield deployment
    finally:
        deployment.stop()
