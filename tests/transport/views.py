"""LiveViews used by the consumer tests."""

from __future__ import annotations

import asyncio
from typing import Any

from djust_dist import LiveView, event_handler, rate_limit


class CounterView(LiveView):
    template_name = "testviews/counter.html"

    def mount(self, request: Any, start: int = 0, **params: Any) -> None:
        self.count = start
        self.user_seen = getattr(request.user, "username", "")

    @event_handler
    def increment(self, by: int = 1) -> None:
        self.count += by

    @event_handler()
    async def async_increment(self) -> None:
        await asyncio.sleep(0)
        self.count += 10

    @event_handler
    def explode(self) -> None:
        raise RuntimeError("handler bug")

    def undecorated(self) -> None:
        self.count = -1

    def _secret(self) -> None:
        self.count = -2

    def render(self) -> str:
        return super().render()


class SearchView(LiveView):
    template_name = "testviews/search.html"

    def mount(self, request: Any, **params: Any) -> None:
        self.query = ""

    @event_handler
    @rate_limit(rate=0.01, burst=5)
    def search(self, query: str = "") -> None:
        self.query = query


class FailingMountView(LiveView):
    template_name = "testviews/counter.html"

    def mount(self, request: Any, **params: Any) -> None:
        raise ValueError("mount bug")
