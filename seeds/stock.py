"""Variants (children's sizes x colours) and stock per live store for the demo products."""

from __future__ import annotations

import random
from typing import Any

from catalog.models import Stock, Variant
from seeds import data

Rows = list[dict[str, Any]]


def slug(text: str) -> str:
    return text.lower().replace(" ", "")


def build_variants(products: Rows) -> Rows:
    variants: Rows = []
    for p, spec in zip(products, data.PRODUCTS, strict=True):
        sizes = ("One size",) if spec.kind in data.ONE_SIZE_KINDS else data.SIZES
        number = p["id"].removeprefix("pr_")
        for c in spec.colours:
            for size in sizes:
                size_code = "os" if size == "One size" else size.lower()
                variants.append(
                    {
                        "id": f"va_{number}_{size_code}_{slug(c)}",
                        "product_id": p["id"],
                        "sku": f"LL-{number}-{size_code.upper()}-{slug(c).upper()}",
                        "size": size,
                        "colour": c.title(),
                        "price_minor": None,
                        "active": True,
                        "position": len(variants),
                    }
                )
    return variants


def build_stock(stores: Rows, variants: Rows, rng: random.Random) -> Rows:
    """Units per live store and variant; about one in ten is sold out there."""
    return [
        {
            "store_id": s["id"],
            "variant_id": v["id"],
            "product_id": v["product_id"],
            "quantity": 0 if rng.random() < 0.1 else rng.randint(1, 12),
        }
        for s in stores
        if s["live_enabled"]
        for v in variants
    ]


def plan(stores: Rows, products: Rows, rng: random.Random) -> list[tuple[type[Any], Rows]]:
    variants = build_variants(products)
    return [(Variant, variants), (Stock, build_stock(stores, variants, rng))]


def counts(full_plan: list[tuple[type[Any], Rows]]) -> dict[str, int]:
    sizes = {model: len(rows) for model, rows in full_plan}
    return {"variants": sizes.get(Variant, 0), "stock rows": sizes.get(Stock, 0)}
