"""Reports over HTTP: staff only, JSON and CSV, typed errors, live counters for the host."""

from __future__ import annotations

import csv
import io
from typing import Any

from tests.support.server import LiveServer, wait_for

T0 = 1_800_000_000_000


def _feed(server: LiveServer, world: dict[str, Any]) -> None:
    """Traffic through the running app's own recorder (``app.state.track``)."""
    track = server.app.state.track
    pub = world["public"]["id"]
    for i in range(20):
        track("joined", pub, f"vw_api{i}", source="public", ts=T0)
        track("heartbeat", pub, f"vw_api{i}", ts=T0)
    track(
        "purchase", pub, "vw_api3", order_id="or_api1", amount=39900, currency="CNY", ts=T0 + 5000
    )


def _report(server: LiveServer, token: str, path: str, **params: Any) -> Any:
    with server.client(token) as c:
        return c.get(path, params=params)


def test_reports_json_and_csv(server: LiveServer, world: dict[str, Any]) -> None:
    _feed(server, world)
    pub = world["public"]["id"]
    wait_for(
        lambda: (
            _report(server, world["admin"], f"/api/reports/sessions/{pub}").json()["orders"] == 1
        ),
        what="the recorder's flush",
    )
    one = _report(server, world["admin"], f"/api/reports/sessions/{pub}").json()
    assert (one["reach"], one["buyers"], one["revenue"], one["conversion"]) == (20, 1, 39900, 0.05)
    assert one["funnel"][0] == {
        "step": "reached",
        "viewers": 20,
        "of_previous": 1.0,
        "of_reach": 1.0,
    }

    listing = _report(server, world["admin"], "/api/reports/sessions").json()
    assert listing["total"] == 2
    assert {r["id"] for r in listing["items"]} == {pub, world["private"]["id"]}

    r = _report(server, world["admin"], "/api/reports/sessions", format="csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 2 and rows[0].keys() >= {
        "id",
        "title",
        "kind",
        "reach",
        "buyers",
        "conversion",
    }
    by_id = {row["id"]: row for row in rows}
    assert by_id[pub]["reach"] == "20" and by_id[pub]["conversion"] == "0.05"

    r = _report(server, world["admin"], f"/api/reports/sessions/{pub}", format="csv")
    [row] = list(csv.DictReader(io.StringIO(r.text)))
    assert row["revenue"] == "39900"

    cmp = _report(server, world["admin"], "/api/reports/compare", by="kind").json()
    assert {g["key"] for g in cmp["groups"]} == {"public", "private"}
    assert cmp["private_vs_public"]["test"].startswith("two-proportion z-test")
    r = _report(
        server,
        world["admin"],
        "/api/reports/compare",
        by="store",
        format="csv",
        **{"from": "2020-01-01", "to": "2100-01-01"},
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["label"], x["sessions"]) for x in rows] == [("Shanghai Xintiandi", "2")]
    r = _report(server, world["admin"], "/api/reports/associates", format="csv")
    assert r.text.splitlines()[0].startswith("rank,associate_id,name")


def test_csv_never_carries_a_formula(server: LiveServer, world: dict[str, Any]) -> None:
    with server.client(world["admin"]) as c:
        made = c.post(
            "/api/sessions",
            json={
                "title": '=HYPERLINK("http://evil")',
                "kind": "public",
                "store_id": world["store"]["id"],
                "host_id": world["associate"]["id"],
            },
        )
        assert made.status_code == 201
        text = c.get("/api/reports/sessions", params={"format": "csv"}).text
    titles = [row["title"] for row in csv.DictReader(io.StringIO(text))]
    assert '\'=HYPERLINK("http://evil")' in titles


def test_reports_are_staff_only_and_errors_are_typed(
    server: LiveServer, world: dict[str, Any]
) -> None:
    pub = world["public"]["id"]
    with server.client() as anon:
        r = anon.get("/api/reports/sessions")
        assert r.status_code == 401 and r.json()["error"]
        viewer = anon.post(f"/api/sessions/{pub}/viewers", json={"name": "Ann"}).json()["token"]
    for path in (
        "/api/reports/sessions",
        f"/api/reports/sessions/{pub}",
        "/api/reports/compare",
        "/api/reports/associates",
    ):
        r = _report(server, viewer, path)
        assert r.status_code == 403 and r.json()["error"] == "staff_only"
    host = world["public"]["host_token"]
    assert _report(server, host, "/api/reports/sessions").status_code == 403
    for params in (
        {"by": "planet"},
        {"from": "yesterday"},
        {"format": "xml"},
        {"kind": "secret"},
        {"limit": "-1"},
    ):
        r = _report(
            server,
            world["admin"],
            "/api/reports/compare" if "by" in params else "/api/reports/sessions",
            **params,
        )
        assert r.status_code == 422, params
        assert set(r.json()) == {"error", "detail"}
    r = _report(server, world["admin"], "/api/reports/sessions/se_nope")
    assert r.status_code == 404 and r.json()["error"] == "session_not_found"


def test_live_counters_for_the_host(server: LiveServer, world: dict[str, Any]) -> None:
    pub, priv = world["public"]["id"], world["private"]["id"]
    track = server.app.state.track
    track("joined", pub, "vw_live1")
    track("heartbeat", pub, "vw_live1")
    track("heartbeat", pub, "vw_live2")
    track("purchase", pub, "vw_live1", order_id="or_live1", amount=1000, currency="CNY")
    host = world["public"]["host_token"]

    def counters() -> dict[str, Any]:
        r = _report(server, host, f"/api/sessions/{pub}/live-counters")
        assert r.status_code == 200
        return r.json()  # type: ignore[no-any-return]

    got = wait_for(lambda: (c := counters())["orders"] == 1 and c, what="counters")
    assert (got["viewers_now"], got["reach"], got["buyers"], got["revenue"]) == (2, 2, 1, 1000)
    assert _report(server, world["admin"], f"/api/sessions/{pub}/live-counters").status_code == 200
    other = _report(server, world["private"]["host_token"], f"/api/sessions/{pub}/live-counters")
    assert other.status_code == 403 and other.json()["error"] == "wrong_session"
    assert _report(server, host, f"/api/sessions/{priv}/live-counters").status_code == 403
    assert _report(server, world["admin"], "/api/sessions/se_nope/live-counters").status_code == 404
