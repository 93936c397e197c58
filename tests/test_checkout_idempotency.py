"""Idempotency as payment providers do it: an answered key replays its answer and is never rate-limited
(the limit counts purchase intents, not retries), and keys are kept at least 24 hours."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import httpx
from sqlalchemy import update

from catalog.checkout import KEY_RETENTION_MS, Checkout
from catalog.limits import LIMITS
from catalog.models import CheckoutRequest
from catalog.payments import make_providers
from catalog.signals import Signals
from live.db import Database, now_ms
from tests.support.factory import join_buyer, set_stock
from tests.support.server import LiveServer

DAY_MS = 24 * 3600 * 1000


def test_fifty_retries_of_an_answered_key_replay_and_are_never_limited(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, product = world["public"]["id"], world["products"][0]
    set_stock(server, world["admin"], product, world["store"]["id"], 100)
    buyer = join_buyer(server, sid)
    body = {"session_id": sid, "items": [{"product_id": product["id"]}]}
    with server.client(buyer) as c:
        first = c.post("/api/orders", json=body, headers={"idempotency-key": "intent-1"})
    assert first.status_code == 201, first.text

    async def retries() -> list[httpx.Response]:
        async with server.aclient(buyer) as c:
            return list(
                await asyncio.gather(
                    *(
                        c.post("/api/orders", json=body, headers={"idempotency-key": "intent-1"})
                        for _ in range(50)
                    )
                )
            )

    answers = asyncio.run(retries())
    assert [r.status_code for r in answers] == [201] * 50
    assert all(r.json() == first.json() for r in answers)
    with server.client(buyer) as c:
        assert len(c.get("/api/me/orders").json()["items"]) == 1
        # new purchase intents are still limited: 30 a minute, the first one included
        codes = [
            c.post(
                "/api/orders", json=body, headers={"idempotency-key": uuid.uuid4().hex}
            ).status_code
            for _ in range(LIMITS["order"][0])
        ]
        assert codes == [201] * (LIMITS["order"][0] - 1) + [429]
        # and a retry of the answered key is still answered while new keys are refused
        again = c.post("/api/orders", json=body, headers={"idempotency-key": "intent-1"})
        assert (again.status_code, again.json()) == (201, first.json())


def test_fifty_copies_of_a_key_in_flight_are_one_order_and_never_limited(
    server: LiveServer, world: dict[str, Any]
) -> None:
    """A phone on a bad network sends its one purchase 50 times before any answer comes back."""
    sid, product = world["public"]["id"], world["products"][2]
    set_stock(server, world["admin"], product, world["store"]["id"], 10)
    buyer = join_buyer(server, sid)
    body = {"session_id": sid, "items": [{"product_id": product["id"]}]}

    async def copies() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
        async with server.aclient(buyer, limits=limits) as c:
            return list(
                await asyncio.gather(
                    *(
                        c.post("/api/orders", json=body, headers={"idempotency-key": "one-tap"})
                        for _ in range(50)
                    )
                )
            )

    answers = asyncio.run(copies())
    assert [r.status_code for r in answers] == [201] * 50, [r.text for r in answers][:3]
    assert len({r.json()["order_id"] for r in answers}) == 1
    with server.client(buyer) as c:
        assert len(c.get("/api/me/orders").json()["items"]) == 1


def test_keys_are_kept_at_least_a_day(server: LiveServer, world: dict[str, Any]) -> None:
    assert KEY_RETENTION_MS >= DAY_MS
    sid, product = world["public"]["id"], world["products"][1]
    set_stock(server, world["admin"], product, world["store"]["id"], 5)
    buyer = join_buyer(server, sid)
    body = {"session_id": sid, "items": [{"product_id": product["id"]}]}
    with server.client(buyer) as c:
        first = c.post("/api/orders", json=body, headers={"idempotency-key": "old-intent"})
    assert first.status_code == 201

    async def age_and_prune(age_ms: int) -> int:
        db = Database(server.settings.database_url)
        try:
            async with db.write() as s:
                await s.execute(
                    update(CheckoutRequest)
                    .where(CheckoutRequest.key == "old-intent")
                    .values(created_at=now_ms() - age_ms)
                )
            checkout = Checkout(
                db, make_providers("demo", db), Signals(SimpleNamespace(db=db)), hold_seconds=60
            )
            return await checkout.prune_keys()
        finally:
            await db.dispose()

    assert asyncio.run(age_and_prune(DAY_MS + 3600_000)) == 0  # a day and an hour old: kept
    with server.client(buyer) as c:
        retry = c.post("/api/orders", json=body, headers={"idempotency-key": "old-intent"})
        assert (retry.status_code, retry.json()) == (201, first.json())
        assert len(c.get("/api/me/orders").json()["items"]) == 1
