"""Django app configuration of djust_dist."""

from __future__ import annotations

from django.apps import AppConfig


class DjustDistConfig(AppConfig):
    """Registers the system checks and the settings reload on ``setting_changed``."""

    name = "djust_dist"
    verbose_name = "djust_dist"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks and connect the settings cache receiver."""
        from djust_dist.conf import checks, signals  # noqa: F401 - signals connects on import

        checks.register_checks()
