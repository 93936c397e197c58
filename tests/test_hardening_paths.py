"""Hardening: hostile file paths under /static and /media are a 404 JSON error, never a file outside
their folder and never a 500."""

from __future__ import annotations

import httpx

from tests.support.server import LiveServer

HOSTILE = ["a" * 300, "a/" * 3000, "%00", "x%00.js", "../live/config.py", "%2e%2e/%2e%2e/live/config.py",
           "..%2f..%2flive%2fconfig.py", "..%5c..%5cx", "/etc/passwd", "%2fetc%2fpasswd", ".hidden",
           "T%CC%BA%CC%BAo%CD%9E%20i%CC%B2n" + "%CC%B2" * 200]


def test_hostile_static_and_media_paths(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for prefix in ("/static/", "/media/"):
            for path in HOSTILE:
                r = c.get(prefix + path)
                assert r.status_code in (404, 414), (prefix + path[:60], r.status_code, r.text[:200])
                if r.status_code == 404:
                    assert r.json()["error"] == "not_found"
