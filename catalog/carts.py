"""Carts: several items collected during a session, checked out like a one-tap order (``cart_id``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from catalog.buyers import Buyer, load_buyer
from catalog.lines import MAX_LINES, MAX_QTY, ItemRequest, parse_item, resolve_variant
from catalog.models import Cart, CartItem, Product, Variant, table
from live.auth import Viewer
from live.db import Database, new_id, now_ms
from live.errors import Conflict, NotFound, ValidationFailed
from live.models import LiveSession


async def _open_cart(s: AsyncSession, buyer: Buyer) -> Cart | None:
    return await s.scalar(
        select(Cart)
        .where(
            Cart.session_id == buyer.session_id,
            Cart.viewer_id == buyer.viewer_id,
            Cart.status == "open",
        )
        .order_by(Cart.updated_at.desc())
        .limit(1)
    )


async def _cart_json(s: AsyncSession, cart: Cart | None) -> dict[str, Any]:
    if cart is None:
        return {"id": None, "items": [], "total": 0, "currency": None}
    rows = (
        await s.execute(
            select(CartItem, Variant, Product)
            .join(Variant, Variant.id == CartItem.variant_id)
            .join(Product, Product.id == CartItem.product_id)
            .where(CartItem.cart_id == cart.id)
            .order_by(CartItem.added_at)
        )
    ).all()
    items: list[dict[str, Any]] = []
    for item, variant, product in rows:
        price = product.price_minor if variant.price_minor is None else variant.price_minor
        items.append(
            {
                "product_id": product.id,
                "variant_id": variant.id,
                "title": product.title,
                "size": variant.size,
                "colour": variant.colour,
                "qty": item.qty,
                "unit_price": price,
                "image_url": product.image_url,
            }
        )
    return {
        "id": cart.id,
        "items": items,
        "total": sum(int(i["unit_price"]) * int(i["qty"]) for i in items),
        "currency": rows[0][2].currency if rows else None,
    }


async def get_cart(db: Database, who: Viewer) -> dict[str, Any]:
    async with db.read() as s:
        buyer = await load_buyer(s, who)
        return await _cart_json(s, await _open_cart(s, buyer))


async def add_item(
    db: Database, who: Viewer, data: dict[str, Any]
) -> tuple[dict[str, Any], ItemRequest, bool]:
    """Add ``qty`` of a variant to the viewer's open cart; returns the cart, the item, and replay or not."""
    item = parse_item(data)
    async with db.write() as s:
        buyer = await load_buyer(s, who)
        sess = await s.get(LiveSession, who.session_id)
        assert sess is not None
        _product, variant = await resolve_variant(s, who.session_id, item)
        cart = await _open_cart(s, buyer)
        if cart is None:
            cart = Cart(id=new_id("ca"), session_id=who.session_id, viewer_id=who.viewer_id)
            s.add(cart)
            await s.flush()
        row = await s.get(CartItem, (cart.id, variant.id))
        if row is None:
            count = len(
                (
                    await s.scalars(select(CartItem.variant_id).where(CartItem.cart_id == cart.id))
                ).all()
            )
            if count >= MAX_LINES:
                raise ValidationFailed(
                    f"a cart holds at most {MAX_LINES} different items", code="cart_full"
                )
            s.add(
                CartItem(
                    cart_id=cart.id, variant_id=variant.id, product_id=item.product_id, qty=item.qty
                )
            )
        elif row.qty + item.qty > MAX_QTY:
            raise ValidationFailed(f"at most {MAX_QTY} of one variant")
        else:
            row.qty += item.qty
        cart.updated_at = now_ms()
        await s.flush()
        out = await _cart_json(s, cart)
    return out, ItemRequest(item.product_id, variant.id, item.qty), sess.status == "ended"


async def remove_item(db: Database, who: Viewer, variant_id: str) -> dict[str, Any]:
    async with db.write() as s:
        buyer = await load_buyer(s, who)
        cart = await _open_cart(s, buyer)
        if cart is None or (await s.get(CartItem, (cart.id, variant_id))) is None:
            raise NotFound("this item is not in your cart", code="cart_item_not_found")
        await s.execute(
            delete(CartItem).where(CartItem.cart_id == cart.id, CartItem.variant_id == variant_id)
        )
        return await _cart_json(s, cart)


async def cart_for_checkout(
    conn: AsyncConnection, cart_id: str | None, buyer: Buyer
) -> list[ItemRequest]:
    carts, lines = table(Cart), table(CartItem)
    cart = (
        (
            await conn.execute(
                select(carts.c.viewer_id, carts.c.session_id, carts.c.status).where(
                    carts.c.id == cart_id
                )
            )
        ).first()
        if cart_id
        else None
    )
    if cart is None or cart.viewer_id != buyer.viewer_id or cart.session_id != buyer.session_id:
        raise NotFound(f"no cart {cart_id!r}", code="cart_not_found")
    if cart.status != "open":
        raise Conflict("this cart has already been ordered", code="cart_ordered")
    rows = (
        await conn.execute(
            select(lines.c.product_id, lines.c.variant_id, lines.c.qty)
            .where(lines.c.cart_id == cart_id)
            .order_by(lines.c.added_at)
        )
    ).all()
    if not rows:
        raise Conflict("the cart is empty", code="cart_empty")
    return [ItemRequest(r.product_id, r.variant_id, r.qty) for r in rows]


async def claim_cart(conn: AsyncConnection, cart_id: str, order_id: str) -> bool:
    """Take the cart for an order, once: a conditional write in the order's reserve transaction. Of
    concurrent checkouts of one cart exactly one wins (PostgreSQL re-checks ``status`` under the row lock;
    SQLite serialises writers); the others are refused before anything is held or charged."""
    carts = table(Cart)
    result = await conn.execute(
        update(carts)
        .where(carts.c.id == cart_id, carts.c.status == "open")
        .values(status="ordered", order_id=order_id, updated_at=now_ms())
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


async def reopen_cart(conn: AsyncConnection, cart_id: str, order_id: str) -> None:
    """Give the cart back to the buyer when its order did not go through (declined, failed, expired)."""
    carts = table(Cart)
    await conn.execute(
        update(carts)
        .where(carts.c.id == cart_id, carts.c.order_id == order_id, carts.c.status == "ordered")
        .values(status="open", order_id=None, updated_at=now_ms())
    )
