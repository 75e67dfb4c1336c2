"""ASGI entry point: Django over HTTP and the djust_dist consumer over WebSockets.

Run it with, for example:
    uvicorn exampleproject.asgi:application --no-proxy-headers
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exampleproject.settings")

# Django must be set up before anything that imports models, such as the consumer.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from djust_dist.consumers import LiveViewConsumer  # noqa: E402
from djust_dist.transport.lifespan import BackendLifespan  # noqa: E402

websocket_urlpatterns = [
    path("ws/liveview/", LiveViewConsumer.as_asgi()),
]

# The static handler lets uvicorn serve /static/ (the client script) with DEBUG
# off. NOTE: this suits a demo; a production site serves static files from the
# proxy, a CDN or WhiteNoise.
application = ProtocolTypeRouter(
    {
        "http": ASGIStaticFilesHandler(django_asgi_app),
        # Closes the process's Redis connections when uvicorn stops.
        "lifespan": BackendLifespan(),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
