"""Hardening: hostile tokens and cookies give a 401 JSON error, never a 500."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.server import LiveServer


def _get(server: LiveServer, path: str, headers: list[tuple[bytes, bytes]]) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        return c.get(path, headers=headers)


def test_non_ascii_bearer_tokens_are_rejected_as_invalid(
    server: LiveServer, world: dict[str, Any]
) -> None:
    for raw in (b"Bearer v1.abc.\xe9\xe9", b"Bearer " + b"\xe9" * 20, b"Bearer \xe9.\xe9.\xe9"):
        r = _get(server, "/api/stores", [(b"authorization", raw)])
        assert r.status_code == 401, (raw, r.status_code, r.text)
        assert r.json()["error"] == "invalid_token"


def test_query_tokens_are_not_accepted(
    server: LiveServer, world: dict[str, Any], admin: str
) -> None:
    """A token in the URL is never read (URLs are logged): not a valid one, not a non-ASCII one."""
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for token in (admin, world["public"]["host_token"], "v1.abc.\u00e9\u4e2d\u6587"):
            r = c.get("/api/stores", params={"token": token})
            assert r.status_code == 401, r.text
            assert r.json()["error"] == "unauthorized"


def test_forged_non_ascii_staff_cookie_is_ignored(
    server: LiveServer, world: dict[str, Any]
) -> None:
    r = _get(server, "/api/stores", [(b"cookie", b"vitrine_staff=v1.a.\xe9\xe9")])
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
