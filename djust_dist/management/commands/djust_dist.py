"""``manage.py djust_dist``: backend health, and an IP's limiter state and connections.

Subcommands:
    status              backend kind, Redis reachability and version, script versions
    inspect --ip IP     the IP's live leases, cooldown and buckets
    reset --ip IP       delete the IP's leases, cooldown and buckets
    kick --ip IP        close the IP's connections on every worker (channel layer)
"""

from __future__ import annotations

import asyncio
import math
from argparse import ArgumentParser, ArgumentTypeError
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.management.base import BaseCommand, CommandError
from django.urls import get_resolver
from redis.exceptions import RedisError

from djust_dist.conf.redis_url import redact_url
from djust_dist.conf.settings import DjustSettings, get_settings
from djust_dist.engine import admin
from djust_dist.engine.keys import KeyLayout
from djust_dist.engine.scripts import script_versions
from djust_dist.engine.types import Bucket
from djust_dist.liveview.view import LiveView
from djust_dist.security.decorators import get_rate_limit
from djust_dist.transport.bucket_keys import (
    anonymous_caller,
    handler_bucket_key,
    ip_bucket_key,
)
from djust_dist.transport.client_ip import normalize_ip
from djust_dist.transport.kick import KICK_GROUP, send_kick

DEFAULT_TIMEOUT = 5.0


def ip_argument(text: str) -> str:
    """Parse ``--ip`` into the identity that per-IP limits use."""
    try:
        return normalize_ip(text)
    except ValueError as exc:
        raise ArgumentTypeError(
            f"{exc}; give an address such as 203.0.113.5 or 2001:db8::1"
        ) from None


