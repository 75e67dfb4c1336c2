"""The process-wide limiter backend, chosen from settings."""

from __future__ import annotations

import logging
from typing import Any

from djust_dist.conf.settings import DjustSettings, get_settings
from djust_dist.engine.base import Backend
from djust_dist.engine.memory import MemoryBackend
from djust_dist.engine.redis import RedisBackend

logger = logging.getLogger(__name__)

_current: tuple[tuple[Any, ...], Backend] | None = None
_retired: list[Backend] = []


def _backend_key(settings: DjustSettings) -> tuple[Any, ...]:
    return (settings.redis_url, tuple(sorted(settings.backend_options().items())))


def build_backend(settings: DjustSettings) -> Backend:
    """Create the backend that ``settings`` describe: Redis when REDIS_URL is set."""
    options = settings.backend_options()
    if settings.redis_url:
        return RedisBackend.from_url(settings.redis_url, **options)
    return MemoryBackend(
        lease_ttl=options["lease_ttl"], limit_retry_hint=options["limit_retry_hint"]
    )


def get_backend() -> Backend:
    """Return this process's backend, rebuilding it after the settings changed."""
    global _current

    settings = get_settings()
    key = _backend_key(settings)
    if _current is not None and _current[0] == key:
        return _current[1]

    if _current is not None:
        _retired.append(_current[1])
    backend = build_backend(settings)
    logger.info("Limiter backend: %s", type(backend).__name__)
    _current = (key, backend)
    return backend


async def close_backend() -> None:
    """Close the current and any replaced backend; the next call builds a new one."""
    global _current

    backends = list(_retired)
    _retired.clear()
    if _current is not None:
        backends.append(_current[1])
        _current = None
    for backend in backends:
        await backend.aclose()
