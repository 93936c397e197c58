"""Hardening of the reports: hostile dates are a 422, never a 500; live counters are store-scoped."""

from __future__ import annotations

from typing import Any

from tests.support.server import LiveServer


def test_hostile_report_dates_are_422(server: LiveServer, world: dict[str, Any]) -> None:
    with server.client(world["admin"]) as c:
        for value in (
            "99999999999999999999999",
            "9" * 5000,
            "\u00b2",
            "\u0663",
            "xyz",
            "2026-13-01",
            "-1",
        ):
            for path in (
                "/api/reports/sessions",
                "/api/reports/compare",
                "/api/reports/associates",
            ):
                r = c.get(path, params={"from": value, "to": value})
                assert r.status_code == 422, (path, value[:20], r.status_code, r.text[:200])
                assert r.json()["error"] == "invalid"
        assert (
            c.get(
                "/api/reports/sessions", params={"from": "2026-01-01", "to": "1795337623026"}
            ).status_code
            == 200
        )


def test_live_counters_need_this_stores_staff(server: LiveServer, world: dict[str, Any]) -> None:
    with server.client(world["admin"]) as c:
        store = c.post("/api/stores", json={"name": "Milano Brera"}).json()
        staff = c.post(
            "/api/staff", json={"name": "Giulia", "role": "associate", "store_id": store["id"]}
        ).json()
    other = server.app.state.tokens.staff(staff["id"], "associate", store["id"])
    pub = world["public"]["id"]
    with server.client(other) as c:
        r = c.get(f"/api/sessions/{pub}/live-counters")
        assert (r.status_code, r.json()["error"]) == (403, "other_store")
    with server.client(world["public"]["host_token"]) as c:
        assert c.get(f"/api/sessions/{pub}/live-counters").status_code == 200
