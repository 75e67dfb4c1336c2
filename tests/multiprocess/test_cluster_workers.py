"""The connection limit across three real uvicorn workers that share a Redis Cluster."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo.runner import HAMMER_MAX_WARNINGS
from demo.scenarios import CLOSE_ABUSE, DemoConfig, connection_limit
from demo.stack import Stack

from djust_dist.engine.connect import open_cluster_client
from djust_dist.engine.keys import KeyLayout
from tests.multiprocess.conftest import target_of
from tests.servers import LocalCluster

pytestmark = [pytest.mark.multiprocess, pytest.mark.cluster, pytest.mark.slow]

HAMMER = dataclasses.replace(DemoConfig(), max_warnings=HAMMER_MAX_WARNINGS)


@pytest.fixture
def cluster_stack(redis_cluster: LocalCluster, key_prefix: str, tmp_path: Path) -> Iterator[Stack]:
    """Three workers whose limiter uses the cluster; the channel layer stays in-process.

    channels_redis cannot connect to a cluster URL, so DJUST_CHANNEL_LAYER=memory
    keeps the example's channel layer in each worker.
    """
    stack = Stack(
        workers=3,
        log_dir=tmp_path / "stack",
        redis_url=redis_cluster.url,
        key_prefix=key_prefix,
        extra_env={**HAMMER.worker_env(), "DJUST_CHANNEL_LAYER": "memory"},
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


async def test_connection_limit_holds_on_cluster(
    cluster_stack: Stack, redis_cluster: LocalCluster, key_prefix: str, tmp_path: Path
) -> None:
    target = target_of(cluster_stack, HAMMER)

    result = await connection_limit(target, connections=15)
    workers_in_cluster = await count_workers(redis_cluster, key_prefix)
    logs = "\n".join(path.read_text() for path in (tmp_path / "stack").glob("*.log"))

    limit = HAMMER.max_connections_per_ip
    assert limit == 10
    assert result.admitted == limit
    assert len(result.refusals) == 15 - limit
    assert set(result.refusals) == {("limit", CLOSE_ABUSE)}
    assert result.held
    # Every worker reached the cluster, and none fell back to in-process limits.
    assert workers_in_cluster == 3
    assert "Uvicorn running" in logs
    assert "is unavailable, falling back" not in logs


async def count_workers(cluster: LocalCluster, key_prefix: str) -> int:
    client = open_cluster_client(cluster.url, timeout=5.0)
    try:
        return int(await client.zcard(KeyLayout(key_prefix).workers()))
    finally:
        await client.aclose()
