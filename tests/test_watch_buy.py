"""The watch page's Buy in a phone-sized Chromium: one Idempotency-Key per purchase intent across a lost
response (one order, not two), and a price that moved is shown before a second, confirming tap — what the
page shows and what the database stored."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from tests.support.browser import chromium, shot, watch_console
from tests.support.factory import build_world, set_stock
from tests.support.room import open_room
from tests.support.server import LiveServer

PHONE = {"width": 390, "height": 844}
CARD = "4242424242424242"


def _rows(server: LiveServer, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    path = server.settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return list(db.execute(sql, args).fetchall())


def _live_with_pin(server: LiveServer, world: dict[str, Any], product: dict[str, Any]) -> str:
    pub = world["public"]
    with server.client(pub["host_token"]) as host:
        assert host.post(f"/api/sessions/{pub['id']}/start").status_code == 200

    async def pin() -> None:
        room = await open_room(server, pub["id"], pub["host_token"])
        try:
            await room.send("pin", product_id=product["id"])
            await room.wait_type("pin")
        finally:
            await room.close()

    asyncio.run(pin())
    return str(pub["id"])


def _phone(browser: Any) -> Any:
    return browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )


def _first_purchase_with_profile(page: Any) -> None:
    page.click("#buy")
    page.wait_for_selector("#profile[open]", timeout=10000)
    page.fill("#p-name", "Ana Client")
    page.fill("#p-card", CARD)
    page.click("#profile-submit")
    page.wait_for_selector("#confirm:has-text('Order confirmed')", timeout=15000)


def test_a_lost_response_then_a_second_tap_is_one_order(web: LiveServer) -> None:
    world = build_world(web, world_admin := "test-admin-" + "x" * 32)
    product = world["products"][0]
    set_stock(web, world_admin, product, world["store"]["id"], 10)
    sid = _live_with_pin(web, world, product)
    with chromium() as browser:
        ctx = _phone(browser)
        page = ctx.new_page()
        errors = watch_console(page)
        page.goto(f"{web.url}/watch/{sid}")
        page.wait_for_selector("#card:not([hidden]) #card-title:has-text('Linen dress 0')")
        _first_purchase_with_profile(page)
        page.wait_for_selector("#buy:not([disabled])")

        seen: list[dict[str, Any]] = []

        def lose_the_first_answer(route: Any) -> None:
            req = route.request
            seen.append({"key": req.headers.get("idempotency-key"), "body": req.post_data_json})
            if len(seen) == 1:
                answer = route.fetch()  # the server takes the order and answers…
                seen[-1]["status"] = answer.status
                route.abort("internetdisconnected")  # …and the phone never gets the answer
            else:
                route.continue_()

        page.route("**/api/orders", lose_the_first_answer)
        page.click("#buy")
        page.wait_for_selector("#confirm:has-text('network is not reachable')", timeout=15000)
        shot(page, "watch-buy-lost-answer-390")
        assert seen[0]["status"] == 201  # the server did take it
        paid = _rows(web, "SELECT id FROM orders WHERE status = 'paid' ORDER BY created_at")
        assert len(paid) == 2
        lost_order = paid[-1][0]

        page.wait_for_selector("#buy:not([disabled])")
        page.click("#buy")  # the second tap
        page.wait_for_selector(f"#confirm:has-text('{lost_order}')", timeout=15000)
        assert "Order confirmed" in (page.text_content("#confirm") or "")
        shot(page, "watch-buy-retried-390")
        assert len(seen) == 2 and seen[0]["key"] == seen[1]["key"]
        assert seen[0]["body"] == seen[1]["body"]
        assert seen[0]["body"]["expected_total"] == product["price"]
        # one order for the intent: the first purchase and this one, nothing more held or charged
        assert _rows(web, "SELECT status, total FROM orders ORDER BY created_at") == [
            ("paid", product["price"]),
            ("paid", product["price"]),
        ]
        assert _rows(web, "SELECT count(*) FROM demo_payments") == [(2,)]

        # a definite answer ends the intent: the next tap is a new purchase with a new key
        page.wait_for_selector("#buy:not([disabled])")
        page.click("#buy")
        page.wait_for_function(
            "(id) => /Order confirmed \\((\\w+)\\)/.test(document.querySelector('#confirm').textContent)"
            " && !document.querySelector('#confirm').textContent.includes(id)",
            arg=lost_order,
            timeout=15000,
        )
        assert len(seen) == 3 and seen[2]["key"] != seen[0]["key"]
        assert _rows(web, "SELECT count(*) FROM orders WHERE status = 'paid'") == [(3,)]
        assert [e for e in errors if "Content Security Policy" in e] == []


def test_a_price_that_moved_is_shown_then_bought_at_on_a_second_tap(web: LiveServer) -> None:
    admin = "test-admin-" + "x" * 32
    world = build_world(web, admin)
    product = world["products"][1]
    regular = product["price"]
    shown = f"{regular / 100:.2f}"  # CNY has two decimals: 40900 → "409.00"
    set_stock(web, admin, product, world["store"]["id"], 10)
    with web.client(world["public"]["host_token"]) as host:
        r = host.post(
            f"/api/sessions/{world['public']['id']}/deals",
            json={
                "product_id": product["id"],
                "price": 19900,
                "quantity": 10,
                "per_viewer_limit": 1,
                "duration_s": 600,
            },
        )
        assert r.status_code == 201, r.text
    sid = _live_with_pin(web, world, product)
    with chromium() as browser:
        ctx = _phone(browser)  # one phone, two tabs: the same viewer
        a, b = ctx.new_page(), ctx.new_page()
        errors = watch_console(a)
        for p in (a, b):
            p.goto(f"{web.url}/watch/{sid}")
            p.wait_for_selector("#card:not([hidden]) #card-price:has-text('199.00')")
        assert shown in (a.text_content("#card-was") or "")
        sent: list[dict[str, Any]] = []
        a.on(
            "request",
            lambda req: (
                sent.append(req.post_data_json) if req.url.endswith("/api/orders") else None
            ),
        )
        _first_purchase_with_profile(b)  # the other tab takes this viewer's one deal unit
        assert "199.00" in (b.text_content("#confirm") or "")
        b.wait_for_selector(f"#card-price:has-text('{shown}')")  # that tab knows the limit is used
        assert "199.00" in (a.text_content("#card-price") or "")  # this one does not yet

        a.click("#buy")
        a.wait_for_selector("#confirm:has-text('The price is now')", timeout=15000)
        assert shown in (a.text_content("#confirm") or "")
        a.wait_for_selector("#buy[data-confirm]:has-text('Buy at')")
        assert shown in (a.text_content("#buy") or "")
        assert shown in (a.text_content("#card-price") or "")
        shot(a, "watch-price-changed-390")
        orders = _rows(web, "SELECT total FROM orders ORDER BY created_at")
        assert orders == [(19900,)]  # nothing held for the refused tap

        a.click("#buy")  # the confirming tap
        a.wait_for_selector("#confirm:has-text('Order confirmed')", timeout=15000)
        assert shown in (a.text_content("#confirm") or "")
        assert [s["expected_total"] for s in sent] == [19900, regular]
        rows = _rows(
            web,
            "SELECT o.status, o.total, i.unit_price, i.deal_id IS NULL FROM orders o"
            " JOIN order_items i ON i.order_id = o.id ORDER BY o.created_at",
        )
        assert rows == [("paid", 19900, 19900, 0), ("paid", regular, regular, 1)]
        assert _rows(web, "SELECT count(*) FROM demo_payments") == [(2,)]
        a.wait_for_selector("#buy:not([data-confirm]):has-text('Buy')")
        assert [e for e in errors if "Content Security Policy" in e] == []
