"""Sessions and credentials: CSRF from another origin of the same site, no credentials in URLs
or logs, and revocation (sign-out, a staff member's sessions, a session's host token) on every
process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from live.auth import Tokens
from tests.conftest import ADMIN_TOKEN, SECRET
from tests.support.browser import chromium
from tests.support.factory import build_world, join_buyer, set_stock
from tests.support.room import open_room
from tests.support.server import (
    LiveServer,
    await_for,
    free_port,
    spawned_server,
    wait_for,
)

# -- helpers -------------------------------------------------------------------------------------


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
            # credentials a browser attaches by itself: the cookie still authenticates
            {"origin": "http://127.0.0.1:1", "authorization": "Basic dXNlcjpwYXNz"},
            {"origin": "http://127.0.0.1:1", "authorization": "Negotiate YII="},
        ):
            r = c.post(f"/api/sessions/{pub}/deals", json=deal, headers=headers)
            assert (r.status_code, r.json()["error"]) == (403, "csrf"), (headers, r.text)
        assert c.get(f"/api/sessions/{pub}/deals").status_code == 200  # reads are not state changes
        for headers in (
            {"origin": web.url},
            {"sec-fetch-site": "same-origin"},
            {"referer": web.url + "/dashboard"},
            {  # behind a proxy that rewrote Host
                "origin": "https://shop.example",
                "x-forwarded-host": "shop.example",
                "x-forwarded-proto": "https",
            },
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


async def test_a_revoked_host_token_stops_its_publication(
    web: LiveServer, w: dict[str, Any], admin: str
) -> None:
    """A host publishing over WHIP with a token that gets rotated away is stopped, as a WHIP
    DELETE would stop it; the new token publishes again."""
    from tests.support.rtc import Host as Publisher

    sid, token = w["public"]["id"], w["public"]["host_token"]
    relay = web.app.state.relay
    first, second = Publisher("vp8", audio=False), Publisher("vp8", audio=False)
    try:
        async with web.aclient() as http, web.aclient(admin) as a:
            await first.publish(http, sid, token)
            assert sid in relay.publishers
            r = await a.post(f"/api/sessions/{sid}/host-token")
            assert r.status_code == 200, r.text
            await await_for(lambda: sid not in relay.publishers, 5, what="publication stopped")
            await second.publish(http, sid, r.json()["host_token"])
            assert sid in relay.publishers
    finally:
        for p in (first, second):
            if p.pc is not None:
                await p.pc.close()


# -- item 6: no credentials in URLs or logs --------------------------------------------------------


@contextmanager
def logged_server(env: dict[str, str], log_path: Path) -> Iterator[LiveServer]:
    """A server process as deployed but with uvicorn's own access log on, stdout and stderr
    both written to ``log_path``."""
    with spawned_server(env, access_log=True, log_path=log_path, stdout=True) as spawned:
        yield spawned.server


def _env(database_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "VITRINE_SECRET_KEY": SECRET,
        "VITRINE_ADMIN_TOKEN": ADMIN_TOKEN,
        "VITRINE_DATA_DIR": str(tmp_path / "data"),
        "VITRINE_RTC_LOOPBACK": "1",
        **extra,
    }


def _cookie_token(value: str) -> str:
    """The token a signed cookie wraps (``v1.<payload>.<mac>``, payload ``{"v": token}``)."""
    import base64

    body = value.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["v"])


def test_no_token_issued_in_a_run_reaches_any_log_line(sqlite_url: str, tmp_path: Path) -> None:
    """A real server process at INFO with uvicorn's access log on: sign in, the studio link, the
    room from the studio and watch pages and from clients, chat, WHEP, a host-token rotation, old
    clients still putting ``?token=`` in URLs. No token issued during the run is in any line."""
    log_path = tmp_path / "server.log"
    issued: set[str] = {ADMIN_TOKEN}
    with logged_server(_env(sqlite_url, tmp_path, VITRINE_LOG_LEVEL="INFO"), log_path) as srv:
        w = build_world(srv, ADMIN_TOKEN)
        pub = w["public"]["id"]
        issued |= {w["public"]["host_token"], w["private"]["host_token"]}
        local = Tokens(SECRET)
        staff = local.staff(w["associate"]["id"], "associate", w["store"]["id"])
        issued.add(staff)
        with srv.client(ADMIN_TOKEN) as a:
            rotated = a.post(f"/api/sessions/{pub}/host-token").json()["host_token"]
        issued.add(rotated)
        with chromium() as b:
            ctx = b.new_context()
            ctx.on(
                "response",
                lambda r: (
                    issued.add(r.json()["token"])
                    if r.url.endswith("/viewers") and r.status == 201
                    else None
                ),
            )
            page = ctx.new_page()
            sign_in(page, srv, ADMIN_TOKEN)
            page.goto(f"{srv.url}/studio/{pub}?token={rotated}")
            assert page.url == f"{srv.url}/studio/{pub}"  # the server's redirect dropped it
            page.wait_for_selector("#conn[data-state=open]", state="attached")
            viewer = ctx.new_page()
            viewer.goto(f"{srv.url}/watch/{pub}")
            viewer.wait_for_selector("#conn[data-state=open]", state="attached")
            page.fill("#chat-text", "Welcome, everyone")
            page.press("#chat-text", "Enter")
            viewer.wait_for_selector("#chat >> text=Welcome, everyone")
            for c in ctx.cookies():
                issued.add(c["value"])
                if c["name"] in ("vitrine_staff", "vitrine_host"):
                    issued.add(_cookie_token(c["value"]))
            ctx.close()

        async def clients() -> None:
            joined = (await asyncio.to_thread(_join, srv, pub))["token"]
            issued.add(joined)
            ana = await open_room(srv, pub, joined)
            host = await open_room(srv, pub, rotated)
            await ana.send("chat", text="hello from Ana")
            await host.wait_type("chat", text="hello from Ana")
            async with srv.aclient(joined) as v:
                r = await v.post(
                    f"/whep/{pub}", content=b"v=0\r\n", headers={"content-type": "application/sdp"}
                )
                assert 400 <= r.status_code < 500, r.text
            # an old client: the token in the URL is refused, and not logged either
            async with connect(f"{srv.ws_url}/ws/sessions/{pub}?token={joined}") as old:
                await old.wait_closed()
                assert old.close_code == 4401
            await asyncio.gather(ana.close(), host.close())

        asyncio.run(clients())
        with httpx.Client(base_url=srv.url) as c:
            assert c.get("/api/stores", params={"token": ADMIN_TOKEN}).status_code == 401
            assert c.get(f"/studio/{pub}", params={"token": staff}).status_code == 403
    text = log_path.read_text(errors="replace")
    lines = text.splitlines()
    assert any('"GET /studio/' in ln for ln in lines), "uvicorn's access log was not on"
    assert any("WebSocket /ws/sessions/" in ln for ln in lines), "no handshake was logged"
    for ln in lines:  # redaction keeps each structured line a JSON object
        if ln.startswith("{"):
            json.loads(ln)
    leaks = sorted({t[:16] + "…" for t in issued if t and t in text})
    assert not leaks, f"{len(leaks)} tokens in the logs: {leaks}"
    assert len(issued) >= 10


def test_redaction_keeps_json_lines_whole() -> None:
    from live.logs import REDACTED, redact

    token = Tokens(SECRET).staff("sf_1", "admin")
    line = json.dumps(
        {
            "msg": f'1.2.3.4 - "WebSocket /ws/sessions/s?after=3&token={token}" [accepted]',
            "url": "/watch/s?invite=ABCD1234&x=1",
            "auth": "Bearer sometoken",
            "proto": "vitrine.room, vitrine.token.abc.def",
        }
    )
    out = json.loads(redact(line))
    assert token not in str(out) and "ABCD1234" not in str(out) and "sometoken" not in str(out)
    assert out["msg"] == f'1.2.3.4 - "WebSocket /ws/sessions/s?after=3&token={REDACTED}" [accepted]'
    assert out["url"] == f"/watch/s?invite={REDACTED}&x=1"
    assert out["proto"] == f"vitrine.room, vitrine.token.{REDACTED}"


def _join(server: LiveServer, session_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.post(f"/api/sessions/{session_id}/viewers", json={"name": "Ana"})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]


# -- item 7 across processes -----------------------------------------------------------------------


def test_revocations_reach_another_process_within_a_second(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two server processes on one PostgreSQL database: a sign-out, a staff revocation and a
    host-token rotation done on A make the credential fail on B within a second, and B closes
    the room sockets of those credentials."""
    env = _env(postgres_url, tmp_path, VITRINE_LOG_LEVEL="WARNING")
    with logged_server(env, tmp_path / "a.log") as a, logged_server(env, tmp_path / "b.log") as b:
        w = build_world(a, ADMIN_TOKEN)
        sid = w["public"]["id"]
        staff = Tokens(SECRET).staff(w["associate"]["id"], "associate", w["store"]["id"])
        old_host = w["public"]["host_token"]

        def status_on_b(path: str, token: str | None = None, cookie: str | None = None) -> int:
            cookies = {"vitrine_staff": cookie} if cookie else None
            with httpx.Client(base_url=b.url, timeout=5, cookies=cookies) as c:
                headers = {"authorization": f"Bearer {token}"} if token else {}
                return c.get(path, headers=headers).status_code

        # sign-out on A
        with httpx.Client(base_url=a.url, timeout=30, follow_redirects=False) as c:
            c.post("/login", data={"token": ADMIN_TOKEN}, headers={"origin": a.url})
            cookie = c.cookies["vitrine_staff"]
            assert status_on_b("/api/stores", cookie=cookie) == 200
            assert c.post("/logout", headers={"origin": a.url}).status_code == 303
        wait_for(
            lambda: status_on_b("/api/stores", cookie=cookie) == 401, 1.0, what="sign-out on B"
        )

        async def sockets() -> None:
            staff_room = await open_room(b, sid, staff)
            host_room = await open_room(b, sid, old_host)
            assert staff_room.hello["role"] == "staff" and host_room.hello["role"] == "host"
            async with a.aclient(ADMIN_TOKEN) as admin:
                r = await admin.post(f"/api/sessions/{sid}/host-token")
                assert r.status_code == 200, r.text
                assert await host_room.closed(timeout=1.0) == 4401
                new_host = r.json()["host_token"]
                await await_for(
                    lambda: status_on_b(f"/api/sessions/{sid}/stream", old_host) == 401,
                    1.0,
                    what="old host token refused on B",
                )
                assert status_on_b(f"/api/sessions/{sid}/stream", new_host) == 200
                r = await admin.post(f"/api/staff/{w['associate']['id']}/revoke")
                assert r.status_code == 200, r.text
                assert await staff_room.closed(timeout=1.0) == 4401
                await await_for(
                    lambda: status_on_b(f"/api/sessions/{sid}", staff) == 401,
                    1.0,
                    what="staff token refused on B",
                )
            await asyncio.gather(staff_room.close(), host_room.close())

        asyncio.run(sockets())


