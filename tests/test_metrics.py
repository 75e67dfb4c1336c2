"""Metrics of the circuit breaker, the /metrics view and prometheus_client's multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import pytest
from django.test import Client
from prometheus_client import CollectorRegistry

from djust_dist import metrics
from djust_dist.backends import Bucket, RedisBackend
from djust_dist.engine.breaker import CircuitBreaker
from tests.conftest import free_port

REPO_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    fresh = CollectorRegistry()
    previous = metrics.install(metrics.Metrics(fresh))
    yield fresh
    metrics.install(previous)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_breaker_counts_errors_and_outages(registry: CollectorRegistry) -> None:
    now = [0.0]
    breaker = CircuitBreaker(1.0, clock=lambda: now[0])

    breaker.failed(OSError("refused"))
    now[0] = 2.0
    assert breaker.allow()
    breaker.failed(OSError("refused"))
    now[0] = 4.0
    assert breaker.allow()
    breaker.succeeded()
    breaker.failed(OSError("refused"))

    assert sample(registry, "djust_dist_backend_errors_total") == 3
    assert sample(registry, "djust_dist_backend_outages_total") == 2


async def test_unreachable_redis_counts_one_error(registry: CollectorRegistry) -> None:
    # Nothing listens on this port, so every call that reaches the socket fails.
    backend = RedisBackend.from_url(
        f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, retry_interval=60
    )
    try:
        for _ in range(3):
            decision = await backend.consume([Bucket("metrics", rate=1, burst=5)])
            assert decision.allowed
    finally:
        await backend.aclose()

    # The breaker opened after the first failure and kept the next calls local.
    assert sample(registry, "djust_dist_backend_errors_total") == 1
    assert sample(registry, "djust_dist_backend_outages_total") == 1


def test_deny_cache_hook_counts(registry: CollectorRegistry) -> None:
    metrics.deny_cache_hit()
    metrics.deny_cache_hit()

    assert sample(registry, "djust_dist_deny_cache_hits_total") == 2


def test_metrics_view_serves_exposition() -> None:
    metrics.frame_allowed("ping")

    response = Client().get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert "# TYPE djust_dist_frames_allowed_total counter" in body
    assert "# TYPE djust_dist_limiter_latency_seconds histogram" in body


def test_metrics_view_404_without_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "prometheus_client", None)

    response = Client().get("/metrics")

    assert response.status_code == 404
    assert b"djust_dist[metrics]" in response.content


def run_python(code: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_multiprocess_dir_sums_workers(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    record = "from djust_dist import metrics\nfor _ in range({n}): metrics.frame_allowed('ping')"

    run_python(record.format(n=2), env)
    run_python(record.format(n=3), env)
    output = run_python(
        "from djust_dist import metrics\nprint(metrics.render_latest()[0].decode())", env
    )

    assert 'djust_dist_frames_allowed_total{frame_type="ping"} 5.0' in output


async def test_deny_cache_hits_reach_metrics(registry: CollectorRegistry) -> None:
    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    backend = RedisBackend.from_client(client, key_prefix="djust_dist_metrics")
    bucket = Bucket("caller", rate=0.01, burst=1)

    first = await backend.consume([bucket])
    denied_by_redis = await backend.consume([bucket])
    denied_by_cache = await backend.consume([bucket])
    await backend.aclose()

    assert first.allowed
    assert not denied_by_redis.allowed
    assert not denied_by_cache.allowed
    assert sample(registry, "djust_dist_deny_cache_hits_total") == 1
