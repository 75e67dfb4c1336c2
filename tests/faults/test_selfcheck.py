"""The Redis self-check: the Django check with its ids, and the log line of a worker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest
import redis
from django.core import checks
from django.test import override_settings

from djust_dist.backends import RedisBackend
from djust_dist.conf.redis_checks import check_redis_server
from djust_dist.engine.selfcheck import inspect_info, parse_version
from tests.conftest import RedisServer, free_port

pytestmark = [pytest.mark.faults, pytest.mark.redis]


def ids_of(messages: list[checks.CheckMessage]) -> list[str | None]:
    return [message.id for message in messages]


def set_policy(server: RedisServer, policy: str) -> None:
    with redis.Redis.from_url(server.url) as client:
        client.config_set("maxmemory-policy", policy)


def test_healthy_server_passes(redis_server: RedisServer) -> None:
    with override_settings(REDIS_URL=redis_server.url):
        assert check_redis_server() == []


@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_allkeys_policy_warns(redis_server: RedisServer, policy: str) -> None:
    set_policy(redis_server, policy)

    with override_settings(REDIS_URL=redis_server.url):
        [message] = check_redis_server()

    assert message.id == "djust_dist.W005"
    assert message.level == checks.WARNING
    assert policy in message.msg
    assert "volatile-ttl" in (message.hint or "")


@pytest.mark.parametrize("policy", ["noeviction", "volatile-ttl", "volatile-lru"])
def test_ttl_policies_pass(redis_server: RedisServer, policy: str) -> None:
    set_policy(redis_server, policy)

    with override_settings(REDIS_URL=redis_server.url):
        assert check_redis_server() == []


def test_unreachable_warns_within_budget() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"

    started = time.monotonic()
    with override_settings(REDIS_URL=url):
        messages = check_redis_server()
    elapsed = time.monotonic() - started

    assert ids_of(messages) == ["djust_dist.W004"]
    # The budget is 1 s; this only separates "bounded" from "hung".
    assert elapsed < 3


def test_scripting_denied_is_error(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.execute_command(
            "ACL", "SETUSER", "limited", "on", ">secret-pw", "~*", "+@all", "-@scripting"
        )
    url = f"redis://limited:secret-pw@127.0.0.1:{redis_server.port}/0"

    with override_settings(REDIS_URL=url):
        messages = check_redis_server()

    assert ids_of(messages) == ["djust_dist.E011"]
    assert "secret-pw" not in messages[0].msg


def test_check_registered_with_tag(redis_server: RedisServer) -> None:
    set_policy(redis_server, "allkeys-lru")

    with override_settings(REDIS_URL=redis_server.url):
        messages = checks.run_checks(tags=["djust_dist"])

    assert "djust_dist.W005" in ids_of(messages)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("7.2.4", (7, 2, 4)),
        ("5.0.0", (5, 0, 0)),
        ("6.2.0-rc1", (6, 2, 0)),
        ("x", None),
        (None, None),
    ],
)
def test_parse_version(version: object, expected: tuple[int, ...] | None) -> None:
    assert parse_version(version) == expected


@pytest.mark.parametrize("version", ["4.0.14", "3.2.12", "garbage"])
def test_old_version_is_error(version: str) -> None:
    [finding] = inspect_info({"redis_version": version, "maxmemory_policy": "noeviction"})

    assert finding.code == "version"
    assert finding.severity == "error"


async def test_worker_logs_findings_once(
    redis_server: RedisServer,
    make_backend: Callable[..., RedisBackend],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="djust_dist.engine.selfcheck")
    set_policy(redis_server, "allkeys-lru")
    backend = make_backend(redis_server.url, lease_ttl=0.3)

    assert await backend.ping()
    for _ in range(50):
        if caplog.records:
            break
        await asyncio.sleep(0.05)
    # Several more heartbeats go by; none of them logs again.
    await asyncio.sleep(0.5)

    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "allkeys-lru" in record.getMessage()
