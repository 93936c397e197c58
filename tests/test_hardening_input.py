"""Hardening: hostile request bodies give a 4xx JSON error on SQLite and PostgreSQL, never a 500."""

from __future__ import annotations

from typing import Any

import orjson

from tests.support.server import LiveServer


def _is_error(r: Any, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert set(r.json()) == {"error", "detail"}


def test_nul_characters_in_json_text_are_rejected(
    server: LiveServer, world: dict[str, Any]
) -> None:
    with server.client(world["admin"]) as c:
        _is_error(c.post("/api/stores", json={"name": "a\u0000b"}), 422)
        _is_error(
            c.post(
                "/api/clients",
                json={
                    "store_id": world["store"]["id"],
                    "name": "x",
                    "notes": {"deep": ["ok", "n\u0000"]},
                },
            ),
            422,
        )
        # a NUL in a key counts too; an escaped backslash followed by "u0000" is ordinary text
        _is_error(c.post("/api/stores", json={"name": "ok", "k\u0000": 1}), 422)
        r = c.post("/api/stores", json={"name": "back\\u0000slash"})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "back\\u0000slash"
    with server.client() as c:
        _is_error(
            c.post(f"/api/sessions/{world['public']['id']}/viewers", json={"name": "Wang\u0000"}),
            422,
        )


def test_deeply_nested_body_with_nul_is_rejected(server: LiveServer, world: dict[str, Any]) -> None:
    body = '{"name":' + "[" * 1000 + '"\\u0000"' + "]" * 1000 + "}"
    with server.client(world["admin"]) as c:
        r = c.post("/api/stores", content=body, headers={"content-type": "application/json"})
    _is_error(r, 422)


def test_ids_chosen_by_the_caller_are_bounded_and_unique(
    server: LiveServer, world: dict[str, Any]
) -> None:
    store = world["store"]["id"]
    with server.client(world["admin"]) as c:
        for path, body in (
            ("/api/clients", {"store_id": store, "name": "A"}),
            ("/api/stores", {"name": "A"}),
            ("/api/staff", {"name": "A", "role": "marketer"}),
        ):
            _is_error(c.post(path, json={**body, "id": "c" * 500}), 422)
            _is_error(c.post(path, json={**body, "id": "tab\there"}), 422)
            assert c.post(path, json={**body, "id": "crm-42"}).status_code == 201
            r = c.post(path, json={**body, "name": "B", "id": "crm-42"})
            _is_error(r, 409)
            assert r.json()["error"] == "already_exists"
            assert c.get(f"{path}/crm-42").json()["name"] == "A"


def test_integers_beyond_64_bits_are_rejected(server: LiveServer, world: dict[str, Any]) -> None:
    big = "18446744073709551615"  # orjson reads it as an int; PostgreSQL BIGINT cannot hold it
    fields = orjson.dumps(
        {
            "title": "x",
            "kind": "public",
            "store_id": world["store"]["id"],
            "host_id": world["associate"]["id"],
        }
    ).decode()
    body = fields[:-1] + f', "scheduled_at": {big}}}'
    with server.client(world["admin"]) as c:
        r = c.post("/api/sessions", content=body, headers={"content-type": "application/json"})
        _is_error(r, 422)
        assert "scheduled_at" in r.json()["detail"]
