"""Resolve the client IP of an ASGI connection, honouring trusted proxies.

The result is the identity that per-IP limits count against. It is normalised
text: an IPv4 address, an IPv6 /64 network, or ``UNKNOWN_IP``. The engine
encodes it before it becomes part of a Redis key.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from djust_dist.logutil import log_throttled, sanitize_for_log

logger = logging.getLogger(__name__)

UNKNOWN_IP = "unknown"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A client behind one IPv6 /64 usually controls all of it, so limits count the
# whole network as one identity.
IPV6_GROUP_PREFIX = 64

# Upper bound on the X-Forwarded-For entries walked with a CIDR list. A client
# can send thousands of entries, and no real deployment has this many proxies.
MAX_FORWARDED_WALK = 64

# An IPv6 address in brackets with a port and a zone id fits in about 70
# characters, so longer entries are rejected before parsing.
MAX_ENTRY_LENGTH = 100

_XFF_HEADER = b"x-forwarded-for"


def resolve_client_ip(scope: Mapping[str, Any], trusted_proxies: int | Sequence[str]) -> str:
    """Return the normalised client IP of an ASGI ``scope``.

    ``trusted_proxies`` is either a hop count or a list of CIDR strings. With 0 the
    socket peer is the client and X-Forwarded-For is ignored. With N hops the client
    is the N-th X-Forwarded-For entry from the right. With a CIDR list, and only when
    the peer is in it, X-Forwarded-For is walked from the right past trusted
    addresses. Returns ``UNKNOWN_IP`` when no address can be found.
    """
    peer = _parse_entry(_peer_host(scope))

    if isinstance(trusted_proxies, bool):
        raise TypeError(
            f"trusted_proxies must be an int or a list of CIDRs, got {trusted_proxies!r}"
        )
    if isinstance(trusted_proxies, int):
        client = _client_by_hops(scope, peer, trusted_proxies)
    elif isinstance(trusted_proxies, str):
        raise TypeError(
            f"trusted_proxies must be a list of CIDR strings, not one string: {trusted_proxies!r}"
        )
    else:
        client = _client_by_networks(scope, peer, _parse_networks(tuple(trusted_proxies)))

    return _identity(client)


def normalize_ip(text: str) -> str:
    """Normalise an address typed by an operator the way per-IP limits count it.

    Accepts one address in any form that ``resolve_client_ip`` accepts (with a
    port, brackets, a zone id or as IPv4-mapped IPv6), an identity as logged
    (``203.0.113.5``, ``2001:db8:1:2::/64``), and ``unknown``. Raises ValueError
    for anything else, including IPv4 networks and IPv6 networks wider than /64,
    which stand for more than one identity.
    """
    stripped = text.strip()
    if stripped == UNKNOWN_IP:
        return UNKNOWN_IP

    if "/" in stripped:
        return _identity(_single_identity_network(stripped))

    address = _parse_entry(stripped)
    if address is None:
        raise ValueError(f"{text[:64]!r} is not an IP address")
    return _identity(address)


def _single_identity_network(text: str) -> IPAddress:
    """Return the first address of a network that per-IP limits count as one identity."""
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise ValueError(f"{text[:64]!r} is not an IP network") from exc

    single = 32 if network.version == 4 else IPV6_GROUP_PREFIX
    if network.prefixlen < single:
        raise ValueError(
            f"{network} covers several client identities; give one address or an "
            f"IPv6 /{IPV6_GROUP_PREFIX} network"
        )
    return network.network_address


def _client_by_hops(
    scope: Mapping[str, Any], peer: IPAddress | None, hops: int
) -> IPAddress | None:
    if hops < 0:
        raise ValueError(f"trusted_proxies must be 0 or more hops, got {hops!r}")
    if hops == 0:
        return peer

    entries = _rightmost_entries(_forwarded_for(scope), hops)
    if len(entries) < hops:
        return peer

    entry = entries[-hops]
    address = _parse_entry(entry)
    if address is None:
        _log_invalid_entry(entry, peer)
        return peer
    return address


def _client_by_networks(
    scope: Mapping[str, Any], peer: IPAddress | None, networks: tuple[IPNetwork, ...]
) -> IPAddress | None:
    if peer is None or not _is_trusted(peer, networks):
        return peer

    client = peer
    for entry in reversed(_rightmost_entries(_forwarded_for(scope), MAX_FORWARDED_WALK)):
        address = _parse_entry(entry)
        if address is None:
            _log_invalid_entry(entry, peer)
            return peer

        client = address
        if not _is_trusted(address, networks):
            return address

    # Every entry walked was trusted, so the leftmost one is the client.
    # NOTE: past MAX_FORWARDED_WALK entries this is the leftmost entry walked.
    return client


def _peer_host(scope: Mapping[str, Any]) -> str | None:
    """Return the host of ``scope["client"]``, or None when the server gave none."""
    client = scope.get("client")
    if isinstance(client, list | tuple) and client and isinstance(client[0], str):
        return client[0]
    return None


def _forwarded_for(scope: Mapping[str, Any]) -> str:
    """Join every X-Forwarded-For header of the scope, in order, into one list."""
    values: list[str] = []
    for name, value in scope.get("headers") or ():
        if isinstance(name, bytes) and name.lower() == _XFF_HEADER and isinstance(value, bytes):
            values.append(value.decode("latin-1"))
    return ",".join(values)


def _rightmost_entries(header: str, count: int) -> list[str]:
    """Return up to ``count`` entries from the right end of a comma-separated header.

    Only the last ``count`` separators are split, so a huge header costs one scan.
    """
    if not header.strip():
        return []
    parts = header.rsplit(",", count)
    if len(parts) > count:
        return parts[1:]
    return parts


def _parse_entry(entry: str | None) -> IPAddress | None:
    """Parse one address as sent by a server or proxy; None when it is not an IP.

    Accepts surrounding whitespace, ``[v6]:port``, ``v4:port`` and zone ids, and
    turns IPv4-mapped IPv6 addresses into IPv4.
    """
    if entry is None:
        return None
    text = entry.strip()
    if not text or len(text) > MAX_ENTRY_LENGTH:
        return None

    text = _strip_port(text).partition("%")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None

    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _strip_port(text: str) -> str:
    if text.startswith("["):
        host, bracket, _ = text[1:].partition("]")
        return host if bracket else text
    if text.count(":") == 1:
        return text.partition(":")[0]
    return text


@functools.lru_cache(maxsize=32)
def _parse_networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """Parse the trusted CIDRs; invalid entries are skipped, so fewer hosts are trusted.

    The system checks report invalid entries at startup.
    """
    networks: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except (TypeError, ValueError):
            continue
    return tuple(networks)


def _is_trusted(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def _identity(address: IPAddress | None) -> str:
    if address is None:
        return UNKNOWN_IP
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((address, IPV6_GROUP_PREFIX), strict=False)
        return str(network)
    return str(address)


def _log_invalid_entry(entry: str, peer: IPAddress | None) -> None:
    log_throttled(
        logger,
        logging.WARNING,
        "invalid_forwarded_for",
        "Invalid X-Forwarded-For entry %s from peer %s; using the peer address instead",
        sanitize_for_log(entry.strip(), limit=64),
        peer if peer is not None else UNKNOWN_IP,
    )
