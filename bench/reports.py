"""Report latency against a large event history (PostgreSQL).

    python bench/reports.py                      # 1 million events (quick)
    python bench/reports.py --events 10000000    # the full 10 million

Creates a scratch database on the local PostgreSQL (or uses ``--database-url``), loads synthetic
sessions through the recorder's batch path (``Recorder.record``: batched multi-row inserts that
also maintain the roll-ups, as live traffic does), then times every report. Heartbeats are sent
one per viewer per 10 s, as the room sends them. Prints load rate and each report's time (best
and median of ``--repeat`` runs) against the 1 s target, and the time a naive scan of the event
log would take for reach alone.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text

from live.analytics import reports
from live.analytics.events import Event
from live.analytics.models import AnalyticsEvent
from live.analytics.recorder import Recorder
from live.db import Database
from live.models import LiveSession, StaffMember, Store
from live.schema import upgrade

PG = "postgresql://postgres@127.0.0.1:5432"
BATCH = 20_000
T0 = 1_780_000_000_000
TARGET_S = 1.0


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def make_directory(
    db: Database, sessions: int, rng: random.Random
) -> list[tuple[str, str, int]]:
    """Stores, associates and sessions; returns (session id, kind, audience size weight)."""
    stores = [{"id": f"st_b{i:02d}", "name": f"Store {i}"} for i in range(12)]
    staff = [
        {
            "id": f"sf_b{i:03d}",
            "name": f"Associate {i}",
            "role": "associate",
            "store_id": stores[i % 12]["id"],
        }
        for i in range(60)
    ]
    rows, plan = [], []
    for n in range(sessions):
        kind = "private" if rng.random() < 0.7 else "public"
        host = staff[rng.randrange(len(staff))]
        start = T0 + n * 3_600_000 * 4
        rows.append(
            {
                "id": f"se_b{n:05d}",
                "title": f"Session {n}",
                "kind": kind,
                "store_id": host["store_id"],
                "host_id": host["id"],
                "status": "ended",
                "scheduled_at": start,
                "started_at": start,
                "ended_at": start + 3_600_000,
            }
        )
        plan.append(
            (rows[-1]["id"], kind, 1 if kind == "private" else rng.choice((5, 10, 40, 200)))
        )
    async with db.write() as s:
        await s.execute(insert(Store), stores)
        await s.execute(insert(StaffMember), staff)
        await s.execute(insert(LiveSession), rows)
    return plan


def event_stream(
    plan: list[tuple[str, str, int]], total: int, rng: random.Random
) -> Iterator[Event]:
    """``total`` events spread over the sessions by audience weight; heartbeats one per 10 s."""
    weight = sum(w for _, _, w in plan)
    made = 0
    for idx, (sid, kind, w) in enumerate(plan):
        budget = total * w // weight if idx < len(plan) - 1 else total - made
        start = T0 + idx * 3_600_000 * 4
        v = 0
        while budget > 0:
            vid = f"vw_{sid[3:]}_{v}"
            v += 1
            join = start + rng.randrange(0, 3_000_000)
            watch = max(1, int(rng.expovariate(1 / (90 if kind == "private" else 12))))
            evs = [
                Event(
                    "joined",
                    sid,
                    vid,
                    join,
                    source="invite" if kind == "private" else "public",
                    associate_id=f"sf_b{rng.randrange(60):03d}" if kind == "private" else None,
                )
            ]
            evs += [Event("heartbeat", sid, vid, join + k * 10_000) for k in range(watch)]
            evs.append(
                Event(
                    "impression", sid, vid, join + 30_000, product_id=f"pr_{rng.randrange(40):03d}"
                )
            )
            if rng.random() < 0.1:
                evs.append(Event("chat", sid, vid, join + 40_000))
            if rng.random() < (0.3 if kind == "private" else 0.03):
                evs.append(Event("card_opened", sid, vid, join + 50_000, product_id="pr_001"))
                if rng.random() < 0.6:
                    evs.append(
                        Event(
                            "purchase",
                            sid,
                            vid,
                            join + 60_000,
                            order_id=f"or_{sid[3:]}_{v}",
                            amount=rng.randrange(10_000, 200_000),
                            currency="CNY",
                            product_id="pr_001",
                        )
                    )
            evs.append(Event("left", sid, vid, join + watch * 10_000))
            evs = evs[:budget]
            budget -= len(evs)
            made += len(evs)
            yield from evs


async def load(
    db: Database, plan: list[tuple[str, str, int]], total: int, rng: random.Random
) -> float:
    recorder = Recorder(db)
    t0 = time.perf_counter()
    batch: list[Event] = []
    done = 0
    for e in event_stream(plan, total, rng):
        batch.append(e)
        if len(batch) >= BATCH:
            await recorder.record(batch)
            done += len(batch)
            batch = []
            rate = done / (time.perf_counter() - t0)
            sys.stderr.write(f"\rloaded {done:,}/{total:,} events ({rate:,.0f}/s)")
    await recorder.record(batch)
    sys.stderr.write("\n")
    return time.perf_counter() - t0


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


async def run(url: str, events: int, sessions: int, repeat: int) -> None:
    rng = random.Random(42)
    db = Database(url)
    try:
        plan = await make_directory(db, sessions, rng)
        seconds = await load(db, plan, events, rng)
        print(
            f"loaded {events:,} events into {sessions:,} sessions in {seconds:.1f}s "
            f"({events / seconds:,.0f} events/s)"
        )
        async with db.read() as s:
            biggest = await s.scalar(
                text("SELECT session_id FROM analytics_session_stats ORDER BY reach DESC LIMIT 1")
            )
            logged = await s.scalar(select(func.count()).select_from(AnalyticsEvent))
            watch_rows = await s.scalar(text("SELECT count(*) FROM analytics_watch"))
        print(f"event log rows {logged:,}; watch rows {watch_rows:,}; biggest session {biggest}")
        f = reports.Filters()
        cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            (
                "GET /api/reports/sessions (100 rows)",
                lambda: reports.sessions_report(db, f, limit=100),
            ),
            (
                "GET /api/reports/sessions?format=csv (all)",
                lambda: reports.sessions_report(db, f, limit=100_000),
            ),
            (
                "GET /api/reports/sessions/{biggest}",
                lambda: reports.session_report(db, str(biggest)),
            ),
            ("GET /api/reports/compare?by=kind", lambda: reports.compare(db, "kind", f)),
            ("GET /api/reports/compare?by=store", lambda: reports.compare(db, "store", f)),
            ("GET /api/reports/compare?by=associate", lambda: reports.compare(db, "associate", f)),
            ("GET /api/reports/compare?by=month", lambda: reports.compare(db, "month", f)),
            ("GET /api/reports/associates", lambda: reports.associates_report(db, f)),
            (
                "GET /api/sessions/{biggest}/live-counters",
                lambda: reports.live_counters(db, str(biggest), T0),
            ),
        ]
        print(f"\n{'report':48} {'best':>9} {'median':>9}  target {TARGET_S:.0f}s")
        worst = 0.0
        for name, fn in cases:
            best, med = await timed(fn, repeat)
            worst = max(worst, med)
            print(
                f"{name:48} {best * 1000:8.1f}ms {med * 1000:8.1f}ms  {'ok' if med < TARGET_S else 'SLOW'}"
            )

        async def naive() -> None:  # what compare?by=kind would cost without roll-ups: scan the log
            async with db.read() as s:
                await s.execute(
                    text(
                        "SELECT s.kind, count(DISTINCT (e.session_id, e.viewer_id)), "
                        "count(DISTINCT (e.session_id, e.viewer_id)) FILTER (WHERE e.kind = 'purchase') "
                        "FROM analytics_events e JOIN sessions s ON s.id = e.session_id GROUP BY s.kind"
                    )
                )

        best, _ = await timed(naive, 1)
        rolled, _ = await timed(lambda: reports.compare(db, "kind", f), 1)
        print(
            f"{'(naive: reach and buyers by kind from the log)':48} {best * 1000:8.1f}ms  "
            f"{best / max(rolled, 1e-9):.1f}x compare?by=kind"
        )
    finally:
        await db.dispose()


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--sessions", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument(
        "--database-url", help="an empty database to use (default: a scratch one, dropped after)"
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = p.parse_args()
    url, scratch = args.database_url, None
    if url is None:
        scratch = f"vt_bench_{secrets.token_hex(4)}"
        asyncio.run(_admin(f'CREATE DATABASE "{scratch}"'))
        url = f"{PG}/{scratch}"
    try:
        upgrade(url)
        asyncio.run(run(url, args.events, args.sessions, args.repeat))
    finally:
        if scratch and not args.keep:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        elif scratch:
            print(f"kept {url}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
