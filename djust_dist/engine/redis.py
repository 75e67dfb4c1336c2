"""Limiter backend that keeps all state in Redis and changes it only in Lua scripts.

Every operation is one script call (renewals: one per batch), bounded by
``timeout``. On Redis Cluster a consume over buckets of several slots is one
call per slot, plus a refund call when a slot denies (see ``cluster``). Time
comes from the Redis server's clock inside the scripts, so workers with skewed
clocks still share one clock. When Redis fails, the circuit breaker and the
``on_error`` mode decide the result (see ``breaker``).
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError, ResponseError

from djust_dist.engine.base import (
    Backend,
    make_decision,
    validate_buckets,
    validate_identity,
    validate_limit,
    validate_seconds,
)
from djust_dist.engine.breaker import CircuitBreaker, OnError
from djust_dist.engine.cluster import (
    batch_pairs_by_slot,
    consume_across_slots,
    group_buckets_by_slot,
)
from djust_dist.engine.connect import RedisClient, check_url, is_cluster_url, open_client
from djust_dist.engine.deny_cache import DenyCache
from djust_dist.engine.fallback import LocalFallback
from djust_dist.engine.heartbeat import Heartbeat
from djust_dist.engine.keys import DEFAULT_KEY_PREFIX, KeyLayout, validate_key_prefix
from djust_dist.engine.memory import (
    DEFAULT_LEASE_TTL,
    DEFAULT_LIMIT_RETRY_HINT,
    interval_ns,
)
from djust_dist.engine.pipeline import UNAVAILABLE_ERRORS as _UNAVAILABLE_ERRORS
from djust_dist.engine.pipeline import UNAVAILABLE_REPLIES as _UNAVAILABLE_REPLIES
from djust_dist.engine.pipeline import LoopPipelines
from djust_dist.engine.scripts import get_script
from djust_dist.engine.types import ADMITTED, Admission, Bucket, Decision
from djust_dist.errors import BackendUnavailable, ScriptError

# Pairs per renew.lua call: large enough for few round trips, small enough that
# one call does not block Redis for long.
RENEW_BATCH_SIZE = 500

_ADMIT_STATUS_COOLDOWN = 1
_ADMIT_STATUS_LIMIT = 2


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Validated options of RedisBackend; the names match LIVEVIEW_CONFIG["redis"]."""

    key_prefix: str = DEFAULT_KEY_PREFIX
    timeout: float = 0.25
    """Seconds one Redis call may take before it counts as a failure."""
    lease_ttl: float = DEFAULT_LEASE_TTL
    """Seconds a connection lease lives without renewal."""
    on_error: OnError = OnError.LOCAL
    retry_interval: float = 1.0
    """Seconds the circuit breaker waits after a failure before it tries Redis again."""
    limit_retry_hint: float = DEFAULT_LIMIT_RETRY_HINT
    """Seconds put in ``retry_after`` of a ``"limit"`` rejection."""
    pipelining: bool = True
    """Send concurrent calls of one event loop together, one write per loop turn."""
    deny_cache: bool = True
    """Deny locally, without Redis, a bucket that Redis denied until its wait is over."""

    @classmethod
    def parse(cls, **options: Any) -> RedisOptions:
        """Validate keyword options; raise TypeError or ValueError naming the bad one."""
        accepted = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise TypeError(
                f"unknown RedisBackend option(s) {', '.join(unknown)}; "
                f"accepted options are {', '.join(sorted(accepted))}"
            )

        defaults = cls()
        return cls(
            key_prefix=validate_key_prefix(options.get("key_prefix", defaults.key_prefix)),
            timeout=validate_seconds("timeout", options.get("timeout", defaults.timeout)),
            lease_ttl=validate_seconds("lease_ttl", options.get("lease_ttl", defaults.lease_ttl)),
            on_error=OnError.parse(options.get("on_error", defaults.on_error.value)),
            retry_interval=validate_seconds(
                "retry_interval", options.get("retry_interval", defaults.retry_interval)
            ),
            limit_retry_hint=validate_seconds(
                "limit_retry_hint", options.get("limit_retry_hint", defaults.limit_retry_hint)
            ),
            pipelining=_validate_flag("pipelining", options.get("pipelining", defaults.pipelining)),
            deny_cache=_validate_flag("deny_cache", options.get("deny_cache", defaults.deny_cache)),
        )


