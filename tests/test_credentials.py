"""Sessions and credentials: CSRF from another origin of the same site, no credentials in URLs
or logs, and revocation (sign-out, a staff member's sessions, a session's host token) on every
process."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from live.config import Settings
from tests.support.browser import chromium
from tests.support.factory import build_world, join_buyer, set_stock
from tests.support.room import open_room
from tests.support.server import (
    LiveServer,
    free_port,
    thread_server,
    wait_for,
)

# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def web(sqlite_url: str, make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    with thread_server(make_settings(sqlite_url)) as srv:
        yield srv


@pytest.fixture
def w(web: LiveServer, admin: str) -> dict[str, Any]:
    return build_world(web, admin)


def buy(server: LiveServer, session_id: str, product_id: str) -> dict[str, Any]:
    with server.client(join_buyer(server, session_id)) as c:
        r = c.post(
            "/api/orders",
            json={"session_id": session_id, "items": [{"product_id": product_id}]},
            headers={"idempotency-key": os.urandom(8).hex()},
        )
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


@contextmanager
def other_origin(pages: dict[str, str]) -> Iterator[str]:
    """A plain web server on another port of 127.0.0.1 (same site, another origin)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.split("?")[0], "").encode()
            self.send_response(200 if body else 404)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def sign_in(page: Any, server: LiveServer, token: str) -> None:
    page.goto(f"{server.url}/login?next=/dashboard")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/dashboard")


# -- item 5: CSRF ----------------------------------------------------------------------------------


def test_pages_of_another_origin_cannot_use_the_staff_cookie(
    web: LiveServer, w: dict[str, Any], admin: str
) -> None:
    """A page on another port of the same host (same site, so the SameSite=Strict cookie goes
    along) posts a refund form and fetches a price-0 deal while an admin is signed in: both are
    refused with 403 JSON and nothing changes. The same requests from the app's own pages work."""
    pub, store, product = w["public"]["id"], w["store"]["id"], w["products"][0]
    set_stock(web, admin, product, store, 3)
    order = buy(web, pub, product["id"])
    refund_url = f"{web.url}/api/orders/{order['order_id']}/refund"
    deals_url = f"{web.url}/api/sessions/{pub}/deals"
    deal = {"product_id": product["id"], "price": 0, "quantity": 1000, "duration_s": 600}
    form = (
        f'<form method="post" action="{refund_url}"><input name="reason" value="x">'
        '<button type="submit">win a prize</button></form>'
    )
    with other_origin({"/form.html": form, "/blank.html": "<p>hello</p>"}) as evil, chromium() as b:
        ctx = b.new_context()
        seen: list[tuple[str, str, int]] = []
        ctx.on(
            "response",
            lambda r: (
                seen.append((r.request.method, r.url, r.status)) if "/api/" in r.url else None
            ),
        )
        page = ctx.new_page()
        sign_in(page, web, admin)

        attacker = ctx.new_page()
        attacker.goto(f"{evil}/blank.html")
        # no-cors with a Blob body: no preflight and no Content-Type, the classic JSON CSRF
        attacker.evaluate(
            """async ([url, body]) => {
                await fetch(url, {method: "POST", mode: "no-cors", credentials: "include",
                                  body: new Blob([JSON.stringify(body)])});
            }""",
            [deals_url, deal],
        )
        attacker.goto(f"{evil}/form.html")
        with attacker.expect_navigation():
            attacker.click("button")
        refused = json.loads(attacker.inner_text("body"))
        assert refused["error"] == "csrf" and refused["detail"], refused
        wait_for(lambda: len(seen) >= 2, 10, what="both cross-origin responses")
        assert ("POST", deals_url, 403) in seen, seen
        assert ("POST", refund_url, 403) in seen, seen

        with web.client(admin) as c:  # nothing was stored
            assert c.get(f"/api/orders/{order['order_id']}").json()["status"] == "paid"
            assert c.get(f"/api/sessions/{pub}/deals").json() == []

        # the app's own pages, with the same cookie, still do both
        created = page.evaluate(
            """async ([url, body]) => {
                const r = await fetch(url, {method: "POST", credentials: "same-origin",
                    headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
                return [r.status, await r.json()];
            }""",
            ["/api/sessions/" + pub + "/deals", {**deal, "price": 100, "quantity": 2}],
        )
        assert created[0] == 201, created
        page.evaluate(
            """(url) => {
                const f = document.createElement("form");
                f.method = "post"; f.action = url;
                document.body.append(f); f.submit();
            }""",
            refund_url,
        )
        page.wait_for_url(refund_url)
        assert json.loads(page.inner_text("body"))["status"] == "refunded"
        ctx.close()


