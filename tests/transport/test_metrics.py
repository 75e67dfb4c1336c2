"""Prometheus counters after known traffic through the consumer, on both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings
from prometheus_client import CollectorRegistry

from djust_dist import metrics, mount_token
from tests.transport.conftest import Connect, SpyBackend
from tests.transport.test_consumer import config, expect_close, mounted, receive, send
from tests.transport.views import CounterView, FailingMountView, SearchView

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    """Record the hooks into a fresh registry, so every count starts at zero."""
    fresh = CollectorRegistry()
    previous = metrics.install(metrics.Metrics(fresh))
    yield fresh
    metrics.install(previous)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """Return a sample's value, 0.0 when it was never recorded."""
    return registry.get_sample_value(name, labels) or 0.0


def denied(registry: CollectorRegistry, reason: str) -> float:
    return sample(registry, "djust_dist_frames_denied_total", reason=reason)


def allowed(registry: CollectorRegistry, frame_type: str) -> float:
    return sample(registry, "djust_dist_frames_allowed_total", frame_type=frame_type)


@override_settings(LIVEVIEW_CONFIG=config(max_message_size=200))
async def test_frame_counts_by_type_and_reason(
    connect: Connect, backend: SpyBackend, registry: CollectorRegistry
) -> None:
    unmounted = await connect()
    assert (await send(unmounted, {"type": "event", "event": "increment"}))["error"] == (
        "not_mounted"
    )

    communicator = await mounted(connect)
    for _ in range(2):
        assert (await send(communicator, {"type": "event", "event": "increment"}))["type"] == (
            "render"
        )
    assert (await send(communicator, {"type": "ping"}))["type"] == "pong"
    assert (await send(communicator, {"type": "event", "event": "Bad-Name"}))["error"] == (
        "invalid_event_name"
    )
    assert (await send(communicator, {"type": "event", "event": "undecorated"}))["error"] == (
        "unknown_event"
    )
    assert (await send(communicator, "not an object"))["error"] == "invalid_message"
    assert (await send(communicator, {"type": "ping", "pad": "x" * 300}))["error"] == (
        "message_too_large"
    )
    assert (await send(communicator, {"type": "event", "event": "explode"}))["error"] == (
        "handler_error"
    )

    failing = await connect(ip="198.51.100.8")
    reply = await send(failing, {"type": "mount", "token": mount_token(FailingMountView)})
    assert reply["error"] == "handler_error"

    rejected = await connect(ip="198.51.100.9")
    assert (await send(rejected, {"type": "mount", "token": "forged"}))["error"] == "invalid_token"
    await expect_close(rejected, 4403)

    # The forged and the failing mount both passed the limiter before they failed.
    assert allowed(registry, "mount") == 3
    assert allowed(registry, "event") == 3
    assert allowed(registry, "ping") == 1
    assert denied(registry, "not_mounted") == 1
    assert denied(registry, "invalid_event_name") == 1
    assert denied(registry, "unknown_event") == 1
    assert denied(registry, "invalid_message") == 1
    assert denied(registry, "message_too_large") == 1
    assert denied(registry, "handler_error") == 2
    assert denied(registry, "invalid_token") == 1
    assert denied(registry, "rate_limited") == 0
    latency_count = sample(registry, "djust_dist_limiter_latency_seconds_count")
    assert latency_count == backend.calls["consume"]
    assert latency_count == 7


@override_settings(LIVEVIEW_CONFIG=config())
async def test_rate_limited_frames_counted(connect: Connect, registry: CollectorRegistry) -> None:
    communicator = await mounted(connect, view=SearchView)

    replies = [await send(communicator, {"type": "event", "event": "search"}) for _ in range(7)]

    assert [reply["type"] for reply in replies].count("rate_limit_exceeded") == 2
    assert allowed(registry, "event") == 5
    assert denied(registry, "rate_limited") == 2


@override_settings(
    LIVEVIEW_CONFIG=config(
        rate_limit={"max_connections_per_ip": 2, "max_warnings": 1, "reconnect_cooldown": 30}
    )
)
async def test_connection_counts_by_reason(connect: Connect, registry: CollectorRegistry) -> None:
    ip = "192.0.2.61"
    first = await connect(ip=ip)
    await connect(ip=ip)
    over_limit = await connect(ip=ip)
    assert (await receive(over_limit))["reason"] == "limit"

    # One warning is the maximum here, so the invalid frame closes for abuse.
    await first.send_to(text_data=json.dumps({"type": "event", "event": "_x"}))
    await receive(first)
    await expect_close(first, 4429)
    in_cooldown = await connect(ip=ip)
    assert (await receive(in_cooldown))["reason"] == "cooldown"

    assert sample(registry, "djust_dist_connections_admitted_total") == 2
    assert sample(registry, "djust_dist_connections_refused_total", reason="limit") == 1
    assert sample(registry, "djust_dist_connections_refused_total", reason="cooldown") == 1
    assert sample(registry, "djust_dist_connections_closed_total", reason="abuse") == 1


@override_settings(LIVEVIEW_CONFIG=config())
async def test_hooks_off_without_metrics(connect: Connect) -> None:
    previous = metrics.install(None)
    try:
        assert not metrics.enabled()
        communicator = await mounted(connect, view=CounterView)
        reply: dict[str, Any] = await send(communicator, {"type": "ping"})
        assert reply["type"] == "pong"
        metrics.deny_cache_hit()
        metrics.backend_error()
    finally:
        metrics.install(previous)
