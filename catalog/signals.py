"""What the room and analytics hear from the catalog: purchases, counters, deals, tracking.

Emitting is best effort: a paid order never fails because the room or analytics is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import func, select

from catalog.models import Order
from live.db import Database

COUNTERS_EVERY = 0.25
log = logging.getLogger("vitrine.catalog")


class Signals:
    """Reads ``rooms`` and ``track`` from ``app.state`` at call time (other components set them)."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self._tasks: set[asyncio.Task[None]] = set()
        self._counting: dict[str, bool] = {}  # session → "changed again since this count started"

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background (awaited, bounded, on :meth:`close`)."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Let in-flight notifications finish (bounded), then cancel what is left."""
        if self._tasks:
            _done, pending = await asyncio.wait(list(self._tasks), timeout=5)
            for task in pending:
                task.cancel()

    @property
    def db(self) -> Database:
        return self.state.db  # type: ignore[no-any-return]

    async def emit(self, session_id: str, type_: str, data: dict[str, Any], **kw: Any) -> None:
        try:
            await self.state.rooms.emit(session_id, type_, data, **kw)
        except Exception:
            log.exception("room emit failed", extra={"session_id": session_id, "type": type_})

    def track(self, kind: str, session_id: str, viewer_id: str | None, **fields: Any) -> None:
        try:
            self.state.track(kind, session_id, viewer_id, **fields)
        except Exception:
            log.exception("track failed", extra={"session_id": session_id, "kind": kind})

    async def counters(self, session_id: str) -> dict[str, Any]:
        """The host's live counters: paid orders, distinct buyers, revenue (per currency)."""
        async with self.db.read() as s:
            rows = (
                await s.execute(
                    select(Order.currency, func.count(), func.coalesce(func.sum(Order.total), 0))
                    .where(Order.session_id == session_id, Order.status == "paid")
                    .group_by(Order.currency)
                )
            ).all()
            buyers = await s.scalar(
                select(func.count(func.distinct(Order.owner_key))).where(
                    Order.session_id == session_id, Order.status == "paid"
                )
            )
        by_currency = {cur: int(total) for cur, _n, total in rows}
        main = max(by_currency, key=lambda c: by_currency[c]) if by_currency else None
        return {
            "orders": sum(int(n) for _c, n, _t in rows),
            "buyers": int(buyers or 0),
            "revenue": by_currency.get(main, 0) if main else 0,
            "currency": main,
            "revenue_by_currency": by_currency,
        }

    async def send_counters(self, session_id: str) -> None:
        try:
            data = await self.counters(session_id)
        except Exception:
            log.exception("counters failed", extra={"session_id": session_id})
            return
        await self.emit(session_id, "counters", data, store=False, audience="staff")

    def counters_soon(self, session_id: str) -> None:
        """Recount in the background; a burst of orders coalesces into at most one count per
        ``COUNTERS_EVERY`` seconds per session (the last one is fresh)."""
        if session_id in self._counting:
            self._counting[session_id] = True
            return
        self._counting[session_id] = False

        async def run() -> None:
            try:
                while True:
                    self._counting[session_id] = False
                    await self.send_counters(session_id)
                    if not self._counting.get(session_id):
                        break
                    await asyncio.sleep(
                        COUNTERS_EVERY
                    )  # a flash sale: let the next orders join this count
            finally:
                self._counting.pop(session_id, None)

        self.spawn(run())

    def purchased_soon(self, order: dict[str, Any], attribution: dict[str, Any]) -> None:
        """Tell the room and analytics about a paid order without delaying the buyer's answer."""
        self.spawn(self.purchased(order, attribution))

    async def purchased(self, order: dict[str, Any], attribution: dict[str, Any]) -> None:
        """A paid order: anonymised ``purchase`` to the room, counters to staff, ``purchase`` tracked."""
        sid = order["session_id"]
        first = order["items"][0]
        city = attribution.get("city") or ""
        what = first["title"] + (
            f" and {len(order['items']) - 1} more" if len(order["items"]) > 1 else ""
        )
        await self.emit(
            sid,
            "purchase",
            {
                "product_id": first["product_id"],
                "title": first["title"],
                "qty": first["qty"],
                "items": len(order["items"]),
                "city": city,
                "text": f"A client{' in ' + city if city else ''} just bought {what}",
            },
        )
        self.counters_soon(sid)
        self.track(
            "purchase",
            sid,
            attribution["viewer_id"],
            order_id=order["order_id"],
            amount=order["total"],
            currency=order["currency"],
            replay=order["replay"],
            pinned=order["pinned"],
            invite_id=attribution.get("invite_id"),
            associate_id=attribution.get("associate_id"),
            product_ids=[i["product_id"] for i in order["items"]],
        )
