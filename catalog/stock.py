"""Atomic stock and deal counters: conditional updates that can never take a count below zero.

``UPDATE … SET quantity = quantity - :q WHERE … AND quantity >= :q`` is safe under concurrency on
PostgreSQL (the row lock re-checks the condition) and on SQLite (writers are serialised).
Callers take rows in variant-id order, then deals in id order, so transactions never deadlock.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.lines import Line
from catalog.models import Deal, DealClaim, Order, OrderItem, Stock

_NOSYNC = {"synchronize_session": False}


async def _rowcount(s: AsyncSession, stmt: object) -> int:
    result = await s.execute(stmt.execution_options(**_NOSYNC))  # type: ignore[attr-defined]
    return int(result.rowcount)  # type: ignore[attr-defined]


async def take(s: AsyncSession, store_id: str, variant_id: str, qty: int) -> bool:
    return await _rowcount(s, update(Stock).where(Stock.store_id == store_id, Stock.variant_id == variant_id,
                                                  Stock.quantity >= qty)
                           .values(quantity=Stock.quantity - qty)) == 1


async def give_back(s: AsyncSession, store_id: str, variant_id: str, qty: int) -> None:
    await _rowcount(s, update(Stock).where(Stock.store_id == store_id, Stock.variant_id == variant_id)
                    .values(quantity=Stock.quantity + qty))


async def claim_deal(s: AsyncSession, deal: Deal, viewer_id: str, qty: int, now: int) -> str | None:
    """Count ``qty`` units against the deal's cap and the viewer's limit; the failure code, or None."""
    if await _rowcount(s, update(Deal).where(Deal.id == deal.id, Deal.ended_at.is_(None), Deal.ends_at > now,
                                             Deal.sold + qty <= Deal.quantity)
                       .values(sold=Deal.sold + qty)) != 1:
        return "deal_ended" if deal.ended_at is not None or deal.ends_at <= now else "deal_sold_out"
    dialect = s.get_bind().dialect.name
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(DealClaim)
    await s.execute(ins.values(deal_id=deal.id, viewer_id=viewer_id, qty=0).on_conflict_do_nothing())
    if await _rowcount(s, update(DealClaim).where(DealClaim.deal_id == deal.id, DealClaim.viewer_id == viewer_id,
                                                  DealClaim.qty + qty <= deal.per_viewer_limit)
                       .values(qty=DealClaim.qty + qty)) != 1:
        await _rowcount(s, update(Deal).where(Deal.id == deal.id).values(sold=Deal.sold - qty))
        return "deal_limit_reached"
    return None


async def unclaim_deal(s: AsyncSession, deal_id: str, viewer_id: str, qty: int) -> None:
    await _rowcount(s, update(Deal).where(Deal.id == deal_id, Deal.sold >= qty).values(sold=Deal.sold - qty))
    await _rowcount(s, update(DealClaim).where(DealClaim.deal_id == deal_id, DealClaim.viewer_id == viewer_id,
                                               DealClaim.qty >= qty).values(qty=DealClaim.qty - qty))


async def release_order(s: AsyncSession, order: Order, items: list[OrderItem]) -> None:
    """Give back everything an order held: stock, deal units. Call once, after a status transition."""
    for item in sorted(items, key=lambda i: i.variant_id):
        await give_back(s, order.store_id, item.variant_id, item.qty)
    for item in sorted((i for i in items if i.deal_id), key=lambda i: str(i.deal_id)):
        assert item.deal_id is not None
        await unclaim_deal(s, item.deal_id, order.viewer_id, item.qty)


DEAL_FAILURES = {"deal_ended": "the deal has ended", "deal_sold_out": "the deal is sold out",
                 "deal_limit_reached": "you have reached this deal's limit per viewer"}


async def reserve_lines(s: AsyncSession, store_id: str, viewer_id: str, lines: list[Line], *,
                        on_deal_end: str, now: int) -> tuple[str, str] | None:
    """Take stock and deal units for every line, or nothing: the failure (code, detail), or None."""
    taken: list[Line] = []
    for line in lines:
        if not await take(s, store_id, line.variant_id, line.qty):
            for done in taken:
                await give_back(s, store_id, done.variant_id, done.qty)
            return "out_of_stock", f"{line.title} is out of stock"
        taken.append(line)
    claimed: list[Line] = []
    for line in sorted((ln for ln in lines if ln.deal_id), key=lambda ln: str(ln.deal_id)):
        deal = await s.get(Deal, line.deal_id)
        assert deal is not None
        failure = await claim_deal(s, deal, viewer_id, line.qty, now)
        if failure is None:
            claimed.append(line)
            continue
        if line.deal_explicit and on_deal_end == "refuse":
            for done in claimed:
                assert done.deal_id is not None
                await unclaim_deal(s, done.deal_id, viewer_id, done.qty)
            for done in taken:
                await give_back(s, store_id, done.variant_id, done.qty)
            return failure, DEAL_FAILURES[failure]
        line.full_price()
    return None


async def short_of_stock(s: AsyncSession, store_id: str, lines: list[Line]) -> tuple[str, str] | None:
    """A lock-free pre-check (the conditional update stays the authority): the first line short of stock."""
    rows = await s.execute(select(Stock.variant_id, Stock.quantity).where(
        Stock.store_id == store_id, Stock.variant_id.in_([ln.variant_id for ln in lines])))
    have = dict(rows.all())
    for line in lines:
        if have.get(line.variant_id, 0) < line.qty:
            return "out_of_stock", f"{line.title} is out of stock"
    return None
