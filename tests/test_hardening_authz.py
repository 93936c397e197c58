"""Hardening: an associate of one store cannot act on another store's sessions or clients."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.room import close_all, join, open_room, viewer
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
    # the session's own store staff still may: the client's own associate invites them
    owner = server.app.state.tokens.staff(
        world["associate"]["id"], "associate", world["store"]["id"]
    )
    with server.client(owner) as c:
        r = c.post(
            f"/api/sessions/{priv}/invites", json={"client_ids": [world["clients"][0]["id"]]}
        )
        assert r.status_code == 201, r.text
    own = server.app.state.tokens.staff(
        world["associate2"]["id"], "associate", world["store"]["id"]
    )
    with server.client(own) as c:
        # a colleague invites and moderates; starting and ending is the host's (or a manager's)
        r = c.post(f"/api/sessions/{pub}/start")
        assert (r.status_code, r.json()["error"]) == (403, "not_the_host")
    with server.client(world["public"]["host_token"]) as c:
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


def _store_staff(server: LiveServer, world: dict[str, Any], role: str, store_id: str) -> str:
    with server.client(world["admin"]) as c:
        r = c.post("/api/staff", json={"name": f"A {role}", "role": role, "store_id": store_id})
        assert r.status_code == 201, r.text
    return server.app.state.tokens.staff(r.json()["id"], role, store_id)  # type: ignore[no-any-return]


def test_deals_in_another_stores_session_are_refused(
    server: LiveServer, world: dict[str, Any]
) -> None:
    """The finding: an associate of store A started and ended deals in store B's private
    session (201, price 0, quantity 1000)."""
    token = _other_associate(server, world)
    priv, product = world["private"]["id"], world["products"][0]["id"]
    with server.client(world["private"]["host_token"]) as host:
        assert host.post(f"/api/sessions/{priv}/start").status_code == 200
    with server.client(token) as c:
        r = c.post(
            f"/api/sessions/{priv}/deals",
            json={"price": 0, "quantity": 1000, "duration_s": 60, "product_id": product},
        )
        _forbidden(r)
        _forbidden(c.get(f"/api/sessions/{priv}/deals"))
    with server.client(world["private"]["host_token"]) as host:
        r = host.post(
            f"/api/sessions/{priv}/deals",
            json={"price": 100, "quantity": 5, "duration_s": 60, "product_id": product},
        )
        assert r.status_code == 201, r.text
        deal_id = r.json()["id"]
    with server.client(token) as c:
        _forbidden(c.post(f"/api/sessions/{priv}/deals/{deal_id}/end"))
    with server.client(world["admin"]) as admin:
        deals = admin.get(f"/api/sessions/{priv}/deals").json()
        items = deals["items"] if isinstance(deals, dict) else deals
        assert [(d["price"], d["quantity"]) for d in items] == [(100, 5)]


async def test_staff_of_another_store_are_viewers_in_a_room(
    server: LiveServer, world: dict[str, Any]
) -> None:
    """The finding: any staff token opened any room as `staff` and could chat, pin and ban."""
    token = _other_associate(server, world)
    pub, priv = world["public"]["id"], world["private"]["id"]
    v = await viewer(server, pub, "Mei")
    stranger = await open_room(server, pub, token)
    try:
        assert stranger.hello["role"] == "viewer"
        for cmd, fields in (
            ("pin", {"product_id": world["products"][0]["id"]}),
            ("ban", {"viewer_id": v.hello["viewer_id"]}),
            ("mute", {"viewer_id": v.hello["viewer_id"], "minutes": 5}),
        ):
            await stranger.send(cmd, ref=cmd, **fields)
            err = await stranger.wait(lambda e, c=cmd: e.get("ref") == c, f"{cmd} refused")
            assert (err["type"], err["error"]) == ("error", "host_only")
        await stranger.send("chat", text="hello from another store", ref="c")
        err = await stranger.wait(lambda e: e.get("ref") == "c", "chat refused")
        assert (err["type"], err["error"]) == ("error", "join_required")
        # the viewer is still there and was not banned, and nobody saw a chat
        await v.send("chat", text="still here", ref="v")
        await v.wait_type("chat", text="still here")
        assert not [e for e in v.events if e.get("text") == "hello from another store"]
    finally:
        await close_all(v, stranger)
    locked = await open_room(server, priv, token)
    try:
        assert await locked.closed() == 4403
    finally:
        await close_all(locked)
    # the session's own store's staff moderate there
    own = await open_room(
        server, pub, _store_staff(server, world, "associate", world["store"]["id"])
    )
    try:
        assert own.hello["role"] == "staff"
    finally:
        await close_all(own)


def test_reports_follow_the_store_scope(server: LiveServer, world: dict[str, Any]) -> None:
    """The finding: associates read every other store's reports."""
    token = _other_associate(server, world)
    sid, store = world["public"]["id"], world["store"]["id"]
    with server.client(token) as c:
        _forbidden(c.get(f"/api/reports/sessions/{sid}"))
        _forbidden(c.get("/api/reports/sessions", params={"store_id": store}))
        _forbidden(c.get("/api/reports/compare", params={"store_id": store}))
        assert c.get("/api/reports/sessions").json()["items"] == []
        board = c.get("/api/reports/associates").json()["items"]
        assert all(r["store_id"] == world["other_store"]["id"] for r in board)
    own = server.app.state.tokens.staff(world["associate"]["id"], "associate", store)
    with server.client(own) as c:
        items = c.get("/api/reports/sessions").json()["items"]
        assert {r["id"] for r in items} >= {sid} and {r["store_id"] for r in items} == {store}
    with server.client(world["admin"]) as c:
        assert c.get(f"/api/reports/sessions/{sid}").status_code == 200


