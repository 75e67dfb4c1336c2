"""Closing every connection of one IP on every worker, through the channel layer.

Each admitted connection joins a channel-layer group named after its IP (see
``kick_group``) when a channel layer is configured. ``send_kick`` sends one
``djust_dist.kick`` message to that group, and every consumer in it closes with
close code 4429 and releases its lease.
"""

from __future__ import annotations

import hashlib
from typing import Any

KICK_MESSAGE_TYPE = "djust_dist.kick"

# Channels accepts group names of ASCII letters, digits, hyphens, underscores
# and periods, shorter than 100 characters, so the IP appears only as a digest.
_GROUP_PREFIX = "djust_dist.kick."


def kick_group(key_prefix: str, ip: str) -> str:
    """Return the channel-layer group that every connection of ``ip`` joins.

    The key prefix is part of the digest, so two deployments that share a
    channel layer but not a key prefix never close each other's connections.
    """
    data = f"{key_prefix}\n{ip}".encode("utf-8", "surrogatepass")
    return _GROUP_PREFIX + hashlib.sha256(data).hexdigest()[:40]


async def send_kick(channel_layer: Any, key_prefix: str, ip: str) -> None:
    """Ask every worker's connections of ``ip`` to close; ``ip`` must be normalised."""
    await channel_layer.group_send(kick_group(key_prefix, ip), {"type": KICK_MESSAGE_TYPE})
