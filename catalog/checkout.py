"""One-tap checkout: reserve → pay → commit, compensating on every failure.

1. **Reserve** (:mod:`catalog.reserve`): validate and price with a few reads, then one write
   transaction records the ``Idempotency-Key``, creates the order ``pending`` with a hold deadline and
   takes stock and deal units with conditional updates. Out of stock or a deal refused is answered
   here, and stored as the key's answer; nothing is charged.
2. **Pay**: a provider whose ledger lives in our database (the demo, :class:`LocalLedger`) writes the
   captured payment in the commit transaction of step 3, so the payment and ``paid`` commit together
   or not at all. Any other provider is called to ``authorize`` and ``capture``, keyed by the order id.
3. **Commit** (one write transaction): ``pending → paid`` and store the answer; or, on a decline
   or a failure, ``pending → declined|failed`` and give everything back.

A crash between 1 and 3 leaves a ``pending`` order whose hold runs out: :meth:`Checkout.recover`
asks the provider what happened to it (``lookup``) and either completes it (captured) or voids
the authorization and releases the stock. Each compensation happens once: it is done only by
whoever wins the conditional status transition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog.buyers import Buyers
from catalog.carts import reopen_cart
from catalog.orders import ITEMS, ORDERS, order_body, order_rows, transition
from catalog.payments.base import LocalLedger, Payment, PaymentDeclined, PaymentProvider
from catalog.reserve import (
    KEYS,
    Admission,
    Answer,
    OrderRequest,
    Refused,
    Reserved,
    Stored,
    error,
    idempotency_key,
    parse_order,
    plan,
    record,
    take,
)
from catalog.signals import Signals
from catalog.stock import release_order
from live.auth import Viewer
from live.db import Database, now_ms
from live.errors import Conflict, Unavailable, ValidationFailed

__all__ = ["Checkout", "OrderRequest", "Reserved", "idempotency_key", "parse_order"]
log = logging.getLogger("vitrine.checkout")
IN_FLIGHT_WAIT = 15.0
KEY_RETENTION_MS = 7 * 24 * 3600 * 1000
NOT_CHARGED = "the payment could not be completed; nothing was charged"


class _HoldLost(Exception):
    pass


class Checkout:
    def __init__(
        self,
        db: Database,
        providers: dict[str, PaymentProvider],
        signals: Signals,
        *,
        hold_seconds: float,
        max_in_flight: int = 16,
        queue_seconds: float = 60.0,
    ) -> None:
        self.db, self.providers, self.signals = db, providers, signals
        self.hold_ms = int(hold_seconds * 1000)
        self.max_in_flight, self.queue_seconds = max_in_flight, queue_seconds
        self._slots = asyncio.Semaphore(max_in_flight)
        self.buyers = Buyers()
        self.deals_to_check: Callable[[list[str]], Awaitable[Any]] | None = (
            None  # ends over/sold-out deals
        )
        self.count: Callable[[str], None] | None = None  # metrics: one call per answer, by outcome

    # -- the request ------------------------------------------------------------------------
    async def place(
        self, who: Viewer, key: str, req: OrderRequest, admit: Callable[[], None] | None = None
    ) -> Answer:
        """One order, end to end. At most ``max_in_flight`` run at once per process (a flash sale queues
        here, not on the connection pool); a buyer queued longer than ``queue_seconds`` gets a 503 to retry
        with the same key. ``admit`` (the rate limit) is asked only when a new key is recorded: a retry of
        a recorded key, or of one still in flight, replays its answer and is never limited. The route has asked the access policy
        (``buy`` in ``req.session_id``) already."""
        try:
            await asyncio.wait_for(self._slots.acquire(), self.queue_seconds)
        except TimeoutError:
            raise Unavailable(
                "too many orders at once; retry with the same Idempotency-Key",
                code="busy",
                headers={"Retry-After": "2"},
            ) from None
        try:
            return await self._place(who, key, req, admit)
        finally:
            self._slots.release()

    async def _place(
        self, who: Viewer, key: str, req: OrderRequest, admit: Callable[[], None] | None
    ) -> Answer:
        digest = req.digest()
        try:
            step: Reserved | Answer | Stored | None = await self._reserve(
                who, key, digest, req, admit
            )
        except IntegrityError:  # the same key, at the same moment, on another connection
            step = None
        if isinstance(step, Reserved):
            status, body = await self._pay(step)
        elif isinstance(step, tuple):
            status, body = step
        else:
            status, body = await self._stored_answer(who.viewer_id, key, digest, step)
        if self.count is not None:
            replayed = step is None or isinstance(step, Stored)
            self.count("replayed" if replayed else str(body.get("status") or body.get("error")))
        return status, body

    async def _stored_answer(
        self, viewer_id: str, key: str, digest: str, row: Stored | None
    ) -> Answer:
        deadline = time.monotonic() + IN_FLIGHT_WAIT
        while True:
            if row is None:
                async with self.db.engine.connect() as conn:
                    found = (
                        await conn.execute(
                            select(KEYS.c.request_hash, KEYS.c.status_code, KEYS.c.response).where(
                                KEYS.c.viewer_id == viewer_id, KEYS.c.key == key
                            )
                        )
                    ).first()
                if found is None:
                    raise Conflict(
                        "this order was not recorded; try again", code="order_in_progress"
                    )
                row = Stored(found.request_hash, found.status_code, found.response)
            if row.request_hash != digest:
                raise ValidationFailed(
                    "this Idempotency-Key was used for a different order",
                    code="idempotency_key_reused",
                )
            if row.status_code is not None and row.response is not None:
                return row.status_code, row.response
            if time.monotonic() > deadline:
                raise Conflict(
                    "this order is still being processed; retry shortly", code="order_in_progress"
                )
            await asyncio.sleep(0.05)
            row = None

    async def _reserve(
        self,
        who: Viewer,
        key: str,
        digest: str,
        req: OrderRequest,
        admit: Callable[[], None] | None = None,
    ) -> Reserved | Answer | Stored:
        """Plan, then take. On SQLite the plan reads run before the (serialised) write transaction; on
        PostgreSQL in the same one. A refusal at the conditional update rolls the order back and records
        the answer on its own."""
        overdue: list[str] = []
        once = Admission(admit)
        try:
            if self.db.is_sqlite:
                async with self.db.engine.connect() as conn:
                    p = await plan(conn, self.buyers, who, key, req, overdue)
                if isinstance(p, Stored):
                    return p
                if p.failure is not None:
                    return await self._refuse(who.viewer_id, key, digest, p.failure, once)
                try:
                    async with self.db.write() as s:
                        conn = await s.connection()
                        return await take(conn, key, digest, req, p, self.hold_ms, once)
                except Refused as no:
                    return await self._refuse(who.viewer_id, key, digest, no.body, once)
            try:
                async with self.db.write() as s:
                    conn = await s.connection()
                    p = await plan(conn, self.buyers, who, key, req, overdue)
                    if isinstance(p, Stored):
                        return p
                    if p.failure is not None:
                        answer = 409, p.failure
                        await record(conn, who.viewer_id, key, digest, answer, once)
                        return answer
                    return await take(conn, key, digest, req, p, self.hold_ms, once)
            except Refused as no:
                return await self._refuse(who.viewer_id, key, digest, no.body, once)
        finally:
            if overdue:
                await self._check_deals(overdue)

    async def _refuse(
        self,
        viewer_id: str,
        key: str,
        digest: str,
        body: dict[str, Any],
        admit: Admission | None = None,
    ) -> Answer:
        answer = 409, body
        async with self.db.write() as s:
            await record(await s.connection(), viewer_id, key, digest, answer, admit)
        return answer

    # -- payment ----------------------------------------------------------------------------
    async def _pay(self, r: Reserved) -> Answer:
        order = r.order
        provider = self.providers.get(r.provider)
        if provider is None:
            return await self._abort(
                order,
                r.items,
                "declined",
                402,
                "payment_declined",
                "your saved payment method is no longer accepted; update your profile",
            )
        if isinstance(provider, LocalLedger):
            try:
                return await self._charge(provider, r)
            except PaymentDeclined as exc:  # refused before anything was written
                return await self._abort(
                    order, r.items, "declined", 402, "payment_declined", exc.detail, settle=False
                )
            except Exception:
                log.exception("charge failed", extra={"order_id": order["id"]})
                return await self._abort(
                    order, r.items, "failed", 502, "payment_failed", NOT_CHARGED
                )
        try:
            auth = await provider.authorize(
                r.token, order["total"], order["currency"], reference=order["id"]
            )
        except PaymentDeclined as exc:
            return await self._abort(
                order, r.items, "declined", 402, "payment_declined", exc.detail
            )
        except Exception:
            log.exception("authorize failed", extra={"order_id": order["id"]})
            return await self._abort(order, r.items, "failed", 502, "payment_failed", NOT_CHARGED)
        try:
            captured = await provider.capture(auth.id)
        except Exception:
            log.exception("capture failed", extra={"order_id": order["id"]})
            return await self._abort(order, r.items, "failed", 502, "payment_failed", NOT_CHARGED)
        return await self._commit(order["id"], captured, r)

    async def _charge(self, provider: LocalLedger, r: Reserved) -> Answer:
        """Take the payment and mark the order paid in one transaction (a local ledger)."""
        order_id = r.order["id"]
        try:
            async with self.db.write() as s:
                conn = await s.connection()
                pay = await provider.charge_in(
                    conn, r.token, r.order["total"], r.order["currency"], reference=order_id
                )
                done = await self._finish(conn, order_id, pay, r)
                if done is None:
                    raise _HoldLost  # the hold ran out and recover() released it: no payment either
        except _HoldLost:
            return await self._answer_of(order_id)
        self._announce(*done)
        return 201, done[0]

    async def _finish(
        self, conn: AsyncConnection, order_id: str, pay: Payment, known: Reserved | None
    ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]] | None:
        """``pending → paid``, the stored answer, the cart: (answer, order, items), or None if we lost."""
        paid_at = now_ms()
        if not await transition(
            conn, order_id, "pending", "paid", paid_at=paid_at, payment_ref=pay.id
        ):
            return None
        if known is not None:  # the hot path: we hold the order and its lines already
            order, items = (
                {**known.order, "status": "paid", "paid_at": paid_at, "payment_ref": pay.id},
                known.items,
            )
        else:
            found = await order_rows(conn, order_id)
            assert found is not None
            order, items = found
        body = order_body(order, items)
        await self._store(conn, order_id, 201, body)
        return body, order, items

    def _announce(
        self, body: dict[str, Any], order: dict[str, Any], items: list[dict[str, Any]]
    ) -> None:
        self.signals.purchased_soon(
            body,
            {
                "viewer_id": order["viewer_id"],
                "city": order["city"],
                "invite_id": order["invite_id"],
                "associate_id": order["associate_id"],
            },
        )
        deal_ids = [str(i["deal_id"]) for i in items if i["deal_id"]]
        if deal_ids:
            self.signals.spawn(self._check_deals(deal_ids))

    async def _commit(self, order_id: str, pay: Payment, known: Reserved | None = None) -> Answer:
        """Complete an order paid with the provider (a remote provider, or recovery)."""
        async with self.db.write() as s:
            done = await self._finish(await s.connection(), order_id, pay, known)
        if done is None:  # someone else settled it first: give the money back unless it is paid
            async with self.db.engine.connect() as conn:
                now = (
                    await conn.execute(
                        select(ORDERS.c.status, ORDERS.c.payment_provider).where(
                            ORDERS.c.id == order_id
                        )
                    )
                ).first()
            if now is not None and now.status not in ("paid", "refunding", "refunded"):
                await self._settle_payment(now.payment_provider, order_id)
            return await self._answer_of(order_id)
        self._announce(*done)
        return 201, done[0]

    async def _settle_payment(self, provider_name: str, order_id: str) -> None:
        """Void (or refund) whatever the provider holds for an order we are abandoning."""
        provider = self.providers.get(provider_name)
        if provider is None:
            return
        pay = await provider.lookup(order_id)
        if pay is None:
            return
        if pay.status == "authorized":
            await provider.void(pay.id)
        elif pay.status == "captured":
            await provider.refund(pay.id)

    async def _abort(
        self,
        order: dict[str, Any],
        items: list[dict[str, Any]] | None,
        status: str,
        code: int,
        err: str,
        detail: str,
        *,
        settle: bool = True,
    ) -> Answer:
        """``pending → status``: give the units back and store the answer (once, by the winner)."""
        order_id = order["id"]
        if settle:
            try:
                await self._settle_payment(order["payment_provider"], order_id)
            except (
                Exception
            ):  # the order stays pending: recover() settles it when its hold runs out
                log.exception("could not settle payment", extra={"order_id": order_id})
                return 503, error(
                    "payment_unavailable", "the payment is being settled; retry with the same key"
                )
        answer = code, error(err, detail)
        async with self.db.write() as s:
            conn = await s.connection()
            won = await transition(conn, order_id, "pending", status, closed_at=now_ms())
            if won:
                if items is None:
                    items = [
                        dict(i)
                        for i in (
                            await conn.execute(select(ITEMS).where(ITEMS.c.order_id == order_id))
                        )
                        .mappings()
                        .all()
                    ]
                await release_order(conn, order["store_id"], order["viewer_id"], items)
                if order.get("cart_id"):
                    await reopen_cart(conn, order["cart_id"], order_id)
                await self._store(conn, order_id, *answer)
        return answer if won else await self._answer_of(order_id)

    async def _check_deals(self, deal_ids: list[str]) -> None:
        if deal_ids and self.deals_to_check is not None:
            try:
                await self.deals_to_check(deal_ids)
            except Exception:
                log.exception("deal check failed")

    async def _store(
        self, conn: AsyncConnection, order_id: str, code: int, body: dict[str, Any]
    ) -> None:
        await conn.execute(
            update(KEYS).where(KEYS.c.order_id == order_id).values(status_code=code, response=body)
        )

    async def _answer_of(self, order_id: str) -> Answer:
        async with self.db.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(KEYS.c.status_code, KEYS.c.response).where(KEYS.c.order_id == order_id)
                )
            ).first()
        if row is None or row.status_code is None or row.response is None:
            return 409, error("order_in_progress", "this order is still being processed")
        return row.status_code, row.response

    # -- recovery ---------------------------------------------------------------------------
    async def prune_keys(self, older_than_ms: int = KEY_RETENTION_MS) -> int:
        """Forget answered idempotency keys after their retention (a retry a week later is a new order)."""
        async with self.db.write() as s:
            result = await (await s.connection()).execute(
                delete(KEYS).where(
                    KEYS.c.created_at < now_ms() - older_than_ms, KEYS.c.status_code.is_not(None)
                )
            )
        return int(result.rowcount)

    async def recover(self, now: int | None = None, limit: int = 200) -> int:
        """Settle orders left ``pending`` past their hold (a crash or a lost provider): returns how many."""
        now = now_ms() if now is None else now
        async with self.db.engine.connect() as conn:
            stale = [
                dict(o)
                for o in (
                    await conn.execute(
                        select(ORDERS)
                        .where(ORDERS.c.status == "pending", ORDERS.c.reserved_until < now)
                        .order_by(ORDERS.c.reserved_until)
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            ]
        done = 0
        for order in stale:
            try:
                provider = self.providers.get(order["payment_provider"])
                pay = await provider.lookup(order["id"]) if provider is not None else None
                if pay is not None and pay.status == "captured":
                    await self._commit(order["id"], pay)
                else:
                    await self._abort(
                        order,
                        None,
                        "expired",
                        409,
                        "order_expired",
                        "the payment did not complete in time; nothing was charged",
                    )
                done += 1
            except Exception:
                log.exception("recovery failed", extra={"order_id": order["id"]})
        return done
