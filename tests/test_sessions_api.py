"""Sessions, invites and joining over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.support.server import LiveServer


def test_create_and_show_session(server: LiveServer, world: dict[str, Any]) -> None:
    pub = world["public"]
    assert pub["status"] == "scheduled" and pub["kind"] == "public"
    assert pub["watch_url"].endswith(f"/watch/{pub['id']}") and pub["host_token"]
    with server.client() as anon:
        full = anon.get(f"/api/sessions/{pub['id']}").json()
        assert full["product_ids"] == [p["id"] for p in world["products"]]
        priv = anon.get(f"/api/sessions/{world['private']['id']}").json()
        assert set(priv) == {"id", "kind", "title", "status", "scheduled_at", "watch_url"}
        listed = anon.get("/api/sessions").json()
        assert listed["total"] == 2


def test_private_requires_invite(server: LiveServer, world: dict[str, Any]) -> None:
    priv, pub = world["private"]["id"], world["public"]["id"]
    with server.client() as anon:
        r = anon.post(f"/api/sessions/{priv}/viewers", json={})
        assert (r.status_code, r.json()["error"]) == (403, "invite_required")
        r = anon.post(f"/api/sessions/{priv}/viewers", json={"invite": "0" * 32})
        assert (r.status_code, r.json()["error"]) == (403, "invite_invalid")
    with server.client(world["admin"]) as staff:
        invites = staff.post(
            f"/api/sessions/{priv}/invites",
            json={"client_ids": [c["id"] for c in world["clients"]]},
        ).json()
        assert len(invites) == 4 and all(i["url"].endswith(i["code"]) for i in invites)
        again = staff.post(
            f"/api/sessions/{priv}/invites", json={"client_ids": [world["clients"][0]["id"]]}
        )
        assert again.json()[0]["code"] == invites[0]["code"]
        # an invite of another session is not valid here
        r = staff.post(
            f"/api/sessions/{pub}/invites", json={"client_ids": [world["clients"][0]["id"]]}
        )
        assert r.status_code == 409
    with server.client() as phone, server.client() as laptop:
        a = phone.post(f"/api/sessions/{priv}/viewers", json={"invite": invites[0]["code"]})
        b = laptop.post(f"/api/sessions/{priv}/viewers", json={"invite": invites[0]["code"]})
        assert a.status_code == b.status_code == 201
        assert a.json()["viewer_id"] == b.json()["viewer_id"]  # one client, two devices
        r = phone.post(f"/api/sessions/{pub}/viewers", json={"invite": invites[0]["code"]})
        assert (r.status_code, r.json()["error"]) == (403, "invite_invalid")
    with server.client() as c:
        for inv in invites[1:3]:
            assert (
                c.post(f"/api/sessions/{priv}/viewers", json={"invite": inv["code"]}).status_code
                == 201
            )
        r = c.post(f"/api/sessions/{priv}/viewers", json={"invite": invites[3]["code"]})
        assert (r.status_code, r.json()["error"]) == (403, "session_full")
        # a returning viewer is still admitted when the session is full
        assert (
            c.post(f"/api/sessions/{priv}/viewers", json={"invite": invites[0]["code"]}).status_code
            == 201
        )


def test_anonymous_viewer_keeps_identity_by_cookie(
    server: LiveServer, world: dict[str, Any]
) -> None:
    pub = world["public"]["id"]
    with server.client() as browser:
        first = browser.post(f"/api/sessions/{pub}/viewers", json={"name": "Ana"}).json()
        second = browser.post(f"/api/sessions/{pub}/viewers", json={}).json()
        assert first["viewer_id"] == second["viewer_id"]
    with server.client() as other:
        assert (
            other.post(f"/api/sessions/{pub}/viewers", json={}).json()["viewer_id"]
            != first["viewer_id"]
        )


def test_start_and_end(server: LiveServer, world: dict[str, Any]) -> None:
    pub = world["public"]
    with server.client(pub["host_token"]) as host:
        assert host.post(f"/api/sessions/{pub['id']}/start").json()["status"] == "live"
        assert host.post(f"/api/sessions/{pub['id']}/end").json()["status"] == "ended"
        r = host.post(f"/api/sessions/{pub['id']}/start")
        assert (r.status_code, r.json()["error"]) == (409, "session_ended")
    with server.client(world["private"]["host_token"]) as other_host:
        r = other_host.post(f"/api/sessions/{pub['id']}/start")
        assert (r.status_code, r.json()["error"]) == (403, "wrong_session")


def test_bad_input_is_a_clear_4xx(server: LiveServer, world: dict[str, Any]) -> None:
    with server.client(world["admin"]) as c:
        r = c.post(
            "/api/sessions", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert (r.status_code, r.json()["error"]) == (400, "invalid_json")
        r = c.post(
            "/api/sessions", json={"title": "x", "kind": "secret", "store_id": "a", "host_id": "b"}
        )
        assert r.status_code == 422 and "kind" in r.json()["detail"]
        r = c.post(
            "/api/sessions",
            json={
                "title": "x",
                "kind": "public",
                "store_id": "nope",
                "host_id": world["associate"]["id"],
            },
        )
        assert (r.status_code, r.json()["error"]) == (404, "store_not_found")
        r = c.post(
            "/api/sessions",
            json={
                "title": "x",
                "kind": "public",
                "store_id": world["store"]["id"],
                "host_id": world["associate"]["id"],
                "product_ids": ["pr_nope"],
            },
        )
        assert (r.status_code, r.json()["error"]) == (404, "product_not_found")
        r = c.post(
            "/api/stores", content=b"x" * 70_000, headers={"content-type": "application/json"}
        )
        assert (r.status_code, r.json()["error"]) == (413, "payload_too_large")
        assert c.get("/api/sessions/se_nope").status_code == 404
    with server.client("v1.forged.token") as forged:
        r = forged.post("/api/stores", json={"name": "x"})
        assert (r.status_code, r.json()["error"]) == (401, "invalid_token")
    with server.client() as anon:
        assert anon.post("/api/stores", json={"name": "x"}).status_code == 401
        assert anon.get("/api/nothing-here").json()["error"] == "not_found"
