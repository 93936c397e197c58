"""``/api/reports/*`` (staff; JSON or ``?format=csv``) and the host's live counters."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from live.access import authorize, authorize_session
from live.analytics import reports
from live.analytics.models import COUNTERS
from live.api import doc
from live.auth import Principal
from live.db import now_ms
from live.errors import ValidationFailed
from live.http import INT64_MAX, INT64_MIN, JSON, query_int
from live.policy import Action, Target, require, store_scope

SESSION_COLUMNS = [
    "id",
    "title",
    "kind",
    "status",
    "store_id",
    "host_id",
    "time",
    "invited",
    *COUNTERS,
    "peak_concurrent",
    "currency",
    "total_watch_seconds",
    "avg_watch_seconds",
    "engagement_rate",
    "attendance_rate",
    "conversion",
    "conversion_ci_low",
    "conversion_ci_high",
    "revenue_per_viewer",
    "average_order_value",
]
GROUP_COLUMNS = [
    "key",
    "label",
    "sessions",
    "reach_per_session",
    *[
        c
        for c in SESSION_COLUMNS
        if c not in ("id", "title", "kind", "status", "store_id", "host_id", "time")
    ],
]
ASSOCIATE_COLUMNS = [
    "rank",
    "associate_id",
    "name",
    "store_id",
    "invited",
    "attended",
    "attendance_rate",
    "buyers",
    "conversion",
    "orders",
    "revenue",
]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _time(request: Request, name: str) -> int | None:
    """``?from=`` / ``?to=``: epoch milliseconds or an ISO 8601 date or date-time (UTC if no zone)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        if raw.isascii() and raw.isdigit():
            ms = int(raw)
        else:
            when = datetime.fromisoformat(raw)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            ms = int(when.timestamp() * 1000)
    except (ValueError, OverflowError) as exc:
        raise ValidationFailed(f"`{name}` must be epoch milliseconds or an ISO 8601 date") from exc
    if not INT64_MIN <= ms <= INT64_MAX:
        raise ValidationFailed(f"`{name}` is out of range")
    return ms


def _scoped(request: Request, who: Principal | None) -> tuple[reports.Filters, str | None]:
    """The request's filters within what ``who`` may see, and the one store they are held to."""
    f = _filters(request)
    only = store_scope(who, Action.SEE_REPORTS)
    if only is not None:
        require(who, Action.SEE_REPORTS, Target(store_id=f.store_id or only))
        f = replace(f, store_id=only)
    return f, only


def _filters(request: Request) -> reports.Filters:
    q = request.query_params
    kind = q.get("kind") or None
    if kind is not None and kind not in ("public", "private"):
        raise ValidationFailed("`kind` must be public or private")
    return reports.Filters(
        kind=kind,
        store_id=q.get("store_id") or None,
        host_id=q.get("host_id") or None,
        from_ms=_time(request, "from"),
        to_ms=_time(request, "to"),
    )


def _wants_csv(request: Request) -> bool:
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise ValidationFailed("`format` must be json or csv")
    return fmt == "csv"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value  # a spreadsheet must never run a title as a formula
    return value


def csv_response(rows: list[dict[str, Any]], columns: list[str], filename: str) -> Response:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def _with_iso_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **r,
            "time": datetime.fromtimestamp(r["time"] / 1000, tz=UTC).isoformat()
            if r["time"]
            else "",
        }
        for r in rows
    ]


@doc(
    "Report of every session (`?kind=&store_id=&host_id=&from=&to=&limit=&offset=&format=csv`): reach, "
    "watch time, funnel, orders, revenue, conversion",
    action=Action.SEE_REPORTS,
    tag="reports",
    responses={422: "invalid filter"},
)
async def sessions_report(request: Request) -> Response:
    f, _ = _scoped(request, authorize(request))
    csv_out = _wants_csv(request)
    out = await reports.sessions_report(
        request.app.state.db,
        f,
        limit=query_int(request, "limit", 1000 if csv_out else 100, 1, 100_000),
        offset=query_int(request, "offset", 0),
    )
    if csv_out:
        return csv_response(_with_iso_time(out["items"]), SESSION_COLUMNS, "sessions.csv")
    return JSON(out)


@doc(
    "Report of one session (`?format=csv`): figures, funnel, associates, products, viewers over time",
    action=Action.SEE_REPORTS,
    tag="reports",
    responses={404: "session_not_found"},
)
async def session_report(request: Request) -> Response:
    await authorize_session(request, request.path_params["id"])
    csv_out = _wants_csv(request)
    out = await reports.session_report(request.app.state.db, request.path_params["id"])
    if csv_out:
        return csv_response(_with_iso_time([out]), SESSION_COLUMNS, f"session-{out['id']}.csv")
    return JSON(out)


@doc(
    "Compare sessions `?by=kind|store|associate|month|week&from=&to=&format=csv`: totals, pooled conversion "
    "with 95% Wilson intervals, private vs public z-test, reach-conversion correlation",
    action=Action.SEE_REPORTS,
    tag="reports",
    responses={422: "invalid `by` or filter"},
)
async def compare(request: Request) -> Response:
    f, _ = _scoped(request, authorize(request))
    csv_out = _wants_csv(request)
    out = await reports.compare(request.app.state.db, request.query_params.get("by", "kind"), f)
    if csv_out:
        return csv_response(out["groups"], GROUP_COLUMNS, f"compare-{out['by']}.csv")
    return JSON(out)


@doc(
    "Associates leaderboard (`?store_id=&from=&to=&format=csv`): invited, attended, buyers, "
    "attributed revenue; a store's staff see their store's rows with their brand-wide rank",
    action=Action.SEE_REPORTS,
    tag="reports",
)
async def associates(request: Request) -> Response:
    who = authorize(request)
    f, only = _scoped(request, who)
    csv_out = _wants_csv(request)
    if only is None:
        out = await reports.associates_report(request.app.state.db, f)
    else:  # ranked against the whole brand, shown for their own store
        out = await reports.associates_report(request.app.state.db, replace(f, store_id=None))
        out["items"] = [r for r in out["items"] if r["store_id"] == only]
    if csv_out:
        return csv_response(out["items"], ASSOCIATE_COLUMNS, "associates.csv")
    return JSON(out)


@doc(
    "Live counters for the host: viewers now, reach so far, peak, buyers, orders, revenue",
    action=Action.SEE_COUNTERS,
    tag="reports",
    responses={404: "session_not_found"},
)
async def live_counters(request: Request) -> Response:
    sid = request.path_params["id"]
    await authorize_session(request, sid)
    return JSON(await reports.live_counters(request.app.state.db, sid, now_ms()))


def routes() -> list[BaseRoute]:
    return [
        Route("/api/reports/sessions", sessions_report, methods=["GET"]),
        Route("/api/reports/sessions/{id}", session_report, methods=["GET"]),
        Route("/api/reports/compare", compare, methods=["GET"]),
        Route("/api/reports/associates", associates, methods=["GET"]),
        Route("/api/sessions/{id}/live-counters", live_counters, methods=["GET"]),
    ]
