"""Nothing oversold, nothing lost: concurrent one-tap buys on PostgreSQL, payment failures in the
middle, retries, and a crash between reserve and capture (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from catalog.checkout import Checkout, Reserved, parse_order
from catalog.payments import make_providers
from catalog.signals import Signals
from live.auth import Viewer
from live.config import Settings
from live.db import Database
from tests.conftest import ADMIN_TOKEN
from tests.support.factory import build_world, set_stock
from tests.support.server import LiveServer, thread_server, wait_for

DECLINED = "4000000000000002"


@pytest.fixture
def pg_server(postgres_url: str, make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    with thread_server(make_settings(postgres_url)) as srv:
        yield srv


async def _buyers(server: LiveServer, session_id: str, cards: list[str]) -> list[dict[str, str]]:
    """One fresh browser per card: join, save the one-tap profile."""
    sem = asyncio.Semaphore(40)

    async def one(card: str) -> dict[str, str]:
        async with sem, httpx.AsyncClient(base_url=server.url, timeout=60) as c:
            joined = (await c.post(f"/api/sessions/{session_id}/viewers", json={})).json()
            r = await c.put(
                "/api/me/profile",
                headers={"authorization": f"Bearer {joined['token']}"},
                json={
                    "name": "Buyer",
                    "delivery": {"method": "collect"},
                    "payment": {"provider": "demo", "card_number": card},
                },
            )
            assert r.status_code == 200, r.text
            return {
                "token": joined["token"],
                "viewer_id": joined["viewer_id"],
                "key": uuid.uuid4().hex,
            }

    return list(await asyncio.gather(*(one(card) for card in cards)))


async def _storm(
    server: LiveServer, session_id: str, product_id: str, buyers: list[dict[str, str]]
) -> list[tuple[int, dict[str, Any]]]:
    limits = httpx.Limits(max_connections=len(buyers), max_keepalive_connections=len(buyers))
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as c:

        async def buy(b: dict[str, str]) -> tuple[int, dict[str, Any]]:
            r = await c.post(
                "/api/orders",
                json={"session_id": session_id, "items": [{"product_id": product_id, "qty": 1}]},
                headers={"authorization": f"Bearer {b['token']}", "idempotency-key": b["key"]},
            )
            return r.status_code, r.json()

        return list(await asyncio.gather(*(buy(b) for b in buyers)))


def _stock(server: LiveServer, product_id: str) -> int:
    with server.client(ADMIN_TOKEN) as c:
        return sum(r["quantity"] for r in c.get(f"/api/products/{product_id}").json()["stock"])


def test_300_concurrent_buys_of_50_units_on_postgresql(pg_server: LiveServer) -> None:
    world = build_world(pg_server, ADMIN_TOKEN)
    pub, product = world["public"]["id"], world["products"][0]
    set_stock(pg_server, ADMIN_TOKEN, product, world["store"]["id"], 50)
    buyers = asyncio.run(_buyers(pg_server, pub, ["4242424242424242"] * 300))  # 300 phones
    answers = asyncio.run(_storm(pg_server, pub, product["id"], buyers))
    counts = Counter((status, body.get("status") or body.get("error")) for status, body in answers)
    assert counts == {(201, "paid"): 50, (409, "out_of_stock"): 250}, counts
    assert _stock(pg_server, product["id"]) == 0
    # every retry with the same key returns its original answer, and charges nothing more
    retried = asyncio.run(_storm(pg_server, pub, product["id"], buyers))
    assert retried == answers
    with pg_server.client(world["public"]["host_token"]) as host:
        assert len({body["order_id"] for status, body in answers if status == 201}) == 50
        assert host.get(f"/api/sessions/{pub}").status_code == 200
    assert _stock(pg_server, product["id"]) == 0


def test_payment_failures_in_the_middle_leave_stock_exact(pg_server: LiveServer) -> None:
    world = build_world(pg_server, ADMIN_TOKEN)
    pub, product = world["public"]["id"], world["products"][1]
    set_stock(pg_server, ADMIN_TOKEN, product, world["store"]["id"], 50)
    cards = [DECLINED if i % 3 == 0 else "4242424242424242" for i in range(30)]
    viewers = asyncio.run(_buyers(pg_server, pub, cards))
    buyers = [{**v, "key": uuid.uuid4().hex} for v in viewers for _ in range(5)]  # 150 buys
    cards = [card for card in cards for _ in range(5)]
    answers = asyncio.run(_storm(pg_server, pub, product["id"], buyers))
    paid = sum(1 for status, _ in answers if status == 201)
    for card, (status, body) in zip(cards, answers, strict=True):
        if card == DECLINED:
            assert (status, body["error"]) in ((402, "payment_declined"), (409, "out_of_stock"))
        else:
            assert status in (201, 409), body
    assert 0 < paid <= 50
    assert _stock(pg_server, product["id"]) == 50 - paid  # declines gave their units back, exactly


@pytest.fixture
def short_hold_server(
    database_url: str, make_settings: Callable[..., Settings]
) -> Iterator[LiveServer]:
    with thread_server(make_settings(database_url, order_hold_seconds=1.0)) as srv:
        yield srv


async def _reserve_then_crash(
    settings: Settings, token: str, key: str, body: dict[str, Any], *, capture: bool
) -> str:
    """What a process does before it dies: reserve (and maybe authorize + capture), never commit."""
    db = Database(settings.database_url)
    try:
        providers = make_providers("demo", db)
        checkout = Checkout(db, providers, Signals(SimpleNamespace(db=db)), hold_seconds=1.0)
        viewer = Viewer(session_id=body["session_id"], viewer_id=token)
        step = await checkout._reserve(viewer, key, parse_order(body).digest(), parse_order(body))
        assert isinstance(step, Reserved)
        if capture:
            auth = await providers["demo"].authorize(
                step.token, step.order["total"], step.order["currency"], reference=step.order["id"]
            )
            await providers["demo"].capture(auth.id)
        return str(step.order["id"])
    finally:
        await db.dispose()


@pytest.mark.parametrize("captured", [False, True])
def test_crash_between_reserve_and_capture_is_settled(
    short_hold_server: LiveServer, captured: bool
) -> None:
    server = short_hold_server
    world = build_world(server, ADMIN_TOKEN)
    pub, product = world["public"]["id"], world["products"][0]
    set_stock(server, ADMIN_TOKEN, product, world["store"]["id"], 3)
    buyer = asyncio.run(_buyers(server, pub, ["4242424242424242"]))[0]
    body = {"session_id": pub, "items": [{"product_id": product["id"], "qty": 2}]}
    order_id = asyncio.run(
        _reserve_then_crash(
            server.settings, buyer["viewer_id"], "crash-key", body, capture=captured
        )
    )
    assert _stock(server, product["id"]) == 1  # held by the dead process

    def settled() -> Any:
        with server.client(buyer["token"]) as c:
            order = c.get(f"/api/orders/{order_id}").json()
            return order if order["status"] != "pending" else None

    order = wait_for(settled, 20, what="the sweeper to settle the pending order")
    with server.client(buyer["token"]) as c:
        retry = c.post("/api/orders", json=body, headers={"idempotency-key": "crash-key"})
    if captured:  # the money was taken: the order is completed, not lost
        assert (
            order["status"] == "paid"
            and retry.status_code == 201
            and retry.json()["order_id"] == order_id
        )
        assert _stock(server, product["id"]) == 1
    else:  # nothing was taken: the units go back
        assert order["status"] == "expired"
        assert (retry.status_code, retry.json()["error"]) == (409, "order_expired")
        assert _stock(server, product["id"]) == 3


def test_the_same_key_at_the_same_moment_is_one_order(
    server: LiveServer, world: dict[str, Any]
) -> None:
    pub, product = world["public"]["id"], world["products"][2]
    set_stock(server, ADMIN_TOKEN, product, world["store"]["id"], 10)
    buyer = asyncio.run(_buyers(server, pub, ["4242424242424242"]))[0]
    twins = [
        dict(buyer) for _ in range(20)
    ]  # a phone retrying in a hurry: one key, 20 requests at once
    answers = asyncio.run(_storm(server, pub, product["id"], twins))
    assert {status for status, _ in answers} == {201}
    assert len({body["order_id"] for _, body in answers}) == 1
    assert _stock(server, product["id"]) == 9
    with server.client(buyer["token"]) as c:
        assert len(c.get("/api/me/orders").json()["items"]) == 1


def test_two_processes_one_stock(postgres_url: str, redis_url: str, tmp_path: Path) -> None:
    """Two server processes (as deployed behind a load balancer) sell the same units: none oversold."""
    from tests.conftest import SECRET
    from tests.support.server import process_server

    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "VITRINE_SECRET_KEY": SECRET,
        "VITRINE_ADMIN_TOKEN": ADMIN_TOKEN,
        "VITRINE_DATA_DIR": str(tmp_path),
        "VITRINE_REDIS_PREFIX": "vt" + uuid.uuid4().hex[:8],
    }
    with process_server(env) as a, process_server(env) as b:
        world = build_world(a, ADMIN_TOKEN)
        pub, product = world["public"]["id"], world["products"][0]
        set_stock(b, ADMIN_TOKEN, product, world["store"]["id"], 30)
        buyers = asyncio.run(_buyers(a, pub, ["4242424242424242"] * 80))

        async def both() -> list[tuple[int, dict[str, Any]]]:
            halves = await asyncio.gather(
                _storm(a, pub, product["id"], buyers[::2]),
                _storm(b, pub, product["id"], buyers[1::2]),
            )
            return halves[0] + halves[1]

        answers = asyncio.run(both())
        counts = Counter(status for status, _ in answers)
        assert counts == {201: 30, 409: 50}, counts
        assert _stock(a, product["id"]) == 0
