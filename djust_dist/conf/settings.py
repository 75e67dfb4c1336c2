"""The one entry point for djust_dist settings: ``get_settings()``.

Settings are read lazily from ``LIVEVIEW_CONFIG`` and ``REDIS_URL`` and cached
until Django's ``setting_changed`` signal fires for either of them, so
``override_settings`` takes effect at once. An invalid value falls back to its
default instead of raising, and the system checks report it.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings as django_settings

from djust_dist.conf.redis_url import redact_url, redis_url_problem
from djust_dist.conf.schema import DEFAULTS, SETTING_NAME, ConfigReport, inspect_config

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULTS",
    "DjustSettings",
    "RateLimitSettings",
    "RedisSettings",
    "clear_settings_cache",
    "get_settings",
    "raw_config",
    "raw_redis_url",
]


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """``LIVEVIEW_CONFIG["rate_limit"]``: connection buckets, warnings and per-IP limits."""

    rate: float
    burst: int
    max_warnings: int
    warning_window: float
    max_connections_per_ip: int
    reconnect_cooldown: float
    ip_rate: float | None
    ip_burst: int | None


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """``LIVEVIEW_CONFIG["redis"]``: options of the Redis backend."""

    key_prefix: str
    on_error: str
    timeout: float
    lease_ttl: float
    retry_interval: float

    def backend_options(self) -> dict[str, Any]:
        """Return these options as keyword arguments for ``RedisBackend.from_url``."""
        return {
            "key_prefix": self.key_prefix,
            "on_error": self.on_error,
            "timeout": self.timeout,
            "lease_ttl": self.lease_ttl,
            "retry_interval": self.retry_interval,
        }


@dataclass(frozen=True, slots=True)
class DjustSettings:
    """The validated settings, with defaults filled in for missing or invalid values.

    ``redis_url`` is None when no Redis is configured, and then the limits are
    kept in each process's memory.
    """

    event_security: str
    max_message_size: int
    trusted_proxies: int | tuple[str, ...]
    rate_limit: RateLimitSettings
    redis: RedisSettings
    redis_url: str | None

    def backend_options(self) -> dict[str, Any]:
        """Return the keyword options for ``RedisBackend.from_url`` or ``MemoryBackend``.

        These are the ``redis`` options plus ``limit_retry_hint``, the
        ``retry_after`` reported when a connection is refused for the per-IP limit.
        """
        return {
            **self.redis.backend_options(),
            "limit_retry_hint": self.rate_limit.reconnect_cooldown,
        }


def raw_config() -> object:
    """Return ``settings.LIVEVIEW_CONFIG`` as written, or ``{}`` when it is not set."""
    return getattr(django_settings, SETTING_NAME, {})


def raw_redis_url() -> object:
    """Return the configured Redis URL before validation.

    The Django setting ``REDIS_URL`` wins when it is defined, even as None or "",
    which both mean no Redis. Otherwise the ``REDIS_URL`` environment variable is
    used, and None is returned when neither is set.
    """
    if hasattr(django_settings, "REDIS_URL"):
        return getattr(django_settings, "REDIS_URL", None)
    return os.environ.get("REDIS_URL")


@functools.lru_cache(maxsize=1)
def get_settings() -> DjustSettings:
    """Return the current settings, read once and cached until a setting changes."""
    report = inspect_config(raw_config())
    if report.problems:
        paths = sorted({problem.key_path for problem in report.problems})
        logger.warning(
            "Invalid settings %s: their defaults are used instead. "
            "Run 'manage.py check' for details.",
            ", ".join(paths),
        )
    return _build_settings(report, _validated_redis_url(raw_redis_url()))


def clear_settings_cache() -> None:
    """Drop the cached settings, so the next ``get_settings()`` reads them again."""
    get_settings.cache_clear()


def _build_settings(report: ConfigReport, redis_url: str | None) -> DjustSettings:
    def value(*path: str) -> Any:
        return report.values[path]

    rate_limit = RateLimitSettings(
        rate=float(value("rate_limit", "rate")),
        burst=value("rate_limit", "burst"),
        max_warnings=value("rate_limit", "max_warnings"),
        warning_window=float(value("rate_limit", "warning_window")),
        max_connections_per_ip=value("rate_limit", "max_connections_per_ip"),
        reconnect_cooldown=float(value("rate_limit", "reconnect_cooldown")),
        ip_rate=_optional_float(value("rate_limit", "ip_rate")),
        ip_burst=value("rate_limit", "ip_burst"),
    )
    redis = RedisSettings(
        key_prefix=value("redis", "key_prefix"),
        on_error=value("redis", "on_error"),
        timeout=float(value("redis", "timeout")),
        lease_ttl=float(value("redis", "lease_ttl")),
        retry_interval=float(value("redis", "retry_interval")),
    )
    return DjustSettings(
        event_security=value("event_security"),
        max_message_size=value("max_message_size"),
        trusted_proxies=value("trusted_proxies"),
        rate_limit=rate_limit,
        redis=redis,
        redis_url=redis_url,
    )


def _optional_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _validated_redis_url(url: object) -> str | None:
    """Return the URL when it is usable, None for "no Redis" and for invalid values."""
    if url is None or url == "":
        return None

    problem = redis_url_problem(url)
    if problem is None:
        return cast(str, url)

    # Limits still hold per process, which beats refusing to start.
    logger.error(
        "REDIS_URL %s is invalid (%s): limits fall back to per-process memory. "
        "Run 'manage.py check' for details.",
        redact_url(url) if isinstance(url, str) else type(url).__name__,
        problem,
    )
    return None
