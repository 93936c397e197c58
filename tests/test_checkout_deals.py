"""Flash deals: deal price, quantity cap, per-viewer limit, the end time (timer and lazy check)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from catalog.models import Deal
from live.config import Settings
from live.db import Database, now_ms
from tests.support.factory import join_buyer, set_stock
from tests.support.server import LiveServer, wait_for


def _buy(
    token: str,
    server: LiveServer,
    session_id: str,
    product_id: str,
    deal_id: str | None = None,
    **extra: Any,
) -> Any:
    item: dict[str, Any] = {"product_id": product_id, "qty": 1}
    if deal_id:
        item["deal_id"] = deal_id
    with server.client(token) as c:
        return c.post(
            "/api/orders",
            json={"session_id": session_id, "items": [item], **extra},
            headers={"idempotency-key": uuid.uuid4().hex},
        )


def _deal(server: LiveServer, world: dict[str, Any], deal_id: str) -> dict[str, Any]:
    pub = world["public"]
    with server.client(pub["host_token"]) as host:
        deals = host.get(f"/api/sessions/{pub['id']}/deals").json()
    return next(d for d in deals if d["deal_id"] == deal_id)


def test_deal_price_cap_and_per_viewer_limit(server: LiveServer, world: dict[str, Any]) -> None:
    pub, store, product = world["public"], world["store"]["id"], world["products"][0]
    set_stock(server, world["admin"], product, store, 10)
    with server.client(pub["host_token"]) as host:
        r = host.post(
            f"/api/sessions/{pub['id']}/deals",
            json={
                "product_id": product["id"],
                "price": 19900,
                "quantity": 2,
                "per_viewer_limit": 1,
                "duration_s": 600,
            },
        )
        assert r.status_code == 201, r.text
        deal = r.json()
        assert (
            deal["ends_at"] > now_ms()
            and deal["remaining"] == 2
            and deal["list_price"] == product["price"]
        )
        r = host.post(
            f"/api/sessions/{pub['id']}/deals",
            json={"product_id": product["id"], "price": 100, "quantity": 1, "duration_s": 60},
        )
        assert (r.status_code, r.json()["error"]) == (409, "deal_running")
    with server.client() as anon:
        card = anon.get(f"/api/sessions/{pub['id']}/products").json()[0]
        assert card["deal"]["deal_id"] == deal["deal_id"] and card["deal"]["price"] == 19900
    a, b, c = (join_buyer(server, pub["id"]) for _ in range(3))
    first = _buy(a, server, pub["id"], product["id"], deal["deal_id"])
    assert first.status_code == 201 and first.json()["total"] == 19900
    r = _buy(a, server, pub["id"], product["id"], deal["deal_id"])
    assert (r.status_code, r.json()["error"]) == (409, "deal_limit_reached")
    r = _buy(a, server, pub["id"], product["id"], deal["deal_id"], on_deal_end="full_price")
    assert r.status_code == 201 and r.json()["total"] == product["price"]
    assert (
        _buy(b, server, pub["id"], product["id"]).json()["total"] == 19900
    )  # a running deal applies
    # sold out: the deal ends, later buyers pay the normal price or are refused, as they chose
    assert wait_for(lambda: _deal(server, world, deal["deal_id"])["end_reason"] == "sold_out")
    r = _buy(c, server, pub["id"], product["id"], deal["deal_id"])
    assert (r.status_code, r.json()["error"]) == (409, "deal_ended")
    assert _buy(c, server, pub["id"], product["id"]).json()["total"] == product["price"]


def test_deal_ends_on_time_and_price_reverts(server: LiveServer, world: dict[str, Any]) -> None:
    pub, store, product = world["public"], world["store"]["id"], world["products"][1]
    set_stock(server, world["admin"], product, store, 10)
    buyer = join_buyer(server, pub["id"])
    with server.client(world["admin"]) as staff:
        deal = staff.post(
            f"/api/sessions/{pub['id']}/deals",
            json={"product_id": product["id"], "price": 100, "quantity": 5, "duration_s": 0.3},
        ).json()
    ended = wait_for(
        lambda: _deal(server, world, deal["deal_id"])["ended_at"], what="the deal timer"
    )
    assert (
        ended <= deal["ends_at"] and _deal(server, world, deal["deal_id"])["end_reason"] == "time"
    )
    r = _buy(buyer, server, pub["id"], product["id"], deal["deal_id"])
    assert (r.status_code, r.json()["error"]) == (409, "deal_ended")
    r = _buy(buyer, server, pub["id"], product["id"], deal["deal_id"], on_deal_end="full_price")
    assert r.status_code == 201 and r.json()["total"] == product["price"]
    with server.client() as anon:
        assert anon.get(f"/api/sessions/{pub['id']}/products").json()[1]["deal"] is None


def test_overdue_deal_is_ended_lazily_at_order_time(
    server: LiveServer, world: dict[str, Any], settings: Settings
) -> None:
    """A deal nobody ended (its process died) never sells after its end time."""
    pub, store, product = world["public"], world["store"]["id"], world["products"][2]
    set_stock(server, world["admin"], product, store, 3)

    async def insert_overdue() -> str:
        db = Database(settings.database_url)
        try:
            async with db.write() as s:
                s.add(
                    Deal(
                        id="dl_overdue",
                        session_id=pub["id"],
                        product_id=product["id"],
                        price_minor=1,
                        quantity=5,
                        sold=0,
                        per_viewer_limit=5,
                        starts_at=now_ms() - 60_000,
                        ends_at=now_ms() - 1000,
                    )
                )
        finally:
            await db.dispose()
        return "dl_overdue"

    deal_id = asyncio.run(insert_overdue())
    buyer = join_buyer(server, pub["id"])
    with server.client() as anon:
        assert anon.get(f"/api/sessions/{pub['id']}/products").json()[2]["deal"] is None
    r = _buy(buyer, server, pub["id"], product["id"], deal_id)
    assert (r.status_code, r.json()["error"]) == (409, "deal_ended")
    assert _deal(server, world, deal_id)["end_reason"] == "time"
    assert _buy(buyer, server, pub["id"], product["id"]).json()["total"] == product["price"]


def test_deal_bad_input(server: LiveServer, world: dict[str, Any]) -> None:
    pub, product = world["public"], world["products"][0]
    path = f"/api/sessions/{pub['id']}/deals"
    ok = {"product_id": product["id"], "price": 100, "quantity": 1, "duration_s": 60}
    with server.client(pub["host_token"]) as host:
        for body, status, code in [
            ({**ok, "price": product["price"]}, 422, "invalid"),
            ({**ok, "price": -1}, 422, "invalid"),
            ({**ok, "quantity": 0}, 422, "invalid"),
            ({**ok, "duration_s": None}, 422, "invalid"),
            ({**ok, "duration_s": None, "ends_at": now_ms() - 1}, 422, "invalid"),
            ({**ok, "duration_s": 10**7}, 422, "invalid"),
            ({**ok, "product_id": "pr_nope"}, 404, "product_not_found"),
            ({k: v for k, v in ok.items() if k != "product_id"}, 409, "nothing_pinned"),
        ]:
            r = host.post(path, json=body)
            assert (r.status_code, r.json()["error"]) == (status, code), body
        r = host.post(f"{path}/dl_nope/end")
        assert (r.status_code, r.json()["error"]) == (404, "deal_not_found")
        deal = host.post(path, json=ok).json()
        assert host.post(f"{path}/{deal['deal_id']}/end").json()["end_reason"] == "host"
        assert (
            host.post(f"{path}/{deal['deal_id']}/end").json()["end_reason"] == "host"
        )  # idempotent
    with server.client(world["private"]["host_token"]) as other_host:
        assert other_host.post(path, json=ok).status_code == 403
    with server.client(join_buyer(server, pub["id"], card=None)) as viewer:
        assert viewer.post(path, json=ok).status_code == 403
