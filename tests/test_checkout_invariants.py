"""Money invariants held by the database, under concurrency, on SQLite and PostgreSQL and across two
server processes: a cart is checked out at most once, a private session's capacity holds, a deal's cap
and per-viewer limit hold."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from catalog.models import Deal, DealClaim, DemoPayment, Order
from live.db import Database
from tests.conftest import ADMIN_TOKEN, SECRET
from tests.support.factory import build_world, join_buyer, set_stock
from tests.support.server import LiveServer, process_server

Answers = list[tuple[int, dict[str, Any]]]


@contextmanager
def two_processes(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[list[LiveServer]]:
    """Two server processes (as deployed behind a load balancer) on one database and one Redis."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "VITRINE_SECRET_KEY": SECRET,
        "VITRINE_ADMIN_TOKEN": ADMIN_TOKEN,
        "VITRINE_DATA_DIR": str(tmp_path),
        "VITRINE_REDIS_PREFIX": "vt" + uuid.uuid4().hex[:8],
    }
    with process_server(env) as a, process_server(env) as b:
        yield [a, b]


@pytest.fixture(params=["one process", "two processes on postgresql"])
def servers(
    request: pytest.FixtureRequest, server: LiveServer, tmp_path: Path
) -> Iterator[list[LiveServer]]:
    """The same storm against one in-process server (SQLite and PostgreSQL), or spread over two server
    processes sharing PostgreSQL and Redis."""
    if request.param == "one process":
        yield [server]
        return
    assert not server.settings.database_url.startswith("sqlite")  # deselected (conftest)
    from tests.support import services

    services.need_redis()
    with two_processes(server.settings.database_url, services.REDIS_URL, tmp_path) as both:
        yield both


async def _post_all(
    servers: list[LiveServer], path: str, requests: list[tuple[str | None, dict[str, Any]]]
) -> Answers:
    """Every request at once, spread round-robin over the servers: (token, body) → (status, body)."""
    n = len(requests)
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    clients = [httpx.AsyncClient(base_url=s.url, timeout=120, limits=limits) for s in servers]
    try:

        async def one(i: int, token: str | None, body: dict[str, Any]) -> tuple[int, Any]:
            headers = {"idempotency-key": uuid.uuid4().hex}
            if token:
                headers["authorization"] = f"Bearer {token}"
            r = await clients[i % len(clients)].post(path, json=body, headers=headers)
            return r.status_code, r.json()

        return list(await asyncio.gather(*(one(i, t, b) for i, (t, b) in enumerate(requests))))
    finally:
        for c in clients:
            await c.aclose()


async def _count(database_url: str, stmt: Any) -> int:
    db = Database(database_url)
    try:
        async with db.read() as s:
            return int(await s.scalar(stmt) or 0)
    finally:
        await db.dispose()


def count(server: LiveServer, stmt: Any) -> int:
    return asyncio.run(_count(server.settings.database_url, stmt))


def test_one_cart_is_checked_out_once(servers: list[LiveServer]) -> None:
    """Ten concurrent checkouts of one cart, each with its own key: one paid order, one charge."""
    first = servers[0]
    world = build_world(first, ADMIN_TOKEN)
    pub, product = world["public"]["id"], world["products"][0]
    set_stock(first, ADMIN_TOKEN, product, world["store"]["id"], 50)
    token = join_buyer(first, pub)
    with first.client(token) as c:
        cart = c.post("/api/cart/items", json={"product_id": product["id"], "qty": 2}).json()
    answers = asyncio.run(
        _post_all(
            servers, "/api/orders", [(token, {"session_id": pub, "cart_id": cart["id"]})] * 10
        )
    )
    counts = Counter((status, body.get("status") or body.get("error")) for status, body in answers)
    assert counts == {(201, "paid"): 1, (409, "cart_ordered"): 9}, counts
    assert count(first, select(func.count()).select_from(Order).where(Order.status == "paid")) == 1
    assert count(first, select(func.count()).select_from(Order)) == 1  # nothing else was held
    assert count(first, select(func.count()).select_from(DemoPayment)) == 1
    with first.client(ADMIN_TOKEN) as c:
        stock = c.get(f"/api/products/{product['id']}").json()["stock"]
    assert sum(r["quantity"] for r in stock) == 48


