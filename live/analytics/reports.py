"""Reports, read from the roll-ups (never from the event log): per session, compared, per associate."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.models import Order, Product
from live.analytics import stats
from live.analytics.metrics import SUMMED, derive, funnel
from live.analytics.models import (
    BUCKET_MS,
    COUNTERS,
    AnalyticsConcurrency,
    AssociateStats,
    ProductStats,
    SessionStats,
)
from live.db import Database
from live.errors import NotFound, ValidationFailed
from live.models import Invite, LiveSession, StaffMember, Store

GROUPINGS = ("kind", "store", "associate", "month", "week")
TIMELINE_POINTS = 240


@dataclass(frozen=True)
class Filters:
    kind: str | None = None
    store_id: str | None = None
    host_id: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None


def session_time() -> Any:
    """When a session happened: started, else scheduled, else created."""
    return func.coalesce(LiveSession.started_at, LiveSession.scheduled_at, LiveSession.created_at)


def _filtered(q: Select[Any], f: Filters) -> Select[Any]:
    t = session_time()
    for col, val in (
        (LiveSession.kind, f.kind),
        (LiveSession.store_id, f.store_id),
        (LiveSession.host_id, f.host_id),
    ):
        if val:
            q = q.where(col == val)
    if f.from_ms is not None:
        q = q.where(t >= f.from_ms)
    if f.to_ms is not None:
        q = q.where(t < f.to_ms)
    return q


def _session_select() -> Select[Any]:
    """A session's own columns and its roll-up (zeros before any event)."""
    stats_cols = [
        func.coalesce(getattr(SessionStats, c), 0).label(c) for c in (*COUNTERS, "peak_concurrent")
    ]
    return select(
        LiveSession.id,
        LiveSession.title,
        LiveSession.kind,
        LiveSession.status,
        LiveSession.store_id,
        LiveSession.host_id,
        session_time().label("time"),
        *stats_cols,
        func.coalesce(SessionStats.currency, "").label("currency"),
    ).outerjoin(SessionStats, SessionStats.session_id == LiveSession.id)


