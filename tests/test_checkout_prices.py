"""The price shown is the price charged: one pricing rule (a table), each viewer's card priced for that
viewer, and ``expected_total``: a total that moved is ``409 price_changed`` and nothing is held or charged."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from catalog.models import DemoPayment, Order
from catalog.pricing import DealTerms, Price, price_for
from live.db import Database
from tests.support.factory import join_buyer, set_stock
from tests.support.server import LiveServer

NOW = 1_000_000


def _deal(**kw: Any) -> DealTerms:
    base: dict[str, Any] = dict(
        deal_id="dl", price=199, quantity=10, sold=0, per_viewer_limit=2, ends_at=NOW + 1
    )
    return DealTerms(**(base | kw))


@pytest.mark.parametrize(
    ("qty", "deal", "expected"),
    [
        (1, None, Price(329, None)),  # no deal: the regular price
        (1, _deal(), Price(199, "dl")),  # within the viewer's limit
        (2, _deal(), Price(199, "dl")),  # the whole limit
        (3, _deal(), Price(329, None)),  # more than the limit: the whole line at the regular price
        (1, _deal(claimed=1), Price(199, "dl")),  # one left of the viewer's limit
        (1, _deal(claimed=2), Price(329, None)),  # the viewer's limit is used: the regular price
        (2, _deal(claimed=1), Price(329, None)),  # does not fit what is left of the limit
        (1, _deal(sold=9), Price(199, "dl")),  # the last unit of the deal
        (1, _deal(sold=10), Price(329, None)),  # sold out
        (2, _deal(sold=9), Price(329, None)),  # fits the viewer, not the deal
        (1, _deal(ends_at=NOW), Price(329, None)),  # ended on time
        (1, _deal(ended_at=NOW - 5), Price(329, None)),  # ended by the host
        (1, _deal(price=400), Price(329, "dl")),  # never above the regular price
        (99, _deal(per_viewer_limit=99, quantity=99), Price(199, "dl")),
    ],
)
def test_price_rule(qty: int, deal: DealTerms | None, expected: Price) -> None:
    assert price_for(329, qty, deal, NOW) == expected


def _start_deal(
    server: LiveServer, world: dict[str, Any], product: dict[str, Any], **kw: Any
) -> Any:
    pub = world["public"]
    with server.client(pub["host_token"]) as host:
        r = host.post(
            f"/api/sessions/{pub['id']}/deals",
            json={"product_id": product["id"], "price": 19900, "duration_s": 600} | kw,
        )
        assert r.status_code == 201, r.text
        return r.json()


def _order(token: str, server: LiveServer, sid: str, pid: str, **extra: Any) -> httpx.Response:
    with server.client(token) as c:
        return c.post(
            "/api/orders",
            json={"session_id": sid, "items": [{"product_id": pid, "qty": 1}], **extra},
            headers={"idempotency-key": uuid.uuid4().hex},
        )


def _card(server: LiveServer, sid: str, pid: str, token: str | None = None) -> dict[str, Any]:
    with server.client(token) as c:
        return next(
            card for card in c.get(f"/api/sessions/{sid}/products").json() if card["id"] == pid
        )


def _rows(server: LiveServer) -> tuple[int, int]:
    async def run() -> tuple[int, int]:
        db = Database(server.settings.database_url)
        try:
            async with db.read() as s:
                orders = await s.scalar(select(func.count()).select_from(Order))
                charges = await s.scalar(select(func.count()).select_from(DemoPayment))
                return int(orders or 0), int(charges or 0)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _stock(server: LiveServer, world: dict[str, Any], pid: str) -> int:
    with server.client(world["admin"]) as c:
        return sum(r["quantity"] for r in c.get(f"/api/products/{pid}").json()["stock"])


def test_over_the_limit_the_card_shows_and_the_order_charges_the_regular_price(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, product = world["public"]["id"], world["products"][0]
    regular = product["price"]
    set_stock(server, world["admin"], product, world["store"]["id"], 10)
    deal = _start_deal(server, world, product, quantity=5, per_viewer_limit=1)
    buyer = join_buyer(server, sid)
    card = _card(server, sid, product["id"], buyer)
    assert (card["price_now"], card["price"], card["deal"]["claimed"]) == (19900, regular, 0)
    r = _order(buyer, server, sid, product["id"], expected_total=19900)
    assert (r.status_code, r.json()["total"], r.json()["items"][0]["deal_id"]) == (
        201,
        19900,
        deal["deal_id"],
    )
    # the deal is still running for everybody else, but this viewer has used their one unit
    assert _card(server, sid, product["id"])["price_now"] == 19900
    mine = _card(server, sid, product["id"], buyer)
    assert (mine["price_now"], mine["deal"]["claimed"]) == (regular, 1)
    # a page still showing the deal price is told, and nothing is held or charged
    before = (_rows(server), _stock(server, world, product["id"]))
    r = _order(buyer, server, sid, product["id"], expected_total=19900)
    assert r.status_code == 409, r.text
    body = r.json()
    assert (body["error"], body["total"], body["expected_total"]) == (
        "price_changed",
        regular,
        19900,
    )
    assert body["items"] == [
        {
            "product_id": product["id"],
            "variant_id": body["items"][0]["variant_id"],
            "title": product["title"],
            "qty": 1,
            "unit_price": regular,
            "list_price": regular,
            "deal_id": None,
            "line_total": regular,
        }
    ]
    assert (_rows(server), _stock(server, world, product["id"])) == before
    # the second, confirming tap sends the total it now shows
    r = _order(buyer, server, sid, product["id"], expected_total=regular)
    assert (r.status_code, r.json()["total"]) == (201, regular)
    # another viewer still gets the deal price
    other = join_buyer(server, sid)
    assert _order(other, server, sid, product["id"], expected_total=19900).status_code == 201


def test_a_price_that_moves_at_the_last_moment_is_refused_not_charged(
    server: LiveServer, world: dict[str, Any]
) -> None:
    """One viewer, limit 1, five orders at once, each expecting the deal price: one is paid at the deal
    price; the others are answered price_changed (at planning or at the conditional update), and hold and
    charge nothing."""
    sid, product = world["public"]["id"], world["products"][1]
    set_stock(server, world["admin"], product, world["store"]["id"], 10)
    _start_deal(server, world, product, quantity=5, per_viewer_limit=1)
    buyer = join_buyer(server, sid)

    async def storm() -> list[httpx.Response]:
        async with server.aclient(buyer) as c:
            return list(
                await asyncio.gather(
                    *(
                        c.post(
                            "/api/orders",
                            json={
                                "session_id": sid,
                                "items": [{"product_id": product["id"]}],
                                "expected_total": 19900,
                            },
                            headers={"idempotency-key": uuid.uuid4().hex},
                        )
                        for _ in range(5)
                    )
                )
            )

    answers = asyncio.run(storm())
    counts = Counter((r.status_code, r.json().get("status") or r.json()["error"]) for r in answers)
    assert counts == {(201, "paid"): 1, (409, "price_changed"): 4}, counts
    assert [r.json()["total"] for r in answers if r.status_code == 201] == [19900]
    assert {r.json()["total"] for r in answers if r.status_code == 409} == {product["price"]}
    assert _rows(server) == (1, 1)
    assert _stock(server, world, product["id"]) == 9


def test_expected_total_is_checked_and_part_of_the_request(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, product = world["public"]["id"], world["products"][2]
    set_stock(server, world["admin"], product, world["store"]["id"], 10)
    buyer = join_buyer(server, sid)
    with server.client(buyer) as c:
        for bad in (-1, "100", True, 1.5):
            r = c.post(
                "/api/orders",
                json={
                    "session_id": sid,
                    "items": [{"product_id": product["id"]}],
                    "expected_total": bad,
                },
                headers={"idempotency-key": uuid.uuid4().hex},
            )
            assert (r.status_code, r.json()["error"]) == (422, "invalid"), bad
        body = {"session_id": sid, "items": [{"product_id": product["id"]}]}
        r = c.post(
            "/api/orders", json=body | {"expected_total": 1}, headers={"idempotency-key": "k"}
        )
        assert (r.status_code, r.json()["error"]) == (409, "price_changed")
        # the same key for another expected total is another request
        r = c.post(
            "/api/orders",
            json=body | {"expected_total": product["price"]},
            headers={"idempotency-key": "k"},
        )
        assert (r.status_code, r.json()["error"]) == (422, "idempotency_key_reused")
        r = c.post(
            "/api/orders",
            json=body | {"expected_total": product["price"]},
            headers={"idempotency-key": "k2"},
        )
        assert (r.status_code, r.json()["total"]) == (201, product["price"])
