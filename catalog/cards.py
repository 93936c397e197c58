"""The product card a ``pin`` event carries: what the viewer's card shows.

Contract used by the room: ``await pin_card(db, session_id, product_id)`` returns the card, or
raises :class:`live.errors.NotFound` (``product_not_found``) when the product is not linked to
the session. The catalog enriches the card (variants with availability, running deal).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from catalog.models import Product
from live.db import Database
from live.errors import NotFound
from live.models import SessionProduct


async def pin_card(db: Database, session_id: str, product_id: str) -> dict[str, Any]:
    async with db.read() as s:
        linked = await s.scalar(select(SessionProduct.product_id).where(
            SessionProduct.session_id == session_id, SessionProduct.product_id == product_id))
        product = await s.get(Product, product_id) if linked else None
    if product is None:
        raise NotFound(f"product {product_id!r} is not in this session", code="product_not_found")
    return {"product_id": product.id, "title": product.title, "image_url": product.image_url,
            "price": product.price_minor, "currency": product.currency, "variants": [], "deal": None}
