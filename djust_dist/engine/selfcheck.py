"""Inspect a Redis server for what the limiter needs: version, scripts, eviction policy.

``inspect_server_sync`` runs at ``manage.py check`` time with the sync client and
a total budget of about one second. ``inspect_server`` runs the same inspection
on a backend's async client after its first successful heartbeat, and
``log_report`` writes the findings to the log once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError, ResponseError

from djust_dist.engine.connect import RedisClient
from djust_dist.engine.scripts import SCRIPT_NAMES, get_script

logger = logging.getLogger(__name__)

# The scripts read the clock with TIME and then write. Redis 5 replicates
# script effects by default, which makes that legal; Redis 3.2 and 4 reject
# such writes unless the script calls redis.replicate_commands().
MIN_REDIS_VERSION = (5, 0, 0)

# The sync inspection makes one connection and two round trips, INFO and then
# the SCRIPT LOAD pipeline. These shares of the budget keep the total under it.
_CONNECT_SHARE = 0.4
_COMMAND_SHARE = 0.3

_VERSION_PATTERN = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")

Severity = Literal["error", "warning"]
FindingCode = Literal["unreachable", "version", "scripts", "eviction"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with the Redis server, with what to do about it."""

    code: FindingCode
    severity: Severity
    message: str
    hint: str


@dataclass(frozen=True, slots=True)
class ServerReport:
    """Result of one inspection: the server version, eviction policy and findings."""

    version: str | None
    eviction_policy: str | None
    findings: tuple[Finding, ...]


def parse_version(text: object) -> tuple[int, ...] | None:
    """Turn a ``redis_version`` such as ``"7.2.4"`` into a tuple; None when unreadable."""
    if not isinstance(text, str):
        return None

    match = _VERSION_PATTERN.match(text)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups(default="0"))


def inspect_info(info: Mapping[str, Any]) -> list[Finding]:
    """Check the fields of ``INFO server`` and ``INFO memory`` that the limiter depends on."""
    findings: list[Finding] = []

    version = parse_version(info.get("redis_version"))
    if version is None or version < MIN_REDIS_VERSION:
        findings.append(_old_version(info.get("redis_version")))

    policy = info.get("maxmemory_policy")
    if isinstance(policy, str) and policy.startswith("allkeys-"):
        findings.append(_evicting_policy(policy))
    return findings


def script_load_findings(results: Sequence[object]) -> list[Finding]:
    """Turn the replies of one SCRIPT LOAD per script into findings for the failures."""
    failed = [
        f"{name}: {result}"
        for name, result in zip(SCRIPT_NAMES, results, strict=True)
        if isinstance(result, BaseException)
    ]
    if not failed:
        return []

    return [
        Finding(
            code="scripts",
            severity="error",
            message=f"Redis rejected the djust_dist Lua scripts: {'; '.join(failed)}",
            hint="Scripting must be enabled and the user needs the SCRIPT and EVALSHA "
            "commands (Redis ACL: +@scripting). Reinstall djust_dist if a script is damaged.",
        )
    ]


def unreachable(error: BaseException, timeout: float) -> Finding:
    """Build the finding for a server that did not respond within ``timeout`` seconds."""
    return Finding(
        code="unreachable",
        severity="warning",
        message=f"Redis is unreachable (checked for {timeout:g} s): {str(error).rstrip('.')}",
        hint="Start Redis or correct REDIS_URL. Until Redis answers, every worker applies "
        'the redis.on_error mode ("local" by default: per-process limits).',
    )


def inspect_server_sync(url: str, timeout: float = 1.0) -> ServerReport:
    """Inspect the server at ``url`` with the sync client, in about ``timeout`` seconds."""
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout * _CONNECT_SHARE,
        socket_timeout=timeout * _COMMAND_SHARE,
        retry=None,
    )
    try:
        info_pipe = client.pipeline(transaction=False)
        info_pipe.info("server")
        info_pipe.info("memory")
        info = _merge(info_pipe.execute())

        load_pipe = client.pipeline(transaction=False)
        for name in SCRIPT_NAMES:
            load_pipe.script_load(get_script(name).source)
        loaded = load_pipe.execute(raise_on_error=False)
    except (RedisError, OSError) as exc:
        return ServerReport(None, None, (unreachable(exc, timeout),))
    finally:
        client.close()

    return _report(info, loaded)


