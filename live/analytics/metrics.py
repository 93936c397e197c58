"""Derived figures: rates and averages computed from summed counters (one place, every report)."""

from __future__ import annotations

from typing import Any

from live.analytics.models import COUNTERS
from live.analytics.stats import wilson

SUMMED = (*COUNTERS, "invited")


def ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _round(v: float | None, digits: int = 6) -> float | None:
    return None if v is None else round(v, digits)


def derive(c: dict[str, Any]) -> dict[str, Any]:
    """Add rates to a dict of counters (a session's roll-up or a group's sums)."""
    reach = c.get("reach", 0)
    watch = c.get("watch_seconds", 0) + c.get("replay_watch_seconds", 0)
    lo, hi = wilson(c.get("buyers", 0), reach) if reach else (None, None)
    return {
        "total_watch_seconds": watch,
        "avg_watch_seconds": _round(ratio(watch, reach), 1),
        "engagement_rate": _round(ratio(c.get("engaged", 0), reach)),
        "attendance_rate": _round(ratio(c.get("attended", 0), c.get("invited", 0))),
        "conversion": _round(ratio(c.get("buyers", 0), reach)),
        "conversion_ci_low": _round(lo),
        "conversion_ci_high": _round(hi),
        "revenue_per_viewer": _round(ratio(c.get("revenue", 0), reach), 2),
        "average_order_value": _round(ratio(c.get("revenue", 0), c.get("orders", 0)), 2),
    }


def funnel(c: dict[str, Any]) -> list[dict[str, Any]]:
    """Distinct viewers at each step, with the share of the previous step and of reach."""
    steps = (
        ("reached", "reach"),
        ("saw a product", "impression_viewers"),
        ("opened a card", "click_viewers"),
        ("added to cart", "cart_viewers"),
        ("bought", "buyers"),
    )
    out: list[dict[str, Any]] = []
    prev = None
    for name, key in steps:
        n = int(c.get(key, 0))
        out.append(
            {
                "step": name,
                "viewers": n,
                "of_previous": _round(ratio(n, prev) if prev is not None else 1.0),
                "of_reach": _round(ratio(n, c.get("reach", 0))),
            }
        )
        prev = n
    return out
