"""Validation of ``REDIS_URL`` values, shared by the settings reader and the checks."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qs, urlsplit

REDIS_URL_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+cluster",
    "rediss+cluster",
)

_PASSWORD_IN_URL = re.compile(r"(//[^/@:]*:)[^@/]*@")


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``, for messages and logs."""
    return _PASSWORD_IN_URL.sub(r"\1***@", url)


def redis_url_problem(url: object) -> str | None:
    """Describe what is wrong with a Redis URL, or return None when it is well formed.

    Only the shape is checked: scheme, host and port, and the database number.
    Sentinel and cluster URLs may list several ``host:port`` pairs separated by commas.
    """
    if not isinstance(url, str):
        return f"expected a str, got {type(url).__name__}"
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"it cannot be parsed as a URL: {exc}"

    scheme = parts.scheme.lower()
    if scheme not in REDIS_URL_SCHEMES:
        return f"the scheme {scheme!r} is not one of {', '.join(REDIS_URL_SCHEMES)}"

    if scheme == "unix":
        problem = None if parts.path else "a unix URL needs a socket path"
    else:
        problem = _hosts_problem(scheme, parts) or _path_problem(scheme, parts.path)
    return problem or _query_problem(parts.query)


def _hosts_problem(scheme: str, parts: SplitResult) -> str | None:
    hosts = parts.netloc.rpartition("@")[2].split(",")
    if len(hosts) > 1 and not scheme.endswith(("+sentinel", "+cluster")):
        return "only sentinel and cluster URLs may list several hosts"

    for host in hosts:
        try:
            address = urlsplit(f"//{host}")
            hostname, _ = address.hostname, address.port
        except ValueError:
            return f"{host!r} is not a valid host[:port]"
        if not hostname:
            return "the URL names no host"
    return None


def _path_problem(scheme: str, path: str) -> str | None:
    segments = [segment for segment in path.split("/") if segment]
    if scheme.endswith("+sentinel"):
        # The path is /<service name>[/<db>].
        if len(segments) > 2:
            return "a sentinel URL path is /<service name>[/<db>]"
        segments = segments[1:]

    if len(segments) > 1:
        return "the path must be a database number such as /0"
    if segments and not segments[0].isdigit():
        return f"the database {segments[0]!r} is not a number"
    if scheme.endswith("+cluster") and segments and int(segments[0]) != 0:
        return "Redis Cluster has only database 0"
    return None


def _query_problem(query: str) -> str | None:
    for db in parse_qs(query).get("db", []):
        if not db.isdigit():
            return f"the database {db!r} is not a number"
    return None