def test_a_studio_opened_by_staff_holds_their_own_host_token(
    web: LiveServer, w: dict[str, Any], admin: str
) -> None:
    """The studio minted a host token in the session's host's name for whoever opened it: it
    outlived revoking and signing out the staff member who received it."""
    tokens = web.app.state.tokens
    sid = w["public"]["id"]
    with web.client(admin) as c:
        r = c.post(
            "/api/staff",
            json={"name": "Store lead", "role": "manager", "store_id": w["store"]["id"]},
        )
        assert r.status_code == 201, r.text
        manager = r.json()["id"]
    with httpx.Client(base_url=web.url, timeout=30, follow_redirects=False) as c:
        signed = tokens.staff(manager, "manager", w["store"]["id"])
        assert (
            c.post("/login", data={"token": signed}, headers={"origin": web.url}).status_code == 303
        )
        page = c.get(f"/studio/{sid}")
        assert page.status_code == 200
        studio_token = re.search(r'data-token="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    who = tokens.read(studio_token)
    assert (who.kind, who.session_id, who.staff_id) == ("host", sid, manager)
    with web.client(studio_token) as c:
        assert c.get(f"/api/sessions/{sid}/deals").status_code == 200
    with web.client(admin) as c:
        assert c.post(f"/api/staff/{manager}/revoke").status_code == 200

    def refused() -> bool:
        with web.client(studio_token) as c:
            return c.get(f"/api/sessions/{sid}/deals").status_code == 401

    wait_for(refused, 5, what="the studio token revoked with its staff member")
