"""Checkout's first step: read what an order needs, price it, and reserve it, in few Core statements.

**Plan** (reads, no locks): one query for the viewer (ban), the session, the idempotency key and, when
the process already knows who the viewer is (:class:`catalog.buyers.Buyers`), their profile; one for the
profile otherwise; one for the products, variants, stock and running deals of the order
(:func:`catalog.lines.price_lines`). A key seen before ends the plan (the stored answer is replayed);
stock short at this point is answered ``409`` without taking a lock.

**Take** (one write transaction): insert the key, the order (``pending``, with a hold deadline) and its
lines, then take stock and deal units with conditional updates, last, so a contended stock row is locked
only for its update and the commit. When a conditional update fails, the transaction is rolled back
(:class:`Refused`) and the answer is recorded under the key on its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Select, String, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog.buyers import Buyer, Buyers, buyer_of
from catalog.carts import cart_for_checkout, claim_cart
from catalog.lines import DEAL_CHOICES, ItemRequest, Line, parse_items, price_lines
from catalog.models import CheckoutRequest, Order, OrderItem, Profile, table
from catalog.stock import reserve_lines, short_of_stock
from live.auth import Viewer
from live.db import new_id, now_ms
from live.errors import Conflict, NotFound, ValidationFailed
from live.http import field
from live.models import LiveSession, SessionViewer

KEYS, ORDERS, ITEMS = table(CheckoutRequest), table(Order), table(OrderItem)
VIEWERS, SESSIONS, PROFILES = table(SessionViewer), table(LiveSession), table(Profile)
Answer = tuple[int, dict[str, Any]]


def error(code: str, detail: str) -> dict[str, Any]:
    return {"error": code, "detail": detail}


@dataclass(frozen=True)
class OrderRequest:
    session_id: str
    items: tuple[ItemRequest, ...] | None
    cart_id: str | None
    on_deal_end: str
    expected_total: int | None = (
        None  # what the buyer was shown (minor units): any other total is a 409
    )

    def digest(self) -> str:
        body: dict[str, Any] = {
            "s": self.session_id,
            "c": self.cart_id,
            "d": self.on_deal_end,
            "i": [[i.product_id, i.variant_id, i.qty, i.deal_id] for i in self.items or ()],
        }
        if self.expected_total is not None:
            body["e"] = self.expected_total
        return hashlib.sha256(orjson.dumps(body)).hexdigest()


def parse_order(data: dict[str, Any]) -> OrderRequest:
    """The order the buyer asks for. The server prices it: ``expected_total`` (optional, minor units) is
    only compared with the server's total (``409 price_changed`` when they differ)."""
    session_id = field(data, "session_id", str, check=lambda v: 0 < len(v) <= 40, why="is an id")
    cart_id = field(
        data, "cart_id", str, default=None, check=lambda v: 0 < len(v) <= 40, why="is an id"
    )
    raw_items = data.get("items")
    if (cart_id is None) == (raw_items is None):
        raise ValidationFailed("send either `items` or `cart_id`")
    items = tuple(parse_items(raw_items)) if raw_items is not None else None
    on_deal_end = field(
        data,
        "on_deal_end",
        str,
        default="refuse",
        check=lambda v: v in DEAL_CHOICES,
        why=f"must be one of {DEAL_CHOICES}",
    )
    expected_total = field(
        data,
        "expected_total",
        int,
        default=None,
        check=lambda v: 0 <= v <= 10**15,
        why="is the total shown, in minor units",
    )
    return OrderRequest(session_id, items, cart_id, on_deal_end, expected_total)


def idempotency_key(raw: str | None) -> str:
    if raw is None or not raw.strip():
        raise ValidationFailed(
            "send an `Idempotency-Key` header (any unique string per purchase)",
            code="idempotency_key_required",
        )
    key = raw.strip()
    if len(key) > 100 or not key.isprintable():
        raise ValidationFailed(
            "`Idempotency-Key` must be 1 to 100 printable characters",
            code="idempotency_key_invalid",
        )
    return key


@dataclass(frozen=True)
class Stored:
    """An idempotency key recorded before: its request hash and, once known, its answer."""

    request_hash: str
    status_code: int | None
    response: dict[str, Any] | None


@dataclass(frozen=True)
class Plan:
    """A validated, priced order, before anything is written."""

    now: int
    buyer: Buyer
    session: Any  # sessions row: id, store_id, kind, status, pinned_product_id
    profile: Any  # viewer_profiles row
    lines: list[Line]
    failure: dict[str, Any] | None  # the 409 answer (out of stock, price changed), or None


@dataclass
class Reserved:
    """An order held ``pending`` with its stock: the ``orders`` row and its lines as inserted."""

    order: dict[str, Any]
    items: list[dict[str, Any]]
    provider: str
    token: str
    buyer: Buyer
    key: str


