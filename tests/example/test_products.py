"""The shop migrations create and seed the Product table."""

from __future__ import annotations

import pytest
from shop.models import Product

pytestmark = pytest.mark.django_db


def test_seed_creates_fifty_products() -> None:
    assert Product.objects.count() == 50


def test_seeded_names_are_distinct() -> None:
    names = list(Product.objects.values_list("name", flat=True))
    assert len(set(names)) == len(names)


def test_seeded_products_include_red_apple() -> None:
    product = Product.objects.get(name="Red apple")
    assert product.price > 0
    assert "apple" in product.description


def test_name_search_is_case_insensitive() -> None:
    matches = Product.objects.filter(name__icontains="RED")
    assert matches.count() == 5
    assert all(product.name.startswith("Red ") for product in matches)
