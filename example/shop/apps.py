"""App config of the example shop."""

from django.apps import AppConfig


class ShopConfig(AppConfig):
    """The example shop: a counter and a product search built on djust_dist."""

    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"
