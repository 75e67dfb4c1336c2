"""Signed mount tokens: the only way a WebSocket client can name a view to mount."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core import signing
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from djust_dist.liveview.view import LiveView

SALT = "djust_dist.mount"


class InvalidMountToken(Exception):
    """A mount token that is malformed, tampered with, or names no LiveView."""


def view_path(view_class: type) -> str:
    """Return the dotted import path of a class."""
    return f"{view_class.__module__}.{view_class.__qualname__}"


def mount_token(view_class: type[LiveView], params: Mapping[str, Any] | None = None) -> str:
    """Sign a token that lets a client mount ``view_class`` with ``params``.

    ``params`` must be JSON-serialisable; they reach ``mount()`` as keyword arguments.
    Tokens do not expire: they carry no secret, only what the server already chose
    to render.
    """
    from djust_dist.liveview.view import LiveView

    if not (isinstance(view_class, type) and issubclass(view_class, LiveView)):
        raise TypeError(f"mount_token() needs a LiveView subclass, got {view_class!r}")

    payload = {"view": view_path(view_class), "params": dict(params or {})}
    return signing.dumps(payload, salt=SALT, compress=True)


def load_mount_token(token: object) -> tuple[type[LiveView], dict[str, Any]]:
    """Verify a token and return the view class and mount params it names.

    The class path is imported only after the signature checks out, so a client
    can never make the server import a module of its choosing.
    """
    from djust_dist.liveview.view import LiveView

    if not isinstance(token, str) or not token or len(token) > 4096:
        raise InvalidMountToken("the token must be a non-empty string of at most 4096 characters")

    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise InvalidMountToken("the token signature does not verify") from exc

    if not isinstance(payload, dict):
        raise InvalidMountToken("the token payload is not an object")
    path, params = payload.get("view"), payload.get("params")
    if not isinstance(path, str) or not isinstance(params, dict):
        raise InvalidMountToken("the token payload lacks a view path or params")

    view_class = LiveView.registry().get(path)
    if view_class is None:
        try:
            view_class = import_string(path)
        except ImportError as exc:
            raise InvalidMountToken(f"the view {path!r} cannot be imported") from exc
    if not (isinstance(view_class, type) and issubclass(view_class, LiveView)):
        raise InvalidMountToken(f"{path!r} is not a LiveView subclass")

    return view_class, params