async def inspect_server(client: RedisClient, round_trip_s: float) -> ServerReport:
    """Inspect the server behind an async ``client``; each round trip gets ``round_trip_s``.

    Raises RedisError, OSError or TimeoutError when the server does not respond, so
    the caller can try again later rather than log a passing outage as a finding.
    """
    if isinstance(client, RedisCluster):
        return await _inspect_cluster(client, round_trip_s)

    async with asyncio.timeout(round_trip_s):
        info_pipe = client.pipeline(transaction=False)
        info_pipe.info("server")
        info_pipe.info("memory")
        info = _merge(await info_pipe.execute())

    async with asyncio.timeout(round_trip_s):
        load_pipe = client.pipeline(transaction=False)
        for name in SCRIPT_NAMES:
            load_pipe.script_load(get_script(name).source)
        loaded = await load_pipe.execute(raise_on_error=False)

    return _report(info, loaded)


async def _inspect_cluster(client: RedisCluster, round_trip_s: float) -> ServerReport:
    """Inspect a Redis Cluster: INFO from one node, SCRIPT LOAD on every primary.

    redis-py blocks INFO and SCRIPT LOAD inside cluster pipelines, so each is
    its own command here.
    """
    async with asyncio.timeout(round_trip_s):
        info = _merge([await client.info(section) for section in ("server", "memory")])

    loaded: list[object] = []
    async with asyncio.timeout(round_trip_s):
        for name in SCRIPT_NAMES:
            try:
                loaded.append(await client.script_load(get_script(name).source))
            except ResponseError as exc:
                loaded.append(exc)
    return _report(info, loaded)


def log_report(report: ServerReport) -> None:
    """Log each finding at its severity, or one INFO line when there is none."""
    if not report.findings:
        logger.info(
            "Redis self-check passed: version %s, maxmemory-policy %s, %d scripts loaded",
            report.version,
            report.eviction_policy,
            len(SCRIPT_NAMES),
        )
        return

    for finding in report.findings:
        level = logging.ERROR if finding.severity == "error" else logging.WARNING
        logger.log(level, "Redis self-check: %s. %s", finding.message, finding.hint)


def _merge(sections: Sequence[object]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for section in sections:
        if isinstance(section, Mapping):
            merged.update(section)
    return merged


def _report(info: Mapping[str, Any], loaded: Sequence[object]) -> ServerReport:
    findings = inspect_info(info) + script_load_findings(loaded)
    version = info.get("redis_version")
    policy = info.get("maxmemory_policy")
    return ServerReport(
        version=str(version) if version is not None else None,
        eviction_policy=str(policy) if policy is not None else None,
        findings=tuple(findings),
    )


def _old_version(version: object) -> Finding:
    required = ".".join(str(part) for part in MIN_REDIS_VERSION)
    return Finding(
        code="version",
        severity="error",
        message=f"Redis version {version!r} is older than {required}, the oldest that runs "
        f"the djust_dist scripts",
        hint="The scripts read the Redis clock with TIME before they write, which needs "
        f"script effects replication (the default from Redis 5). Upgrade to Redis {required} "
        "or later.",
    )


def _evicting_policy(policy: str) -> Finding:
    return Finding(
        code="eviction",
        severity="warning",
        message=f"maxmemory-policy is {policy!r}, so a full Redis may evict any key, "
        f"including connection leases and cooldowns",
        hint="An evicted lease set lets an IP open up to max_connections_per_ip more "
        "connections, and an evicted cooldown lets an abusive IP back at once. Use "
        "noeviction (a full Redis then rejects writes with OOM, and djust_dist applies "
        "redis.on_error) or volatile-ttl (Redis evicts only keys with a TTL, nearest expiry "
        "first; every djust_dist key has one, and a bucket's ends when it would be full "
        "again, so early evictions cost little).",
    )
