"""The handler allowlist: which method, if any, a client event may call.

Lookups read class ``__dict__`` entries along the MRO and never call ``getattr``
on a class or an instance, so no property, descriptor or ``__getattr__`` of the
view runs while a client-chosen name is being resolved.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from djust_dist.security.decorators import is_event_handler
from djust_dist.security.names import is_valid_event_name

logger = logging.getLogger(__name__)

EventSecurityMode = Literal["strict", "warn", "open"]
EVENT_SECURITY_MODES: tuple[EventSecurityMode, ...] = ("strict", "warn", "open")
LookupErrorCode = Literal["invalid_event_name", "unknown_event"]

ALLOWED_EVENTS_ATTR = "_allowed_events"


@dataclass(frozen=True, slots=True)
class HandlerLookup:
    """The result of resolving an event name on a view class.

    ``handler`` is the plain function to call, or None with ``error`` set to the
    wire error code. ``deprecated`` is True when only ``warn`` mode let it through.
    """

    handler: Callable[..., Any] | None
    error: LookupErrorCode | None
    deprecated: bool = False


INVALID_EVENT_NAME = HandlerLookup(None, "invalid_event_name")
UNKNOWN_EVENT = HandlerLookup(None, "unknown_event")

# (view class, handler name) pairs already reported in warn mode.
_warned: set[tuple[type, str]] = set()
_warned_lock = threading.Lock()


def resolve_handler(view_class: type, name: object, mode: str, base: type) -> HandlerLookup:
    """Find the handler that event ``name`` may call on ``view_class`` under ``mode``.

    ``base`` is the LiveView base class: no name it or its bases define is ever
    callable, in any mode, even when ``view_class`` overrides it. The handler must
    be a plain function defined by a strict subclass of ``base``. An unknown
    ``mode`` behaves as ``"strict"``.
    """
    if not is_valid_event_name(name):
        return INVALID_EVENT_NAME

    if _defined_in_mro(base, name):
        return UNKNOWN_EVENT

    owner, value = _find_class_attribute(view_class, name)
    if owner is None or owner is base or not issubclass(owner, base):
        return UNKNOWN_EVENT
    if not inspect.isfunction(value):
        return UNKNOWN_EVENT

    if is_event_handler(value) or name in allowed_events(view_class):
        return HandlerLookup(value, None)
    return _apply_mode(view_class, name, value, mode)


def allowed_events(view_class: type) -> frozenset[str]:
    """Return the names in the class's ``_allowed_events`` that pass the name guard.

    A single ``str`` counts as one name. A value that is not iterable allows nothing.
    """
    return frozenset(
        entry
        for entry in allowed_event_entries(view_class)
        if isinstance(entry, str) and is_valid_event_name(entry)
    )


def invalid_allowed_events(view_class: type) -> list[str]:
    """Return the ``_allowed_events`` entries of ``view_class`` that fail the name guard.

    ``str`` entries are returned as they are, other entries as their ``repr()``. A
    value that is not iterable is returned as one entry.
    """
    invalid: list[str] = []
    for entry in allowed_event_entries(view_class):
        if isinstance(entry, str):
            if not is_valid_event_name(entry):
                invalid.append(entry)
        else:
            invalid.append(repr(entry))
    return invalid


def _apply_mode(
    view_class: type, name: str, handler: Callable[..., Any], mode: str
) -> HandlerLookup:
    if mode == "open":
        return HandlerLookup(handler, None)
    if mode == "warn":
        _warn_undecorated(view_class, name)
        return HandlerLookup(handler, None, deprecated=True)
    return UNKNOWN_EVENT


def _warn_undecorated(view_class: type, name: str) -> None:
    """Log the deprecation once per view class and handler name in this process."""
    key = (view_class, name)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)

    logger.warning(
        "%s.%s.%s is called from the client without @event_handler; "
        "event_security='warn' allows it for now, 'strict' will reject it. "
        "Decorate the method with @event_handler or list it in _allowed_events.",
        view_class.__module__,
        view_class.__qualname__,
        name,
    )


def allowed_event_entries(view_class: type) -> tuple[object, ...]:
    """Return the raw entries of the class's ``_allowed_events``, valid or not.

    A single ``str`` and a value that is not iterable each count as one entry.
    """
    _, value = _find_class_attribute(view_class, ALLOWED_EVENTS_ATTR)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, Iterable):
        return (value,)
    return tuple(value)


def _find_class_attribute(view_class: type, name: str) -> tuple[type | None, object]:
    """Return the first class in the MRO whose ``__dict__`` has ``name``, and the value."""
    for klass in view_class.__mro__:
        namespace = klass.__dict__
        if name in namespace:
            return klass, namespace[name]
    return None, None


def _defined_in_mro(klass: type, name: str) -> bool:
    return any(name in ancestor.__dict__ for ancestor in klass.__mro__)
