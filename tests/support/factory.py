"""Builds a small world through the public API, as a staff member would."""

from __future__ import annotations

from typing import Any

from tests.support.server import LiveServer


def build_world(server: LiveServer, admin_token: str) -> dict[str, Any]:
    w: dict[str, Any] = {"admin": admin_token}
    with server.client(admin_token) as c:
        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            r = c.post(path, json=body)
            assert r.status_code == 201, (path, r.status_code, r.text)
            return r.json()  # type: ignore[no-any-return]

        w["store"] = post("/api/stores", {"name": "Shanghai Xintiandi", "city": "Shanghai", "country": "CN",
                                          "blocked_words": ["spamword"]})
        sid = w["store"]["id"]
        w["associate"] = post("/api/staff", {"name": "Li Wei", "role": "associate", "store_id": sid})
        w["associate2"] = post("/api/staff", {"name": "Chen Jing", "role": "associate", "store_id": sid})
        w["marketer"] = post("/api/staff", {"name": "Mara Keller", "role": "marketer"})
        w["products"] = [post("/api/products", {"title": f"Linen dress {i}", "price": 39900 + i * 1000,
                                                "currency": "CNY", "store_id": sid}) for i in range(3)]
        w["clients"] = [post("/api/clients", {"store_id": sid, "name": f"Client {i}", "city": "Shanghai",
                                              "associate_id": w["associate"]["id"]}) for i in range(4)]
        common = {"store_id": sid, "host_id": w["associate"]["id"],
                  "product_ids": [p["id"] for p in w["products"]]}
        w["public"] = post("/api/sessions", {"title": "Spring collection", "kind": "public", **common})
        w["private"] = post("/api/sessions", {"title": "VIP preview", "kind": "private", "capacity": 3, **common})
    return w
