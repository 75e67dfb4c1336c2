"""Drop the cached settings when a setting they are read from changes."""

from __future__ import annotations

from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from djust_dist.conf.settings import clear_settings_cache

WATCHED_SETTINGS = frozenset({"LIVEVIEW_CONFIG", "REDIS_URL"})


@receiver(setting_changed, dispatch_uid="djust_dist.conf.signals.reload_settings")
def reload_settings(*, setting: str, **kwargs: Any) -> None:
    """Clear the settings cache when ``override_settings`` or a test changes a watched setting."""
    if setting in WATCHED_SETTINGS:
        clear_settings_cache()