def test_a_manager_runs_their_own_store_only(server: LiveServer, world: dict[str, Any]) -> None:
    store = world["store"]["id"]
    mgr = _store_staff(server, world, "manager", store)
    pub = world["public"]["id"]
    with server.client(mgr) as c:
        assert c.post(f"/api/sessions/{pub}/start").status_code == 200
        assert c.get("/api/clients").json()["total"] == len(world["clients"])
        r = c.post(
            "/api/sessions",
            json={
                "title": "Manager's pick",
                "kind": "public",
                "store_id": store,
                "host_id": world["associate"]["id"],
            },
        )
        assert r.status_code == 201, r.text
        r = c.post("/api/products", json={"title": "x", "price": 1, "currency": "CNY"})
        assert (r.status_code, r.json()["error"]) == (403, "role_required")
    other = _other_associate(server, world)
    other_store = world["other_store"]["id"]
    other_mgr = _store_staff(server, world, "manager", other_store)
    with server.client(other_mgr) as c:
        _forbidden(c.post(f"/api/sessions/{pub}/end"))
        _forbidden(c.get(f"/api/clients/{world['clients'][0]['id']}"))
    assert other


def test_every_session_route_refuses_strangers(server: LiveServer, world: dict[str, Any]) -> None:
    """A sweep: each staff-only session route, as another store's associate, a viewer of another
    session and nobody."""
    stranger = _other_associate(server, world)
    pub, priv = world["public"]["id"], world["private"]["id"]
    other_viewer = asyncio.run(join(server, pub, "Nosy"))["token"]
    calls = [
        ("POST", f"/api/sessions/{priv}/start", None),
        ("POST", f"/api/sessions/{priv}/end", None),
        ("POST", f"/api/sessions/{priv}/invites", {"client_ids": [world["clients"][0]["id"]]}),
        ("GET", f"/api/sessions/{priv}/deals", None),
        ("POST", f"/api/sessions/{priv}/deals", {"price": 0, "quantity": 1}),
        ("GET", f"/api/sessions/{priv}/live-counters", None),
        ("GET", f"/api/sessions/{priv}/stream", None),
        ("GET", f"/api/reports/sessions/{priv}", None),
        ("GET", f"/api/sessions/{priv}/products", None),
    ]
    for token, statuses in ((stranger, {403}), (other_viewer, {403}), (None, {401})):
        with server.client(token) as c:
            for method, path, body in calls:
                r = c.request(method, path, json=body)
                assert r.status_code in statuses, (token is None, method, path, r.text)
                assert set(r.json()) == {"error", "detail"}


def test_invites_go_to_clients_the_inviter_may_act_for(
    server: LiveServer, world: dict[str, Any]
) -> None:
    """An associate invited another store's client into their own private session, joined with
    the code and read her saved profile; a colleague took the credit for another's client."""
    stranger = _other_associate(server, world)
    other_store = world["other_store"]["id"]
    stranger_id = server.app.state.tokens.read(stranger).staff_id
    victim = world["clients"][0]["id"]  # a client of the first store, of world["associate"]
    with server.client(stranger) as c:
        r = c.post(
            "/api/sessions",
            json={
                "title": "Mine",
                "kind": "private",
                "store_id": other_store,
                "host_id": stranger_id,
            },
        )
        assert r.status_code == 201, r.text
        own_session = r.json()
        r = c.post(f"/api/sessions/{own_session['id']}/invites", json={"client_ids": [victim]})
        _forbidden(r)
    with server.client(own_session["host_token"]) as host:  # nor with the session's host token
        r = host.post(f"/api/sessions/{own_session['id']}/invites", json={"client_ids": [victim]})
        assert (r.status_code, r.json()["error"]) == (403, "not_your_client")
    priv = world["private"]["id"]
    colleague = server.app.state.tokens.staff(
        world["associate2"]["id"], "associate", world["store"]["id"]
    )
    with server.client(colleague) as c:
        r = c.post(f"/api/sessions/{priv}/invites", json={"client_ids": [victim]})
        assert (r.status_code, r.json()["error"]) == (403, "not_your_client")
    with server.client(world["admin"]) as admin:
        r = admin.post(
            f"/api/sessions/{priv}/invites",
            json={"client_ids": [victim], "associate_id": stranger_id},
        )
        assert (r.status_code, r.json()["error"]) == (422, "invalid")
        r = admin.post(f"/api/sessions/{priv}/invites", json={"client_ids": [victim]})
        assert r.status_code == 201, r.text
    with server.client(world["private"]["host_token"]) as host:  # the owner's host token may
        r = host.post(f"/api/sessions/{priv}/invites", json={"client_ids": [victim]})
        assert r.status_code == 201, r.text


def test_list_filters_do_not_reveal_a_private_sessions_store_or_host(
    server: LiveServer, world: dict[str, Any]
) -> None:
    priv, store, host = world["private"]["id"], world["store"]["id"], world["associate"]["id"]
    for params in ({"kind": "private", "store_id": store}, {"host_id": host}):
        with server.client() as anon:
            ids = [s["id"] for s in anon.get("/api/sessions", params=params).json()["items"]]
            assert priv not in ids, params
        stranger = _other_associate(server, world)
        with server.client(stranger) as c:
            ids = [s["id"] for s in c.get("/api/sessions", params=params).json()["items"]]
            assert priv not in ids, params
        with server.client(world["admin"]) as c:
            ids = [s["id"] for s in c.get("/api/sessions", params=params).json()["items"]]
            assert priv in ids, params
    with server.client() as anon:  # unfiltered, the private session shows as a teaser
        items = {s["id"]: s for s in anon.get("/api/sessions").json()["items"]}
        assert priv in items and "store_id" not in items[priv]
