"""Hardening: hostile file paths under /static and /media are a 404 JSON error, never a file outside
their folder and never a 500."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.server import LiveServer

HOSTILE = [
    "a" * 300,
    "a/" * 3000,
    "%00",
    "x%00.js",
    "../live/config.py",
    "%2e%2e/%2e%2e/live/config.py",
    "..%2f..%2flive%2fconfig.py",
    "..%5c..%5cx",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    ".hidden",
    "T%CC%BA%CC%BAo%CD%9E%20i%CC%B2n" + "%CC%B2" * 200,
]


def test_hostile_static_and_media_paths(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for prefix in ("/static/", "/media/"):
            for path in HOSTILE:
                r = c.get(prefix + path)
                assert r.status_code in (400, 404, 414), (
                    prefix + path[:60],
                    r.status_code,
                    r.text[:200],
                )
                if r.status_code != 414:
                    assert r.json()["error"] in ("not_found", "bad_request")


def test_nul_in_ids_and_filters_is_400_on_every_database(
    server: LiveServer, world: dict[str, Any]
) -> None:
    pub = world["public"]["id"]
    with server.client(world["admin"]) as c:
        for path in (
            "/api/products/%00%00",
            "/api/sessions/se%00x",
            f"/api/sessions/{pub}/products?x=%00",
            "/api/clients?store_id=%00",
            "/api/sessions?kind=%00",
            "/api/stores/%00",
            "/api/reports/sessions?store_id=a%00",
        ):
            r = c.get(path)
            assert r.status_code == 400, (path, r.status_code, r.text[:200])
            assert r.json() == {
                "error": "bad_request",
                "detail": "the URL must not contain NUL characters",
            }
        assert c.get(f"/api/sessions/{pub}").status_code == 200
