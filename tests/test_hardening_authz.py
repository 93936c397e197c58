"""Hardening: an associate of one store cannot act on another store's sessions or clients."""

from __future__ import annotations

from typing import Any

from tests.support.server import LiveServer


def _other_associate(server: LiveServer, world: dict[str, Any]) -> str:
    """A token for an associate of a second store."""
    with server.client(world["admin"]) as c:
        store = c.post(
            "/api/stores", json={"name": "Milano Brera", "city": "Milano", "country": "IT"}
        ).json()
        staff = c.post(
            "/api/staff", json={"name": "Giulia", "role": "associate", "store_id": store["id"]}
        ).json()
    world["other_store"] = store
    return server.app.state.tokens.staff(staff["id"], "associate", store["id"])  # type: ignore[no-any-return]


def _forbidden(r: Any) -> None:
    assert r.status_code == 403, (r.status_code, r.text)
    assert r.json()["error"] == "other_store"


def test_associate_cannot_act_on_another_stores_sessions(
    server: LiveServer, world: dict[str, Any]
) -> None:
    token = _other_associate(server, world)
    pub, priv = world["public"]["id"], world["private"]["id"]
    with server.client(token) as c:
        _forbidden(c.post(f"/api/sessions/{pub}/start"))
        _forbidden(c.post(f"/api/sessions/{pub}/end"))
        _forbidden(
            c.post(
                f"/api/sessions/{priv}/invites", json={"client_ids": [world["clients"][0]["id"]]}
            )
        )
        _forbidden(
            c.post("/whip/" + pub, content=b"v=0\r\n", headers={"content-type": "application/sdp"})
        )
        _forbidden(c.get(f"/api/sessions/{pub}/stream"))
        _forbidden(
            c.post(
                "/api/sessions",
                json={
                    "title": "x",
                    "kind": "public",
                    "store_id": world["store"]["id"],
                    "host_id": server.app.state.tokens.read(token).staff_id,
                },
            )
        )
    with server.client(world["admin"]) as admin:
        assert admin.get(f"/api/sessions/{pub}").json()["status"] == "scheduled"
    # the session's own store staff still may
    own = server.app.state.tokens.staff(
        world["associate2"]["id"], "associate", world["store"]["id"]
    )
    with server.client(own) as c:
        r = c.post(
            f"/api/sessions/{priv}/invites", json={"client_ids": [world["clients"][0]["id"]]}
        )
        assert r.status_code == 201, r.text
        assert c.post(f"/api/sessions/{pub}/start").status_code == 200


def test_associate_sees_only_their_own_stores_clients(
    server: LiveServer, world: dict[str, Any]
) -> None:
    token = _other_associate(server, world)
    with server.client(token) as c:
        _forbidden(c.get(f"/api/clients/{world['clients'][0]['id']}"))
        _forbidden(c.get("/api/clients", params={"store_id": world["store"]["id"]}))
        assert c.get("/api/clients").json() == {"items": [], "total": 0}
        _forbidden(c.post("/api/clients", json={"store_id": world["store"]["id"], "name": "Mole"}))
        r = c.post("/api/clients", json={"store_id": world["other_store"]["id"], "name": "Anna"})
        assert r.status_code == 201, r.text
        assert [x["name"] for x in c.get("/api/clients").json()["items"]] == ["Anna"]
