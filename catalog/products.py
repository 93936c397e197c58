"""Products: create, list, show. (Variants, stock and pin cards build on this.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from catalog.models import Product
from live.db import Database, new_id
from live.directory import get_or_404
from live.http import field
from live.models import Store


def product_json(p: Product) -> dict[str, Any]:
    return {"id": p.id, "store_id": p.store_id, "title": p.title, "description": p.description,
            "price": p.price_minor, "currency": p.currency, "image_url": p.image_url, "active": p.active}


async def create_product(db: Database, data: dict[str, Any]) -> dict[str, Any]:
    store_id = field(data, "store_id", str, default=None)
    product = Product(
        id=field(data, "id", str, default=None) or new_id("pr"),
        store_id=store_id,
        title=field(data, "title", str, check=lambda v: 0 < len(v.strip()) <= 200, why="must be 1 to 200 characters"),
        description=field(data, "description", str, default="", check=lambda v: len(v) <= 5000, why="is too long"),
        price_minor=field(data, "price", int, check=lambda v: 0 <= v <= 10**11, why="is minor units, 0 or more"),
        currency=field(data, "currency", str, check=lambda v: len(v) == 3 and v.isalpha() and v.isupper(),
                       why="is an ISO 4217 code such as CNY"),
        image_url=field(data, "image_url", str, default="", check=lambda v: len(v) <= 500, why="is too long"),
    )
    async with db.write() as s:
        if store_id is not None:
            await get_or_404(s, Store, store_id, "store")
        s.add(product)
    return product_json(product)


async def list_products(db: Database, *, store_id: str | None = None) -> list[dict[str, Any]]:
    q = select(Product).where(Product.active.is_(True)).order_by(Product.position, Product.title)
    if store_id:
        q = q.where((Product.store_id == store_id) | Product.store_id.is_(None))
    async with db.read() as s:
        return [product_json(p) for p in (await s.scalars(q)).all()]


async def get_product(db: Database, product_id: str) -> dict[str, Any]:
    async with db.read() as s:
        return product_json(await get_or_404(s, Product, product_id, "product"))
