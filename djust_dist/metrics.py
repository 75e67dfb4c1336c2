"""Prometheus metrics of djust_dist, recorded through small hook functions.

The hooks (``frame_allowed``, ``frame_denied``, ``connection_admitted`` and the
rest) are called by the consumer, the circuit breaker and the deny cache. When
``prometheus_client`` is not installed (it comes with the ``metrics`` extra),
every hook does nothing and costs one function call.

This module has no Django imports, so the limiter engine can call it. The Django
view that serves the metrics is ``djust_dist.views.metrics_view``.

Under several worker processes each process counts on its own. Set the
``PROMETHEUS_MULTIPROC_DIR`` environment variable to an empty directory before
the workers start, and ``metrics_view`` then adds up the counts of all of them
(prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

prometheus_client: Any
try:
    import prometheus_client
except ImportError:  # pragma: no cover - exercised only without the extra
    prometheus_client = None

PREFIX = "djust_dist"

# Seconds. A Redis call on a local network takes well under a millisecond, and
# the default timeout of the Redis backend is 0.25 s, so the buckets span both.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Metrics:
    """The djust_dist collectors, registered on one Prometheus registry."""

    def __init__(self, registry: Any) -> None:
        client = _require_client()
        self.registry = registry
        self.frames_allowed = client.Counter(
            f"{PREFIX}_frames_allowed",
            "Client frames that passed every check and the limiter, by frame type.",
            ["frame_type"],
            registry=registry,
        )
        self.frames_denied = client.Counter(
            f"{PREFIX}_frames_denied",
            "Client frames answered with an error or rate_limit_exceeded, by reason.",
            ["reason"],
            registry=registry,
        )
        self.connections_admitted = client.Counter(
            f"{PREFIX}_connections_admitted",
            "WebSocket connections admitted by the per-IP limit and cooldown.",
            registry=registry,
        )
        self.connections_refused = client.Counter(
            f"{PREFIX}_connections_refused",
            "WebSocket connections refused, by reason (limit, cooldown, unavailable).",
            ["reason"],
            registry=registry,
        )
        self.connections_closed = client.Counter(
            f"{PREFIX}_connections_closed",
            "Admitted connections closed by the server, by reason (abuse, kick).",
            ["reason"],
            registry=registry,
        )
        self.backend_errors = client.Counter(
            f"{PREFIX}_backend_errors",
            "Failed limiter backend calls (timeouts, refused connections, error replies).",
            registry=registry,
        )
        self.backend_outages = client.Counter(
            f"{PREFIX}_backend_outages",
            "Limiter backend outages: the first failure after a healthy period.",
            registry=registry,
        )
        self.deny_cache_hits = client.Counter(
            f"{PREFIX}_deny_cache_hits",
            "Denials answered from the in-process deny cache without a Redis call.",
            registry=registry,
        )
        self.limiter_latency = client.Histogram(
            f"{PREFIX}_limiter_latency_seconds",
            "Seconds per limiter consume call, including the fallback during an outage.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )


def _require_client() -> Any:
    if prometheus_client is None:
        raise RuntimeError(
            "prometheus_client is not installed: install djust_dist[metrics] to record metrics"
        )
    return prometheus_client


def _build_default() -> Metrics | None:
    if prometheus_client is None:
        return None
    return Metrics(prometheus_client.REGISTRY)


_active: Metrics | None = _build_default()


def render_latest() -> tuple[bytes, str] | None:
    """Return the text exposition of every metric and its content type, or None without the extra.

    With ``PROMETHEUS_MULTIPROC_DIR`` set, the counts of every worker process that
    wrote to that directory are added up. Otherwise only this process's counts
    are shown.
    """
    if prometheus_client is None:
        return None

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess = importlib.import_module("prometheus_client.multiprocess")
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY

    body: bytes = prometheus_client.generate_latest(registry)
    return body, str(prometheus_client.CONTENT_TYPE_LATEST)


def enabled() -> bool:
    """Return whether hooks record anything (prometheus_client is installed)."""
    return _active is not None


def install(metrics: Metrics | None) -> Metrics | None:
    """Make hooks record into ``metrics`` and return the previous collectors (None: hooks off).

    Tests install a ``Metrics`` built on a fresh ``CollectorRegistry`` to read
    exact counts.
    """
    global _active

    previous = _active
    _active = metrics
    return previous


def active() -> Metrics | None:
    """Return the collectors the hooks record into, or None when they are off."""
    return _active


def frame_allowed(frame_type: str) -> None:
    """Count a frame that passed the limiter (``mount``, ``event`` or ``ping``)."""
    if _active is not None:
        _active.frames_allowed.labels(frame_type=frame_type).inc()


def frame_denied(reason: str) -> None:
    """Count a frame rejected with an error code or with ``rate_limit_exceeded``."""
    if _active is not None:
        _active.frames_denied.labels(reason=reason).inc()


def connection_admitted() -> None:
    """Count a WebSocket connection that got a lease."""
    if _active is not None:
        _active.connections_admitted.inc()


def connection_refused(reason: str) -> None:
    """Count a rejected connection. ``reason`` is ``limit``, ``cooldown`` or ``unavailable``."""
    if _active is not None:
        _active.connections_refused.labels(reason=reason).inc()


def connection_closed(reason: str) -> None:
    """Count an admitted connection that the server closed (``abuse`` or ``kick``)."""
    if _active is not None:
        _active.connections_closed.labels(reason=reason).inc()


def backend_error() -> None:
    """Count one failed backend call."""
    if _active is not None:
        _active.backend_errors.inc()


def backend_outage() -> None:
    """Count the start of a backend outage."""
    if _active is not None:
        _active.backend_outages.inc()


def deny_cache_hit() -> None:
    """Count a denial served by the deny cache instead of Redis."""
    if _active is not None:
        _active.deny_cache_hits.inc()


@contextmanager
def limiter_timer() -> Iterator[None]:
    """Observe the seconds the ``with`` block takes in the limiter latency histogram."""
    if _active is None:
        yield
        return

    histogram = _active.limiter_latency
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - started)
