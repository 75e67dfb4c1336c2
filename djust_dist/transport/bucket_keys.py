"""The bucket keys the consumer draws from, shared with the management command.

The engine hashes every key before it reaches Redis, so the command can find a
caller's buckets only by building the same key text; both use these functions.
"""

from __future__ import annotations

from djust_dist.engine.fallback import CONNECTION_BUCKET_PREFIX
from djust_dist.liveview.tokens import view_path


def connection_bucket_key(connection_id: str) -> str:
    """Return the key of one connection's bucket.

    The prefix tells the engine's local fallback to keep this bucket whole: only
    the worker serving the connection ever draws from it.
    """
    return f"{CONNECTION_BUCKET_PREFIX}{connection_id}"


def ip_bucket_key(ip: str) -> str:
    """Return the key of the optional per-IP bucket (``ip_rate``, ``ip_burst``)."""
    return f"ip:{ip}"


def anonymous_caller(ip: str) -> str:
    """Return the caller identity of a client that is not logged in."""
    return f"ip:{ip}"


def user_caller(pk: object) -> str:
    """Return the caller identity of an authenticated user."""
    return f"user:{pk}"


def handler_bucket_key(caller: str, view_class: type, handler_name: str) -> str:
    """Return the key of a caller's ``@rate_limit`` bucket for one handler of one view."""
    return f"handler:{caller}:{view_path(view_class)}:{handler_name}"
