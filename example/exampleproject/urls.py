"""URLs of the example project: an index page and the two LiveViews."""

from django.urls import path
from django.views.generic import TemplateView
from shop.views import CounterView, SearchView

urlpatterns = [
    path("", TemplateView.as_view(template_name="shop/index.html"), name="index"),
    path("counter/", CounterView.as_view(), name="counter"),
    path("search/", SearchView.as_view(), name="search"),
]
