"""Atomic stock and deal counters: conditional updates that can never take a count below zero.

``UPDATE … SET quantity = quantity - :q WHERE … AND quantity >= :q`` is safe under concurrency on
PostgreSQL (the row lock re-checks the condition) and on SQLite (writers are serialised).
Callers take rows in variant-id order, then deals in id order, so transactions never deadlock.
Statements are Core statements on the tables, run on a session or a bare connection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from catalog.lines import Line
from catalog.models import Deal, DealClaim, Stock, table

Executor = AsyncSession | AsyncConnection
STOCK, DEALS, CLAIMS = table(Stock), table(Deal), table(DealClaim)


async def _rowcount(s: Executor, stmt: Any) -> int:
    result = await s.execute(stmt)
    return int(result.rowcount)  # type: ignore[attr-defined]


def _dialect(s: Executor) -> str:
    return s.dialect.name if isinstance(s, AsyncConnection) else s.get_bind().dialect.name


async def take(s: Executor, store_id: str, variant_id: str, qty: int) -> bool:
    c = STOCK.c
    return (
        await _rowcount(
            s,
            update(STOCK)
            .where(c.store_id == store_id, c.variant_id == variant_id, c.quantity >= qty)
            .values(quantity=c.quantity - qty),
        )
        == 1
    )


async def give_back(s: Executor, store_id: str, variant_id: str, qty: int) -> None:
    c = STOCK.c
    await _rowcount(
        s,
        update(STOCK)
        .where(c.store_id == store_id, c.variant_id == variant_id)
        .values(quantity=c.quantity + qty),
    )


async def claim_deal(s: Executor, deal_id: str, viewer_id: str, qty: int, now: int) -> str | None:
    """Count ``qty`` units against the deal's cap and the viewer's limit; the failure code, or None."""
    d, c = DEALS.c, CLAIMS.c
    if (
        await _rowcount(
            s,
            update(DEALS)
            .where(
                d.id == deal_id, d.ended_at.is_(None), d.ends_at > now, d.sold + qty <= d.quantity
            )
            .values(sold=d.sold + qty),
        )
        != 1
    ):
        row = (
            await s.execute(select(d.ended_at, d.ends_at, d.end_reason).where(d.id == deal_id))
        ).first()
        if row is None:
            return "deal_ended"
        running = row.ended_at is None and row.ends_at > now
        return "deal_sold_out" if running or row.end_reason == "sold_out" else "deal_ended"
    ins = (pg_insert if _dialect(s) == "postgresql" else sqlite_insert)(CLAIMS)
    await s.execute(
        ins.values(deal_id=deal_id, viewer_id=viewer_id, qty=0).on_conflict_do_nothing()
    )
    limit = select(d.per_viewer_limit).where(d.id == deal_id).scalar_subquery()
    if (
        await _rowcount(
            s,
            update(CLAIMS)
            .where(c.deal_id == deal_id, c.viewer_id == viewer_id, c.qty + qty <= limit)
            .values(qty=c.qty + qty),
        )
        != 1
    ):
        await _rowcount(s, update(DEALS).where(d.id == deal_id).values(sold=d.sold - qty))
        return "deal_limit_reached"
    return None


async def unclaim_deal(s: Executor, deal_id: str, viewer_id: str, qty: int) -> None:
    d, c = DEALS.c, CLAIMS.c
    await _rowcount(
        s, update(DEALS).where(d.id == deal_id, d.sold >= qty).values(sold=d.sold - qty)
    )
    await _rowcount(
        s,
        update(CLAIMS)
        .where(c.deal_id == deal_id, c.viewer_id == viewer_id, c.qty >= qty)
        .values(qty=c.qty - qty),
    )


async def release_order(
    s: Executor, store_id: str, viewer_id: str, items: Sequence[Mapping[str, Any]]
) -> None:
    """Give back everything an order held: stock, deal units. Call once, after a status transition.
    ``items`` are the order's lines (``variant_id``, ``qty``, ``deal_id``)."""
    for item in sorted(items, key=lambda i: str(i["variant_id"])):
        await give_back(s, store_id, item["variant_id"], item["qty"])
    for item in sorted((i for i in items if i["deal_id"]), key=lambda i: str(i["deal_id"])):
        await unclaim_deal(s, item["deal_id"], viewer_id, item["qty"])


DEAL_FAILURES = {
    "deal_ended": "the deal has ended",
    "deal_sold_out": "the deal is sold out",
    "deal_limit_reached": "you have reached this deal's limit per viewer",
}


async def reserve_lines(
    s: Executor, store_id: str, viewer_id: str, lines: list[Line], *, on_deal_end: str, now: int
) -> tuple[str, str] | None:
    """Take stock and deal units for every line, or nothing: the failure (code, detail), or None.
    A deal line that cannot have its deal falls back to the full price (``Line.full_price``) unless the
    buyer asked for that deal and chose ``refuse``."""
    taken: list[Line] = []
    for line in lines:
        if not await take(s, store_id, line.variant_id, line.qty):
            for done in taken:
                await give_back(s, store_id, done.variant_id, done.qty)
            return "out_of_stock", f"{line.title} is out of stock"
        taken.append(line)
    claimed: list[Line] = []
    for line in sorted((ln for ln in lines if ln.deal_id), key=lambda ln: str(ln.deal_id)):
        assert line.deal_id is not None
        failure = await claim_deal(s, line.deal_id, viewer_id, line.qty, now)
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


def short_of_stock(have: Mapping[str, int], lines: list[Line]) -> tuple[str, str] | None:
    """A lock-free pre-check on stock read with the lines (the conditional update stays the authority):
    the first line short of stock."""
    for line in lines:
        if have.get(line.variant_id, 0) < line.qty:
            return "out_of_stock", f"{line.title} is out of stock"
    return None
