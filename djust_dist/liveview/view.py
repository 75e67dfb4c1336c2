"""The LiveView base class: a server-side view whose HTML follows its state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from djust_dist.conf.settings import get_settings
from djust_dist.liveview.tokens import mount_token, view_path

WS_PATH = "/ws/liveview/"


class LiveView:
    """Base class of views that re-render over a WebSocket after each client event.

    Subclasses set ``template_name``, initialise state in ``mount()``, and expose
    methods marked with ``@event_handler``. Public instance attributes (no leading
    underscore) form the template context. No name this class defines can ever be
    called from a client, even when a subclass overrides it.
    """

    template_name: ClassVar[str | None] = None
    page_title: ClassVar[str] = ""
    ws_path: ClassVar[str] = WS_PATH

    _registry: ClassVar[dict[str, type[LiveView]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        LiveView._registry[view_path(cls)] = cls

    @classmethod
    def registry(cls) -> Mapping[str, type[LiveView]]:
        """Return the LiveView subclasses defined so far, by dotted path."""
        return LiveView._registry

    def mount(self, request: Any, **params: Any) -> None:
        """Set the initial state. ``request`` is the HTTP request or the WebSocket scope view."""

    def get_context_data(self) -> dict[str, Any]:
        """Return the template context: every public instance attribute."""
        return {name: value for name, value in vars(self).items() if not name.startswith("_")}

    def get_template_name(self) -> str:
        """Return the template that renders this view's inner HTML."""
        if not self.template_name:
            raise ValueError(
                f"{type(self).__qualname__} has no template_name: set it to the template "
                "that renders the view's HTML"
            )
        return self.template_name

    def render(self) -> str:
        """Render the view's inner HTML from its current state."""
        return render_to_string(self.get_template_name(), self.get_context_data())

    def dispatch(self, request: HttpRequest, **params: Any) -> HttpResponse:
        """Serve the first render over HTTP, with a mount token and the client script."""
        self.mount(request, **params)
        page = {
            "page_title": self.page_title or type(self).__name__,
            "token": mount_token(type(self), params),
            "ws_path": self.ws_path,
            "reconnect_cooldown": get_settings().rate_limit.reconnect_cooldown,
            "body": mark_safe(self.render()),  # noqa: S308 - the view's own template output
        }
        return HttpResponse(render_to_string("djust_dist/page.html", page, request=request))

    @classmethod
    def as_view(cls) -> Callable[..., HttpResponse]:
        """Return a Django view function that serves this LiveView's first render.

        URL keyword arguments become the mount params (they must be JSON-serialisable).
        """

        def view(request: HttpRequest, **params: Any) -> HttpResponse:
            return cls().dispatch(request, **params)

        view.__name__ = cls.__name__
        view.__qualname__ = cls.__qualname__
        view.__doc__ = cls.__doc__
        return view
