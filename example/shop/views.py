"""The two LiveViews of the example shop: a counter and a product search."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from djust_dist import LiveView, event_handler, rate_limit

from .models import Product

SEARCH_RESULT_LIMIT = 20


class CounterView(LiveView):
    """A number that the browser raises and lowers over the WebSocket."""

    template_name = "shop/counter.html"
    page_title = "Counter"

    def mount(self, request: HttpRequest, **params: Any) -> None:
        self.count = 0

    @event_handler
    def increment(self) -> None:
        self.count += 1

    @event_handler
    def decrement(self) -> None:
        self.count -= 1


class SearchView(LiveView):
    """A search-as-you-type over the seeded products, limited to 2 searches a second.

    Each keystroke sends one `search` event. The handler limit (a burst of 5, then
    2 per second) is shared by every tab and worker of one caller, because the
    bucket lives in Redis.
    """

    template_name = "shop/search.html"
    page_title = "Product search"

    def mount(self, request: HttpRequest, **params: Any) -> None:
        self.query = ""
        self.results = self._find_products("")

    @event_handler
    @rate_limit(rate=2, burst=5)
    def search(self, query: str = "") -> None:
        self.query = query
        self.results = self._find_products(query.strip())

    def _find_products(self, query: str) -> list[dict[str, Any]]:
        products = Product.objects.filter(name__icontains=query)[:SEARCH_RESULT_LIMIT]
        return [
            {
                "id": product.pk,
                "name": product.name,
                "description": product.description,
                "price": str(product.price),
            }
            for product in products
        ]