def _validate_flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


class RedisBackend(Backend):
    """Token buckets, leases and cooldowns shared through Redis by every worker.

    Build it with ``from_url`` or ``from_client``. Options: ``key_prefix``,
    ``timeout``, ``lease_ttl``, ``on_error``, ``retry_interval`` and
    ``limit_retry_hint`` (see RedisOptions). One Redis client is kept per event
    loop, because redis-py asyncio connections only work on the loop that opened
    them. After ``aclose()`` the backend opens new clients when it is used again.

    With ``cluster=True`` every script call touches one cluster slot: renewals
    are batched per slot and a consume over several slots is split (see
    ``cluster``). ``from_url`` sets it for ``redis+cluster://`` URLs.
    """

    def __init__(
        self,
        client_factory: Callable[[], RedisClient],
        *,
        owns_clients: bool = True,
        cluster: bool = False,
        **options: Any,
    ) -> None:
        self.options = RedisOptions.parse(**options)
        self.keys = KeyLayout(self.options.key_prefix)
        self.cluster = cluster

        self._client_factory = client_factory
        self._owns_clients = owns_clients
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RedisClient] = (
            weakref.WeakKeyDictionary()
        )
        self._clients_lock = threading.Lock()
        self._lease_ttl_us = math.ceil(self.options.lease_ttl * 1_000_000)

        self._breaker = CircuitBreaker(self.options.retry_interval, name="Redis")
        self._heartbeat = Heartbeat(
            self._client,
            self.keys.workers(),
            window=self.options.lease_ttl,
            timeout=self.options.timeout,
        )
        self._local = LocalFallback(
            lambda: self._heartbeat.workers_seen,
            lease_ttl=self.options.lease_ttl,
            limit_retry_hint=self.options.limit_retry_hint,
        )
        self._pipelines = LoopPipelines(self._client, self._breaker, self.options.timeout)
        self.deny_cache = DenyCache() if self.options.deny_cache else None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisBackend:
        """Build a backend that opens its own clients to ``url``.

        Accepts ``redis://``, ``rediss://`` and ``unix://`` URLs, Redis Cluster as
        ``redis+cluster://host:port[,host:port...]`` and Sentinel as
        ``redis+sentinel://host:port[,host:port...]/service[/db]`` (``rediss+`` for TLS).
        """
        if not isinstance(url, str):
            raise TypeError(f"url must be a str such as 'redis://127.0.0.1:6379/0', got {url!r}")

        timeout = RedisOptions.parse(**options).timeout
        check_url(url)
        # The backend's own timeout bounds each whole call, retries included.
        return cls(lambda: open_client(url, timeout), cluster=is_cluster_url(url), **options)

    @classmethod
    def from_client(cls, client: RedisClient, **options: Any) -> RedisBackend:
        """Build a backend on a client the caller owns and closes (fakeredis in tests).

        The client must only be used from the event loop it belongs to.
        """
        return cls(lambda: client, owns_clients=False, **options)

    @property
    def circuit_open(self) -> bool:
        """Whether the backend is riding out a Redis outage with its ``on_error`` mode."""
        return self._breaker.is_open

    @property
    def workers_seen(self) -> int:
        """Workers of this key prefix alive at the last heartbeat; divides the local limits."""
        return self._heartbeat.workers_seen

    async def consume(self, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        checked = validate_buckets(buckets, cost)
        try:
            return await self._consume(checked, cost)
        except BackendUnavailable:
            return await self._consume_without_redis(checked, cost)

    async def admit_connection(self, ip: str, connection_id: str, limit: int) -> Admission:
        validate_identity("ip", ip)
        validate_identity("connection_id", connection_id)
        validate_limit(limit)
        try:
            return await self._admit(ip, connection_id, limit)
        except BackendUnavailable:
            return await self._admit_without_redis(ip, connection_id, limit)

    async def release_connection(self, ip: str, connection_id: str) -> None:
        validate_identity("ip", ip)
        validate_identity("connection_id", connection_id)
        keys = [self.keys.leases(ip)]
        args: list[str | int | float] = [self.keys.lease_member(connection_id)]
        if self.options.on_error is OnError.LOCAL:
            await self._local.release_connection(ip, connection_id)
        try:
            await self._run("release", keys, args)
        except BackendUnavailable:
            # Without Redis the Redis lease cannot change; it lapses after lease_ttl.
            return

    async def renew_connections(self, items: Iterable[tuple[str, str]]) -> None:
        pairs = [
            (validate_identity("ip", ip), validate_identity("connection_id", connection_id))
            for ip, connection_id in items
        ]
        # Concurrent batches share one pipeline write when pipelining is on.
        if self.cluster:
            batches = batch_pairs_by_slot(self.keys, pairs, RENEW_BATCH_SIZE)
        else:
            batches = [
                pairs[start : start + RENEW_BATCH_SIZE]
                for start in range(0, len(pairs), RENEW_BATCH_SIZE)
            ]
        await asyncio.gather(*(self._renew_batch(batch) for batch in batches))

    async def start_cooldown(self, ip: str, seconds: float) -> None:
        validate_identity("ip", ip)
        duration_us = math.ceil(validate_seconds("seconds", seconds, allow_zero=True) * 1_000_000)
        if duration_us == 0:
            return

        try:
            await self._run("cooldown", [self.keys.cooldown(ip)], [duration_us])
        except BackendUnavailable:
            if self.options.on_error is OnError.LOCAL:
                await self._local.start_cooldown(ip, seconds)

    async def ping(self) -> bool:
        """Return whether Redis replies to PING within ``timeout``, without touching the breaker."""
        try:
            async with asyncio.timeout(self.options.timeout):
                return bool(await self._client().ping())
        except (RedisError, OSError):
            return False

    async def aclose(self) -> None:
        """Close the clients this backend opened and drop its fallback state."""
        await self._heartbeat.stop()
        current = asyncio.get_running_loop()
        with self._clients_lock:
            clients = list(self._clients.items())
            self._clients.clear()

        if self._owns_clients:
            for loop, client in clients:
                await self._close_client(loop, client, current)
        await self._local.aclose()

    async def _consume(self, buckets: tuple[Bucket, ...], cost: int) -> Decision:
        if self.deny_cache is not None:
            cached = self.deny_cache.check(buckets, cost)
            if cached is not None:
                return cached

        keys = [self.keys.bucket(bucket.key) for bucket in buckets]
        args: list[str | int | float] = [cost]
        for bucket in buckets:
            args += [repr(interval_ns(bucket.rate)), bucket.burst]

        # On a cluster, buckets of several slots cannot share one script call.
        groups = group_buckets_by_slot(self.keys, buckets) if self.cluster else []
        sent_at = time.monotonic()
        if len(groups) > 1:
            decision = await consume_across_slots(self._run, self.keys, groups, cost)
        else:
            allowed, retry_after_us, remaining = await self._run("consume", keys, args)
            decision = make_decision(bool(allowed), int(retry_after_us), float(remaining))
        if self.deny_cache is not None:
            self.deny_cache.observe(buckets, cost, decision, sent_at)
        return decision

    # NOTE: state kept by the local fallback during an outage is not copied to
    # Redis on recovery: leases granted locally are not counted there, and
    # buckets start again from their Redis state.
    async def _consume_without_redis(self, buckets: tuple[Bucket, ...], cost: int) -> Decision:
        if self.options.on_error is OnError.LOCAL:
            return await self._local.consume(buckets, cost)
        if self.options.on_error is OnError.OPEN:
            return Decision(True, 0.0, float(min(bucket.burst for bucket in buckets)))
        return Decision(False, self._breaker.seconds_until_probe(), 0.0)

    async def _admit(self, ip: str, connection_id: str, limit: int) -> Admission:
        keys = [self.keys.leases(ip), self.keys.cooldown(ip)]
        args: list[str | int | float] = [
            self.keys.lease_member(connection_id),
            limit,
            self._lease_ttl_us,
        ]

        status, retry_after_us = await self._run("admit", keys, args)
        if status == _ADMIT_STATUS_COOLDOWN:
            return Admission(False, "cooldown", int(retry_after_us) / 1_000_000)
        if status == _ADMIT_STATUS_LIMIT:
            return Admission(False, "limit", self.options.limit_retry_hint)
        if self.options.on_error is OnError.LOCAL:
            # The local fallback counts this connection if Redis fails later.
            self._local.record_lease(ip, connection_id)
        return ADMITTED

    async def _admit_without_redis(self, ip: str, connection_id: str, limit: int) -> Admission:
        if self.options.on_error is OnError.LOCAL:
            return await self._local.admit_connection(ip, connection_id, limit)
        if self.options.on_error is OnError.OPEN:
            return ADMITTED
        return Admission(False, "unavailable", self._breaker.seconds_until_probe())

    async def _renew_batch(self, batch: list[tuple[str, str]]) -> None:
        keys = [self.keys.leases(ip) for ip, _ in batch]
        args: list[str | int | float] = [self._lease_ttl_us]
        args += [self.keys.lease_member(connection_id) for _, connection_id in batch]
        if self.options.on_error is OnError.LOCAL:
            await self._local.renew_connections(batch)
        try:
            await self._run("renew", keys, args)
        except BackendUnavailable:
            # Without Redis the Redis lease cannot change; it lapses after lease_ttl.
            return

    async def _run(self, name: str, keys: list[str], args: list[str | int | float]) -> Any:
        """Call one script under the timeout and the circuit breaker.

        Raises BackendUnavailable when the breaker is open or Redis fails, and
        ScriptError when Redis rejects the script for another reason.
        """
        if not self._breaker.allow():
            raise BackendUnavailable("Redis is skipped until the next probe")
        if self.options.pipelining:
            return await self._pipelines.call(get_script(name), keys, args)

        try:
            async with asyncio.timeout(self.options.timeout):
                result = await get_script(name).run(self._client(), keys, args)
        except asyncio.CancelledError:
            # Redis may or may not have run the script; nothing is undone.
            self._breaker.abandoned()
            raise
        except _UNAVAILABLE_ERRORS as exc:
            self._breaker.failed(exc)
            raise BackendUnavailable(f"Redis call {name!r} failed: {exc!r}") from exc
        except ResponseError as exc:
            if str(exc).startswith(_UNAVAILABLE_REPLIES):
                self._breaker.failed(exc)
                raise BackendUnavailable(f"Redis cannot run {name!r}: {exc}") from exc
            self._breaker.succeeded()
            raise ScriptError(name, str(exc)) from exc

        self._breaker.succeeded()
        return result

    def _client(self) -> RedisClient:
        """Return the client of the running event loop, opening it on first use."""
        loop = asyncio.get_running_loop()
        with self._clients_lock:
            client = self._clients.get(loop)
            if client is None:
                # A client keeps its loop alive through its connections, so entries
                # of finished loops are dropped here rather than by the weak reference.
                # NOTE: their sockets then close on garbage collection, with a
                # ResourceWarning; calling aclose() before a loop ends avoids that.
                for old_loop in [old for old in self._clients if old.is_closed()]:
                    del self._clients[old_loop]
                client = self._client_factory()
                self._clients[loop] = client
                opened = True
            else:
                opened = False

        if opened:
            self._heartbeat.start()
        return client

    @staticmethod
    async def _close_client(
        loop: asyncio.AbstractEventLoop,
        client: RedisClient,
        current: asyncio.AbstractEventLoop,
    ) -> None:
        if loop is current:
            await client.aclose()
        elif loop.is_running():
            # The client belongs to a loop in another thread, which must close it.
            asyncio.run_coroutine_threadsafe(client.aclose(), loop)
        # A client of a loop that already ended cannot be awaited any more; its
        # sockets are closed when it is garbage collected.
