"""The request object that ``LiveView.mount()`` receives over a WebSocket."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict

from djust_dist.transport.bucket_keys import anonymous_caller, user_caller


@dataclass(frozen=True)
class WebSocketRequest:
    """The client facts a view receives when it mounts over a WebSocket.

    It mirrors the parts of ``HttpRequest`` that make sense there: ``user``,
    ``session``, ``path``, ``GET`` (the handshake's query string), the ASGI
    ``scope``, and ``client_ip`` as djust_dist resolved it.
    """

    scope: dict[str, Any]
    client_ip: str
    user: Any = None
    session: Any = None
    path: str = ""
    GET: QueryDict = field(default_factory=QueryDict)

    @classmethod
    def from_scope(cls, scope: dict[str, Any], client_ip: str) -> WebSocketRequest:
        query = scope.get("query_string", b"")
        return cls(
            scope=scope,
            client_ip=client_ip,
            user=scope.get("user"),
            session=scope.get("session"),
            path=str(scope.get("path", "")),
            GET=QueryDict(query.decode("latin-1") if isinstance(query, bytes) else ""),
        )


def caller_identity(scope: dict[str, Any], client_ip: str) -> str:
    """Return whose budget a per-handler bucket draws from.

    An authenticated user is one caller however many connections, tabs or
    workers they use. Anonymous clients are keyed by IP, not by session: a
    client can mint new sessions at will.
    """
    user = scope.get("user")
    if user is not None and getattr(user, "is_authenticated", False):
        return user_caller(user.pk)
    return anonymous_caller(client_ip)
