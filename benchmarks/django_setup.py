"""Minimal Django settings for the full-stack benchmark, configured in-process."""

from __future__ import annotations

from pathlib import Path

import django
from django.conf import settings

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# Loose enough that no benchmark event is denied: the table measures the cost
# of allowed events. One IP opens every benchmark connection.
BENCH_LIVEVIEW_CONFIG = {
    "rate_limit": {
        "rate": 100_000,
        "burst": 100_000,
        "max_connections_per_ip": 10_000,
    },
}


def configure_django() -> None:
    """Configure settings and apps once; later calls change nothing."""
    if settings.configured:
        return

    settings.configure(
        SECRET_KEY="djust-dist-benchmark-only",
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "channels",
            "djust_dist",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [TEMPLATES_DIR],
                "APP_DIRS": True,
            }
        ],
        CHANNEL_LAYERS={},
        REDIS_URL=None,
        LIVEVIEW_CONFIG=BENCH_LIVEVIEW_CONFIG,
        LOGGING_CONFIG=None,
    )
    django.setup()
