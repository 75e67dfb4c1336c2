"""djust_dist: event security and rate limits for LiveView-style Django Channels apps.

The names below load lazily so that importing the package needs no configured
Django settings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0.dev0"

__all__ = ["LiveView", "event_handler", "is_event_handler", "mount_token", "rate_limit"]

_EXPORTS = {
    "LiveView": "djust_dist.liveview.view",
    "mount_token": "djust_dist.liveview.tokens",
    "event_handler": "djust_dist.security.decorators",
    "is_event_handler": "djust_dist.security.decorators",
    "rate_limit": "djust_dist.security.decorators",
}

if TYPE_CHECKING:
    from djust_dist.liveview.tokens import mount_token
    from djust_dist.liveview.view import LiveView
    from djust_dist.security.decorators import event_handler, is_event_handler, rate_limit


def __getattr__(name: str) -> Any:
    module_path = _EXPORTS.get(name)
    if module_path is None:
        raise AttributeError(f"module 'djust_dist' has no attribute {name!r}")
    return getattr(importlib.import_module(module_path), name)
