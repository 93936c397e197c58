"""Analytics from real traffic: invites, joins over HTTP, WebSocket tabs, a pin, one-tap orders.

One invited client watches on two devices and reconnects, buys twice; another watches and does
not buy; a third is invited and never comes. The reports must count each of them once, and
attribute the revenue to the associate who invited them.
"""

from __future__ import annotations

from typing import Any

from tests.support.factory import abuy, join_buyer, set_stock
from tests.support.room import close_all, host_token, join, open_room
from tests.support.server import LiveServer, await_for


async def test_real_traffic_counts_each_viewer_once(
    server: LiveServer, world: dict[str, Any]
) -> None:
    sid, product, admin = world["private"]["id"], world["products"][0], world["admin"]
    set_stock(server, admin, product, world["store"]["id"], 10)
    clients = [c["id"] for c in world["clients"][:3]]
    async with server.aclient(admin) as staff:
        r = await staff.post(f"/api/sessions/{sid}/invites", json={"client_ids": clients})
        assert r.status_code == 201, r.text
        codes = {i["client_id"]: i["code"] for i in r.json()}
    buyer = join_buyer(server, sid, invite=codes[clients[0]])
    phone = await join(
        server, sid, "Ana", invite=codes[clients[0]]
    )  # the same client on a second device
    other = await join(server, sid, "Bo", invite=codes[clients[1]])
    host = await open_room(server, sid, host_token(world, "private"))
    tab1 = await open_room(server, sid, buyer)
    tab2 = await open_room(server, sid, phone["token"])
    bo = await open_room(server, sid, other["token"])
    try:
        await host.send("pin", product_id=product["id"])
        await bo.wait_type("pin")
        await abuy(server, buyer, sid, product["id"])
        await tab2.close()  # the phone drops and comes back
        tab2 = await open_room(server, sid, phone["token"])
        await abuy(server, buyer, sid, product["id"])

        async def report() -> dict[str, Any] | None:
            async with server.aclient(admin) as staff:
                rep = (await staff.get(f"/api/reports/sessions/{sid}")).json()
            return rep if rep["orders"] == 2 and rep["impression_viewers"] == 2 else None

        rep = await await_for(report, 15, what="analytics to record the traffic")
        assert (rep["invited"], rep["attended"], rep["reach"]) == (3, 2, 2)
        assert (rep["buyers"], rep["orders"], rep["revenue"]) == (1, 2, 2 * product["price"])
        assert rep["conversion"] == 0.5 and rep["currency"] == "CNY"
        # the recorded purchases agree with the catalog's own orders
        assert rep["checkout"] == {
            "orders": 2,
            "buyers": 1,
            "revenue": 2 * product["price"],
            "refunded_orders": 0,
            "refunded_revenue": 0,
        }
        [assoc] = rep["associates"]
        assert assoc["associate_id"] == world["associate"]["id"]
        assert (assoc["invited"], assoc["attended"], assoc["buyers"], assoc["revenue"]) == (
            3,
            2,
            1,
            2 * product["price"],
        )
        async with server.aclient(host_token(world, "private")) as h:
            live = (await h.get(f"/api/sessions/{sid}/live-counters")).json()
        assert (live["reach"], live["orders"], live["buyers"]) == (2, 2, 1)
    finally:
        await close_all(host, tab1, tab2, bo)
