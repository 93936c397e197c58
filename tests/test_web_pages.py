"""The pages without the live parts: sign-in, redirects, CSRF, CSP, escaping, static files, phone layout."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.browser import (  # noqa: F401
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    chromium,
    shot,
    watch_console,
)
from tests.support.server import LiveServer


def plain(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, follow_redirects=False)


def test_signed_out_visitors_are_sent_to_login(web: LiveServer, w: dict[str, Any]) -> None:
    with plain(web) as c:
        for path in ("/dashboard", f"/studio/{w['public']['id']}"):
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}"
        r = c.get("/login?next=/dashboard")
        assert r.status_code == 200 and 'name="token"' in r.text and 'value="/dashboard"' in r.text
        assert c.get("/").headers["location"] == "/login"
        # the watch page needs no sign-in
        assert c.get(w["public"]["watch_url"].replace(web.url, "")).status_code == 200
        assert c.get("/watch/se_nope").status_code == 404


def test_login_sets_a_strict_http_only_cookie(
    web: LiveServer, w: dict[str, Any], admin: str
) -> None:
    with plain(web) as c:
        r = c.post("/login", data={"token": "v1.forged.token", "next": "/dashboard"})
        assert r.status_code == 401 and "not valid" in r.text and "set-cookie" not in r.headers
        r = c.post("/login", data={"token": admin, "next": "/dashboard"})
        assert r.status_code == 303 and r.headers["location"] == "/dashboard"
        cookie = r.headers["set-cookie"]
        assert (
            cookie.startswith("vitrine_staff=")
            and "HttpOnly" in cookie
            and "SameSite=strict" in cookie
        )
        assert "Secure" not in cookie  # plain HTTP here; Secure behind HTTPS
        page = c.get("/dashboard")
        assert page.status_code == 200 and 'data-role="admin"' in page.text
        # the cookie authenticates API calls too
        assert c.get("/api/stores").status_code == 200
        out = c.post("/logout", headers={"origin": web.url})
        assert out.status_code == 303 and 'vitrine_staff=""' in out.headers["set-cookie"]
        c.cookies.clear()
        assert c.get("/dashboard").status_code == 303


def test_login_behind_https_sets_secure(web: LiveServer, admin: str) -> None:
    with plain(web) as c:
        r = c.post("/login", data={"token": admin}, headers={"x-forwarded-proto": "https"})
        assert "Secure" in r.headers["set-cookie"]


def test_login_refuses_cross_site_posts_and_foreign_redirects(web: LiveServer, admin: str) -> None:
    with plain(web) as c:
        r = c.post("/login", data={"token": admin}, headers={"origin": "https://evil.example"})
        assert r.status_code == 403 and "set-cookie" not in r.headers
        for target in (
            "//evil.example/x",
            "https://evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
        ):
            r = c.post("/login", data={"token": admin, "next": target}, headers={"origin": web.url})
            assert r.headers["location"] == "/dashboard", target
        assert c.post("/logout", headers={"origin": "https://evil.example"}).status_code == 403
        r = c.post(
            "/login",
            content=b"token=" + b"x" * 10000,
            headers={"content-type": "application/x-www-form-urlencoded", "origin": web.url},
        )
        assert r.status_code == 413


def test_studio_link_signs_the_host_in(web: LiveServer, w: dict[str, Any]) -> None:
    pub, priv = w["public"], w["private"]
    with plain(web) as c:
        r = c.get(f"/studio/{pub['id']}?token={pub['host_token']}")
        assert r.status_code == 303 and r.headers["location"] == f"/studio/{pub['id']}"
        cookie = r.headers["set-cookie"]
        assert (
            "HttpOnly" in cookie
            and "SameSite=strict" in cookie
            and f"Path=/studio/{pub['id']}" in cookie
        )
        page = c.get(f"/studio/{pub['id']}")
        assert page.status_code == 200 and f'data-token="{pub["host_token"]}"' in page.text
        assert page.headers["cache-control"] == "no-store"
        # that host cookie opens only its own studio, and not the dashboard
        assert c.get(f"/studio/{priv['id']}").status_code == 303
        assert c.get("/dashboard").status_code == 303
        # another session's host token is refused
        r = c.get(f"/studio/{pub['id']}?token={priv['host_token']}")
        assert r.status_code == 403 and "set-cookie" not in r.headers


def test_studio_for_signed_in_staff(web: LiveServer, w: dict[str, Any]) -> None:
    tokens = web.app.state.tokens
    pub = w["public"]
    host = tokens.staff(w["associate"]["id"], "associate", w["store"]["id"])
    other = tokens.staff(w["associate2"]["id"], "associate", w["store"]["id"])
    with plain(web) as c:
        c.post("/login", data={"token": host})
        page = c.get(f"/studio/{pub['id']}")
        assert page.status_code == 200
        token = re.search(r'data-token="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        p = tokens.read(token)
        assert (p.kind, p.session_id) == ("host", pub["id"])
    with plain(web) as c:
        c.post("/login", data={"token": other})
        r = c.get(f"/studio/{pub['id']}")
        assert r.status_code == 403 and "data-token" not in r.text
        assert c.get("/studio/se_missing").status_code == 404


def test_pages_carry_csp_and_escape_text(web: LiveServer, w: dict[str, Any], admin: str) -> None:
    evil = '<img src=x onerror="alert(1)">&"\''
    with web.client(admin) as c:
        s = c.post(
            "/api/sessions",
            json={
                "title": evil,
                "kind": "public",
                "store_id": w["store"]["id"],
                "host_id": w["associate"]["id"],
            },
        ).json()
    with plain(web) as c:
        r = c.get(f"/watch/{s['id']}")
        csp = r.headers["content-security-policy"]
        assert (
            "script-src 'self'" in csp
            and "unsafe-inline" not in csp
            and "frame-ancestors 'none'" in csp
        )
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert (
            "<img src=x" not in r.text
            and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;" in r.text
        )
        assert "<script>" not in r.text  # no inline scripts: only module files
        host = web.url.removeprefix("http://")
        assert f"connect-src 'self' ws://{host} wss://{host};" in csp
        login = c.get("/login")
        assert "connect-src 'self';" in login.headers["content-security-policy"]
        r = c.get(f"/watch/{s['id']}", headers={"host": "evil.example/'x"})
        assert "connect-src 'self';" in r.headers["content-security-policy"]


def test_static_files(web: LiveServer) -> None:
    with plain(web) as c:
        r = c.get("/static/js/common.js")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
        r = c.get("/static/vendor/chartjs/chart.umd.min.js")
        assert r.status_code == 200 and "Chart.js v4" in r.text[:200]
        assert c.get("/static/vendor/chartjs/LICENSE.md").status_code == 200
        for bad in (
            "/static/../component.py",
            "/static/%2e%2e/component.py",
            "/static/js/nope.js",
            "/static/",
        ):
            assert c.get(bad).status_code == 404, bad


def test_phone_layout_login_and_private_invite(
    web: LiveServer, w: dict[str, Any], admin: str
) -> None:
    """375-px pages fit the screen, run without CSP violations, and the private page asks for the invite."""
    priv = w["private"]["id"]
    with web.client(admin) as c:
        invite = c.post(
            f"/api/sessions/{priv}/invites", json={"client_ids": [w["clients"][0]["id"]]}
        ).json()[0]
    with chromium() as browser:
        ctx = browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
        )
        page = ctx.new_page()
        errors = watch_console(page)
        page.goto(f"{web.url}/login?next=/dashboard")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shot(page, "login-375")
        page.fill("#token", "wrong")
        page.click("button[type=submit]")
        page.wait_for_selector("#login-error:has-text('not valid')")
        page.fill("#token", admin)
        page.click("button[type=submit]")
        page.wait_for_url(f"{web.url}/dashboard")
        cookies = {c["name"]: c for c in ctx.cookies()}
        assert (
            cookies["vitrine_staff"]["httpOnly"]
            and cookies["vitrine_staff"]["sameSite"] == "Strict"
        )
        assert page.evaluate("document.cookie") == ""

        viewer = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        vp = viewer.new_page()
        verrors = watch_console(vp)
        vp.goto(f"{web.url}/watch/{priv}")
        vp.wait_for_selector("#state:not([hidden]) #state-title:has-text('By invitation only')")
        assert vp.is_visible("#invite-form")
        assert vp.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        shot(vp, "watch-invite-required-375")
        vp.fill("#invite-code", "0" * 32)
        vp.click("#invite-form button")
        vp.wait_for_selector("#state-title:has-text('Invitation not valid')")
        vp.fill("#invite-code", invite["code"])
        vp.click("#invite-form button")
        vp.wait_for_selector("#state-title:has-text('Starting soon')")
        assert "invite=" in vp.url
        shot(vp, "watch-scheduled-375")
        csp = [e for e in errors + verrors if "Content Security Policy" in e]
        assert csp == []


def test_preshow_countdown_and_ended_pages(web: LiveServer, w: dict[str, Any], admin: str) -> None:
    import time

    with web.client(admin) as c:
        later = c.post(
            "/api/sessions",
            json={
                "title": "Wednesday 19:00 series",
                "kind": "public",
                "store_id": w["store"]["id"],
                "host_id": w["associate"]["id"],
                "scheduled_at": int(time.time() * 1000) + 2 * 3600 * 1000,
            },
        ).json()
    with web.client(w["public"]["host_token"]) as host:
        assert host.post(f"/api/sessions/{w['public']['id']}/end").status_code == 200
    with chromium() as browser:
        page = browser.new_context(viewport=PHONE, is_mobile=True).new_page()
        errors = watch_console(page)
        page.goto(f"{web.url}/watch/{later['id']}")
        page.wait_for_selector("#state-title:has-text('Starting soon')")
        page.wait_for_selector("#state-countdown:not([hidden])")
        assert re.fullmatch(r"1:59:\d\d|2:00:00", page.text_content("#state-countdown") or "")
        shot(page, "watch-countdown-375")
        page.goto(f"{web.url}/watch/{w['public']['id']}")
        page.wait_for_selector("#state-title:has-text('ended')")
        assert not page.is_visible("#live-badge")
        assert [e for e in errors if "Content Security Policy" in e] == []
