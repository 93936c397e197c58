"""Checkout in the live room over real WebSockets: the pin card, anonymised purchases, the host's
counters (staff only), deal events, and the analytics that a purchase feeds."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.factory import abuy, join_buyer, set_stock
from tests.support.room import close_all, host_token, open_room, viewer
from tests.support.server import LiveServer, await_for


async def test_purchase_reaches_the_room_and_counters_reach_staff(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, product = world["public"]["id"], world["products"][0]
    set_stock(server, world["admin"], product, world["store"]["id"], 5)
    buyer = join_buyer(
        server,
        sid,
        delivery={
            "method": "ship",
            "address": {"line1": "8 Nanjing Rd", "city": "Shanghai", "country": "CN"},
        },
    )
    host = await open_room(server, sid, host_token(world))
    ana = await viewer(server, sid, "Ana")
    try:
        await host.send("pin", product_id=product["id"])
        pin = await ana.wait_type("pin")
        card = pin["card"]
        assert card["price"] == product["price"] and card["variants"][0]["stock"] == 5
        assert card["variants"][0]["available"] is True and card["deal"] is None
        order = await abuy(server, buyer, sid, product["id"])
        assert order["pinned"] is True  # bought while the host was showing it
        bought = await ana.wait_type("purchase")
        assert bought["text"] == f"A client in Shanghai just bought {product['title']}"
        assert "Wang" not in str(bought) and order["order_id"] not in str(bought)
        counters = await host.wait_type("counters", orders=1)
        assert (counters["revenue"], counters["currency"], counters["buyers"]) == (
            product["price"],
            "CNY",
            1,
        )
        await abuy(server, buyer, sid, product["id"])
        await host.wait_type("counters", orders=2)
        assert ana.of("counters") == []  # the host's numbers are not for viewers
        # analytics heard the purchases
        with server.client(world["admin"]) as staff:

            def recorded() -> Any:
                return staff.get(f"/api/sessions/{sid}/live-counters").json().get("orders") == 2

            await await_for(recorded, 15, what="analytics to record the purchases")
    finally:
        await close_all(host, ana)


async def test_deal_events_reach_the_room(server: LiveServer, world: dict[str, Any]) -> None:
    sid, product = world["public"]["id"], world["products"][1]
    set_stock(server, world["admin"], product, world["store"]["id"], 5)
    host = await open_room(server, sid, host_token(world))
    ana = await viewer(server, sid, "Ana")
    try:
        await host.send("pin", product_id=product["id"])
        await ana.wait_type("pin")
        async with httpx.AsyncClient(
            base_url=server.url,
            timeout=30,
            headers={"authorization": f"Bearer {host_token(world)}"},
        ) as h:
            r = await h.post(
                f"/api/sessions/{sid}/deals", json={"price": 9900, "quantity": 3, "duration_s": 600}
            )
            assert r.status_code == 201, r.text  # on the pinned product
            deal = r.json()
            started = await ana.wait_type("deal_started")
            assert (started["deal_id"], started["product_id"], started["price"]) == (
                deal["deal_id"],
                product["id"],
                9900,
            )
            assert started["ends_at"] == deal["ends_at"]
            cards = (
                await h.get(f"/api/sessions/{sid}/products")
            ).json()  # what a late viewer loads
            assert next(c for c in cards if c["pinned"])["deal"]["deal_id"] == deal["deal_id"]
            late = await viewer(server, sid, "Late")
            try:
                assert late.hello["deal"]["deal_id"] == deal["deal_id"]
            finally:
                await late.close()
            await h.post(f"/api/sessions/{sid}/deals/{deal['deal_id']}/end")
            ended = await ana.wait_type("deal_ended")
            assert ended["deal_id"] == deal["deal_id"] and ended["end_reason"] == "host"
    finally:
        await close_all(host, ana)