class Admission:
    """The rate limit of new purchase intents, asked once per request at the moment its key is first
    recorded (in the transaction that records it: a refusal rolls the key back). A retry of a recorded key
    never gets here, nor does a twin that loses the key's insert to a request still in flight: neither is
    a new request, so neither is ever limited."""

    def __init__(self, check: Callable[[], None] | None) -> None:
        self._check, self._done = check, check is None

    def __call__(self) -> None:
        if not self._done and self._check is not None:
            self._check()  # raises RateLimited
            self._done = True


class Refused(Exception):
    """A conditional update refused the order (stock, deal, cart, a price that moved): roll back, then
    record the answer (``body``, a 409)."""

    def __init__(self, code: str, detail: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(code)
        self.body = body if body is not None else error(code, detail)


def price_changed(lines: list[Line], expected: int) -> dict[str, Any]:
    """``409 price_changed``: the lines and total the buyer would pay now, to show before a second tap."""
    total, currency = sum(ln.amount for ln in lines), lines[0].currency
    return {
        "error": "price_changed",
        "detail": f"the price is now {total} (minor units, {currency}), not {expected}; "
        "nothing was charged: confirm to buy at this price",
        "expected_total": expected,
        "total": total,
        "currency": currency,
        "items": [
            {
                "product_id": ln.product_id,
                "variant_id": ln.variant_id,
                "title": ln.title,
                "qty": ln.qty,
                "unit_price": ln.unit_price,
                "list_price": ln.list_price,
                "deal_id": ln.deal_id,
                "line_total": ln.amount,
            }
            for ln in lines
        ],
    }


def _failure(
    lines: list[Line], have: dict[str, int], expected: int | None
) -> dict[str, Any] | None:
    short = short_of_stock(have, lines)
    if short is not None:
        return error(*short)
    if expected is not None and sum(ln.amount for ln in lines) != expected:
        return price_changed(lines, expected)
    return None


_PROFILE_COLUMNS = [c.label(f"p_{c.key}") for c in PROFILES.c]


def _profile(row: Any) -> dict[str, Any] | None:
    if row.p_owner_key is None:
        return None
    return {c.key: getattr(row, f"p_{c.key}") for c in PROFILES.c}


def _buyer_query(with_profile: bool) -> Select[Any]:
    """The viewer (and their ban), the session, the idempotency key and, when the caller knows the viewer's
    owner key, their profile: one statement, built once, run with parameters."""
    v, s, k = VIEWERS.c, SESSIONS.c, KEYS.c
    joined = VIEWERS.outerjoin(SESSIONS, s.id == bindparam("session_id", type_=String())).outerjoin(
        KEYS, (k.viewer_id == v.id) & (k.key == bindparam("key", type_=String()))
    )
    if with_profile:
        joined = joined.outerjoin(
            PROFILES, PROFILES.c.owner_key == bindparam("owner_key", type_=String())
        )
    return (
        select(
            v.id,
            v.session_id,
            v.client_id,
            v.anon_key,
            v.invite_id,
            v.associate_id,
            v.city,
            v.banned,
            s.id.label("sid"),
            s.store_id,
            s.kind,
            s.status,
            s.pinned_product_id,
            k.request_hash,
            k.status_code,
            k.response,
            *(_PROFILE_COLUMNS if with_profile else ()),
        )
        .select_from(joined)
        .where(v.id == bindparam("viewer_id", type_=String()))
    )


_BUYER, _BUYER_AND_PROFILE = _buyer_query(False), _buyer_query(True)


async def _stored(conn: AsyncConnection, viewer_id: str, key: str) -> Stored | None:
    k = KEYS.c
    row = (
        await conn.execute(
            select(k.request_hash, k.status_code, k.response).where(
                k.viewer_id == viewer_id, k.key == key
            )
        )
    ).first()
    return None if row is None else Stored(row.request_hash, row.status_code, row.response)


async def plan(
    conn: AsyncConnection,
    buyers: Buyers,
    who: Viewer,
    key: str,
    req: OrderRequest,
    overdue: list[str],
) -> Plan | Stored:
    """Validate and price the order (reads only); a key recorded before returns what was stored."""
    known = buyers.get(who.viewer_id)
    params = {"viewer_id": who.viewer_id, "session_id": who.session_id, "key": key}
    if known is not None:
        params["owner_key"] = known.owner_key
    row = (await conn.execute(_BUYER_AND_PROFILE if known is not None else _BUYER, params)).first()
    if row is None:  # no such viewer: a key recorded before still answers
        stored = await _stored(conn, who.viewer_id, key)
        if stored is not None:
            return stored
    elif row.request_hash is not None:
        return Stored(row.request_hash, row.status_code, row.response)
    buyer = buyer_of(row, who)  # raises when there is no such viewer
    assert row is not None
    buyers.remember(buyer)
    if row.sid is None:
        raise NotFound("no session", code="session_not_found")
    if known is not None:
        profile = _profile(row)
    else:
        found = (
            await conn.execute(select(PROFILES).where(PROFILES.c.owner_key == buyer.owner_key))
        ).first()
        profile = None if found is None else dict(found._mapping)
    if profile is None:
        raise Conflict(
            "save your details once (PUT /api/me/profile) to buy with one tap",
            code="profile_required",
        )
    now = now_ms()
    items = (
        list(req.items)
        if req.items is not None
        else await cart_for_checkout(conn, req.cart_id, buyer)
    )
    lines, have = await price_lines(
        conn,
        row.sid,
        row.store_id,
        row.pinned_product_id,
        items,
        viewer_id=buyer.viewer_id,
        on_deal_end=req.on_deal_end,
        now=now,
        overdue=overdue,
    )
    return Plan(now, buyer, row, profile, lines, _failure(lines, have, req.expected_total))


async def record(
    conn: AsyncConnection,
    viewer_id: str,
    key: str,
    digest: str,
    answer: Answer,
    admit: Admission | None = None,
) -> None:
    """Record an answer given without an order (409) under the key; IntegrityError if the key exists."""
    await conn.execute(
        insert(KEYS).values(
            viewer_id=viewer_id,
            key=key,
            request_hash=digest,
            order_id=None,
            status_code=answer[0],
            response=answer[1],
            created_at=now_ms(),
        )
    )
    if admit is not None:
        admit()


def _new_order(
    p: Plan, cart_id: str | None, hold_ms: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    sess, buyer, profile = p.session, p.buyer, p.profile
    delivery = dict(profile["delivery"])
    if delivery.get("method") == "collect":
        delivery["store_id"] = sess.store_id
    city = buyer.city or str(delivery.get("address", {}).get("city", ""))
    order = {
        "id": new_id("or"),
        "session_id": sess.sid,
        "session_kind": sess.kind,
        "viewer_id": buyer.viewer_id,
        "owner_key": buyer.owner_key,
        "client_id": buyer.client_id,
        "invite_id": buyer.invite_id,
        "associate_id": buyer.associate_id,
        "store_id": sess.store_id,
        "status": "pending",
        "total": sum(ln.amount for ln in p.lines),
        "currency": p.lines[0].currency,
        "pinned": any(ln.pinned for ln in p.lines),
        "replay": sess.status == "ended",
        "city": city[:100],
        "contact": {"name": profile["name"], "email": profile["email"], "phone": profile["phone"]},
        "delivery": delivery,
        "payment_provider": profile["payment_provider"],
        "payment_ref": None,
        "cart_id": cart_id,
        "reserved_until": p.now + hold_ms,
        "created_at": p.now,
        "paid_at": None,
        "closed_at": None,
    }
    items = [
        {
            "order_id": order["id"],
            "variant_id": ln.variant_id,
            "product_id": ln.product_id,
            "title": ln.title,
            "qty": ln.qty,
            "unit_price": ln.unit_price,
            "list_price": ln.list_price,
            "deal_id": ln.deal_id,
            "pinned": ln.pinned,
        }
        for ln in p.lines
    ]
    return order, items


async def take(
    conn: AsyncConnection,
    key: str,
    digest: str,
    req: OrderRequest,
    p: Plan,
    hold_ms: int,
    admit: Admission | None = None,
) -> Reserved:
    """Insert the key, the order and its lines, then take the units (in a write transaction). Raises
    IntegrityError when the key was recorded meanwhile, :class:`Refused` when the units are gone."""
    order, items = _new_order(p, req.cart_id, hold_ms)
    await conn.execute(
        insert(KEYS).values(
            viewer_id=p.buyer.viewer_id,
            key=key,
            request_hash=digest,
            order_id=order["id"],
            created_at=p.now,
        )
    )
    if admit is not None:
        admit()
    if req.cart_id is not None and not await claim_cart(conn, req.cart_id, order["id"]):
        raise Refused("cart_ordered", "this cart has already been ordered")
    await conn.execute(insert(ORDERS).values(order))
    await conn.execute(insert(ITEMS).values(items))
    failure = await reserve_lines(
        conn, order["store_id"], p.buyer.viewer_id, p.lines, on_deal_end=req.on_deal_end, now=p.now
    )
    if failure is not None:
        raise Refused(*failure)
    changed = [
        (item, line)
        for item, line in zip(items, p.lines, strict=True)
        if item["deal_id"] != line.deal_id
    ]
    for item, line in changed:  # a deal line fell back to the full price
        item["unit_price"], item["deal_id"] = line.unit_price, line.deal_id
        await conn.execute(
            update(ITEMS)
            .where(ITEMS.c.order_id == order["id"], ITEMS.c.variant_id == line.variant_id)
            .values(unit_price=line.unit_price, deal_id=None)
        )
    if changed and req.expected_total is not None:  # not the price the buyer saw: roll all back
        raise Refused("price_changed", "", price_changed(p.lines, req.expected_total))
    if changed:
        order["total"] = sum(ln.amount for ln in p.lines)
        await conn.execute(
            update(ORDERS).where(ORDERS.c.id == order["id"]).values(total=order["total"])
        )
    return Reserved(
        order, items, p.profile["payment_provider"], p.profile["payment_token"], p.buyer, key
    )
