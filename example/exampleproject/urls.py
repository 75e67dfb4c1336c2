"""URLs of the example project: an index page, the two LiveViews and the metrics."""

from django.urls import path
from django.views.generic import TemplateView
from shop.views import CounterView, SearchView

from djust_dist.views import metrics_view

urlpatterns = [
    path("", TemplateView.as_view(template_name="shop/index.html"), name="index"),
    path("counter/", CounterView.as_view(), name="counter"),
    path("search/", SearchView.as_view(), name="search"),
    # NOTE: /metrics is public here to keep the demo simple. A deployment serves
    # it on an internal port or restricts it at the proxy.
    path("metrics", metrics_view, name="metrics"),
]
