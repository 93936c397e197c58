"""One-tap checkout over real HTTP on SQLite and PostgreSQL: profile, buy, idempotency, declines,
refunds, carts, and the bad input a buyer (or an attacker) can send."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.factory import join_buyer, set_stock
from tests.support.server import LiveServer

DECLINED = "4000000000000002"


def _buy(
    c: Any, session_id: str, items: list[dict[str, Any]], key: str | None = None, **extra: Any
) -> Any:
    return c.post(
        "/api/orders",
        json={"session_id": session_id, "items": items, **extra},
        headers={"idempotency-key": key or uuid.uuid4().hex},
    )


def _stock(server: LiveServer, admin: str, product_id: str, store_id: str) -> int:
    with server.client(admin) as c:
        rows = c.get(f"/api/products/{product_id}").json()["stock"]
    return sum(r["quantity"] for r in rows if r["store_id"] == store_id)


def test_one_tap_buy_is_paid_and_idempotent(server: LiveServer, world: dict[str, Any]) -> None:
    pub, store, product = world["public"]["id"], world["store"]["id"], world["products"][0]
    set_stock(server, world["admin"], product, store, 5)
    token = join_buyer(server, pub)
    with server.client(token) as c:
        r = _buy(c, pub, [{"product_id": product["id"], "qty": 2}], key="k-1")
        assert r.status_code == 201, r.text
        order = r.json()
        assert order["status"] == "paid" and order["total"] == 2 * product["price"]
        assert order["currency"] == "CNY" and order["items"][0]["qty"] == 2
        again = _buy(c, pub, [{"product_id": product["id"], "qty": 2}], key="k-1")
        assert (again.status_code, again.json()) == (201, order)
        other = _buy(c, pub, [{"product_id": product["id"], "qty": 1}], key="k-1")
        assert (other.status_code, other.json()["error"]) == (422, "idempotency_key_reused")
        assert c.get(f"/api/orders/{order['order_id']}").json()["status"] == "paid"
        mine = c.get("/api/me/orders").json()["items"]
        assert [o["order_id"] for o in mine] == [order["order_id"]]
    assert _stock(server, world["admin"], product["id"], store) == 3  # charged once, held once


def _invite(server: LiveServer, world: dict[str, Any], session_id: str, client: int = 0) -> str:
    with server.client(world["admin"]) as staff:
        r = staff.post(
            f"/api/sessions/{session_id}/invites",
            json={"client_ids": [world["clients"][client]["id"]]},
        )
        return str(r.json()[0]["code"])


def test_profile_required_and_saved_once_across_sessions(
    server: LiveServer, world: dict[str, Any]
) -> None:
    pub, priv, product = world["public"]["id"], world["private"]["id"], world["products"][0]
    set_stock(server, world["admin"], product, world["store"]["id"], 5)
    token = join_buyer(server, priv, invite=_invite(server, world, priv), card=None)
    with server.client(token) as c:
        r = _buy(c, priv, [{"product_id": product["id"]}])
        assert (r.status_code, r.json()["error"]) == (409, "profile_required")
        assert c.get("/api/me/profile").status_code == 404
        r = c.put(
            "/api/me/profile",
            json={
                "name": "Client 0",
                "delivery": {
                    "method": "ship",
                    "address": {"line1": "1 Huaihai Rd", "city": "Shanghai", "country": "cn"},
                },
                "payment": {"provider": "demo", "card_number": "4242 4242 4242 4242"},
            },
        )
        assert r.status_code == 200, r.text
        profile = r.json()
        assert profile["payment"]["label"].endswith("4242") and "card_number" not in str(profile)
        assert profile["delivery"]["address"]["country"] == "CN"
    with server.client(join_buyer(server, pub, card=None)) as c:
        assert c.get("/api/me/profile").status_code == 404  # a different (anonymous) person
    # the same invited client, another session next week: already saved, one tap
    with server.client(world["admin"]) as staff:
        later = staff.post(
            "/api/sessions",
            json={
                "title": "VIP preview 2",
                "kind": "private",
                "store_id": world["store"]["id"],
                "host_id": world["associate"]["id"],
                "product_ids": [product["id"]],
            },
        ).json()["id"]
    with server.client(
        join_buyer(server, later, invite=_invite(server, world, later), card=None)
    ) as c:
        r = _buy(c, later, [{"product_id": product["id"]}])
        assert r.status_code == 201, r.text
        assert r.json()["delivery"]["method"] == "ship"


def test_profile_bad_input(server: LiveServer, world: dict[str, Any]) -> None:
    token = join_buyer(server, world["public"]["id"], card=None)
    ok = {
        "name": "A",
        "delivery": {"method": "collect"},
        "payment": {"provider": "demo", "card_number": "4242424242424242"},
    }
    bad = [
        ({**ok, "name": ""}, "invalid"),
        ({**ok, "delivery": {"method": "drone"}}, "invalid"),
        ({**ok, "delivery": {"method": "ship", "address": {"city": "X"}}}, "invalid"),
        (
            {**ok, "payment": {"provider": "demo", "card_number": "4242424242424241"}},
            "payment_method_invalid",
        ),
        (
            {**ok, "payment": {"provider": "nope", "card_number": "4242424242424242"}},
            "payment_method_invalid",
        ),
        ({k: v for k, v in ok.items() if k != "payment"}, "invalid"),
    ]
    with server.client(token) as c:
        for body, code in bad:
            r = c.put("/api/me/profile", json=body)
            assert (r.status_code, r.json()["error"]) == (422, code), body
    with server.client(world["admin"]) as staff:
        r = staff.put("/api/me/profile", json=ok)
        assert (r.status_code, r.json()["error"]) == (403, "viewer_only")


def test_declined_payment_releases_stock(server: LiveServer, world: dict[str, Any]) -> None:
    pub, store, product = world["public"]["id"], world["store"]["id"], world["products"][1]
    set_stock(server, world["admin"], product, store, 1)
    token = join_buyer(server, pub, card=DECLINED)
    with server.client(token) as c:
        r = _buy(c, pub, [{"product_id": product["id"]}], key="d-1")
        assert (r.status_code, r.json()["error"]) == (402, "payment_declined")
        again = _buy(c, pub, [{"product_id": product["id"]}], key="d-1")
        assert (again.status_code, again.json()) == (402, r.json())
        assert c.get("/api/me/orders").json()["items"][0]["status"] == "declined"
    assert _stock(server, world["admin"], product["id"], store) == 1
    with server.client(join_buyer(server, pub)) as c:  # the unit is still there for the next buyer
        assert _buy(c, pub, [{"product_id": product["id"]}]).status_code == 201
        r = _buy(c, pub, [{"product_id": product["id"]}])
        assert (r.status_code, r.json()["error"]) == (409, "out_of_stock")
    assert _stock(server, world["admin"], product["id"], store) == 0


def test_refund_restores_stock_and_owner_only(server: LiveServer, world: dict[str, Any]) -> None:
    pub, store, product = world["public"]["id"], world["store"]["id"], world["products"][0]
    set_stock(server, world["admin"], product, store, 2)
    with server.client(join_buyer(server, pub)) as c:
        order = _buy(c, pub, [{"product_id": product["id"], "qty": 2}]).json()
    with server.client(join_buyer(server, pub)) as other:
        r = other.get(f"/api/orders/{order['order_id']}")
        assert (r.status_code, r.json()["error"]) == (404, "order_not_found")
        assert other.post(f"/api/orders/{order['order_id']}/refund").status_code == 403
    assert _stock(server, world["admin"], product["id"], store) == 0
    with server.client(world["admin"]) as admin:
        elsewhere = admin.post("/api/stores", json={"name": "Beijing SKP"}).json()
        far = admin.post(
            "/api/staff", json={"name": "Far", "role": "associate", "store_id": elsewhere["id"]}
        ).json()
    outsider = server.app.state.tokens.staff(far["id"], "associate", elsewhere["id"])
    with server.client(outsider) as c:
        r = c.post(f"/api/orders/{order['order_id']}/refund")
        assert (r.status_code, r.json()["error"]) == (403, "other_store")
        r = c.get(f"/api/orders/{order['order_id']}")
        assert (r.status_code, r.json()["error"]) == (403, "other_store")
    with server.client(world["admin"]) as staff:
        full = staff.get(f"/api/orders/{order['order_id']}").json()
        assert (
            full["store_id"] == store
            and full["session_kind"] == "public"
            and full["replay"] is False
        )
        r = staff.post(f"/api/orders/{order['order_id']}/refund")
        assert r.status_code == 200 and r.json()["status"] == "refunded"
        r = staff.post(f"/api/orders/{order['order_id']}/refund")
        assert (r.status_code, r.json()["error"]) == (409, "already_refunded")
        assert staff.post("/api/orders/or_nope/refund").status_code == 404
    assert _stock(server, world["admin"], product["id"], store) == 2


def test_bad_order_input(server: LiveServer, world: dict[str, Any]) -> None:
    pub, priv, store = world["public"]["id"], world["private"]["id"], world["store"]["id"]
    product = world["products"][0]
    set_stock(server, world["admin"], product, store, 50)
    with server.client(world["admin"]) as staff:
        stray = staff.post(
            "/api/products",
            json={
                "title": "Not in the show",
                "price": 100,
                "currency": "CNY",
                "variants": [{"size": "S"}, {"size": "M"}],
            },
        ).json()
    token = join_buyer(server, pub)
    pid = product["id"]
    cases = [
        ([{"product_id": "pr_unknown"}], 404, "product_not_found"),
        (
            [{"product_id": stray["id"], "variant_id": stray["variants"][0]["id"]}],
            404,
            "product_not_found",
        ),
        ([{"product_id": pid, "variant_id": stray["variants"][0]["id"]}], 422, "invalid_variant"),
        ([{"product_id": pid, "qty": 0}], 422, "invalid"),
        ([{"product_id": pid, "qty": -3}], 422, "invalid"),
        ([{"product_id": pid, "qty": 10**12}], 422, "invalid"),
        ([{"product_id": pid, "qty": "2"}], 422, "invalid"),
        ([{"product_id": pid, "qty": 60}, {"product_id": pid, "qty": 60}], 422, "invalid"),
        ([], 422, "invalid"),
        ([{"product_id": pid}] * 21, 422, "invalid"),
    ]
    with server.client(token) as c:
        for items, status, code in cases:
            r = _buy(c, pub, items)
            assert (r.status_code, r.json()["error"]) == (status, code), items
        r = c.post("/api/orders", json={"session_id": pub, "items": [{"product_id": pid}]})
        assert (r.status_code, r.json()["error"]) == (422, "idempotency_key_required")
        r = _buy(c, priv, [{"product_id": pid}])
        assert (r.status_code, r.json()["error"]) == (403, "wrong_session")
        # price and currency tampering is ignored: the server prices
        r = _buy(
            c,
            pub,
            [{"product_id": pid, "qty": 1, "price": 1, "unit_price": 1, "currency": "USD"}],
            total=1,
            currency="USD",
        )
        assert r.status_code == 201 and (r.json()["total"], r.json()["currency"]) == (
            product["price"],
            "CNY",
        )
        r = c.post(
            "/api/orders",
            content=b"[1,2",
            headers={"idempotency-key": "x", "content-type": "application/json"},
        )
        assert (r.status_code, r.json()["error"]) == (400, "invalid_json")
    with server.client() as anon:
        r = _buy(anon, pub, [{"product_id": pid}])
        assert r.status_code == 401
    assert _stock(server, world["admin"], pid, store) == 49


def test_cart_checkout(server: LiveServer, world: dict[str, Any]) -> None:
    pub, store = world["public"]["id"], world["store"]["id"]
    a, b = world["products"][0], world["products"][1]
    set_stock(server, world["admin"], a, store, 3)
    set_stock(server, world["admin"], b, store, 3)
    token = join_buyer(server, pub)
    with server.client(token) as c:
        assert c.get("/api/cart").json()["items"] == []
        c.post("/api/cart/items", json={"product_id": a["id"], "qty": 1})
        c.post("/api/cart/items", json={"product_id": a["id"], "qty": 1})
        cart = c.post("/api/cart/items", json={"product_id": b["id"], "qty": 1}).json()
        assert [i["qty"] for i in cart["items"]] == [2, 1]
        assert cart["total"] == 2 * a["price"] + b["price"]
        r = c.post("/api/cart/items", json={"product_id": "pr_unknown"})
        assert r.status_code == 404
        r = c.post(
            "/api/orders",
            json={"session_id": pub, "cart_id": cart["id"]},
            headers={"idempotency-key": "cart-1"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["total"] == cart["total"]
        again = c.post(
            "/api/orders",
            json={"session_id": pub, "cart_id": cart["id"]},
            headers={"idempotency-key": "cart-1"},
        )
        assert again.json() == r.json()
        assert c.get("/api/cart").json()["items"] == []  # a fresh cart after ordering
    with server.client(join_buyer(server, pub)) as thief:
        r = thief.post(
            "/api/orders",
            json={"session_id": pub, "cart_id": cart["id"]},
            headers={"idempotency-key": "steal"},
        )
        assert (r.status_code, r.json()["error"]) == (404, "cart_not_found")
    assert _stock(server, world["admin"], a["id"], store) == 1
    assert _stock(server, world["admin"], b["id"], store) == 2


def test_replay_orders_are_marked(server: LiveServer, world: dict[str, Any]) -> None:
    pub, store, product = world["public"], world["store"]["id"], world["products"][2]
    set_stock(server, world["admin"], product, store, 5)
    token = join_buyer(server, pub["id"])
    with server.client(pub["host_token"]) as host:
        host.post(f"/api/sessions/{pub['id']}/start")
        host.post(f"/api/sessions/{pub['id']}/end")
    with server.client(token) as c:
        order = _buy(c, pub["id"], [{"product_id": product["id"]}]).json()
        assert order["replay"] is True and order["pinned"] is False


def test_rate_limits_and_metrics(server: LiveServer, world: dict[str, Any]) -> None:
    pub, product = world["public"]["id"], world["products"][0]
    set_stock(server, world["admin"], product, world["store"]["id"], 1)
    token = join_buyer(server, pub)  # one profile save
    body = {
        "name": "A",
        "delivery": {"method": "collect"},
        "payment": {"provider": "demo", "card_number": "4242424242424242"},
    }
    with server.client(token) as c:
        codes = [c.put("/api/me/profile", json=body).status_code for _ in range(10)]
        assert codes[:9] == [200] * 9 and codes[9] == 429
        r = c.put("/api/me/profile", json=body)
        assert r.json()["error"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        assert _buy(c, pub, [{"product_id": product["id"]}], key="m-1").status_code == 201
        assert _buy(c, pub, [{"product_id": product["id"]}], key="m-1").status_code == 201
        assert _buy(c, pub, [{"product_id": product["id"]}], key="m-2").status_code == 409
    with server.client() as anon:
        text = anon.get("/metrics").text
    assert 'vitrine_checkout_answers_total{outcome="paid"} 1.0' in text
    assert 'vitrine_checkout_answers_total{outcome="replayed"} 1.0' in text
    assert 'vitrine_checkout_answers_total{outcome="out_of_stock"} 1.0' in text


async def test_old_idempotency_keys_are_forgotten(database_url: str) -> None:
    from types import SimpleNamespace

    from catalog.checkout import KEY_RETENTION_MS, Checkout
    from catalog.models import CheckoutRequest
    from catalog.signals import Signals
    from live.db import Database, now_ms

    db = Database(database_url)
    try:
        async with db.write() as s:
            s.add_all(
                [
                    CheckoutRequest(
                        viewer_id="vw_a",
                        key="old",
                        request_hash="h",
                        status_code=201,
                        response={},
                        created_at=now_ms() - KEY_RETENTION_MS - 1,
                    ),
                    CheckoutRequest(
                        viewer_id="vw_a",
                        key="new",
                        request_hash="h",
                        status_code=201,
                        response={},
                        created_at=now_ms(),
                    ),
                    CheckoutRequest(
                        viewer_id="vw_a",
                        key="in-flight",
                        request_hash="h",
                        created_at=now_ms() - KEY_RETENTION_MS - 1,
                    ),
                ]
            )
        checkout = Checkout(db, {}, Signals(SimpleNamespace(db=db)), hold_seconds=60)
        assert await checkout.prune_keys() == 1
        async with db.read() as s:
            assert await s.get(CheckoutRequest, ("vw_a", "new")) is not None
            assert await s.get(CheckoutRequest, ("vw_a", "in-flight")) is not None
    finally:
        await db.dispose()
