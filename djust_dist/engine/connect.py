"""Open redis-py clients for every ``REDIS_URL`` form the limiter accepts.

``redis://`` and ``rediss://`` (and ``unix://``) open a plain client,
``redis+cluster://h1:p1,h2:p2`` a Redis Cluster client, and
``redis+sentinel://h1:p1,h2:p2/service[/db]`` a client of the master that the
sentinels name for ``service``. A ``rediss+`` scheme turns on TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

RedisClient: TypeAlias = Redis | RedisCluster

CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379


@dataclass(frozen=True, slots=True)
class MultiHostUrl:
    """The parts of a cluster or sentinel URL: hosts, credentials, TLS and path."""

    hosts: tuple[tuple[str, int], ...]
    tls: bool
    username: str | None
    password: str | None
    path: tuple[str, ...]


def url_scheme(url: str) -> str:
    """Return the lower-cased scheme of ``url``."""
    return url.partition("://")[0].lower()


def is_cluster_url(url: str) -> bool:
    """Return whether ``url`` names a Redis Cluster."""
    return url_scheme(url) in CLUSTER_SCHEMES


def parse_multi_host_url(url: str, default_port: int) -> MultiHostUrl:
    """Split a ``redis+cluster://`` or ``redis+sentinel://`` URL into its parts.

    Raises ValueError for a query string, which these clients would not apply,
    and for a host list that names no host.
    """
    parts = urlsplit(url)
    if parts.query:
        raise ValueError(
            f"{url_scheme(url)} URLs take no query options, got {parts.query!r}; "
            f"remove the part after '?'"
        )

    credentials, _, host_list = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    hosts = tuple(_host_port(item, default_port) for item in host_list.split(",") if item)
    if not hosts:
        raise ValueError(f"{url_scheme(url)} URL names no host, expected host:port[,host:port]")

    return MultiHostUrl(
        hosts=hosts,
        tls=url_scheme(url).startswith("rediss"),
        username=unquote(username) or None,
        password=unquote(password) or None,
        path=tuple(segment for segment in parts.path.split("/") if segment),
    )


def _host_port(item: str, default_port: int) -> tuple[str, int]:
    address = urlsplit(f"//{item}")
    if not address.hostname:
        raise ValueError(f"{item!r} is not a valid host[:port]")
    return address.hostname, address.port or default_port


def check_url(url: str) -> None:
    """Raise ValueError when a cluster or sentinel URL cannot be turned into a client."""
    scheme = url_scheme(url)
    if scheme in CLUSTER_SCHEMES:
        cluster_url_parts(url)
    elif scheme in SENTINEL_SCHEMES:
        sentinel_url_parts(url)


def cluster_url_parts(url: str) -> MultiHostUrl:
    """Parse a cluster URL; raise ValueError unless its path is empty or ``/0``."""
    parts = parse_multi_host_url(url, DEFAULT_PORT)
    if parts.path not in ((), ("0",)):
        raise ValueError(f"Redis Cluster has only database 0, got path {'/'.join(parts.path)!r}")
    return parts


def sentinel_url_parts(url: str) -> tuple[MultiHostUrl, str, int]:
    """Parse a sentinel URL into its parts, the service name and the database number."""
    parts = parse_multi_host_url(url, DEFAULT_SENTINEL_PORT)
    if not 1 <= len(parts.path) <= 2:
        raise ValueError(
            f"a sentinel URL path is /<service name>[/<db>], got {'/'.join(parts.path)!r}"
        )
    if len(parts.path) == 2 and not parts.path[1].isdigit():
        raise ValueError(f"the database {parts.path[1]!r} in the sentinel URL is not a number")
    db = int(parts.path[1]) if len(parts.path) == 2 else 0
    return parts, parts.path[0], db


def open_client(url: str, timeout: float) -> RedisClient:
    """Open a client for any accepted URL form, with ``timeout`` seconds per socket call.

    One retry reopens a connection that Redis closed since its last use, or,
    behind sentinels, one to a master that was replaced.
    """
    scheme = url_scheme(url)
    if scheme in CLUSTER_SCHEMES:
        return open_cluster_client(url, timeout)
    if scheme in SENTINEL_SCHEMES:
        return open_sentinel_client(url, timeout)
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
    )


def open_cluster_client(url: str, timeout: float) -> RedisCluster:
    """Open a Redis Cluster client that discovers the cluster from the URL's nodes."""
    parts = cluster_url_parts(url)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parts.hosts],
        username=parts.username,
        password=parts.password,
        ssl=parts.tls,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
    )


def open_sentinel_client(url: str, timeout: float) -> Redis:
    """Open a client of the master that the URL's sentinels name for its service.

    The URL's credentials are sent to the master, not to the sentinels. After a
    failover the client asks the sentinels again when its connection breaks.
    """
    parts, service, db = sentinel_url_parts(url)
    sentinel = Sentinel(
        list(parts.hosts),
        sentinel_kwargs={
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "ssl": parts.tls,
        },
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
    )
    client: Redis = sentinel.master_for(
        service,
        db=db,
        username=parts.username,
        password=parts.password,
        ssl=parts.tls,
    )
    return client
