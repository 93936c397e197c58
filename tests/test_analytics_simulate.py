"""The demo season: seeded, reproducible, idempotent, and it shows the trade-off."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from live.analytics import reports
from live.analytics.simulate import run
from live.config import Settings
from live.db import Database


async def test_a_small_season_shows_the_trade_off(
    sqlite_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(sqlite_url)
    first = await run(settings, sessions=14, seed=3, public_max=4000, quiet=True)
    assert first["sessions"] == 14 and first["viewers"] > 0
    again = await run(settings, sessions=14, seed=3, public_max=4000, quiet=True)
    assert again == {**again, "sessions": 0, "skipped": 14, "viewers": 0, "events": 0}
    db = Database(settings.database_url)
    try:
        cmp = await reports.compare(db, "kind", reports.Filters())
        listing = await reports.sessions_report(db, reports.Filters(), limit=100)
        leaders = await reports.associates_report(db, reports.Filters())
    finally:
        await db.dispose()
    groups: dict[str, Any] = {g["key"]: g for g in cmp["groups"]}
    assert set(groups) == {"private", "public"}
    priv, pub = groups["private"], groups["public"]
    assert priv["conversion"] > 5 * pub["conversion"]
    assert pub["reach_per_session"] > 5 * priv["reach_per_session"]
    assert priv["invited"] >= priv["attended"] > 0
    assert (
        cmp["private_vs_public"]["significant"] and cmp["private_vs_public"]["higher"] == "private"
    )
    assert cmp["reach_vs_conversion"]["spearman"]["r"] < -0.3
    sims = [r for r in listing["items"] if r["id"].startswith("se_sim3_")]
    assert len(sims) == 14
    assert all(
        r["status"] == "ended" and r["peak_concurrent"] > 0 and r["watch_seconds"] > 0 for r in sims
    )
    assert leaders["items"] and leaders["items"][0]["revenue"] > 0


async def test_the_same_seed_gives_the_same_season(
    tmp_path: Any, make_settings: Callable[..., Settings]
) -> None:
    from tests.support import services

    figures = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        settings = make_settings(await asyncio.to_thread(services.sqlite_database, tmp_path / name))
        await run(settings, sessions=5, seed=11, public_max=2500, quiet=True)
        db = Database(settings.database_url)
        try:
            items = (await reports.sessions_report(db, reports.Filters()))["items"]
        finally:
            await db.dispose()
        figures.append(
            sorted(
                (r["id"], r["reach"], r["buyers"], r["revenue"], r["watch_seconds"])
                for r in items
                if r["id"].startswith("se_sim")
            )
        )
    assert figures[0] == figures[1]
