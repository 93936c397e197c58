"""Orders after checkout: show, list a buyer's own, state transitions, refunds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.buyers import load_buyer
from catalog.models import Order, OrderItem, table
from catalog.payments.base import PaymentProvider, PaymentUnavailable
from catalog.signals import Signals
from catalog.stock import Executor, release_order
from live.auth import Principal, Staff, Viewer
from live.db import Database, now_ms
from live.errors import Conflict, NotFound
from live.policy import Action, Target, require

ORDERS, ITEMS = table(Order), table(OrderItem)


def columns(row: Order | OrderItem) -> dict[str, Any]:
    """An ORM row as the plain mapping the functions below take."""
    return {c.key: getattr(row, c.key) for c in table(type(row)).columns}


def order_body(
    o: Mapping[str, Any], items: Sequence[Mapping[str, Any]], *, staff: bool = False
) -> dict[str, Any]:
    """An order as the API shows it, from the ``orders`` row and its ``order_items`` rows (mappings)."""
    out: dict[str, Any] = {
        "order_id": o["id"],
        "id": o["id"],
        "status": o["status"],
        "session_id": o["session_id"],
        "total": o["total"],
        "currency": o["currency"],
        "items": [
            {
                "product_id": i["product_id"],
                "variant_id": i["variant_id"],
                "title": i["title"],
                "qty": i["qty"],
                "unit_price": i["unit_price"],
                "list_price": i["list_price"],
                "deal_id": i["deal_id"],
                "line_total": i["unit_price"] * i["qty"],
            }
            for i in items
        ],
        "delivery": o["delivery"],
        "contact": o["contact"],
        "payment_provider": o["payment_provider"],
        "replay": o["replay"],
        "pinned": o["pinned"],
        "created_at": o["created_at"],
        "paid_at": o["paid_at"],
        "closed_at": o["closed_at"],
    }
    if staff:
        out.update(
            viewer_id=o["viewer_id"],
            client_id=o["client_id"],
            invite_id=o["invite_id"],
            associate_id=o["associate_id"],
            store_id=o["store_id"],
            session_kind=o["session_kind"],
            payment_ref=o["payment_ref"],
        )
    return out


def order_json(o: Order, items: list[OrderItem], *, staff: bool = False) -> dict[str, Any]:
    return order_body(columns(o), [columns(i) for i in items], staff=staff)


async def order_items(s: AsyncSession, order_id: str) -> list[OrderItem]:
    return list(
        (
            await s.scalars(
                select(OrderItem)
                .where(OrderItem.order_id == order_id)
                .order_by(OrderItem.variant_id)
            )
        ).all()
    )


async def order_rows(
    s: Executor, order_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """An order and its lines as plain mappings (two Core reads), or None."""
    row = (await s.execute(select(ORDERS).where(ORDERS.c.id == order_id))).mappings().first()
    if row is None:
        return None
    items = (
        (
            await s.execute(
                select(ITEMS).where(ITEMS.c.order_id == order_id).order_by(ITEMS.c.variant_id)
            )
        )
        .mappings()
        .all()
    )
    return dict(row), [dict(i) for i in items]


async def transition(s: Executor, order_id: str, frm: str, to: str, **values: Any) -> bool:
    """Move an order from ``frm`` to ``to`` if nobody else did first (the one winner compensates)."""
    result = await s.execute(
        update(ORDERS)
        .where(ORDERS.c.id == order_id, ORDERS.c.status == frm)
        .values(status=to, **values)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


async def get_order(db: Database, order_id: str, who: Principal) -> dict[str, Any]:
    async with db.read() as s:
        order = await s.get(Order, order_id)
        if order is not None and isinstance(who, Viewer):
            buyer = await load_buyer(s, who)
            if order.owner_key != buyer.owner_key:
                order = None  # another viewer's order does not exist for you
        elif order is not None:
            require(who, Action.SEE_ORDERS, Target(store_id=order.store_id))
        if order is None:
            raise NotFound(f"no order {order_id!r}", code="order_not_found")
        items = await order_items(s, order_id)
    return order_json(order, items, staff=isinstance(who, Staff))


async def my_orders(db: Database, who: Viewer, *, limit: int = 50) -> dict[str, Any]:
    async with db.read() as s:
        buyer = await load_buyer(s, who)
        orders = list(
            (
                await s.scalars(
                    select(Order)
                    .where(Order.owner_key == buyer.owner_key, Order.status != "pending")
                    .order_by(Order.created_at.desc())
                    .limit(limit)
                )
            ).all()
        )
        out = [order_json(o, await order_items(s, o.id)) for o in orders]
    return {"items": out}


async def refund(
    db: Database,
    providers: dict[str, PaymentProvider],
    signals: Signals,
    order_id: str,
    by: Staff | None = None,
) -> dict[str, Any]:
    """Refund a paid order in full and put its stock back (also how staff cancel an order).

    ``by``: the staff member asking; an associate refunds only their own store's orders.
    """
    async with db.write() as s:
        order = await s.get(Order, order_id)
        if order is None:
            raise NotFound(f"no order {order_id!r}", code="order_not_found")
        if by is not None:
            require(by, Action.REFUND, Target(store_id=order.store_id))
        if order.status == "refunded":
            raise Conflict("the order is already refunded", code="already_refunded")
        if order.status not in ("paid", "refunding") or not await transition(
            s, order_id, order.status, "refunding"
        ):
            raise Conflict(
                f"only paid orders are refunded (this one is {order.status})", code="not_paid"
            )
    provider = providers.get(order.payment_provider)
    try:
        if provider is None:
            raise PaymentUnavailable(
                f"payment provider {order.payment_provider!r} is not configured"
            )
        assert order.payment_ref is not None
        await provider.refund(order.payment_ref)
    except Exception:
        async with db.write() as s:
            await transition(s, order_id, "refunding", "paid")
        raise
    async with db.write() as s:
        if await transition(s, order_id, "refunding", "refunded", closed_at=now_ms()):
            await release_order(
                s,
                order.store_id,
                order.viewer_id,
                [columns(i) for i in await order_items(s, order_id)],
            )
        order = await s.get(Order, order_id, populate_existing=True)
        assert order is not None
        items = await order_items(s, order_id)
    signals.counters_soon(order.session_id)
    return order_json(order, items, staff=True)