def test_a_declined_cart_checkout_gives_the_cart_back(server: LiveServer) -> None:
    world = build_world(server, ADMIN_TOKEN)
    pub, product = world["public"]["id"], world["products"][1]
    set_stock(server, ADMIN_TOKEN, product, world["store"]["id"], 5)
    token = join_buyer(server, pub, card="4000000000000002")
    with server.client(token) as c:
        cart = c.post("/api/cart/items", json={"product_id": product["id"], "qty": 1}).json()
        body = {"session_id": pub, "cart_id": cart["id"]}
        r = c.post("/api/orders", json=body, headers={"idempotency-key": "k1"})
        assert (r.status_code, r.json()["error"]) == (402, "payment_declined")
        assert c.get("/api/cart").json()["id"] == cart["id"]  # still the buyer's open cart
        c.put(
            "/api/me/profile",
            json={
                "name": "Buyer",
                "delivery": {"method": "collect"},
                "payment": {"provider": "demo", "card_number": "4242424242424242"},
            },
        )
        r = c.post("/api/orders", json=body, headers={"idempotency-key": "k2"})
        assert (r.status_code, r.json()["status"]) == (201, "paid")


def test_private_capacity_holds(servers: list[LiveServer]) -> None:
    """Capacity 5, 17 invited clients joining at once: exactly 5 admitted."""
    first = servers[0]
    world = build_world(first, ADMIN_TOKEN)
    with first.client(ADMIN_TOKEN) as c:
        sess = c.post(
            "/api/sessions",
            json={
                "title": "Private, five seats",
                "kind": "private",
                "store_id": world["store"]["id"],
                "host_id": world["associate"]["id"],
                "capacity": 5,
            },
        )
        assert sess.status_code == 201, sess.text
        sid = sess.json()["id"]
        clients = [
            c.post(
                "/api/clients",
                json={"name": f"Client {i}", "store_id": world["store"]["id"]},
            ).json()["id"]
            for i in range(17)
        ]
        invites = c.post(f"/api/sessions/{sid}/invites", json={"client_ids": clients})
        assert invites.status_code in (200, 201), invites.text
    codes = [i["code"] for i in invites.json()]
    assert len(codes) == 17
    answers = asyncio.run(
        _post_all(servers, f"/api/sessions/{sid}/viewers", [(None, {"invite": c}) for c in codes])
    )
    counts = Counter((status, body.get("error")) for status, body in answers)
    assert counts == {(201, None): 5, (403, "session_full"): 12}, counts


def test_deal_cap_and_per_viewer_limit_hold(servers: list[LiveServer]) -> None:
    """A deal of 10 units, 2 per viewer; 12 viewers each ask for 3 single units at once (36 orders):
    10 sold at the deal price, nobody above 2, everything else at the normal price or refused."""
    first = servers[0]
    world = build_world(first, ADMIN_TOKEN)
    pub, product = world["public"], world["products"][0]
    set_stock(first, ADMIN_TOKEN, product, world["store"]["id"], 100)
    with first.client(pub["host_token"]) as host:
        deal = host.post(
            f"/api/sessions/{pub['id']}/deals",
            json={
                "product_id": product["id"],
                "price": 100,
                "quantity": 10,
                "per_viewer_limit": 2,
                "duration_s": 600,
            },
        ).json()
    tokens = [join_buyer(first, pub["id"]) for _ in range(12)]
    item = {"product_id": product["id"], "qty": 1, "deal_id": deal["deal_id"]}
    answers = asyncio.run(
        _post_all(
            servers,
            "/api/orders",
            [(t, {"session_id": pub["id"], "items": [item]}) for t in tokens for _ in range(3)],
        )
    )
    counts = Counter((status, body.get("status") or body.get("error")) for status, body in answers)
    paid = counts[(201, "paid")]
    assert paid == 10, counts
    refused = {"deal_limit_reached", "deal_sold_out", "deal_ended"}  # sold out ends the deal
    assert set(counts) <= {(201, "paid")} | {(409, code) for code in refused}, counts
    assert all(body["total"] == 100 for status, body in answers if status == 201)
    per_viewer = Counter(
        t for t, (status, _) in zip([t for t in tokens for _ in range(3)], answers) if status == 201
    )
    assert max(per_viewer.values()) <= 2, per_viewer
    assert count(first, select(Deal.sold).where(Deal.id == deal["deal_id"])) == 10
    assert count(first, select(func.max(DealClaim.qty))) <= 2
    assert count(first, select(func.sum(DealClaim.qty))) == 10
