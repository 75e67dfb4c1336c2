"""Cluster and sentinel support without a server: URL parsing, slot grouping, refunds."""

from __future__ import annotations

import asyncio

import fakeredis
import pytest

from djust_dist.backends import Bucket, RedisBackend
from djust_dist.engine.cluster import batch_pairs_by_slot, group_buckets_by_slot, slot_of
from djust_dist.engine.connect import (
    check_url,
    cluster_url_parts,
    is_cluster_url,
    sentinel_url_parts,
)
from djust_dist.engine.keys import KeyLayout
from djust_dist.engine.memory import interval_ns
from djust_dist.engine.scripts import get_script


def test_cluster_url_parts() -> None:
    parts = cluster_url_parts("rediss+cluster://app:s%40cret@n1:7000,n2,[::1]:7002/0")

    assert parts.hosts == (("n1", 7000), ("n2", 6379), ("::1", 7002))
    assert parts.tls
    assert parts.username == "app"
    assert parts.password == "s@cret"


def test_sentinel_url_parts() -> None:
    parts, service, db = sentinel_url_parts("redis+sentinel://s1:26379,s2/mymaster/2")

    assert parts.hosts == (("s1", 26379), ("s2", 26379))
    assert not parts.tls
    assert service == "mymaster"
    assert db == 2


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis+cluster://n1:7000/3", "only database 0"),
        ("redis+cluster://n1:7000?ssl_cert_reqs=none", "no query options"),
        ("redis+sentinel://s1:26379", "service name"),
        ("redis+sentinel://s1:26379/mymaster/x", "not a number"),
        ("redis+sentinel://s1:26379/a/1/2", "service name"),
    ],
)
def test_invalid_multi_host_url_raises(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_url(url)
    with pytest.raises(ValueError, match=message):
        RedisBackend.from_url(url)


def test_only_cluster_urls_split_by_slot() -> None:
    assert is_cluster_url("REDIS+CLUSTER://n1:7000")
    assert RedisBackend.from_url("rediss+cluster://n1:7000").cluster
    assert not RedisBackend.from_url("redis+sentinel://s1/mymaster").cluster
    assert not RedisBackend.from_url("redis://127.0.0.1:6379/0").cluster


def test_ip_keys_share_a_slot() -> None:
    layout = KeyLayout("prefix")

    assert slot_of(layout.leases("10.0.0.1")) == slot_of(layout.cooldown("10.0.0.1"))


def test_group_buckets_by_slot_keeps_order() -> None:
    layout = KeyLayout("prefix")
    buckets = [Bucket(f"user:{index}", rate=1, burst=1) for index in range(20)]

    groups = group_buckets_by_slot(layout, buckets)

    assert sorted(bucket.key for group in groups for bucket in group) == sorted(
        bucket.key for bucket in buckets
    )
    for group in groups:
        assert len({slot_of(layout.bucket(bucket.key)) for bucket in group}) == 1


def test_batch_pairs_by_slot_bounds_batches() -> None:
    layout = KeyLayout("prefix")
    pairs = [(f"10.0.{index % 3}.1", f"c{index}") for index in range(25)]

    batches = batch_pairs_by_slot(layout, pairs, batch_size=4)

    assert sorted(pair for batch in batches for pair in batch) == sorted(pairs)
    for batch in batches:
        assert len(batch) <= 4
        assert len({slot_of(layout.leases(ip)) for ip, _ in batch}) == 1


async def test_refund_never_overfills() -> None:
    client = fakeredis.FakeAsyncRedis()
    bucket = Bucket("fast", rate=1000, burst=1)
    key = KeyLayout("prefix").bucket(bucket.key)
    interval = repr(interval_ns(bucket.rate))

    taken = await get_script("consume").run(client, [key], [1, interval, bucket.burst])
    # One token refills in 1 ms, so by now the bucket is full again on its own.
    await asyncio.sleep(0.02)
    moved = await get_script("refund").run(client, [key], [1, interval])
    first = await get_script("consume").run(client, [key], [1, interval, bucket.burst])
    second = await get_script("consume").run(client, [key], [1, interval, bucket.burst])
    await client.aclose()

    assert taken[0] == 1
    assert moved == 0
    assert first[0] == 1
    assert second[0] == 0


async def test_refund_returns_taken_tokens() -> None:
    client = fakeredis.FakeAsyncRedis()
    bucket = Bucket("slow", rate=0.01, burst=3)
    key = KeyLayout("prefix").bucket(bucket.key)
    interval = repr(interval_ns(bucket.rate))

    await get_script("consume").run(client, [key], [2, interval, bucket.burst])
    moved = await get_script("refund").run(client, [key], [2, interval])
    missing = await get_script("refund").run(client, ["prefix:bucket:{absent}"], [1, interval])
    allowed = await get_script("consume").run(client, [key], [3, interval, bucket.burst])
    await client.aclose()

    assert moved == 1
    assert missing == 0
    assert allowed[0] == 1
