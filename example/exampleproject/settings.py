"""Django settings for the djust_dist example project.

Everything that differs between a laptop, the process launcher (`python -m demo`)
and docker compose comes from environment variables, so no file is edited to
switch between them:

    DJANGO_SECRET_KEY      signing key. Every worker must share it, because a page
                           rendered by one worker is mounted over a WebSocket on another
    DJANGO_DEBUG           "1"/"true" to turn DEBUG on (default off)
    DJANGO_ALLOWED_HOSTS   comma-separated host names
    DJUST_DB_PATH          path of the sqlite file
    DJUST_LOG_LEVEL        level of the djust_dist logger (default INFO)
    REDIS_URL              Redis for the limiter and the channel layer; unset means
                           in-memory, per-process limits
    DJUST_CHANNEL_LAYER    "memory" keeps the channel layer in-process even with
                           REDIS_URL set. channels_redis cannot use a Redis Cluster
                           URL, so a limiter on a cluster needs this or another
                           channel layer. `kick` then reaches one worker only.
    DJUST_*                LIVEVIEW_CONFIG overrides, listed in CONFIG_OVERRIDES below
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent

# NOTE: the fallback key is for local development only; deployments set
# DJANGO_SECRET_KEY, because anyone who has the key can forge mount tokens.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-djust-dist-example-development-only"
)


def env_flag(name: str, default: bool = False) -> bool:
    """Read a boolean environment variable written as 1/0, true/false, yes/no or on/off."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated environment variable as a list of non-empty items."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_flag("DJANGO_DEBUG")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "djust_dist",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "exampleproject.urls"
ASGI_APPLICATION = "exampleproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ],
        },
    }
]

# Several worker processes may open this one file. The timeout makes a reader
# wait for a concurrent writer, such as a migration, instead of failing at once.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJUST_DB_PATH") or str(BASE_DIR / "db.sqlite3"),
        "OPTIONS": {"timeout": 20},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# The ASGI app serves these itself (see asgi.py), so the demo works under uvicorn
# with DEBUG off and without collectstatic.
STATIC_URL = "/static/"

REDIS_URL: str | None = os.environ.get("REDIS_URL") or None

# redis-py 8.0 made socket_timeout default to 5 s (its 8.0.0 release notes).
# channels_redis waits for messages with a BZPOPMIN that blocks up to 5 s, so
# with that default an idle receive times out and kills the consumer. The read
# timeout must exceed the blocking time; 10 s still gives up on a hung Redis.
CHANNEL_LAYER_SOCKET_TIMEOUT = 10

CHANNEL_LAYER_IN_MEMORY = os.environ.get("DJUST_CHANNEL_LAYER", "").lower() == "memory"

if REDIS_URL and not CHANNEL_LAYER_IN_MEMORY:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": CHANNEL_LAYER_SOCKET_TIMEOUT}],
                # Channel-layer keys share the limiter's key prefix when one is set,
                # so a deployment (or a test) keeps all its keys under one prefix.
                "prefix": f"{os.environ['DJUST_KEY_PREFIX']}:asgi"
                if os.environ.get("DJUST_KEY_PREFIX")
                else "asgi",
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def parse_trusted_proxies(raw: str) -> int | list[str]:
    """Parse DJUST_TRUSTED_PROXIES: a hop count ("1") or comma-separated CIDRs."""
    if raw.strip().isdigit():
        return int(raw)
    return [item.strip() for item in raw.split(",") if item.strip()]


# Environment variable -> (path inside LIVEVIEW_CONFIG, parser). Only variables
# that are set end up in LIVEVIEW_CONFIG, so djust_dist's defaults hold otherwise,
# and a bad value is reported by `manage.py check` like any other setting.
CONFIG_OVERRIDES: dict[str, tuple[tuple[str, ...], Callable[[str], Any]]] = {
    "DJUST_EVENT_SECURITY": (("event_security",), str),
    "DJUST_TRUSTED_PROXIES": (("trusted_proxies",), parse_trusted_proxies),
    "DJUST_RATE": (("rate_limit", "rate"), float),
    "DJUST_BURST": (("rate_limit", "burst"), int),
    "DJUST_MAX_WARNINGS": (("rate_limit", "max_warnings"), int),
    "DJUST_MAX_CONNECTIONS_PER_IP": (("rate_limit", "max_connections_per_ip"), int),
    "DJUST_RECONNECT_COOLDOWN": (("rate_limit", "reconnect_cooldown"), float),
    "DJUST_KEY_PREFIX": (("redis", "key_prefix"), str),
    "DJUST_ON_ERROR": (("redis", "on_error"), str),
    "DJUST_REDIS_TIMEOUT": (("redis", "timeout"), float),
    "DJUST_LEASE_TTL": (("redis", "lease_ttl"), float),
}


def build_liveview_config(environ: os._Environ[str] | dict[str, str]) -> dict[str, Any]:
    """Build LIVEVIEW_CONFIG from the DJUST_* variables that are set in environ."""
    config: dict[str, Any] = {}
    for variable, (path, parse) in CONFIG_OVERRIDES.items():
        raw = environ.get(variable)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = parse(raw.strip())
        except ValueError as exc:
            raise ValueError(f"invalid {variable}={raw!r}: {exc}") from exc

        section = config
        for key in path[:-1]:
            section = section.setdefault(key, {})
        section[path[-1]] = value
    return config


LIVEVIEW_CONFIG = build_liveview_config(os.environ)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # The process id distinguishes the workers when they share one terminal.
        "worker": {"format": "%(asctime)s pid=%(process)d %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "worker"},
    },
    "loggers": {
        "djust_dist": {
            "handlers": ["console"],
            "level": os.environ.get("DJUST_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}