async def _invited(s: AsyncSession, session_ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(0, len(session_ids), 1000):
        chunk = list(session_ids[i : i + 1000])
        rows = await s.execute(
            select(Invite.session_id, func.count())
            .where(Invite.session_id.in_(chunk))
            .group_by(Invite.session_id)
        )
        out.update({sid: int(n) for sid, n in rows.all()})
    return out


def _session_row(r: Any, invited: int) -> dict[str, Any]:
    m = r._mapping
    row: dict[str, Any] = {
        "id": m["id"],
        "title": m["title"],
        "kind": m["kind"],
        "status": m["status"],
        "store_id": m["store_id"],
        "host_id": m["host_id"],
        "time": m["time"],
        "invited": invited if m["kind"] == "private" else 0,
        **{c: int(m[c]) for c in (*COUNTERS, "peak_concurrent")},
        "currency": m["currency"],
    }
    row.update(derive(row))
    return row


async def _session_rows(
    s: AsyncSession, f: Filters, *, limit: int | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    base = _filtered(select(LiveSession.id), f)
    total = int(await s.scalar(select(func.count()).select_from(base.subquery())) or 0)
    q = _filtered(_session_select(), f)
    q = q.order_by(session_time().desc(), LiveSession.id).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    rows = (await s.execute(q)).all()
    invited = await _invited(s, [r.id for r in rows if r.kind == "private"])
    return [_session_row(r, invited.get(r.id, 0)) for r in rows], total


async def sessions_report(
    db: Database, f: Filters, *, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    async with db.read() as s:
        items, total = await _session_rows(s, f, limit=limit, offset=offset)
    return {"items": items, "total": total}


async def session_report(db: Database, session_id: str) -> dict[str, Any]:
    async with db.read() as s:
        r = (await s.execute(_session_select().where(LiveSession.id == session_id))).first()
        if r is None:
            raise NotFound(f"no session {session_id!r}", code="session_not_found")
        invited = await _invited(s, [session_id])
        row = _session_row(r, invited.get(session_id, 0))
        by_assoc = await _associates(
            s, [AssociateStats.session_id == session_id], [Invite.session_id == session_id]
        )
        products = (
            await s.execute(
                select(
                    ProductStats.product_id,
                    Product.title,
                    ProductStats.impressions,
                    ProductStats.clicks,
                    ProductStats.carts,
                    ProductStats.orders,
                    ProductStats.revenue,
                )
                .outerjoin(Product, Product.id == ProductStats.product_id)
                .where(ProductStats.session_id == session_id)
                .order_by(ProductStats.revenue.desc(), ProductStats.impressions.desc())
            )
        ).all()
        timeline = (
            await s.execute(
                select(AnalyticsConcurrency.bucket, AnalyticsConcurrency.viewers)
                .where(AnalyticsConcurrency.session_id == session_id)
                .order_by(AnalyticsConcurrency.bucket)
            )
        ).all()
        checkout = await _checkout(s, session_id)
    return {
        **row,
        "funnel": funnel(row),
        "associates": by_assoc,
        "checkout": checkout,
        "products": [
            {
                "product_id": p,
                "title": t or "",
                "impressions": i,
                "clicks": c,
                "carts": ca,
                "orders": o,
                "revenue": rv,
                "click_rate": _r(c, i),
            }
            for p, t, i, c, ca, o, rv in products
        ],
        "timeline": _downsample([(int(b) * BUCKET_MS, int(v)) for b, v in timeline]),
    }


async def _checkout(s: AsyncSession, session_id: str) -> dict[str, int]:
    """The catalog's own orders for the session: the truth the recorded purchases are checked against
    (paid at some point: paid, refunding or refunded)."""
    where = (Order.session_id == session_id, Order.status.in_(("paid", "refunding", "refunded")))
    rows = (
        await s.execute(
            select(Order.status, func.count(), func.coalesce(func.sum(Order.total), 0))
            .where(*where)
            .group_by(Order.status)
        )
    ).all()
    buyers = await s.scalar(select(func.count(func.distinct(Order.viewer_id))).where(*where))
    by = {st: (int(n), int(rev)) for st, n, rev in rows}
    refunded = by.get("refunded", (0, 0))
    return {
        "orders": sum(n for n, _ in by.values()),
        "buyers": int(buyers or 0),
        "revenue": sum(rev for _, rev in by.values()),
        "refunded_orders": refunded[0],
        "refunded_revenue": refunded[1],
    }


def _r(num: float, den: float) -> float | None:
    return round(num / den, 6) if den else None


def _downsample(points: list[tuple[int, int]]) -> list[dict[str, int]]:
    """At most :data:`TIMELINE_POINTS` points, each the peak of its span."""
    if not points:
        return []
    step = max(1, math.ceil(len(points) / TIMELINE_POINTS))
    out = []
    for i in range(0, len(points), step):
        part = points[i : i + step]
        out.append({"ts": part[0][0], "viewers": max(v for _, v in part)})
    return out


async def _associates(
    s: AsyncSession, stat_where: list[Any], invite_where: list[Any]
) -> list[dict[str, Any]]:
    """The leaderboard: invited, attended, buyers, attributed orders and revenue per associate."""
    q = (
        select(
            AssociateStats.associate_id,
            func.sum(AssociateStats.attended),
            func.sum(AssociateStats.buyers),
            func.sum(AssociateStats.orders),
            func.sum(AssociateStats.revenue),
        )
        .where(*stat_where)
        .group_by(AssociateStats.associate_id)
    )
    acc: dict[str, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(("invited", "attended", "buyers", "orders", "revenue"), 0)
    )
    for aid, att, buy, orders, rev in (await s.execute(q)).all():
        acc[aid].update(
            attended=int(att or 0),
            buyers=int(buy or 0),
            orders=int(orders or 0),
            revenue=int(rev or 0),
        )
    iq = (
        select(Invite.associate_id, func.count())
        .where(Invite.associate_id.is_not(None), *invite_where)
        .group_by(Invite.associate_id)
    )
    for invited_by, n in (await s.execute(iq)).all():
        acc[str(invited_by)]["invited"] = int(n)
    names: dict[str, tuple[str, str | None]] = {}
    if acc:
        names = {
            sid: (name, store)
            for sid, name, store in (
                await s.execute(
                    select(StaffMember.id, StaffMember.name, StaffMember.store_id).where(
                        StaffMember.id.in_(list(acc))
                    )
                )
            ).all()
        }
    ranked = sorted(acc.items(), key=lambda kv: (-kv[1]["revenue"], -kv[1]["buyers"], kv[0]))
    out = [
        {
            "rank": rank,
            "associate_id": aid,
            "name": names.get(aid, ("", None))[0],
            "store_id": names.get(aid, ("", None))[1],
            **c,
            "attendance_rate": _r(c["attended"], c["invited"]),
            "conversion": _r(c["buyers"], c["attended"]),
        }
        for rank, (aid, c) in enumerate(ranked, 1)
    ]
    return out


async def associates_report(db: Database, f: Filters) -> dict[str, Any]:
    sessions = _filtered(select(LiveSession.id), f).scalar_subquery()
    async with db.read() as s:
        items = await _associates(
            s, [AssociateStats.session_id.in_(sessions)], [Invite.session_id.in_(sessions)]
        )
    return {"items": items}


def _group_key(by: str, row: dict[str, Any]) -> str:
    if by == "kind":
        return str(row["kind"])
    if by == "store":
        return str(row["store_id"])
    if by == "associate":
        return str(row["host_id"])
    when = datetime.fromtimestamp((row["time"] or 0) / 1000, tz=UTC)
    if by == "month":
        return when.strftime("%Y-%m")
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


async def compare(db: Database, by: str, f: Filters) -> dict[str, Any]:
    if by not in GROUPINGS:
        raise ValidationFailed(f"`by` must be one of {', '.join(GROUPINGS)}")
    async with db.read() as s:
        rows, _ = await _session_rows(s, f)
        labels = await _labels(s, by, {_group_key(by, r) for r in rows})
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = _group_key(by, r)
        g = groups.setdefault(
            key,
            {
                "key": key,
                "label": labels.get(key, key),
                "sessions": 0,
                "peak_concurrent": 0,
                "currencies": set(),
                **dict.fromkeys(SUMMED, 0),
            },
        )
        g["sessions"] += 1
        g["peak_concurrent"] = max(g["peak_concurrent"], r["peak_concurrent"])
        for c in SUMMED:
            g[c] += r[c]
        if r["currency"]:
            g["currencies"].add(r["currency"])
    out = []
    for g in sorted(groups.values(), key=lambda g: g["key"]):
        g["currency"] = ",".join(sorted(g.pop("currencies")))
        g["reach_per_session"] = round(g["reach"] / g["sessions"], 1)
        out.append({**g, **derive(g)})
    return {
        "by": by,
        "groups": out,
        "private_vs_public": private_vs_public(rows),
        "reach_vs_conversion": reach_vs_conversion(rows),
    }


async def _labels(s: AsyncSession, by: str, keys: set[str]) -> dict[str, str]:
    if not keys or by not in ("store", "associate"):
        return {}
    model: Any = Store if by == "store" else StaffMember
    return {
        k: n
        for k, n in (
            await s.execute(select(model.id, model.name).where(model.id.in_(list(keys))))
        ).all()
    }


def private_vs_public(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pooled conversion of private against public sessions, tested for a difference beyond chance."""
    pooled = {k: [0, 0] for k in ("private", "public")}
    for r in rows:
        if r["kind"] in pooled:
            pooled[r["kind"]][0] += r["buyers"]
            pooled[r["kind"]][1] += r["reach"]
    out: dict[str, Any] = {"test": "two-proportion z-test (pooled), two-sided, alpha 0.05"}
    for k, (b, n) in pooled.items():
        lo, hi = stats.wilson(b, n)
        out[k] = {
            "buyers": b,
            "reach": n,
            "conversion": _r(b, n),
            "ci_low": round(lo, 6) if n else None,
            "ci_high": round(hi, 6) if n else None,
        }
    t = stats.two_proportion_z(
        pooled["private"][0], pooled["private"][1], pooled["public"][0], pooled["public"][1]
    )
    if t is None:
        out.update(
            z=None,
            p_value=None,
            significant=None,
            higher=None,
            statement="not enough data: needs viewers in both private and public sessions",
        )
        return out
    higher = None if t.diff == 0 else ("private" if t.diff > 0 else "public")
    out.update(
        z=round(t.z, 4),
        p_value=t.p_value,
        significant=t.significant(),
        higher=higher,
        difference=round(t.diff, 6),
    )
    verdict = "beyond chance" if t.significant() else "within chance"
    p_text = "p < 0.001" if t.p_value < 0.001 else f"p = {t.p_value:.3f}"
    out["statement"] = (
        f"private {t.p1:.2%} vs public {t.p2:.2%}: the difference is {verdict} "
        f"(two-proportion z-test, z = {t.z:.2f}, {p_text})"
        + (f"; {higher} sessions convert more" if higher and t.significant() else "")
    )
    return out


def reach_vs_conversion(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Correlation across sessions between log10(reach) and conversion (Pearson and Spearman)."""
    pts = [(math.log10(r["reach"]), r["buyers"] / r["reach"]) for r in rows if r["reach"] > 0]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    out: dict[str, Any] = {
        "sessions": len(pts),
        "x": "log10(reach)",
        "y": "conversion (buyers / reach)",
    }
    for name, fn in (("pearson", stats.pearson), ("spearman", stats.spearman)):
        r = fn(xs, ys) if len(pts) >= 3 else None
        ci = stats.fisher_ci(r, len(pts)) if r is not None else None
        out[name] = {
            "r": None if r is None else round(r, 6),
            "ci_low": None if ci is None else round(ci[0], 6),
            "ci_high": None if ci is None else round(ci[1], 6),
            "p_value": None if r is None else stats.correlation_p_value(r, len(pts)),
        }
    rho = out["spearman"]["r"]
    if rho is None:
        out["statement"] = "not enough sessions with viewers to correlate"
    else:
        p = out["spearman"]["p_value"]
        sign = "negative: sessions that reach more convert less" if rho < 0 else "positive"
        out["statement"] = (
            f"Spearman rho = {rho:.2f} over {len(pts)} sessions ({sign}"
            + ("; beyond chance" if p is not None and p < 0.05 else "; within chance")
            + ")"
        )
    return out


async def live_counters(db: Database, session_id: str, now_ms: int) -> dict[str, Any]:
    """Viewers now (distinct viewers with a heartbeat in the last full bucket), reach so far, orders."""
    bucket = now_ms // BUCKET_MS
    async with db.read() as s:
        sess = await s.get(LiveSession, session_id)
        if sess is None:
            raise NotFound(f"no session {session_id!r}", code="session_not_found")
        st = await s.get(SessionStats, session_id)
        now = await s.scalar(
            select(func.max(AnalyticsConcurrency.viewers)).where(
                AnalyticsConcurrency.session_id == session_id,
                AnalyticsConcurrency.bucket >= bucket - 1,
            )
        )
    c = {k: int(getattr(st, k) or 0) if st else 0 for k in (*COUNTERS, "peak_concurrent")}
    return {
        "session_id": session_id,
        "status": sess.status,
        "viewers_now": int(now or 0),
        "reach": c["reach"],
        "peak_concurrent": c["peak_concurrent"],
        "buyers": c["buyers"],
        "orders": c["orders"],
        "revenue": c["revenue"],
        "currency": st.currency if st else "",
        "conversion": _r(c["buyers"], c["reach"]),
        "chats": c["chats"],
        "questions": c["questions"],
        "reactions": c["reactions"],
        "ts": now_ms,
    }
