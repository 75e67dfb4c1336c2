"""Seed 50 products so the search view has something to find.

The data lives here rather than in app code, because a migration must keep
producing the same rows even after the app changes.
"""

from decimal import Decimal

from django.db import migrations

COLOURS = ["Red", "Blue", "Green", "Yellow", "Black", "White", "Orange", "Purple", "Grey", "Pink"]
ITEMS = [
    "apple", "kettle", "lamp", "chair", "teapot", "notebook", "backpack", "umbrella",
    "scarf", "mug", "bicycle", "guitar", "candle", "pillow", "clock", "vase", "jacket",
    "blanket", "bowl", "pen", "sofa", "rug", "hat", "toaster", "skateboard",
]  # fmt: skip
PRODUCT_COUNT = 50


def product_rows() -> list[tuple[str, str, Decimal]]:
    """Return (name, description, price) for every seeded product.

    Indexing the two lists with i % 10 and i % 25 gives 50 distinct pairs, since
    50 is the least common multiple of 10 and 25.
    """
    rows = []
    for i in range(PRODUCT_COUNT):
        colour = COLOURS[i % len(COLOURS)]
        item = ITEMS[i % len(ITEMS)]
        price = Decimal(f"{(i * 37) % 90 + 2}.{(i * 13) % 100:02d}")
        rows.append(
            (f"{colour} {item}", f"A {colour.lower()} {item} from the example shop.", price)
        )
    return rows


def seed_products(apps, schema_editor):
    Product = apps.get_model("shop", "Product")
    Product.objects.bulk_create(
        Product(name=name, description=description, price=price)
        for name, description, price in product_rows()
    )


def remove_products(apps, schema_editor):
    Product = apps.get_model("shop", "Product")
    Product.objects.filter(name__in=[name for name, _, _ in product_rows()]).delete()


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [migrations.RunPython(seed_products, remove_products)]
