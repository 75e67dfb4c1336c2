"""``manage.py djust_dist`` against the real test Redis, under a unique key prefix."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from channels.testing.websocket import WebsocketCommunicator
from django.core.management import CommandError, call_command
from django.test import override_settings

from djust_dist import mount_token
from djust_dist.conf.runtime import close_backend, get_backend
from djust_dist.engine.scripts import script_versions
from djust_dist.transport.consumer import LiveViewConsumer
from tests.conftest import free_port
from tests.transport.views import SearchView

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

IP = "203.0.113.5"
SEARCH_BUCKET = f"bucket handler:ip:{IP}:tests.transport.views.SearchView:search"


def run(*args: str) -> str:
    """Run the command in this thread and return what it wrote to stdout."""
    out = io.StringIO()
    call_command("djust_dist", *args, stdout=out)
    return out.getvalue()


async def run_async(*args: str) -> str:
    # The command runs its own event loop, so async tests call it from a thread.
    return await asyncio.to_thread(run, *args)


def field(output: str, name: str) -> str:
    match = re.search(rf"^{re.escape(name)}: (.*)$", output, re.MULTILINE)
    assert match is not None, f"no {name!r} line in:\n{output}"
    return match.group(1)


@pytest.fixture
def redis_config(redis_url: str, key_prefix: str) -> Iterator[dict[str, Any]]:
    config: dict[str, Any] = {
        "redis": {"key_prefix": key_prefix},
        "rate_limit": {"ip_rate": 1, "ip_burst": 50, "max_warnings": 1000},
    }
    with override_settings(REDIS_URL=redis_url, LIVEVIEW_CONFIG=config):
        yield config


def test_status_reports_redis(redis_config: dict[str, Any], key_prefix: str) -> None:
    output = run("status")

    assert field(output, "backend") == "RedisBackend"
    assert field(output, "reachable").startswith("yes (")
    assert field(output, "key prefix") == key_prefix
    assert re.fullmatch(r"\d+\.\d+\.\d+", field(output, "server version"))
    for name, sha in script_versions().items():
        assert field(output, f"script {name}").startswith(sha)


@override_settings(REDIS_URL=None)
def test_status_memory_backend() -> None:
    output = run("status")

    assert "MemoryBackend" in field(output, "backend")


def test_status_unreachable_redacts_password() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"

    with override_settings(REDIS_URL=url), pytest.raises(CommandError) as raised:
        run("status", "--timeout", "0.5")

    message = str(raised.value)
    assert "hunter2" not in message
    assert "***" in message
    assert "check that it is running" in message


@override_settings(REDIS_URL=None)
def test_inspect_needs_redis() -> None:
    with pytest.raises(CommandError, match="REDIS_URL is not set"):
        run("inspect", "--ip", IP)


def test_invalid_ip_rejected(redis_config: dict[str, Any]) -> None:
    with pytest.raises(CommandError, match="not an IP address"):
        run("inspect", "--ip", "not-an-ip")


async def open_search(ip: str) -> WebsocketCommunicator:
    """Connect as ``ip``, mount SearchView and send two searches."""
    communicator = WebsocketCommunicator(LiveViewConsumer.as_asgi(), "/ws/liveview/")
    communicator.scope["client"] = (ip, 40000)
    connected, _ = await communicator.connect()
    assert connected

    frames: list[dict[str, Any]] = [{"type": "mount", "token": mount_token(SearchView)}]
    frames += [{"type": "event", "event": "search", "params": {"query": "a"}}] * 2
    for frame in frames:
        await communicator.send_to(text_data=json.dumps(frame))
        reply = json.loads((await communicator.receive_output(timeout=5))["text"])
        assert reply["type"] == "render", reply
    return communicator


async def test_inspect_then_reset(redis_config: dict[str, Any]) -> None:
    communicator = await open_search(IP)
    await get_backend().start_cooldown(IP, 30)
    try:
        before = await run_async("inspect", "--ip", f"{IP}:51000")
        reset = await run_async("reset", "--ip", IP)
        after = await run_async("inspect", "--ip", IP)
    finally:
        await communicator.disconnect()
        await close_backend()

    assert field(before, "ip") == IP
    assert field(before, "live connections") == "1"
    lease = re.search(r"lease [0-9a-f]{32} expires in ([\d.]+) s", before)
    assert lease is not None
    assert 25 < float(lease.group(1)) <= 30
    assert 29 < float(field(before, "cooldown remaining").removesuffix(" s")) <= 30
    # mount + 2 searches took 3 tokens from the IP bucket; 2 searches from the handler bucket.
    assert field(before, f"bucket ip:{IP}").startswith("47.")
    assert field(before, SEARCH_BUCKET).startswith("3.0")

    assert "deleted 4 key(s)" in reset

    assert field(after, "live connections") == "0"
    assert field(after, "cooldown remaining") == "0.0 s"
    assert field(after, f"bucket ip:{IP}").startswith("50.00 of 50")
    assert field(after, SEARCH_BUCKET).startswith("5.00 of 5")


def test_kick_rejects_in_memory_layer(redis_config: dict[str, Any]) -> None:
    with pytest.raises(CommandError, match="InMemoryChannelLayer"):
        run("kick", "--ip", IP)


def test_kick_invalid_cooldown(redis_config: dict[str, Any]) -> None:
    with pytest.raises(CommandError, match="number of seconds"):
        run("kick", "--ip", IP, "--cooldown", "-1")
