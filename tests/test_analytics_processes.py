"""Two real server processes on one database and one Redis: a client watching through both
(one tab on each) and buying through both is still one viewer and one buyer."""

from __future__ import annotations

from typing import Any

from tests import test_room_redis
from tests.conftest import ADMIN_TOKEN
from tests.support.factory import abuy, build_world, join_buyer, set_stock
from tests.support.room import close_all, host_token, join, open_room
from tests.support.server import LiveServer, await_for

two_servers = (
    test_room_redis.two_servers
)  # the fixture: two server processes on one database and Redis


async def test_one_client_through_two_processes_is_counted_once(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    a, b = two_servers
    world = build_world(a, ADMIN_TOKEN)
    sid, product = world["private"]["id"], world["products"][1]
    set_stock(a, ADMIN_TOKEN, product, world["store"]["id"], 10)
    clients = [c["id"] for c in world["clients"][:2]]
    with a.client(ADMIN_TOKEN) as staff:
        r = staff.post(f"/api/sessions/{sid}/invites", json={"client_ids": clients})
        assert r.status_code == 201, r.text
        codes = {i["client_id"]: i["code"] for i in r.json()}
    buyer = join_buyer(a, sid, invite=codes[clients[0]])
    other = await join(b, sid, "Bo", invite=codes[clients[1]])
    host = await open_room(a, sid, host_token(world, "private"))
    tab_a = await open_room(a, sid, buyer)
    tab_b = await open_room(b, sid, buyer)  # the same viewer, a second tab, the other process
    bo = await open_room(b, sid, other["token"])
    try:
        await host.send(
            "pin", product_id=product["id"]
        )  # each process tracks an impression per tab
        await tab_a.wait_type("pin")
        await tab_b.wait_type("pin")
        await abuy(b, buyer, sid, product["id"])
        await abuy(a, buyer, sid, product["id"])
        await tab_a.close()
        tab_a = await open_room(a, sid, buyer)  # reconnects

        def report() -> dict[str, Any] | None:
            with b.client(ADMIN_TOKEN) as staff:
                rep: dict[str, Any] = staff.get(f"/api/reports/sessions/{sid}").json()
            return rep if rep["orders"] == 2 and rep["impression_viewers"] == 2 else None

        rep = await await_for(report, 20, what="both processes' analytics")
        assert (rep["reach"], rep["attended"], rep["invited"]) == (2, 2, 2)
        assert (rep["buyers"], rep["revenue"], rep["conversion"]) == (1, 2 * product["price"], 0.5)
        assert rep["impressions"] >= 3  # raw impressions: one per tab; distinct viewers: two
        [assoc] = rep["associates"]
        assert (assoc["attended"], assoc["buyers"], assoc["revenue"]) == (
            2,
            1,
            2 * product["price"],
        )
    finally:
        await close_all(host, tab_a, tab_b, bo)
