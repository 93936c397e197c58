"""Builds a small world through the public API, as a staff member would."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.server import LiveServer


def build_world(server: LiveServer, admin_token: str) -> dict[str, Any]:
    w: dict[str, Any] = {"admin": admin_token}
    with server.client(admin_token) as c:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            r = c.post(path, json=body)
            assert r.status_code == 201, (path, r.status_code, r.text)
            return r.json()  # type: ignore[no-any-return]

        w["store"] = post(
            "/api/stores",
            {
                "name": "Shanghai Xintiandi",
                "city": "Shanghai",
                "country": "CN",
                "blocked_words": ["spamword"],
            },
        )
        sid = w["store"]["id"]
        w["associate"] = post(
            "/api/staff", {"name": "Li Wei", "role": "associate", "store_id": sid}
        )
        w["associate2"] = post(
            "/api/staff", {"name": "Chen Jing", "role": "associate", "store_id": sid}
        )
        w["marketer"] = post("/api/staff", {"name": "Mara Keller", "role": "marketer"})
        w["products"] = [
            post(
                "/api/products",
                {
                    "title": f"Linen dress {i}",
                    "price": 39900 + i * 1000,
                    "currency": "CNY",
                    "store_id": sid,
                },
            )
            for i in range(3)
        ]
        w["clients"] = [
            post(
                "/api/clients",
                {
                    "store_id": sid,
                    "name": f"Client {i}",
                    "city": "Shanghai",
                    "associate_id": w["associate"]["id"],
                },
            )
            for i in range(4)
        ]
        common = {
            "store_id": sid,
            "host_id": w["associate"]["id"],
            "product_ids": [p["id"] for p in w["products"]],
        }
        w["public"] = post(
            "/api/sessions", {"title": "Spring collection", "kind": "public", **common}
        )
        w["private"] = post(
            "/api/sessions", {"title": "VIP preview", "kind": "private", "capacity": 3, **common}
        )
    return w


def set_stock(
    server: LiveServer,
    admin_token: str,
    product: dict[str, Any],
    store_id: str,
    quantity: int,
    variant_id: str | None = None,
) -> dict[str, Any]:
    """Set a store's stock of a product's variant (its only variant when ``variant_id`` is None)."""
    body: dict[str, Any] = {"store_id": store_id, "quantity": quantity}
    if variant_id is not None:
        body["variant_id"] = variant_id
    with server.client(admin_token) as c:
        r = c.put(f"/api/products/{product['id']}/stock", json=body)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


def join_buyer(
    server: LiveServer,
    session_id: str,
    *,
    invite: str | None = None,
    card: str | None = "4242424242424242",
    delivery: dict[str, Any] | None = None,
) -> str:
    """A new viewer of a session (a fresh browser) with a saved one-tap profile; returns its token."""
    with server.client() as browser:
        r = browser.post(
            f"/api/sessions/{session_id}/viewers", json={"invite": invite} if invite else {}
        )
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
    if card is not None:
        with server.client(token) as c:
            r = c.put(
                "/api/me/profile",
                json={
                    "name": "Wang Fang",
                    "email": "wf@example.com",
                    "delivery": delivery or {"method": "collect"},
                    "payment": {"provider": "demo", "card_number": card},
                },
            )
            assert r.status_code == 200, r.text
    return token


async def abuy(server: LiveServer, token: str, session_id: str, product_id: str) -> dict[str, Any]:
    """Buy one unit of ``product_id`` as the viewer behind ``token`` (a fresh idempotency key)."""
    async with httpx.AsyncClient(
        base_url=server.url, timeout=30, headers={"authorization": f"Bearer {token}"}
    ) as c:
        r = await c.post(
            "/api/orders",
            json={"session_id": session_id, "items": [{"product_id": product_id}]},
            headers={"idempotency-key": uuid.uuid4().hex},
        )
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]
