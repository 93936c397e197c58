"""One-tap checkout: reserve → authorize → capture → commit, compensating on every failure.

1. **Reserve** (one write transaction): record the ``Idempotency-Key``, take stock and deal units
   with conditional updates and create the order ``pending`` with a hold deadline. Out of stock
   or a deal refused is answered here, and stored as the key's answer; nothing is charged.
2. **Authorize** and **capture** with the payment provider, keyed by the order id.
3. **Commit** (one write transaction): ``pending → paid`` and store the answer; or, on a decline
   or a failure, ``pending → declined|failed`` and give everything back.

A crash between 1 and 3 leaves a ``pending`` order whose hold runs out: :meth:`Checkout.recover`
asks the provider what happened to it (``lookup``) and either completes it (captured) or voids
the authorization and releases the stock. Each compensation happens once: it is done only by
whoever wins the conditional status transition.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.buyers import Buyer, load_buyer
from catalog.carts import cart_for_checkout, mark_ordered
from catalog.lines import DEAL_CHOICES, ItemRequest, Line, parse_items, price_lines
from catalog.models import CheckoutRequest, Order, OrderItem, Profile
from catalog.orders import order_items, order_json, transition
from catalog.payments.base import Payment, PaymentDeclined, PaymentProvider
from catalog.signals import Signals
from catalog.stock import release_order, reserve_lines, short_of_stock
from live.auth import Viewer
from live.db import Database, new_id, now_ms
from live.errors import Conflict, Forbidden, NotFound, Unavailable, ValidationFailed
from live.http import field
from live.models import LiveSession

log = logging.getLogger("vitrine.checkout")
Answer = tuple[int, dict[str, Any]]
IN_FLIGHT_WAIT = 15.0
KEY_RETENTION_MS = 7 * 24 * 3600 * 1000


def _error(code: str, detail: str) -> dict[str, Any]:
    return {"error": code, "detail": detail}


@dataclass(frozen=True)
class OrderRequest:
    session_id: str
    items: tuple[ItemRequest, ...] | None
    cart_id: str | None
    on_deal_end: str

    def digest(self) -> str:
        body = {"s": self.session_id, "c": self.cart_id, "d": self.on_deal_end,
                "i": [[i.product_id, i.variant_id, i.qty, i.deal_id] for i in self.items or ()]}
        return hashlib.sha256(orjson.dumps(body)).hexdigest()


def parse_order(data: dict[str, Any]) -> OrderRequest:
    """The order the buyer asks for. Prices, totals and currencies in the body are ignored."""
    session_id = field(data, "session_id", str, check=lambda v: 0 < len(v) <= 40, why="is an id")
    cart_id = field(data, "cart_id", str, default=None, check=lambda v: 0 < len(v) <= 40, why="is an id")
    raw_items = data.get("items")
    if (cart_id is None) == (raw_items is None):
        raise ValidationFailed("send either `items` or `cart_id`")
    items = tuple(parse_items(raw_items)) if raw_items is not None else None
    on_deal_end = field(data, "on_deal_end", str, default="refuse", check=lambda v: v in DEAL_CHOICES,
                        why=f"must be one of {DEAL_CHOICES}")
    return OrderRequest(session_id, items, cart_id, on_deal_end)


def idempotency_key(raw: str | None) -> str:
    if raw is None or not raw.strip():
        raise ValidationFailed("send an `Idempotency-Key` header (any unique string per purchase)",
                               code="idempotency_key_required")
    key = raw.strip()
    if len(key) > 100 or not key.isprintable():
        raise ValidationFailed("`Idempotency-Key` must be 1 to 100 printable characters",
                               code="idempotency_key_invalid")
    return key


@dataclass(frozen=True)
class Plan:
    """A validated, priced order, before anything is written."""

    now: int
    buyer: Buyer
    sess: LiveSession
    profile: Profile
    lines: list[Line]
    failure: tuple[str, str] | None


@dataclass
class Reserved:
    order: Order
    items: list[OrderItem]
    provider: str
    token: str
    buyer: Buyer


class Checkout:
    def __init__(self, db: Database, providers: dict[str, PaymentProvider], signals: Signals, *,
                 hold_seconds: float, max_in_flight: int = 16, queue_seconds: float = 60.0) -> None:
        self.db, self.providers, self.signals = db, providers, signals
        self.hold_ms = int(hold_seconds * 1000)
        self.max_in_flight, self.queue_seconds = max_in_flight, queue_seconds
        self._slots = asyncio.Semaphore(max_in_flight)
        self.deals_to_check: Callable[[list[str]], Awaitable[Any]] | None = None  # ends over/sold-out deals
        self.count: Callable[[str], None] | None = None  # metrics: one call per answer, by outcome

    # -- the request ------------------------------------------------------------------------
    async def place(self, who: Viewer, key: str, req: OrderRequest) -> Answer:
        """One order, end to end. At most ``max_in_flight`` run at once per process (a flash sale queues
        here, not on the connection pool); a buyer queued longer than ``queue_seconds`` gets a 503 to retry
        with the same key."""
        if req.session_id != who.session_id:
            raise Forbidden("this viewer token belongs to another session", code="wrong_session")
        try:
            await asyncio.wait_for(self._slots.acquire(), self.queue_seconds)
        except TimeoutError:
            raise Unavailable("too many orders at once; retry with the same Idempotency-Key", code="busy",
                              headers={"Retry-After": "2"}) from None
        try:
            return await self._place(who, key, req)
        finally:
            self._slots.release()

    async def _place(self, who: Viewer, key: str, req: OrderRequest) -> Answer:
        digest = req.digest()
        try:
            step: Reserved | str = await self._reserve(who, key, digest, req)
        except IntegrityError:  # the same key, at the same moment, on another connection
            step = "replayed"
        if isinstance(step, Reserved):
            status, body = await self._pay(step)
        else:
            status, body = await self._stored_answer(who.viewer_id, key, digest)
        if self.count is not None:
            self.count("replayed" if step == "replayed" else str(body.get("status") or body.get("error")))
        return status, body

    async def _stored_answer(self, viewer_id: str, key: str, digest: str) -> Answer:
        deadline = time.monotonic() + IN_FLIGHT_WAIT
        while True:
            async with self.db.read() as s:
                row = await s.get(CheckoutRequest, (viewer_id, key))
            if row is None:
                raise Conflict("this order was not recorded; try again", code="order_in_progress")
            if row.request_hash != digest:
                raise ValidationFailed("this Idempotency-Key was used for a different order",
                                       code="idempotency_key_reused")
            if row.status_code is not None and row.response is not None:
                return row.status_code, row.response
            if time.monotonic() > deadline:
                raise Conflict("this order is still being processed; retry shortly", code="order_in_progress")
            await asyncio.sleep(0.05)

    async def _reserve(self, who: Viewer, key: str, digest: str, req: OrderRequest) -> Reserved | str:
        """Validate and price without locks, then insert the key, the order and its lines, and take stock
        last, so the contended stock row is locked only for that update and the commit. On SQLite the
        validation runs before the (serialised) write transaction; on PostgreSQL in the same one."""
        overdue: list[str] = []
        try:
            if self.db.is_sqlite:
                async with self.db.read() as s:
                    plan = await self._plan(s, who, key, req, overdue)
                if isinstance(plan, str):
                    return plan
                async with self.db.write() as s:
                    if await s.get(CheckoutRequest, (who.viewer_id, key)) is not None:
                        return "replayed"
                    return await self._take(s, who, key, digest, req, plan)
            async with self.db.write() as s:
                plan = await self._plan(s, who, key, req, overdue)
                return plan if isinstance(plan, str) else await self._take(s, who, key, digest, req, plan)
        finally:
            if overdue:
                await self._check_deals(overdue)

    async def _plan(self, s: AsyncSession, who: Viewer, key: str, req: OrderRequest,
                    overdue: list[str]) -> Plan | str:
        if await s.get(CheckoutRequest, (who.viewer_id, key)) is not None:
            return "replayed"
        now = now_ms()
        buyer = await load_buyer(s, who)
        sess = await s.get(LiveSession, who.session_id)
        if sess is None:
            raise NotFound("no such session", code="session_not_found")
        profile = await s.get(Profile, buyer.owner_key)
        if profile is None:
            raise Conflict("save your details once (PUT /api/me/profile) to buy with one tap",
                           code="profile_required")
        items = list(req.items) if req.items is not None else await cart_for_checkout(s, req.cart_id, buyer)
        lines = await price_lines(s, sess, items, on_deal_end=req.on_deal_end, now=now, overdue=overdue)
        failure = await short_of_stock(s, sess.store_id, lines)  # sold out: answer without locking
        return Plan(now, buyer, sess, profile, lines, failure)

    async def _take(self, s: AsyncSession, who: Viewer, key: str, digest: str, req: OrderRequest,
                    p: Plan) -> Reserved | str:
        record = CheckoutRequest(viewer_id=who.viewer_id, key=key, request_hash=digest, created_at=p.now)
        if p.failure is not None:
            record.status_code, record.response = 409, _error(*p.failure)
            s.add(record)
            return "answered"
        order, order_lines = self._new_order(p.sess, p.buyer, p.profile, p.lines, req.cart_id, p.now)
        record.order_id = order.id
        s.add_all([record, order])
        await s.flush()  # the key is ours before we touch stock (a concurrent twin waits here)
        s.add_all(order_lines)
        failure = await reserve_lines(s, p.sess.store_id, p.buyer.viewer_id, p.lines,
                                      on_deal_end=req.on_deal_end, now=p.now)
        if failure is not None:
            await s.execute(delete(OrderItem).where(OrderItem.order_id == order.id))
            await s.execute(delete(Order).where(Order.id == order.id))
            record.order_id, record.status_code, record.response = None, 409, _error(*failure)
            return "answered"
        if any(item.deal_id != line.deal_id for item, line in zip(order_lines, p.lines, strict=True)):
            order.total = sum(ln.amount for ln in p.lines)  # a deal line fell back to the full price
            for item, line in zip(order_lines, p.lines, strict=True):
                item.unit_price, item.deal_id = line.unit_price, line.deal_id
        return Reserved(order, order_lines, p.profile.payment_provider, p.profile.payment_token, p.buyer)

    def _new_order(self, sess: LiveSession, buyer: Buyer, profile: Profile, lines: list[Line],
                   cart_id: str | None, now: int) -> tuple[Order, list[OrderItem]]:
        delivery = dict(profile.delivery)
        if delivery.get("method") == "collect":
            delivery["store_id"] = sess.store_id
        city = buyer.city or str(delivery.get("address", {}).get("city", ""))
        order = Order(
            id=new_id("or"), session_id=sess.id, session_kind=sess.kind, viewer_id=buyer.viewer_id,
            owner_key=buyer.owner_key, client_id=buyer.client_id, invite_id=buyer.invite_id,
            associate_id=buyer.associate_id, store_id=sess.store_id, status="pending",
            total=sum(ln.amount for ln in lines), currency=lines[0].currency,
            pinned=any(ln.pinned for ln in lines), replay=sess.status == "ended", city=city[:100],
            contact={"name": profile.name, "email": profile.email, "phone": profile.phone}, delivery=delivery,
            payment_provider=profile.payment_provider, cart_id=cart_id, reserved_until=now + self.hold_ms,
            created_at=now)
        items = [OrderItem(order_id=order.id, variant_id=ln.variant_id, product_id=ln.product_id, title=ln.title,
                           qty=ln.qty, unit_price=ln.unit_price, list_price=ln.list_price, deal_id=ln.deal_id,
                           pinned=ln.pinned) for ln in lines]
        return order, items

    # -- payment ----------------------------------------------------------------------------
    async def _pay(self, r: Reserved) -> Answer:
        provider = self.providers.get(r.provider)
        if provider is None:
            return await self._abort(r.order.id, "declined", 402, "payment_declined",
                                     "your saved payment method is no longer accepted; update your profile")
        try:
            auth = await provider.authorize(r.token, r.order.total, r.order.currency, reference=r.order.id)
        except PaymentDeclined as exc:
            return await self._abort(r.order.id, "declined", 402, "payment_declined", exc.detail)
        except Exception:
            log.exception("authorize failed", extra={"order_id": r.order.id})
            return await self._abort(r.order.id, "failed", 502, "payment_failed",
                                     "the payment could not be completed; nothing was charged")
        try:
            captured = await provider.capture(auth.id)
        except Exception:
            log.exception("capture failed", extra={"order_id": r.order.id})
            return await self._abort(r.order.id, "failed", 502, "payment_failed",
                                     "the payment could not be completed; nothing was charged")
        return await self._commit(r.order.id, captured, r.buyer.viewer_id, r)

    async def _settle_payment(self, order: Order) -> None:
        """Void (or refund) whatever the provider holds for an order we are abandoning."""
        provider = self.providers.get(order.payment_provider)
        if provider is None:
            return
        pay = await provider.lookup(order.id)
        if pay is None:
            return
        if pay.status == "authorized":
            await provider.void(pay.id)
        elif pay.status == "captured":
            await provider.refund(pay.id)

    async def _abort(self, order_id: str, status: str, code: int, error: str, detail: str) -> Answer:
        async with self.db.read() as s:
            order = await s.get(Order, order_id)
        assert order is not None
        try:
            await self._settle_payment(order)
        except Exception:  # the order stays pending: recover() settles it when its hold runs out
            log.exception("could not settle payment", extra={"order_id": order_id})
            return 503, _error("payment_unavailable", "the payment is being settled; retry with the same key")
        async with self.db.write() as s:
            if await transition(s, order_id, "pending", status, closed_at=now_ms()):
                await release_order(s, order, await order_items(s, order_id))
                await self._store(s, order_id, code, _error(error, detail))
        return await self._answer_of(order)

    async def _commit(self, order_id: str, pay: Payment, viewer_id: str, known: Reserved | None = None) -> Answer:
        paid_at = now_ms()
        async with self.db.write() as s:
            won = await transition(s, order_id, "pending", "paid", paid_at=paid_at, payment_ref=pay.id)
            if won and known is not None:  # the hot path: we hold the order and its lines already
                order, items = known.order, known.items
                order.status, order.paid_at, order.payment_ref = "paid", paid_at, pay.id
            else:
                found = await s.get(Order, order_id, populate_existing=True)
                assert found is not None
                order, items = found, await order_items(s, order_id)
            body = order_json(order, items)
            if won:
                await self._store(s, order_id, 201, body)
                if order.cart_id:
                    await mark_ordered(s, order.cart_id, order.id)
        if not won:  # the hold ran out while we were paying and recover() released it: give the money back
            await self._settle_payment(order)
            return await self._answer_of(order)
        self.signals.purchased_soon(body, {"viewer_id": viewer_id, "city": order.city,
                                           "invite_id": order.invite_id, "associate_id": order.associate_id})
        await self._check_deals([i.deal_id for i in items if i.deal_id])
        return 201, body

    async def _check_deals(self, deal_ids: list[str]) -> None:
        if deal_ids and self.deals_to_check is not None:
            try:
                await self.deals_to_check(deal_ids)
            except Exception:
                log.exception("deal check failed")

    async def _store(self, s: Any, order_id: str, code: int, body: dict[str, Any]) -> None:
        await s.execute(update(CheckoutRequest).where(CheckoutRequest.order_id == order_id)
                        .values(status_code=code, response=body).execution_options(synchronize_session=False))

    async def _answer_of(self, order: Order) -> Answer:
        async with self.db.read() as s:
            row = await s.scalar(select(CheckoutRequest).where(CheckoutRequest.order_id == order.id))
        if row is None or row.status_code is None or row.response is None:
            return 409, _error("order_in_progress", "this order is still being processed")
        return row.status_code, row.response

    # -- recovery ---------------------------------------------------------------------------
    async def prune_keys(self, older_than_ms: int = KEY_RETENTION_MS) -> int:
        """Forget answered idempotency keys after their retention (a retry a week later is a new order)."""
        async with self.db.write() as s:
            result = await s.execute(delete(CheckoutRequest).where(
                CheckoutRequest.created_at < now_ms() - older_than_ms, CheckoutRequest.status_code.is_not(None)))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def recover(self, now: int | None = None, limit: int = 200) -> int:
        """Settle orders left ``pending`` past their hold (a crash or a lost provider): returns how many."""
        now = now_ms() if now is None else now
        async with self.db.read() as s:
            stale = list((await s.scalars(select(Order).where(Order.status == "pending",
                                                              Order.reserved_until < now)
                                          .order_by(Order.reserved_until).limit(limit))).all())
        done = 0
        for order in stale:
            try:
                provider = self.providers.get(order.payment_provider)
                pay = await provider.lookup(order.id) if provider is not None else None
                if pay is not None and pay.status == "captured":
                    await self._commit(order.id, pay, order.viewer_id)
                else:
                    await self._abort(order.id, "expired", 409, "order_expired",
                                      "the payment did not complete in time; nothing was charged")
                done += 1
            except Exception:
                log.exception("recovery failed", extra={"order_id": order.id})
        return done
