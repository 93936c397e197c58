"""The product card a ``pin`` event carries: what the viewer's card shows.

Contract used by the room: ``await pin_card(db, session_id, product_id)`` returns the card, or
raises :class:`live.errors.NotFound` (``product_not_found``) when the product is not linked to
the session. The card has the title, images, price, variants with availability at the session's
store, and the running deal, if any.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.deals import deal_json
from catalog.lines import running_deals
from catalog.models import Product
from catalog.products import stock_for, variant_json, variants_by_product
from live.db import Database, now_ms
from live.errors import NotFound
from live.models import LiveSession, SessionProduct


async def _cards(
    s: AsyncSession, sess: LiveSession, products: list[Product]
) -> list[dict[str, Any]]:
    ids = [p.id for p in products]
    variants = await variants_by_product(s, ids)
    stock = await stock_for(s, sess.store_id, ids)
    deals = await running_deals(s, sess.id, ids, now_ms())
    cards = []
    for p in products:
        vs = [
            variant_json(v, p) | {"stock": stock.get(v.id, 0), "available": stock.get(v.id, 0) > 0}
            for v in variants[p.id]
        ]
        deal = deals.get(p.id)
        cards.append(
            {
                "product_id": p.id,
                "id": p.id,
                "title": p.title,
                "description": p.description,
                "image_url": p.image_url,
                "images": list(p.images or ([p.image_url] if p.image_url else [])),
                "price": p.price_minor,
                "currency": p.currency,
                "variants": vs,
                "available": any(v["available"] for v in vs),
                "pinned": sess.pinned_product_id == p.id,
                "deal": deal_json(deal, p)
                if deal is not None and deal.sold < deal.quantity
                else None,
            }
        )
    return cards


async def pin_card(db: Database, session_id: str, product_id: str) -> dict[str, Any]:
    async with db.read() as s:
        linked = await s.scalar(
            select(SessionProduct.product_id).where(
                SessionProduct.session_id == session_id, SessionProduct.product_id == product_id
            )
        )
        product = await s.get(Product, product_id) if linked else None
        sess = await s.get(LiveSession, session_id) if product is not None else None
        if product is None or sess is None:
            raise NotFound(
                f"product {product_id!r} is not in this session", code="product_not_found"
            )
        return (await _cards(s, sess, [product]))[0]


async def session_products(db: Database, session_id: str) -> list[dict[str, Any]]:
    """The session's linked products, in order, as cards with live stock at the session's store."""
    async with db.read() as s:
        sess = await s.get(LiveSession, session_id)
        if sess is None:
            raise NotFound(f"no session {session_id!r}", code="session_not_found")
        products = list(
            (
                await s.scalars(
                    select(Product)
                    .join(SessionProduct, SessionProduct.product_id == Product.id)
                    .where(SessionProduct.session_id == session_id, Product.active.is_(True))
                    .order_by(SessionProduct.position)
                )
            ).all()
        )
        return await _cards(s, sess, products)
