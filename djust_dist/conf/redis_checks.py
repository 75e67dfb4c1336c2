"""Django system check that connects to the configured Redis server.

It runs with every ``manage.py check`` (tag ``djust_dist``) when REDIS_URL is
set and well formed, and takes about one second at most. Ids:

- E010 Redis is older than 5.0, so the scripts cannot run.
- E011 Redis rejected SCRIPT LOAD of the limiter scripts.
- W004 Redis did not respond within the budget.
- W005 ``maxmemory-policy`` is an ``allkeys-*`` policy.

Running workers log the same findings once, after their first heartbeat (see
``djust_dist.engine.heartbeat``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.apps import AppConfig
from django.core import checks

from djust_dist.conf.redis_url import redact_url
from djust_dist.conf.settings import raw_redis_url
from djust_dist.engine.selfcheck import Finding, inspect_server_sync

REDIS_VERSION_ERROR_ID = "djust_dist.E010"
REDIS_SCRIPTS_ERROR_ID = "djust_dist.E011"
REDIS_UNREACHABLE_WARNING_ID = "djust_dist.W004"
REDIS_EVICTION_WARNING_ID = "djust_dist.W005"

CHECK_BUDGET_S = 1.0

_IDS = {
    "version": REDIS_VERSION_ERROR_ID,
    "scripts": REDIS_SCRIPTS_ERROR_ID,
    "unreachable": REDIS_UNREACHABLE_WARNING_ID,
    "eviction": REDIS_EVICTION_WARNING_ID,
}

# Sentinel and cluster URLs are not inspected here: the check would first have
# to discover the servers. The backend's self-check inspects them after its
# first heartbeat and logs what it finds.
_INSPECTED_SCHEMES = frozenset({"redis", "rediss", "unix"})


def check_redis_server(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Connect to REDIS_URL and report what would keep the limiter from working there."""
    # The raw value, not get_settings(): reading the settings logs a runtime
    # warning about invalid keys, which the other checks already report.
    url = raw_redis_url()
    if not isinstance(url, str) or not url:
        return []
    if urlsplit(url).scheme.lower() not in _INSPECTED_SCHEMES:
        return []

    report = inspect_server_sync(url, CHECK_BUDGET_S)
    return [_message(finding, redact_url(url)) for finding in report.findings]


def _message(finding: Finding, url: str) -> checks.CheckMessage:
    level = checks.ERROR if finding.severity == "error" else checks.WARNING
    return checks.CheckMessage(
        level,
        f"Redis at {url}: {finding.message}.",
        hint=finding.hint,
        id=_IDS[finding.code],
    )
