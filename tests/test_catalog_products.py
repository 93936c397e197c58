"""Products, variants, stock per store, the session's product cards and the pin card."""

from __future__ import annotations

import asyncio
from typing import Any

from catalog.cards import pin_card
from live.config import Settings
from live.db import Database
from tests.support.factory import join_buyer, set_stock
from tests.support.server import LiveServer


def _dress(c: Any, store_id: str | None = None) -> dict[str, Any]:
    r = c.post(
        "/api/products",
        json={
            "title": "Silk scarf",
            "price": 120000,
            "currency": "CNY",
            "description": "Hand-rolled <b>edges</b>",
            "images": ["/media/scarf-1.png", "https://cdn.example/scarf-2.png"],
            "store_id": store_id,
            "variants": [
                {"size": "S", "colour": "Red", "sku": "SC-S-R"},
                {"size": "M", "colour": "Red"},
                {"size": "M", "colour": "Blue", "price": 125000},
            ],
        },
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_products_with_variants_and_stock(server: LiveServer, world: dict[str, Any]) -> None:
    store = world["store"]["id"]
    with server.client(world["admin"]) as c:
        scarf = _dress(c, store)
        assert scarf["image_url"] == "/media/scarf-1.png" and len(scarf["images"]) == 2
        s, m_red, m_blue = scarf["variants"]
        assert (s["size"], s["colour"], s["price"], m_blue["price"]) == ("S", "Red", 120000, 125000)
        for v, q in ((s, 3), (m_red, 0), (m_blue, 7)):
            set_stock(server, world["admin"], scarf, store, q, v["id"])
        shown = c.get(f"/api/products/{scarf['id']}").json()
        assert sorted(r["quantity"] for r in shown["stock"]) == [0, 3, 7]
        listed = {p["id"]: p for p in c.get(f"/api/products?store_id={store}").json()}
        assert [v["stock"] for v in listed[scarf["id"]]["variants"]] == [3, 0, 7]
        # update: price, title, a variant changed, a variant added
        r = c.put(
            f"/api/products/{scarf['id']}",
            json={
                "price": 110000,
                "title": "Silk scarf 90",
                "variants": [{"id": s["id"], "colour": "Crimson"}, {"size": "L", "colour": "Red"}],
            },
        )
        assert r.status_code == 200, r.text
        up = r.json()
        assert up["price"] == 110000 and up["title"] == "Silk scarf 90" and len(up["variants"]) == 4
        assert up["variants"][0]["colour"] == "Crimson" and up["variants"][0]["size"] == "S"
        # bad input
        bad = [
            ("post", "/api/products", {"title": "x", "price": -1, "currency": "CNY"}, 422),
            ("post", "/api/products", {"title": "x", "price": 1, "currency": "yuan"}, 422),
            (
                "post",
                "/api/products",
                {"title": "x", "price": 1, "currency": "CNY", "images": ["javascript:alert(1)"]},
                422,
            ),
            (
                "post",
                "/api/products",
                {"title": "x", "price": 1, "currency": "CNY", "variants": ["S"]},
                422,
            ),
            ("put", f"/api/products/{scarf['id']}/stock", {"store_id": store, "quantity": 1}, 422),
            (
                "put",
                f"/api/products/{scarf['id']}/stock",
                {"store_id": store, "variant_id": s["id"], "quantity": -1},
                422,
            ),
            (
                "put",
                f"/api/products/{scarf['id']}/stock",
                {"store_id": store, "quantity": 1, "variant_id": world["products"][0]["id"]},
                422,
            ),
            (
                "put",
                f"/api/products/{scarf['id']}/stock",
                {"store_id": "st_nope", "variant_id": s["id"], "quantity": 1},
                404,
            ),
            ("put", "/api/products/pr_nope/stock", {"store_id": store, "quantity": 1}, 404),
            ("put", "/api/products/pr_nope", {"title": "y"}, 404),
        ]
        for method, path, body, status in bad:
            r = getattr(c, method)(path, json=body)
            assert r.status_code == status, (path, body, r.text)
            assert set(r.json()) == {"error", "detail"}
    with server.client() as anon:
        assert (
            anon.post(
                "/api/products", json={"title": "x", "price": 1, "currency": "CNY"}
            ).status_code
            == 401
        )
        assert (
            anon.put(
                f"/api/products/{scarf['id']}/stock", json={"store_id": store, "quantity": 1}
            ).status_code
            == 401
        )


def test_session_products_are_cards_with_live_stock(
    server: LiveServer, world: dict[str, Any]
) -> None:
    pub, priv, store = world["public"]["id"], world["private"]["id"], world["store"]["id"]
    first = world["products"][0]
    set_stock(server, world["admin"], first, store, 4)
    with server.client() as anon:
        cards = anon.get(f"/api/sessions/{pub}/products").json()
        assert [c["product_id"] for c in cards] == [p["id"] for p in world["products"]]
        assert cards[0]["variants"][0]["stock"] == 4 and cards[0]["available"] is True
        assert cards[1]["available"] is False and cards[0]["deal"] is None
        r = anon.get(f"/api/sessions/{priv}/products")
        assert (r.status_code, r.json()["error"]) == (401, "invite_required")
        assert anon.get("/api/sessions/se_nope/products").status_code == 404
    with server.client(join_buyer(server, pub, card=None)) as public_viewer:
        r = public_viewer.get(f"/api/sessions/{priv}/products")
        assert (r.status_code, r.json()["error"]) == (403, "wrong_session")
    with server.client("v1.forged.token") as forged:
        assert forged.get(f"/api/sessions/{priv}/products").status_code == 401
    with server.client(world["admin"]) as staff:
        code = staff.post(
            f"/api/sessions/{priv}/invites", json={"client_ids": [world["clients"][0]["id"]]}
        ).json()[0]["code"]
    with server.client(join_buyer(server, priv, invite=code, card=None)) as invited:
        assert len(invited.get(f"/api/sessions/{priv}/products").json()) == 3
    with server.client(world["private"]["host_token"]) as host:
        assert host.get(f"/api/sessions/{priv}/products").status_code == 200


def test_pin_card_and_card_opened(
    server: LiveServer, world: dict[str, Any], settings: Settings
) -> None:
    pub, store, product = world["public"]["id"], world["store"]["id"], world["products"][0]
    set_stock(server, world["admin"], product, store, 2)

    async def card(pid: str) -> dict[str, Any]:
        db = Database(settings.database_url)
        try:
            return await pin_card(db, pub, pid)
        finally:
            await db.dispose()

    got = asyncio.run(card(product["id"]))
    assert got["title"] == product["title"] and got["price"] == product["price"]
    assert got["variants"][0]["available"] is True and got["deal"] is None
    from live.errors import NotFound

    try:
        asyncio.run(card("pr_not_linked"))
        raise AssertionError("expected NotFound")
    except NotFound as exc:
        assert exc.code == "product_not_found"
    token = join_buyer(server, pub, card=None)
    with server.client(token) as c:
        assert c.post(f"/api/sessions/{pub}/products/{product['id']}/opened").status_code == 204
        r = c.post(f"/api/sessions/{pub}/products/pr_nope/opened")
        assert (r.status_code, r.json()["error"]) == (404, "product_not_found")
        r = c.post(f"/api/sessions/{world['private']['id']}/products/{product['id']}/opened")
        assert r.status_code == 403


def test_associates_set_their_own_store_stock_only(
    server: LiveServer, world: dict[str, Any]
) -> None:
    assoc = world["associate"]
    token = server.app.state.tokens.staff(assoc["id"], "associate", assoc["store_id"])
    with server.client(world["admin"]) as admin:
        other = admin.post(
            "/api/stores", json={"name": "Beijing SKP", "city": "Beijing", "country": "CN"}
        ).json()
    product = world["products"][0]
    with server.client(token) as c:
        r = c.put(
            f"/api/products/{product['id']}/stock",
            json={"store_id": assoc["store_id"], "quantity": 3},
        )
        assert r.status_code == 200
        r = c.put(
            f"/api/products/{product['id']}/stock", json={"store_id": other["id"], "quantity": 3}
        )
        assert (r.status_code, r.json()["error"]) == (403, "other_store")
        r = c.post("/api/products", json={"title": "x", "price": 1, "currency": "CNY"})
        assert r.status_code == 403
