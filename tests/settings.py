"""Django settings for the test suite.

REDIS_URL is set to None on purpose: unit tests get the in-memory backend unless
a test points the limiter at the test Redis itself.
"""

from pathlib import Path

SECRET_KEY = "djust-dist-test-secret-key-not-for-production"
DEBUG = True
ALLOWED_HOSTS = ["*"]
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "djust_dist",
    "shop",
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parent / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    }
]

ROOT_URLCONF = "exampleproject.urls"
STATIC_URL = "/static/"
ASGI_APPLICATION = "exampleproject.asgi.application"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

REDIS_URL = None
LIVEVIEW_CONFIG: dict[str, object] = {}

LOGGING_CONFIG = None
