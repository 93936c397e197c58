"""Flash deals: the host starts a deal on the pinned product; it ends at its end time, by the host, or
when sold out. A timer in the process ends it on time; checkout and a periodic sweep end it lazily
(another process's timer, a restart), and only the one conditional update that ends it emits ``deal_ended``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import select, update

from catalog.models import Deal, Product
from catalog.signals import Signals
from live.db import Database, new_id, now_ms
from live.errors import Conflict, NotFound, ValidationFailed
from live.http import field
from live.models import LiveSession, SessionProduct

log = logging.getLogger("vitrine.deals")
MAX_DEAL_SECONDS = 24 * 3600
MAX_PER_VIEWER = 99


def deal_json(d: Deal, product: Product | None = None) -> dict[str, Any]:
    out = {
        "deal_id": d.id,
        "id": d.id,
        "session_id": d.session_id,
        "product_id": d.product_id,
        "price": d.price_minor,
        "quantity": d.quantity,
        "remaining": max(0, d.quantity - d.sold),
        "per_viewer_limit": d.per_viewer_limit,
        "starts_at": d.starts_at,
        "ends_at": d.ends_at,
        "ended_at": d.ended_at,
        "end_reason": d.end_reason or None,
    }
    if product is not None:
        out.update(list_price=product.price_minor, currency=product.currency, title=product.title)
    return out


class Deals:
    def __init__(self, db: Database, signals: Signals) -> None:
        self.db, self.signals = db, signals
        self._timers: dict[str, asyncio.Task[None]] = {}

    async def start(self, session_id: str, data: dict[str, Any]) -> dict[str, Any]:
        price = field(data, "price", int, check=lambda v: v >= 0, why="is minor units, 0 or more")
        quantity = field(
            data, "quantity", int, check=lambda v: 0 < v <= 10_000_000, why="must be 1 or more"
        )
        limit = field(
            data,
            "per_viewer_limit",
            int,
            default=1,
            check=lambda v: 0 < v <= MAX_PER_VIEWER,
            why=f"must be 1 to {MAX_PER_VIEWER}",
        )
        now = now_ms()
        ends_at = field(data, "ends_at", int, default=None)
        duration = field(
            data,
            "duration_s",
            (int, float),
            default=None,
            check=lambda v: 0 < v <= MAX_DEAL_SECONDS,
            why=f"must be 1 to {MAX_DEAL_SECONDS} s",
        )
        if (ends_at is None) == (duration is None):
            raise ValidationFailed("send `ends_at` (epoch ms) or `duration_s`")
        ends_at = ends_at if ends_at is not None else now + int(duration * 1000)
        if not now < ends_at <= now + MAX_DEAL_SECONDS * 1000:
            raise ValidationFailed("`ends_at` must be in the next 24 hours")
        product_id = field(data, "product_id", str, default=None)
        async with self.db.write() as s:
            sess = await s.get(LiveSession, session_id)
            if sess is None:
                raise NotFound(f"no session {session_id!r}", code="session_not_found")
            if sess.status == "ended":
                raise Conflict("the session has ended", code="session_ended")
            product_id = product_id or sess.pinned_product_id
            if product_id is None:
                raise Conflict("pin a product first, or name `product_id`", code="nothing_pinned")
            linked = await s.scalar(
                select(SessionProduct.product_id).where(
                    SessionProduct.session_id == session_id, SessionProduct.product_id == product_id
                )
            )
            product = await s.get(Product, product_id) if linked else None
            if product is None:
                raise NotFound(
                    f"product {product_id!r} is not in this session", code="product_not_found"
                )
            if price >= product.price_minor:
                raise ValidationFailed("the deal price must be below the product's price")
            running = await s.scalar(
                select(Deal.id).where(
                    Deal.session_id == session_id,
                    Deal.product_id == product_id,
                    Deal.ended_at.is_(None),
                    Deal.ends_at > now,
                )
            )
            if running is not None:
                raise Conflict(
                    f"deal {running} is already running on this product", code="deal_running"
                )
            deal = Deal(
                id=new_id("dl"),
                session_id=session_id,
                product_id=product_id,
                price_minor=price,
                quantity=quantity,
                sold=0,
                per_viewer_limit=limit,
                starts_at=now,
                ends_at=ends_at,
            )
            s.add(deal)
        out = deal_json(deal, product)
        self.schedule(deal.id, deal.ends_at)
        await self.signals.emit(session_id, "deal_started", out)
        return out

    async def end(self, deal_id: str, reason: str, session_id: str | None = None) -> dict[str, Any]:
        """End a deal now (idempotent); emits ``deal_ended`` once, from whoever ended it."""
        async with self.db.write() as s:
            deal = await s.get(Deal, deal_id)
            if deal is None or (session_id is not None and deal.session_id != session_id):
                raise NotFound(f"no deal {deal_id!r} in this session", code="deal_not_found")
            won = False
            if deal.ended_at is None:
                ended_at = min(now_ms(), deal.ends_at) if reason == "time" else now_ms()
                result = await s.execute(
                    update(Deal)
                    .where(Deal.id == deal_id, Deal.ended_at.is_(None))
                    .values(ended_at=ended_at, end_reason=reason)
                    .execution_options(synchronize_session=False)
                )
                won = int(result.rowcount) == 1  # type: ignore[attr-defined]
            deal = await s.get(Deal, deal_id, populate_existing=True)
            product = await s.get(Product, deal.product_id) if deal else None
        assert deal is not None
        self._cancel(deal_id)
        out = deal_json(deal, product)
        if won:
            await self.signals.emit(deal.session_id, "deal_ended", out)
        return out

    async def end_finished(self, deal_ids: list[str] | None = None) -> int:
        """End deals past their end time (a timer in another process, a restart) or sold out."""
        q = select(Deal.id, Deal.ends_at).where(
            Deal.ended_at.is_(None), (Deal.ends_at <= now_ms()) | (Deal.sold >= Deal.quantity)
        )
        if deal_ids is not None:
            q = q.where(Deal.id.in_(deal_ids))
        async with self.db.read() as s:
            rows = (await s.execute(q.limit(500))).all()
        for deal_id, ends_at in rows:
            await self.end(deal_id, "time" if ends_at <= now_ms() else "sold_out")
        return len(rows)

    async def list(self, session_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(Deal, Product)
                    .join(Product, Product.id == Deal.product_id)
                    .where(Deal.session_id == session_id)
                    .order_by(Deal.starts_at)
                )
            ).all()
        return [deal_json(d, p) for d, p in rows]

    # -- timers -----------------------------------------------------------------------------
    def schedule(self, deal_id: str, ends_at: int) -> None:
        self._cancel(deal_id)
        self._timers[deal_id] = asyncio.create_task(
            self._end_at(deal_id, ends_at), name=f"deal-{deal_id}"
        )

    async def _end_at(self, deal_id: str, ends_at: int) -> None:
        await asyncio.sleep(max(0.0, (ends_at - now_ms()) / 1000))
        self._timers.pop(deal_id, None)
        try:
            await self.end(deal_id, "time")
        except Exception:
            log.exception("could not end deal", extra={"deal_id": deal_id})

    def _cancel(self, deal_id: str) -> None:
        task = self._timers.pop(deal_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def schedule_running(self) -> None:
        async with self.db.read() as s:
            rows = (
                await s.execute(select(Deal.id, Deal.ends_at).where(Deal.ended_at.is_(None)))
            ).all()
        for deal_id, ends_at in rows:
            self.schedule(deal_id, ends_at)

    async def close(self) -> None:
        tasks = list(self._timers.values())
        self._timers.clear()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