def test_cookie_requests_without_origin_are_refused_and_bearer_is_unaffected(
    web: LiveServer, w: dict[str, Any], admin: str
) -> None:
    pub, product = w["public"]["id"], w["products"][0]
    deal = {"product_id": product["id"], "price": 100, "quantity": 1, "duration_s": 600}
    with httpx.Client(base_url=web.url, timeout=30, follow_redirects=False) as c:
        r = c.post("/login", data={"token": admin}, headers={"origin": web.url})
        assert r.status_code == 303
        for headers in (
            {},  # a forged request with neither Origin, Sec-Fetch-Site nor Referer
            {"origin": "null"},
            {"origin": "http://127.0.0.1:1"},
            {"sec-fetch-site": "same-site"},
            {"sec-fetch-site": "cross-site"},
            {"referer": "http://localhost.evil/x"},
        ):
            r = c.post(f"/api/sessions/{pub}/deals", json=deal, headers=headers)
            assert (r.status_code, r.json()["error"]) == (403, "csrf"), (headers, r.text)
        assert c.get(f"/api/sessions/{pub}/deals").status_code == 200  # reads are not state changes
        for headers in (
            {"origin": web.url},
            {"sec-fetch-site": "same-origin"},
            {"referer": web.url + "/dashboard"},
        ):
            r = c.post(f"/api/sessions/{pub}/deals", json=deal, headers=headers)
            assert r.status_code in (201, 409), (headers, r.text)  # 409: one deal at a time
    with web.client(admin) as c:  # Bearer: no cookie involved, no Origin needed
        r = c.post(
            "/api/stores", json={"name": "Bearer store"}, headers={"origin": "http://evil.test"}
        )
        assert r.status_code == 201, r.text


# -- item 7: revocation ----------------------------------------------------------------------------


def test_logout_ends_the_sign_in_on_the_server(
    web: LiveServer, w: dict[str, Any], admin: str
) -> None:
    with httpx.Client(base_url=web.url, timeout=30, follow_redirects=False) as c:
        assert (
            c.post("/login", data={"token": admin}, headers={"origin": web.url}).status_code == 303
        )
        captured = c.cookies["vitrine_staff"]
        assert admin not in captured  # the cookie holds a token of this sign-in, not the typed one
        assert c.get("/dashboard").status_code == 200
        assert c.post("/logout", headers={"origin": web.url}).status_code == 303
    with httpx.Client(
        base_url=web.url, timeout=30, follow_redirects=False, cookies={"vitrine_staff": captured}
    ) as thief:
        assert thief.get("/dashboard").status_code == 303  # sent to sign in
        r = thief.get("/api/stores")
        assert (r.status_code, r.json()["error"]) == (401, "token_revoked")
    with web.client(admin) as c:  # the credential typed in still signs in
        assert c.get("/api/stores").status_code == 200


async def _closed_with(server: LiveServer, session_id: str, token: str) -> int:
    room = await open_room(server, session_id, token)
    code = await room.closed()
    await room.close()
    return code


async def test_revoked_staff_and_rotated_host_tokens_fail_everywhere(
    server: LiveServer, world: dict[str, Any], admin: str
) -> None:
    sid = world["public"]["id"]
    tokens = server.app.state.tokens
    assoc = world["associate"]
    staff_token = tokens.staff(assoc["id"], "associate", world["store"]["id"])
    old_host = world["public"]["host_token"]
    staff_room = await open_room(server, sid, staff_token)
    host_room = await open_room(server, sid, old_host)
    async with server.aclient(admin) as a, server.aclient(staff_token) as s:
        assert staff_room.hello["role"] == "staff" and host_room.hello["role"] == "host"
        assert (await s.get(f"/api/sessions/{sid}")).status_code == 200

        r = await a.post(f"/api/sessions/{sid}/host-token")
        assert r.status_code == 200, r.text
        new_host = r.json()["host_token"]
        assert new_host != old_host
        assert await host_room.closed() == 4401  # the open socket of the old token
        async with server.aclient(old_host) as h_old, server.aclient(new_host) as h_new:
            r = await h_old.get(f"/api/sessions/{sid}/stream")
            assert (r.status_code, r.json()["error"]) == (401, "token_revoked")
            r = await h_old.post(
                f"/whip/{sid}", content=b"v=0\r\n", headers={"content-type": "application/sdp"}
            )
            assert (r.status_code, r.json()["error"]) == (401, "token_revoked")
            assert (await h_new.get(f"/api/sessions/{sid}/stream")).status_code == 200
        assert await _closed_with(server, sid, old_host) == 4401
        fresh = await open_room(server, sid, new_host)
        assert fresh.hello["role"] == "host"

        r = await a.post(f"/api/staff/{assoc['id']}/revoke")
        assert r.status_code == 200, r.text
        assert await staff_room.closed() == 4401
        assert await fresh.closed() == 4401  # the host tokens of the staff member go too
        r = await s.get(f"/api/sessions/{sid}")
        assert (r.status_code, r.json()["error"]) == (401, "token_revoked")
        r = await s.post(
            f"/whep/{sid}", content=b"v=0\r\n", headers={"content-type": "application/sdp"}
        )
        assert (r.status_code, r.json()["error"]) == (401, "token_revoked")
        assert await _closed_with(server, sid, staff_token) == 4401

        again = tokens.staff(assoc["id"], "associate", world["store"]["id"])  # signed in anew
        async with server.aclient(again) as s2:
            assert (await s2.get(f"/api/sessions/{sid}")).status_code == 200
        r = await a.post("/api/staff/sf_nobody/revoke")
        assert r.status_code == 404
        marketer = tokens.staff(world["marketer"]["id"], "marketer")
        async with server.aclient(marketer) as m:  # only admins revoke staff
            assert (await m.post(f"/api/staff/{assoc['id']}/revoke")).status_code == 403
    await fresh.close()
    await staff_room.close()
    await host_room.close()
