"""A ``djust_dist.kick`` message closes exactly one IP's connections."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import channel_layers, get_channel_layer
from channels.testing.websocket import WebsocketCommunicator
from django.test import override_settings

from djust_dist.backends import MemoryBackend
from djust_dist.conf.settings import get_settings
from djust_dist.engine.base import Backend
from djust_dist.transport.consumer import LiveViewConsumer
from djust_dist.transport.kick import (
    KICK_GROUP,
    kick_target,
    listener_for,
    send_kick,
    stop_kick_listener,
)
from tests.transport.conftest import Connect, SpyBackend
from tests.transport.test_consumer import STRICT_CONFIG, expect_close, receive, send

pytestmark = pytest.mark.django_db(transaction=True)


def test_kick_target_hides_ip() -> None:
    target = kick_target("djust_dist", "2001:db8:1:2::/64")

    assert get_channel_layer().require_valid_group_name(KICK_GROUP)
    assert "2001" not in target
    assert kick_target("other_prefix", "2001:db8:1:2::/64") != target


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_kick_closes_only_that_ip(connect: Connect, backend: SpyBackend) -> None:
    kicked = [await connect(ip="192.0.2.80") for _ in range(2)]
    bystander = await connect(ip="192.0.2.81")

    layer = get_channel_layer()
    await asyncio.wait_for(listener_for(layer).ready.wait(), timeout=5)
    await send_kick(layer, get_settings().redis.key_prefix, "192.0.2.80")

    for communicator in kicked:
        await expect_close(communicator, 4429)
    assert backend.calls["release_connection"] == 2
    assert (await send(bystander, {"type": "ping"}))["type"] == "pong"

    # The kicked IP may connect again at once: a kick alone starts no cooldown.
    again = await connect(ip="192.0.2.80")
    assert (await send(again, {"type": "ping"}))["type"] == "pong"


@pytest.mark.redis
async def test_refused_connection_leaves_no_task(redis_url: str, key_prefix: str) -> None:
    """A connection closed right after it opened ends at once on a channels_redis layer."""
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": redis_url, "socket_timeout": 10}],
                "prefix": key_prefix,
            },
        }
    }
    backend = MemoryBackend()
    await backend.start_cooldown("192.0.2.90", 30)

    class CooldownConsumer(LiveViewConsumer):
        def get_backend(self) -> Backend:
            return backend

    with override_settings(CHANNEL_LAYERS=layers, LIVEVIEW_CONFIG=STRICT_CONFIG):
        channel_layers.backends.clear()
        try:
            communicator = WebsocketCommunicator(CooldownConsumer.as_asgi(), "/ws/liveview/")
            communicator.scope["client"] = ("192.0.2.90", 1234)
            await communicator.connect()
            assert (await receive(communicator))["reason"] == "cooldown"
            await expect_close(communicator, 4429)

            await communicator.send_input({"type": "websocket.disconnect", "code": 4429})
            await asyncio.wait_for(asyncio.shield(communicator.future), timeout=5)
        finally:
            await stop_kick_listener()
            await channel_layers.backends["default"].flush()
            channel_layers.backends.clear()
