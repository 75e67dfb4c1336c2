"""A ``djust_dist.kick`` group message closes exactly one IP's connections."""

from __future__ import annotations

import pytest
from channels.layers import get_channel_layer
from django.test import override_settings

from djust_dist.conf.settings import get_settings
from djust_dist.transport.kick import kick_group, send_kick
from tests.transport.conftest import Connect, SpyBackend
from tests.transport.test_consumer import STRICT_CONFIG, expect_close, send

pytestmark = pytest.mark.django_db(transaction=True)


def test_kick_group_is_valid_channels_name() -> None:
    group = kick_group("djust_dist", "2001:db8:1:2::/64")

    assert get_channel_layer().require_valid_group_name(group)
    assert "2001" not in group
    assert kick_group("other_prefix", "2001:db8:1:2::/64") != group


@override_settings(LIVEVIEW_CONFIG=STRICT_CONFIG)
async def test_kick_closes_only_that_ip(connect: Connect, backend: SpyBackend) -> None:
    kicked = [await connect(ip="192.0.2.80") for _ in range(2)]
    bystander = await connect(ip="192.0.2.81")

    await send_kick(get_channel_layer(), get_settings().redis.key_prefix, "192.0.2.80")

    for communicator in kicked:
        await expect_close(communicator, 4429)
    assert backend.calls["release_connection"] == 2
    assert (await send(bystander, {"type": "ping"}))["type"] == "pong"

    # The kicked IP may connect again at once: a kick alone starts no cooldown.
    again = await connect(ip="192.0.2.80")
    assert (await send(again, {"type": "ping"}))["type"] == "pong"