def seconds_argument(text: str) -> float:
    """Parse a non-negative number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise ArgumentTypeError(f"{text!r} must be a finite number of seconds, 0 or more")
    return value


def rate_limited_handlers() -> list[tuple[type[LiveView], str, Bucket]]:
    """List every ``@rate_limit`` handler of the loaded LiveViews with a template bucket.

    The views are found in the LiveView registry after the URLconf is imported.
    Views that no URL module imports are not listed.
    """
    get_resolver().url_patterns  # noqa: B018 - importing the URLconf registers the views

    found: list[tuple[type[LiveView], str, Bucket]] = []
    for view_class in LiveView.registry().values():
        for name, spec in _handler_limits(view_class).items():
            found.append((view_class, name, Bucket(name, spec.rate, spec.burst)))
    return found


def _handler_limits(view_class: type[LiveView]) -> dict[str, Any]:
    # The first definition along the MRO is the one the consumer calls.
    seen: set[str] = set()
    limits: dict[str, Any] = {}
    for klass in view_class.__mro__:
        if klass is LiveView or not issubclass(klass, LiveView):
            continue
        for name, attribute in vars(klass).items():
            if name in seen:
                continue
            seen.add(name)
            spec = get_rate_limit(attribute)
            if spec is not None:
                limits[name] = spec
    return limits


def ip_buckets(settings: DjustSettings, ip: str) -> list[Bucket]:
    """Return the buckets that an anonymous caller from ``ip`` draws from.

    These are the per-IP bucket, when ``ip_rate`` and ``ip_burst`` are set, and
    one bucket per rate-limited handler, keyed as the consumer keys them
    (``djust_dist.transport.bucket_keys``). Connection buckets are keyed by random
    connection ids, so they cannot be found from the IP and expire on their own.
    """
    limits = settings.rate_limit
    buckets: list[Bucket] = []
    if limits.ip_rate is not None and limits.ip_burst is not None:
        buckets.append(Bucket(ip_bucket_key(ip), limits.ip_rate, limits.ip_burst))

    for view_class, name, template in rate_limited_handlers():
        key = handler_bucket_key(anonymous_caller(ip), view_class, name)
        buckets.append(Bucket(key, template.rate, template.burst))
    return buckets


class Command(BaseCommand):
    help = (
        "Show the djust_dist limiter backend's health, or inspect, reset or kick "
        "(close every connection of) one client IP."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        status = actions.add_parser(
            "status", help="Show the backend kind, Redis health and scripts."
        )
        inspect = actions.add_parser("inspect", help="Show an IP's leases, cooldown and buckets.")
        reset = actions.add_parser("reset", help="Delete an IP's leases, cooldown and buckets.")
        kick = actions.add_parser(
            "kick", help="Close an IP's open connections on every worker (close code 4429)."
        )
        for action in (inspect, reset, kick):
            action.add_argument(
                "--ip", required=True, type=ip_argument, help="Client IP, as in the logs."
            )
        kick.add_argument(
            "--cooldown",
            type=seconds_argument,
            default=0.0,
            help="Also refuse the IP's reconnects for this many seconds (default 0).",
        )
        for action in (status, inspect, reset, kick):
            action.add_argument(
                "--timeout",
                type=seconds_argument,
                default=DEFAULT_TIMEOUT,
                help=f"Seconds to wait for each Redis call (default {DEFAULT_TIMEOUT:g}).",
            )

    def handle(self, *args: Any, **options: Any) -> None:
        settings = get_settings()
        handlers = {
            "status": self.status,
            "inspect": self.inspect,
            "reset": self.reset,
            "kick": self.kick,
        }
        asyncio.run(handlers[options["action"]](settings, options))

    async def status(self, settings: DjustSettings, options: dict[str, Any]) -> None:
        """Print the backend kind, Redis reachability, version and script versions."""
        write = self.stdout.write
        url = settings.redis_url
        if url is None:
            write("backend: MemoryBackend (REDIS_URL is not set, so limits are per process)")
            return

        write("backend: RedisBackend")
        write(f"redis url: {redact_url(url)}")
        write(f"key prefix: {settings.redis.key_prefix}")
        write(f"on_error: {settings.redis.on_error}")

        # Each worker keeps its own circuit breaker in memory, out of reach of
        # this process; the outage counter in /metrics shows the workers' view.
        write("circuit breaker: per worker (see djust_dist_backend_outages_total in /metrics)")

        server = await self._with_redis(settings, options, admin.read_server_state)
        write(f"reachable: yes ({server.ping_ms:.1f} ms PING)")
        write(f"server version: {server.version}")
        for name, sha in script_versions().items():
            loaded = "loaded" if server.scripts_loaded.get(name) else "not loaded yet"
            write(f"script {name}: {sha} ({loaded})")

    async def inspect(self, settings: DjustSettings, options: dict[str, Any]) -> None:
        """Print the IP's live leases, cooldown and the buckets it draws from."""
        ip: str = options["ip"]
        buckets = ip_buckets(settings, ip)
        layout = KeyLayout(settings.redis.key_prefix)

        async def read(client: Any) -> admin.IpState:
            return await admin.read_ip_state(client, layout, ip, buckets)

        state = await self._with_redis(settings, options, read)

        write = self.stdout.write
        write(f"ip: {state.ip}")
        write(f"live connections: {len(state.leases)}")
        for lease in state.leases:
            write(f"  lease {lease.member} expires in {lease.expires_in:.1f} s")
        write(f"cooldown remaining: {state.cooldown_remaining:.1f} s")
        for bucket_state in state.buckets:
            bucket = bucket_state.bucket
            write(
                f"bucket {bucket.key}: {bucket_state.tokens:.2f} of {bucket.burst} tokens "
                f"({bucket.rate:g}/s)"
            )

    async def reset(self, settings: DjustSettings, options: dict[str, Any]) -> None:
        """Delete the IP's leases, cooldown and buckets."""
        ip: str = options["ip"]
        buckets = ip_buckets(settings, ip)
        layout = KeyLayout(settings.redis.key_prefix)

        async def delete(client: Any) -> int:
            return await admin.delete_ip_state(client, layout, ip, buckets)

        removed = await self._with_redis(settings, options, delete)
        self.stdout.write(
            f"Reset {ip}: deleted {removed} key(s) (leases, cooldown and buckets). "
            "Its open connections stay open; use 'kick' to close them."
        )

    async def kick(self, settings: DjustSettings, options: dict[str, Any]) -> None:
        """Send a kick to every connection of the IP, after starting a cooldown if asked."""
        ip: str = options["ip"]
        layer = get_channel_layer()
        if layer is None:
            raise CommandError(
                "CHANNEL_LAYERS has no 'default' layer, so the workers cannot be reached; "
                "configure channels_redis.core.RedisChannelLayer"
            )
        if isinstance(layer, InMemoryChannelLayer):
            raise CommandError(
                "The channel layer is InMemoryChannelLayer, which only reaches this process; "
                "configure a shared layer such as channels_redis.core.RedisChannelLayer"
            )

        cooldown: float = options["cooldown"]
        if cooldown > 0:
            layout = KeyLayout(settings.redis.key_prefix)

            async def start(client: Any) -> None:
                await admin.start_cooldown(client, layout, ip, cooldown)

            await self._with_redis(settings, options, start)

        try:
            await send_kick(layer, settings.redis.key_prefix, ip)
        except (RedisError, OSError) as exc:
            raise CommandError(
                f"Sending the kick through the channel layer failed: {exc}; "
                "check that the channel layer's Redis is running"
            ) from exc
        finally:
            close_pools = getattr(layer, "close_pools", None)
            if close_pools is not None:
                await close_pools()

        cooldown_note = f" and started a {cooldown:g} s cooldown" if cooldown > 0 else ""
        self.stdout.write(
            f"Sent a kick to the connections of {ip} on every worker "
            f"(group {KICK_GROUP}){cooldown_note}."
        )

    async def _with_redis(self, settings: DjustSettings, options: dict[str, Any], work: Any) -> Any:
        """Run ``work(client)`` on a fresh Redis client; Redis errors become CommandError."""
        url = settings.redis_url
        if url is None:
            raise CommandError(
                "REDIS_URL is not set, so limits live in each worker's memory and "
                "cannot be read or changed from here; set REDIS_URL to use this command"
            )

        client = admin.open_client(url, options["timeout"])
        try:
            return await work(client)
        except (RedisError, OSError) as exc:
            raise CommandError(
                f"Redis at {redact_url(url)} failed: {exc}; check that it is running "
                "and that REDIS_URL points at it"
            ) from exc
        finally:
            await client.aclose()
