"""Lease renewal keeps live connections counted; released leases free their slot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from channels.testing.websocket import WebsocketCommunicator
from django.test import override_settings

from djust_dist.backends import RedisBackend
from djust_dist.engine.base import Backend
from djust_dist.transport.consumer import LiveViewConsumer

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

LEASE_TTL = 0.6


@pytest.fixture
async def short_lease_backend(redis_url: str, key_prefix: str) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend.from_url(redis_url, key_prefix=key_prefix, lease_ttl=LEASE_TTL)
    yield backend
    await backend.aclose()


def consumer_app(backend: Backend) -> object:
    class TestConsumer(LiveViewConsumer):
        def get_backend(self) -> Backend:
            return backend

    return TestConsumer.as_asgi()


async def open_socket(app: object, ip: str) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(app, "/ws/liveview/")
    communicator.scope["client"] = (ip, 50000)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@override_settings(
    LIVEVIEW_CONFIG={"rate_limit": {"max_connections_per_ip": 1}, "redis": {"lease_ttl": LEASE_TTL}}
)
async def test_live_connection_outlives_lease_ttl(short_lease_backend: RedisBackend) -> None:
    app = consumer_app(short_lease_backend)
    ip = "198.51.100.201"
    holder = await open_socket(app, ip)

    # Three lease TTLs: without renewal the lease would have lapsed twice over.
    await asyncio.sleep(LEASE_TTL * 3)

    second = await open_socket(app, ip)
    rejected = json.loads(await second.receive_from(timeout=5))
    assert rejected["type"] == "connection_rejected"
    assert rejected["reason"] == "limit"
    await second.disconnect()

    await holder.disconnect()
    third = await open_socket(app, ip)
    await third.send_to(text_data='{"type": "ping"}')
    assert json.loads(await third.receive_from(timeout=5)) == {"type": "pong"}
    await third.disconnect()
