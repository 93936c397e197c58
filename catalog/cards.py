"""The product card a ``pin`` event carries: what the viewer's card shows.

Contract used by the room: ``await pin_card(db, session_id, product_id)`` returns the card, or
raises :class:`live.errors.NotFound` (``product_not_found``) when the product is not linked to
the session. The card has the title, images, price, variants with availability at the session's
store, and the running deal, if any.

``price`` is the regular price; ``price_now`` is what one unit costs the viewer the card is for, by
:func:`catalog.pricing.price_for`: the deal price within their own per-viewer limit, the regular price
beyond it. The room's ``pin`` card is one card for everybody, so it is for a viewer who holds none of the
deal yet (``deal.claimed`` 0); each page applies the same rule with its own ``claimed`` (from
``GET /api/sessions/{id}/products`` with its viewer token, which answers for that viewer, and from its
own orders). An order sends the total it showed (``expected_total``), so a card that is behind can
never charge another price than the one shown: the order is answered ``409 price_changed``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.deals import deal_json
from catalog.lines import running_deals
from catalog.models import DealClaim, Product
from catalog.pricing import DealTerms, price_for
from catalog.products import stock_for, variant_json, variants_by_product
from live.db import Database, now_ms
from live.errors import NotFound
from live.models import LiveSession, SessionProduct


async def _cards(
    s: AsyncSession, sess: LiveSession, products: list[Product], viewer_id: str | None = None
) -> list[dict[str, Any]]:
    ids = [p.id for p in products]
    variants = await variants_by_product(s, ids)
    stock = await stock_for(s, sess.store_id, ids)
    now = now_ms()
    deals = await running_deals(s, sess.id, ids, now)
    claimed: dict[str, int] = {}
    if viewer_id is not None and deals:
        rows = await s.execute(
            select(DealClaim.deal_id, DealClaim.qty).where(
                DealClaim.viewer_id == viewer_id,
                DealClaim.deal_id.in_([d.id for d in deals.values()]),
            )
        )
        claimed = {deal_id: int(qty) for deal_id, qty in rows.all()}
    cards = []
    for p in products:
        vs = [
            variant_json(v, p) | {"stock": stock.get(v.id, 0), "available": stock.get(v.id, 0) > 0}
            for v in variants[p.id]
        ]
        deal = deals.get(p.id)
        terms = (
            None
            if deal is None
            else DealTerms(
                deal.id,
                deal.price_minor,
                deal.quantity,
                deal.sold,
                deal.per_viewer_limit,
                deal.ends_at,
                deal.ended_at,
                claimed.get(deal.id, 0),
            )
        )
        cards.append(
            {
                "product_id": p.id,
                "id": p.id,
                "title": p.title,
                "description": p.description,
                "image_url": p.image_url,
                "images": list(p.images or ([p.image_url] if p.image_url else [])),
                "price": p.price_minor,
                "price_now": price_for(p.price_minor, 1, terms, now).unit_price,
                "currency": p.currency,
                "variants": vs,
                "available": any(v["available"] for v in vs),
                "pinned": sess.pinned_product_id == p.id,
                "deal": deal_json(deal, p) | {"claimed": claimed.get(deal.id, 0)}
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


async def session_products(
    db: Database, session_id: str, viewer_id: str | None = None
) -> list[dict[str, Any]]:
    """The session's linked products, in order, as cards with live stock at the session's store, priced
    for ``viewer_id`` (a viewer of this session) when given."""
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
        return await _cards(s, sess, products, viewer_id)
