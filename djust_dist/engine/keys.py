"""Redis key layout of the limiter engine.

Identities (IPs, bucket keys, connection ids) may be any text, including braces,
newlines and NUL, and up to thousands of characters. They never appear raw in a
key: each is replaced by the first 32 hex digits (128 bits) of its SHA-256.

Keys carry a Redis Cluster hash tag, the part between ``{`` and ``}``, so every
script call touches one slot. Both keys of an IP share the IP's digest as their
tag, and each bucket key is tagged with its own digest.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

DEFAULT_KEY_PREFIX = "djust_dist"
DIGEST_HEX_CHARS = 32

# Braces would move the hash tag and whitespace breaks redis-cli use.
_PREFIX_PATTERN = re.compile(r"[!-z|~]{1,128}")


def digest(identity: str) -> str:
    """Hash any text to a fixed-length hex digest that is safe inside a Redis key."""
    # surrogatepass keeps lone surrogates (valid in a Python str) from raising.
    data = identity.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:DIGEST_HEX_CHARS]


def validate_key_prefix(prefix: object) -> str:
    """Return ``prefix`` if it is usable as a key prefix, else raise TypeError or ValueError."""
    if not isinstance(prefix, str):
        raise TypeError(f"key_prefix must be a str, got {prefix!r}")

    if not _PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(
            f"key_prefix must be 1 to 128 printable ASCII characters without spaces "
            f"or braces, got {prefix!r}"
        )
    return prefix


@dataclass(frozen=True, slots=True)
class KeyLayout:
    """Builds the Redis keys and sorted-set members for one key prefix."""

    prefix: str = DEFAULT_KEY_PREFIX

    def bucket(self, key: str) -> str:
        """Key of a token bucket: a string with its theoretical arrival time."""
        return f"{self.prefix}:bucket:{{{digest(key)}}}"

    def leases(self, ip: str) -> str:
        """Key of an IP's connection leases: a sorted set of lease expiries."""
        return f"{self.prefix}:ip:{{{digest(ip)}}}:leases"

    def cooldown(self, ip: str) -> str:
        """Key of an IP's reconnect cooldown: a string with its end time."""
        return f"{self.prefix}:ip:{{{digest(ip)}}}:cooldown"

    def workers(self) -> str:
        """Key of the worker heartbeats: a sorted set of worker ids by last heartbeat."""
        return f"{self.prefix}:workers"

    def lease_member(self, connection_id: str) -> str:
        """Sorted-set member that stands for one connection."""
        return digest(connection_id)


def hash_tag(key: str) -> str:
    """Return the part of ``key`` that Redis Cluster hashes to pick the key's slot."""
    start = key.find("{")
    if start == -1:
        return key

    end = key.find("}", start + 1)
    if end <= start + 1:
        return key
    return key[start + 1 : end]
